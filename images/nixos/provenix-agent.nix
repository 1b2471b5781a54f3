# The provenix agent on a NixOS builder (flake output nixosModules.default).
#
#   initrd (systemd): provenix-measure.service measures the closure of the
#     toplevel named by the measured kernel command line's init= on the new
#     root, from content, into the system PCR, before switch-root; there is
#     no option to skip it
#   provenix-agent.service: the daemon (user provenix, group tss for
#     /dev/tpmrm0), taking jobs from Nix's post-build hook, recording signed,
#     attested entries in the log and serving it
#   nix.settings.post-build-hook: `provenix-agent hook`
#
# The assertions are what make an entry's built_locally honest and the
# boot measurement meaningful: no remote builders, the sandbox on with no
# fallback, only root trusted by Nix, no mutable users, no root password or
# root SSH login, systemd in the initrd and a boot loader that boots UKIs.
# Enroll once after the first boot (`provenix-agent enroll`, as root).
{ config, lib, pkgs, ... }:

let
  cfg = config.services.provenix-agent;
  inherit (lib) mkOption mkEnableOption mkIf types;
  toml = pkgs.formats.toml { };
  settings = lib.filterAttrs (_: v: v != null) {
    tcti = cfg.tcti;
    insecure_allow_swtpm = cfg.insecureAllowSwtpm;
    state_dir = cfg.stateDir;
    log_dir = cfg.logDir;
    seal_pcrs = cfg.sealPcrs;
    system_pcr = cfg.systemPcr;
    socket = "/run/provenix/agent.sock";
    spool_dir = "${cfg.stateDir}/spool";
    batch_size = cfg.batch.size;
    batch_delay_ms = cfg.batch.delayMs;
    listen = cfg.listen;
    tls_cert = if cfg.tls.certFile == null then null else toString cfg.tls.certFile;
    tls_key = if cfg.tls.keyFile == null then null else toString cfg.tls.keyFile;
    serve_nix_sigs = cfg.nixSig.enable;
  };
  configFile = toml.generate "provenix-agent.toml" settings;
  # Commands run by hand (enroll, status, keys) read /etc/provenix/agent.toml,
  # the agent's default configuration file.
  agent = "${cfg.package}/bin/provenix-agent";
  hook = pkgs.writeShellScript "provenix-post-build-hook" ''
    # Nix runs this as root after every build; it always exits 0.
    exec ${agent} --config ${configFile} hook
  '';
  root = config.users.users.root;
  rootLocked =
    root.password == null && root.initialPassword == null
    && root.hashedPasswordFile == null && root.initialHashedPassword == null
    && (root.hashedPassword == null || root.hashedPassword == "!");
  ssh = config.services.openssh;
in
{
  options.services.provenix-agent = {
    enable = mkEnableOption "the provenix agent: TPM-attested provenance for every local Nix build";

    package = mkOption {
      type = types.package;
      description = "The provenix package (provenix-agent and provenix).";
    };

    tcti = mkOption {
      type = types.str;
      default = "device:/dev/tpmrm0";
      description = "The TPM interface (tpm2-tss TCTI string). The kernel's resource manager by default.";
    };

    insecureAllowSwtpm = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Accept a software TPM (swtpm, as NixOS VM tests attach). Its
        records say so and verifiers refuse them unless their policy allows
        software TPMs. Tests only.
      '';
    };

    systemPcr = mkOption {
      type = types.ints.between 0 23;
      default = 14;
      description = "The PCR the system measurement is extended into (systemd owns 11, 12, 13 and 15).";
    };

    sealPcrs = mkOption {
      type = types.listOf (types.ints.between 0 23);
      default = [ 0 2 4 7 9 12 13 14 ];
      description = ''
        The PCRs the signing key is sealed to and every quote covers (sorted).
        Verifiers pin 0, 2 and 7, predict 4, 9 and the system PCR, and
        require 12 and 13 to show no events.
      '';
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/provenix";
      description = "The agent's state: enrollment record, TPM key blobs, this boot's CEL log, the spool.";
    };

    logDir = mkOption {
      type = types.str;
      default = "/var/lib/provenix/log";
      description = "The transparency log (C2SP tlog-tiles).";
    };

    listen = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "0.0.0.0:8443";
      description = "Serve the log over HTTPS here (null: not served).";
    };

    tls = {
      certFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "TLS certificate chain (PEM) for the log service.";
      };
      keyFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "TLS private key (PEM) for the log service; readable by the provenix user.";
      };
    };

    batch = {
      size = mkOption {
        type = types.ints.positive;
        default = 64;
        description = "Most entries attested by one TPM quote.";
      };
      delayMs = mkOption {
        type = types.ints.unsigned;
        default = 200;
        description = "How long a batch waits for more builds (milliseconds).";
      };
    };

    nixSig.enable = mkOption {
      type = types.bool;
      default = true;
      description = "Serve Nix Sig: lines by the log key at /sig/ (what provenix-agent sign-cache adds to a cache).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      { assertion = builtins.elem cfg.systemPcr cfg.sealPcrs;
        message = "services.provenix-agent: systemPcr must be in sealPcrs."; }
      { assertion = (config.nix.settings.builders or "") == "" && !config.nix.distributedBuilds;
        message = "services.provenix-agent: remote builders would make built_locally false; set nix.settings.builders = \"\" and leave nix.distributedBuilds off."; }
      { assertion = config.nix.settings.sandbox == true;
        message = "services.provenix-agent: nix.settings.sandbox must be true."; }
      { assertion = config.nix.settings.sandbox-fallback == false;
        message = "services.provenix-agent: nix.settings.sandbox-fallback must be false (a build must not run unsandboxed)."; }
      { assertion = config.nix.settings.trusted-users == [ "root" ];
        message = "services.provenix-agent: nix.settings.trusted-users must be [ \"root\" ] (a trusted user can change a build's settings)."; }
      { assertion = !config.users.mutableUsers;
        message = "services.provenix-agent: users.mutableUsers must be false."; }
      { assertion = rootLocked;
        message = "services.provenix-agent: root must have no password (hashedPassword \"!\" or unset)."; }
      { assertion = !ssh.enable || ssh.settings.PermitRootLogin == "no";
        message = "services.provenix-agent: root SSH login must be off (services.openssh.settings.PermitRootLogin = \"no\")."; }
      { assertion = config.boot.initrd.systemd.enable;
        message = "services.provenix-agent: the system is measured in a systemd initrd (boot.initrd.systemd.enable = true)."; }
      { assertion = !config.boot.loader.grub.enable;
        message = "services.provenix-agent: boot through a UKI (lanzaboote, or systemd-boot with boot.uki): GRUB's measurements cannot be predicted the same way."; }
      { assertion = cfg.listen == null || (cfg.tls.certFile != null && cfg.tls.keyFile != null);
        message = "services.provenix-agent: serving the log (listen) needs tls.certFile and tls.keyFile."; }
    ];

    security.tpm2.enable = true;
    boot.initrd.availableKernelModules = [ "tpm_tis" "tpm_crb" ];

    nix.settings = {
      sandbox = lib.mkDefault true;
      sandbox-fallback = lib.mkDefault false;
      post-build-hook = hook;
    };

    users.users.provenix = {
      isSystemUser = true;
      group = "provenix";
      extraGroups = [ "tss" ];
      description = "provenix agent";
    };
    users.groups.provenix = { };

    # The state written in the initrd (root) belongs to the agent's user.
    systemd.tmpfiles.rules = [
      "d ${cfg.stateDir} 0750 provenix provenix -"
      "Z ${cfg.stateDir} - provenix provenix -"
      "d ${cfg.logDir} 0755 provenix provenix -"
    ];

    # Measure in the initrd, on the new root, before switch-root: the
    # toplevel from the measured init=, its whole closure hashed from
    # content. Nothing unmeasured runs before the system PCR is extended.
    boot.initrd.systemd.storePaths = [ agent pkgs.tpm2-tss ];
    boot.initrd.systemd.services.provenix-measure = {
      description = "provenix: measure the system closure into the system PCR";
      wantedBy = [ "initrd.target" ];
      requiredBy = [ "initrd-nixos-activation.service" ];
      after = [ "initrd-fs.target" ];
      before = [ "initrd-nixos-activation.service" "initrd-switch-root.target" ];
      unitConfig.DefaultDependencies = false;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        mkdir -p /sysroot${cfg.stateDir}
        ${agent} --config /dev/null --tcti ${lib.escapeShellArg cfg.tcti} \
          ${lib.optionalString cfg.insecureAllowSwtpm "--insecure-allow-swtpm"} \
          measure --root /sysroot --cmdline /proc/cmdline \
          --nix-db /sysroot/nix/var/nix/db/db.sqlite \
          --system-pcr ${toString cfg.systemPcr} --state-dir /sysroot${cfg.stateDir}
      '';
    };

    systemd.services.provenix-agent = {
      description = "provenix agent: attested provenance for local Nix builds";
      wantedBy = [ "multi-user.target" ];
      after = [ "nix-daemon.service" "systemd-tmpfiles-setup.service" ];
      serviceConfig = {
        ExecStart = "${agent} --config ${configFile} run";
        User = "provenix";
        Group = "provenix";
        SupplementaryGroups = [ "tss" ];
        RuntimeDirectory = "provenix";
        RuntimeDirectoryMode = "0755";
        ReadWritePaths = [ cfg.stateDir cfg.logDir ];
        Restart = "on-failure";
        KillSignal = "SIGTERM";
        TimeoutStopSec = 30;
        # Hardening: only the TPM device, no privileges, a read-only system.
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        NoNewPrivileges = true;
        DevicePolicy = "closed";
        DeviceAllow = [ "/dev/tpmrm0 rw" ];
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" ];
        UMask = "0027";
      };
    };

    environment.systemPackages = [ cfg.package ];
    environment.etc."provenix/agent.toml".source = configFile;
  };
}
