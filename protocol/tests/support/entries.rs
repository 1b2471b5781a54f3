//! Sample entries shared by the tests that need a realistic one (included
//! by path): the entry docs/wire-format.md documents byte by byte, and the
//! same with many resolved inputs (so its lists are detached).
#![allow(dead_code, clippy::unwrap_used)]

use provenix_protocol::{
    BuildEnv, BuilderId, DrvPath, Entry, EntryOutput, NarHash, ResolvedInput, Sha256Digest,
    SourceRef, StorePath,
};

fn sp(s: &str) -> StorePath {
    StorePath::parse(s).unwrap()
}

/// The sample entry documented byte by byte in docs/wire-format.md.
pub(crate) fn sample() -> Entry {
    Entry {
        builder: BuilderId::from_public_digest(&Sha256Digest([0xaa; 32])),
        seq: 5,
        drv_path: DrvPath::parse("/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv").unwrap(),
        drv_hash: Sha256Digest([0x11; 32]),
        outputs: vec![EntryOutput {
            name: "out".into(),
            store_path: sp("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello"),
            nar_hash: NarHash(Sha256Digest([0x22; 32])),
            nar_size: 128,
            references: vec![],
        }],
        built_locally: true,
        build_env: BuildEnv {
            settings_digest: Sha256Digest([0x33; 32]),
            sandbox: true,
            remote_builders: false,
        },
        resolved_inputs: vec![ResolvedInput {
            store_path: sp("/nix/store/z56a0nzrpznn3zcjqsyl9ppklasap124-busybox-static"),
            nar_hash: NarHash(Sha256Digest([0x44; 32])),
        }],
        source: Some(SourceRef::new("github:NixOS/nixpkgs/0123abc").unwrap()),
        system: Sha256Digest([0x55; 32]),
        time: 1_700_000_000,
    }
}

/// The sample with `inputs` resolved inputs.
pub(crate) fn with_inputs(inputs: usize) -> Entry {
    let mut e = sample();
    e.resolved_inputs = (0..inputs)
        .map(|i| ResolvedInput {
            store_path: StorePath::make(
                "source",
                &Sha256Digest::of(&i.to_le_bytes()),
                "some-input-name-1.0",
            )
            .unwrap(),
            nar_hash: NarHash(Sha256Digest::of(&i.to_be_bytes())),
        })
        .collect();
    e.normalize();
    e
}
