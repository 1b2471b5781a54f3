//! provenix protocol: the core shared by the builder agent and the verifier.
//!
//! Everything here is bytes in, typed values out: no sockets, clocks or TPM
//! calls. Without the default `std` feature the crate is `no_std` (it needs
//! `alloc`); the file-system helpers (the NAR disk walk and parallel hashing)
//! live behind `std`.
//!
//! ```text
//!   builder (agent)                                   auditor (verifier)
//!   ───────────────                                   ──────────────────
//!   store path on disk ─nar::hash_path─> NarHash
//!   .drv bytes ─drv::Derivation::parse─> hash_modulo ─> drv_hash
//!   booted closure ─SystemIdentity─> system digest
//!        │
//!        ▼
//!   Entry ─encode (canonical postcard)─> sign (SK, "provenix/entry/v1\0")
//!        ─> Leaf bytes (tag + body, ≤ 65,535) ─> log (RFC 6962, merkle)
//!        ─> Checkpoint (signed note, LK) ─> witnesses (cosignature/v1)
//!                                                     │
//!                  Leaf::decode (bounded, canonical) <┘ verify_strict, inclusion,
//!                                                       consistency, cosignatures
//!   Nix side: narinfo parse/render, fingerprint, Sig: lines (nix_sig)
//! ```
//!
//! Specifications implemented: the Nix 2.8 NAR format, nix32, store paths,
//! narinfo and signature fingerprints, ATerm derivations and
//! `hashDerivationModulo` (Nix manual and `libstore`); RFC 6962 §2.1 Merkle
//! hash trees; C2SP `signed-note`, `tlog-checkpoint`, `tlog-cosignature` and
//! `tlog-tiles`.
//! Byte layouts are documented in `docs/wire-format.md`.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

pub mod batch;
pub mod binding;
pub mod drv;
pub mod encoding;
pub mod enrollment;
pub mod entry;
pub mod error;
pub mod hash;
pub mod ids;
pub mod leaf;
pub mod merkle;
pub mod nar;
pub mod narinfo;
pub mod nix_sig;
pub mod note;
pub mod registration;
pub mod store_path;
pub mod system;
pub mod tiles;
pub mod tpm;

pub use entry::{BuildEnv, Entry, EntryOutput, ResolvedInput, SignedEntry, SourceRef};
pub use error::{Error, Result};
pub use hash::{NarHash, Sha256Digest};
pub use ids::{BuilderId, Counter, PcrIndex};
pub use leaf::Leaf;
pub use store_path::{DrvPath, StorePath};
pub use system::{MeasurementMode, SystemIdentity};
