# A NixOS builder with the module: measured in the initrd, enrolled, one
# build through the post-build hook, the log verified with provenix, the AK
# activated by files, and the output trusted under a policy.
{ pkgs, self }:
let common = import ./common.nix { inherit self pkgs; }; in
pkgs.testers.runNixOSTest {
  name = "provenix-build-and-verify";
  nodes.builder = common.node;
  testScript = ''
    builder.wait_for_unit("multi-user.target")
    # The initrd measured the booted closure before switch-root.
    builder.succeed("test -s /var/lib/provenix/cel.log")
    builder.succeed("systemctl is-active initrd-switch-root.target || true")

    ${common.enroll}

    out = builder.succeed("nix-build --no-out-link /etc/provenix-test/build.nix").strip()
    builder.wait_until_succeeds("provenix-agent status --json | grep -q '\"entries\": *1'")
    builder.succeed("provenix verify --json /var/lib/provenix/log | grep -q '\"verified\":true'")

    # Credential activation by files, then a one-builder policy.
    vkey = builder.succeed("cd /root && provenix activate init --name auditor.test --key auditor.key").strip()
    ak = builder.succeed(
      "provenix-agent status --json | tr -d ' \\n' | sed -n 's/.*\"builder\":\"\\([0-9a-f]*\\)\".*/\\1/p'"
    ).strip()
    builder.succeed("mkdir -p /root/activations")
    builder.succeed(
      "cat > /root/policy.toml <<EOF\n"
      "insecure_allow_swtpm = true\n"
      "quorum = 1\n"
      "danger_any_system = true\n"
      f"trusted_activators = [\"{vkey}\"]\n"
      "activations = [\"activations\"]\n"
      "ek_roots = [\"ca.pem\"]\n"
      "[[builder]]\n"
      "name = \"builder\"\n"
      "log = \"/var/lib/provenix/log\"\n"
      f"ak_name = \"{ak}\"\n"
      "EOF"
    )
    builder.fail(f"cd /root && provenix decide --policy policy.toml {out}")
    builder.succeed(
      "cd /root && provenix activate challenge --policy policy.toml"
      " --enrollment /var/lib/provenix/enrollment.bin --challenge-out c.bin"
      " && provenix-agent activate --challenge c.bin --answer-out a.bin"
      " && provenix activate answer --challenge c.bin --answer a.bin --key auditor.key"
      " --out activations/builder.activation"
    )
    builder.succeed(f"cd /root && provenix decide --policy policy.toml {out}")
  '';
}
