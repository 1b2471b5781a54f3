# What both VM tests share: the builder node (the module, a TPM: swtpm,
# hence insecureAllowSwtpm; systemd in the initrd, and what the module
# asserts), and the test-script lines that enroll it.
#
# NixOS's test TPM (swtpm) has no EK certificate in NV: `enroll` makes a CA
# and certifies the EK with it (`enroll --ek-cert`); a policy trusts that
# CA (/root/ca.pem) as an auditor trusts a manufacturer's.
{ self, pkgs }:
{
  enroll = ''
    builder.succeed(
      "cd /root && export TPM2TOOLS_TCTI=device:/dev/tpmrm0"
      " && tpm2_createek -c ek.ctx -G rsa -u ek.pem -f pem && tpm2_flushcontext -t"
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -subj /CN=test-tpm-ca -days 30"
      " && openssl req -new -key ca.key -subj /CN=ek | openssl x509 -req -CA ca.pem -CAkey ca.key"
      "    -force_pubkey ek.pem -days 30 -outform DER -out ek.der"
    )
    builder.succeed("provenix-agent enroll --ek-cert /root/ek.der")
    builder.succeed("systemctl restart provenix-agent")
    builder.wait_for_unit("provenix-agent.service")
  '';
  node = {
    imports = [ self.nixosModules.default ];
    virtualisation.tpm.enable = true;
    virtualisation.memorySize = 2048;
    boot.initrd.systemd.enable = true;
    boot.loader.grub.enable = false;
    users.mutableUsers = false;
    nix.settings = {
      sandbox = true;
      sandbox-fallback = false;
      substituters = pkgs.lib.mkForce [ ];
      experimental-features = [ "nix-command" ];
    };
    services.provenix-agent = {
      enable = true;
      insecureAllowSwtpm = true;
      batch.delayMs = 50;
    };
    # Offline builds: a static busybox in the closure as the builder.
    system.extraDependencies = [ pkgs.pkgsStatic.busybox ];
    environment.systemPackages = [ pkgs.tpm2-tools pkgs.openssl ];
    environment.etc."provenix-test/build.nix".text = ''
      builtins.derivation {
        name = "greeting";
        system = builtins.currentSystem;
        builder = "${pkgs.pkgsStatic.busybox}/bin/sh";
        args = [ "-c" "echo hello from a measured builder > $out" ];
      }
    '';
  };
}
