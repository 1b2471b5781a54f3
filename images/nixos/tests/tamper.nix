# The same builder, and what must fail: a tampered copy of its log is
# refused by provenix verify, and after an unlogged extension of PCR 12 (a
# command-line override, say) the signing key cannot be derived.
{ pkgs, self }:
let common = import ./common.nix { inherit self pkgs; }; in
pkgs.testers.runNixOSTest {
  name = "provenix-tamper";
  nodes.builder = common.node;
  testScript = ''
    builder.wait_for_unit("multi-user.target")
    ${common.enroll}
    builder.succeed("nix-build --no-out-link /etc/provenix-test/build.nix")
    builder.wait_until_succeeds("provenix-agent status --json | grep -q '\"entries\": *1'")
    builder.succeed("cp -r /var/lib/provenix/log /tmp/copy")
    # One byte of the last entry bundle changed: refused (exit 1).
    builder.succeed(
      "f=$(ls /tmp/copy/tile/entries/*.p/* | head -n1)"
      " && printf '\\x00' | dd of=$f bs=1 seek=40 conv=notrunc"
    )
    builder.fail("provenix verify /tmp/copy")
    # PCR 12 extended without a log entry: SK no longer derives.
    builder.succeed("systemctl stop provenix-agent")
    builder.succeed("tpm2_pcrextend -T device:/dev/tpmrm0 12:sha256=" + "11" * 32)
    builder.fail("provenix-agent keys")
  '';
}
