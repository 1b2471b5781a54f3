# provenix: both binaries (provenix-agent for builders, provenix for
# auditors and cache users). The test suite needs swtpm and a Nix daemon,
# so it runs in the repository's scripts/test.sh, not here.
{ lib, rustPlatform, pkg-config, tpm2-tss }:

rustPlatform.buildRustPackage {
  pname = "provenix";
  version = "0.1.0";
  src = lib.cleanSourceWith {
    src = ../..;
    filter = path: type:
      let base = baseNameOf path; in
      !(builtins.elem base [ "target" "result" ".git" ]);
  };
  cargoLock.lockFile = ../../Cargo.lock;
  cargoBuildFlags = [ "-p" "provenix-agent" "-p" "provenix-verifier" ];
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ tpm2-tss ];
  doCheck = false;
  meta = {
    description = "Nix builds accountable to hardware: TPM-attested build provenance";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "provenix";
    platforms = lib.platforms.linux;
  };
}
