{
  description = "provenix: Nix builds accountable to hardware";

  # The minimum Rust version is 1.89 (README): a nixpkgs from late 2025 on.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: rec {
        provenix = pkgs.callPackage ./images/nixos/package.nix { };
        default = provenix;
      });

      # The builder-side module: the agent measured in the initrd, its daemon,
      # and Nix's post-build hook (images/nixos/provenix-agent.nix).
      nixosModules.default = { pkgs, lib, ... }: {
        imports = [ ./images/nixos/provenix-agent.nix ];
        services.provenix-agent.package =
          lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.provenix;
      };

      # NixOS VM tests (need nixpkgs and KVM): nix flake check, or
      # nix build .#checks.x86_64-linux.build-and-verify
      checks = forAll (pkgs: {
        build-and-verify = import ./images/nixos/tests/build-and-verify.nix { inherit pkgs self; };
        tamper = import ./images/nixos/tests/tamper.nix { inherit pkgs self; };
      });
    };
}
