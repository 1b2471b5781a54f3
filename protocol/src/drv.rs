//! Nix derivations: the ATerm `.drv` format and `hashDerivationModulo`.
//!
//! A `.drv` file is one ATerm value, written by Nix without whitespace or a
//! final newline:
//!
//! ```text
//! Derive([outputs],[inputDrvs],[inputSrcs],platform,builder,[args],[env])
//!   outputs   = ("name","path","hashAlgo","hash")   sorted by name
//!   inputDrvs = ("/nix/store/….drv",["out",…])     sorted by path, names sorted
//!   inputSrcs = "/nix/store/…"                     sorted
//!   env       = ("key","value")                    sorted by key
//! ```
//!
//! Strings are double-quoted. Nix escapes `"`, `\`, newline, carriage return
//! and tab (as `\"`, `\\`, `\n`, `\r`, `\t`) in the builder, the arguments and
//! the environment, and prints every other field (output names and paths,
//! hash fields, input paths and output names, the platform) verbatim.
//! [`Derivation::parse`] accepts exactly what [`Derivation::to_aterm`] prints,
//! so parsing and printing give back the same bytes: it refuses unsorted or
//! duplicate entries ([`Error::Unsorted`]), escapes or raw control characters
//! Nix never writes, backslashes in verbatim fields, trailing bytes
//! ([`Error::TrailingBytes`]) and inputs over [`MAX_DRV_SIZE`] or list limits
//! ([`Error::TooLarge`]); other malformed input is [`Error::Derivation`] with
//! its byte offset.
//!
//! Output kinds follow Nix 2.8 (`libstore/derivations.cc`): input-addressed
//! (a path, empty hash fields), fixed-output (`hashAlgo` `[r:]algo`, the hash
//! in lowercase hex; only one, named `out`), and the kinds whose paths are not
//! known at evaluation time: content-addressed floating (`r:sha256`, empty
//! path and hash), deferred (all empty) and impure (hash `impure`). All outputs
//! must be of one kind. The later kinds, and the `text:` ingestion method of
//! newer Nix versions, parse as data but cannot be hashed here
//! ([`Error::UnsupportedDerivation`]).
//!
//! [`Derivation::hash_modulo`] is Nix 2.8's `hashDerivationModulo(store, drv,
//! maskOutputs = true)`:
//!
//! ```text
//! fixed-output:  per output  SHA-256("fixed:out:" + [r:]algo + ":" + hex + ":" + outPath)
//! otherwise:     SHA-256(ATerm with every input .drv path replaced by the hex of
//!                its own modulo hash for the requested outputs (inputs that give the
//!                same hex merge their output names), output paths printed as "",
//!                and environment variables named like an output set to "")
//! ```
//!
//! Only the derivation asked about is masked: Nix hashes its inputs
//! (recursively, through `pathDerivationModulo`) with `maskOutputs = false`,
//! so an input's hash covers its own output paths and output variables as
//! written. A fixed-output derivation's hash ignores its inputs and builder
//! entirely, which is why two `.drv` files that differ only in how a fixed
//! output is fetched give their dependents one and the same hash.
//!
//! An input-addressed output's path is then [`output_path`] (Nix's
//! `makeOutputPath`), and a fixed output's path is [`OutputHash::store_path`]
//! (Nix's `makeFixedOutputPath`); [`Derivation::check_output_paths`] checks both
//! against the paths and environment variables written in the file, as Nix's
//! `LocalStore::checkDerivationOutputs` does.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::encoding::hex_encode;
use crate::error::{Error, Result};
use crate::hash::Sha256Digest;
use crate::store_path::{DrvPath, StorePath};

/// Largest `.drv` file accepted, in bytes.
pub const MAX_DRV_SIZE: usize = 16 * 1024 * 1024;
/// Most outputs a derivation may have.
pub const MAX_OUTPUTS: usize = 256;
/// Most input derivations a derivation may name.
pub const MAX_INPUT_DRVS: usize = 65_536;
/// Most outputs that may be requested from one input derivation.
pub const MAX_INPUT_OUTPUTS: usize = 256;
/// Most input sources a derivation may name.
pub const MAX_INPUT_SRCS: usize = 65_536;
/// Most builder arguments.
pub const MAX_ARGS: usize = 65_536;
/// Most environment variables.
pub const MAX_ENV: usize = 65_536;

/// The hash algorithms Nix 2.8 accepts for fixed outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HashAlgo {
    /// MD5 (16 bytes).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgo {
    /// The name Nix writes (`md5`, `sha1`, `sha256`, `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "md5" => Some(Self::Md5),
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// How an output's content is hashed (the prefix of the `hashAlgo` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum IngestionMethod {
    /// The file's bytes (no prefix).
    Flat,
    /// The NAR serialisation (`r:`).
    Recursive,
    /// Text hashing (`text:`); newer than Nix 2.8, kept as data only.
    Text,
}

impl IngestionMethod {
    /// The prefix Nix writes before the algorithm name.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Flat => "",
            Self::Recursive => "r:",
            Self::Text => "text:",
        }
    }

    /// Split a `hashAlgo` field into method and algorithm.
    fn split(field: &str) -> Option<(Self, HashAlgo)> {
        let (method, name) = if let Some(rest) = field.strip_prefix("r:") {
            (Self::Recursive, rest)
        } else if let Some(rest) = field.strip_prefix("text:") {
            (Self::Text, rest)
        } else {
            (Self::Flat, field)
        };
        HashAlgo::from_name(name).map(|algo| (method, algo))
    }
}

/// The declared content hash of a fixed output.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OutputHash {
    method: IngestionMethod,
    algo: HashAlgo,
    digest: Vec<u8>,
}

impl OutputHash {
    /// The ingestion method.
    pub fn method(&self) -> IngestionMethod {
        self.method
    }

    /// The hash algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The digest bytes (as long as [`HashAlgo::digest_len`]).
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The digest, when the algorithm is SHA-256.
    pub fn sha256(&self) -> Option<Sha256Digest> {
        match self.algo {
            HashAlgo::Sha256 => self.digest.as_slice().try_into().ok().map(Sha256Digest),
            _ => None,
        }
    }

    /// The `hashAlgo` field: method prefix and algorithm, e.g. `r:sha256`
    /// (Nix's `printMethodAlgo`).
    pub fn method_algo(&self) -> String {
        let mut s = String::from(self.method.prefix());
        s.push_str(self.algo.name());
        s
    }

    /// The digest in lowercase hex, as the `hash` field holds it.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.digest)
    }

    /// Nix 2.8's `makeFixedOutputPath` for this hash and store-path `name`:
    /// `makeStorePath("source", hash, name)` for recursive SHA-256, else
    /// `makeStorePath("output:out", SHA-256("fixed:out:" + [r:]algo + ":" +
    /// hex + ":"), name)`.
    pub fn store_path(&self, name: &str) -> Result<StorePath> {
        if self.method == IngestionMethod::Text {
            return Err(Error::UnsupportedDerivation(UNSUPPORTED_TEXT));
        }
        if let (IngestionMethod::Recursive, Some(digest)) = (self.method, self.sha256()) {
            return StorePath::make("source", &digest, name);
        }
        let inner = Sha256Digest::of_parts(&[
            b"fixed:out:",
            self.method_algo().as_bytes(),
            b":",
            self.to_hex().as_bytes(),
            b":",
        ]);
        StorePath::make("output:out", &inner, name)
    }
}

impl fmt::Debug for OutputHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutputHash({}:{})", self.method_algo(), self.to_hex())
    }
}

/// One output of a derivation, by kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DerivationOutput {
    /// Input-addressed: the path follows from the derivation's modulo hash.
    InputAddressed(StorePath),
    /// Fixed-output: the path follows from the declared content hash.
    Fixed {
        /// The path written in the file.
        path: StorePath,
        /// The declared content hash.
        hash: OutputHash,
    },
    /// Content-addressed floating (`ca-derivations`): path known after the build.
    Floating {
        /// The ingestion method.
        method: IngestionMethod,
        /// The hash algorithm.
        algo: HashAlgo,
    },
    /// Input-addressed but deferred (an input is floating): no path yet.
    Deferred,
    /// Impure (`impure-derivations`): path known after the build.
    Impure {
        /// The ingestion method.
        method: IngestionMethod,
        /// The hash algorithm.
        algo: HashAlgo,
    },
}

impl DerivationOutput {
    /// The output path written in the file, when the kind has one.
    pub fn path(&self) -> Option<&StorePath> {
        match self {
            Self::InputAddressed(path) | Self::Fixed { path, .. } => Some(path),
            Self::Floating { .. } | Self::Deferred | Self::Impure { .. } => None,
        }
    }

    fn kind(&self) -> DerivationKind {
        match self {
            Self::InputAddressed(_) => DerivationKind::InputAddressed,
            Self::Fixed { .. } => DerivationKind::FixedOutput,
            Self::Floating { .. } => DerivationKind::Floating,
            Self::Deferred => DerivationKind::Deferred,
            Self::Impure { .. } => DerivationKind::Impure,
        }
    }

    /// Build an output from its three string fields, as Nix 2.8's
    /// `parseDerivationOutput` reads them (but refusing what Nix would not
    /// print back the same way).
    fn from_fields(path: Field, algo: Field, hash: Field) -> Result<Self> {
        if algo.text.is_empty() {
            if !hash.text.is_empty() {
                return Err(hash.error("output hash without a hash algorithm"));
            }
            if path.text.is_empty() {
                return Ok(Self::Deferred);
            }
            return StorePath::parse(&path.text).map(Self::InputAddressed);
        }
        let (method, hash_algo) = IngestionMethod::split(&algo.text)
            .ok_or_else(|| algo.error("unknown output hash algorithm"))?;
        if hash.text == "impure" || hash.text.is_empty() {
            if !path.text.is_empty() {
                return Err(path.error("floating or impure output with a path"));
            }
            return Ok(if hash.text.is_empty() {
                Self::Floating {
                    method,
                    algo: hash_algo,
                }
            } else {
                Self::Impure {
                    method,
                    algo: hash_algo,
                }
            });
        }
        let digest = lower_hex_decode(&hash.text, hash_algo.digest_len()).ok_or_else(|| {
            hash.error("fixed-output hash is not lowercase hex of the algorithm's length")
        })?;
        Ok(Self::Fixed {
            path: StorePath::parse(&path.text)?,
            hash: OutputHash {
                method,
                algo: hash_algo,
                digest,
            },
        })
    }
}

/// What kind of derivation this is (all outputs share one kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DerivationKind {
    /// Every output is input-addressed.
    InputAddressed,
    /// One fixed output, named `out`.
    FixedOutput,
    /// Content-addressed floating outputs (`ca-derivations`).
    Floating,
    /// Deferred input-addressed outputs.
    Deferred,
    /// Impure outputs (`impure-derivations`).
    Impure,
}

const UNSUPPORTED_TEXT: &str = "text-hashed fixed output (newer than Nix 2.8)";

impl DerivationKind {
    /// `Ok` for the kinds `hashDerivationModulo` gives a usable hash for.
    fn check_hashable(self) -> Result<()> {
        match self {
            Self::InputAddressed | Self::FixedOutput => Ok(()),
            Self::Floating => Err(Error::UnsupportedDerivation(
                "content-addressed floating derivation (ca-derivations)",
            )),
            Self::Deferred => Err(Error::UnsupportedDerivation(
                "deferred input-addressed derivation (depends on a floating one)",
            )),
            Self::Impure => Err(Error::UnsupportedDerivation(
                "impure derivation (impure-derivations)",
            )),
        }
    }
}

/// A parsed `.drv` file.
///
/// Fields are private: a value always holds what a real, well-formed `.drv`
/// can hold, sorted as Nix writes it, with outputs of one kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derivation {
    outputs: BTreeMap<String, DerivationOutput>,
    input_drvs: BTreeMap<DrvPath, BTreeSet<String>>,
    input_srcs: BTreeSet<StorePath>,
    platform: String,
    builder: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    kind: DerivationKind,
}

impl Derivation {
    /// Parse a `.drv` file. The result prints back ([`Self::to_aterm`]) to
    /// exactly `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_DRV_SIZE {
            return Err(Error::TooLarge {
                what: "derivation",
                len: bytes.len(),
                max: MAX_DRV_SIZE,
            });
        }
        let mut r = Reader {
            input: bytes,
            pos: 0,
        };
        r.literal(b"Derive(")?;

        let outputs = r.list("derivation outputs", MAX_OUTPUTS, |r| {
            r.literal(b"(")?;
            let name = r.string(Quoting::Verbatim)?;
            r.literal(b",")?;
            let path = r.field(Quoting::Verbatim)?;
            r.literal(b",")?;
            let algo = r.field(Quoting::Verbatim)?;
            r.literal(b",")?;
            let hash = r.field(Quoting::Verbatim)?;
            r.literal(b")")?;
            Ok((name, DerivationOutput::from_fields(path, algo, hash)?))
        })?;
        let outputs = sorted_map("derivation outputs", outputs)?;

        r.literal(b",")?;
        let input_drvs = r.list("derivation input derivations", MAX_INPUT_DRVS, |r| {
            r.literal(b"(")?;
            let path = DrvPath::parse(&r.string(Quoting::Verbatim)?)?;
            r.literal(b",")?;
            let names = r.list("derivation input outputs", MAX_INPUT_OUTPUTS, |r| {
                r.string(Quoting::Verbatim)
            })?;
            r.literal(b")")?;
            Ok((path, sorted_set("derivation input outputs", names)?))
        })?;
        let input_drvs = sorted_map("derivation input derivations", input_drvs)?;

        r.literal(b",")?;
        let input_srcs = r.list("derivation input sources", MAX_INPUT_SRCS, |r| {
            StorePath::parse(&r.string(Quoting::Verbatim)?)
        })?;
        let input_srcs = sorted_set("derivation input sources", input_srcs)?;

        r.literal(b",")?;
        let platform = r.string(Quoting::Verbatim)?;
        r.literal(b",")?;
        let builder = r.string(Quoting::Escaped)?;
        r.literal(b",")?;
        let args = r.list("derivation args", MAX_ARGS, |r| r.string(Quoting::Escaped))?;
        r.literal(b",")?;
        let env = r.list("derivation env", MAX_ENV, |r| {
            r.literal(b"(")?;
            let key = r.string(Quoting::Escaped)?;
            r.literal(b",")?;
            let value = r.string(Quoting::Escaped)?;
            r.literal(b")")?;
            Ok((key, value))
        })?;
        let env = sorted_map("derivation env", env)?;
        r.literal(b")")?;
        let extra = bytes.len().saturating_sub(r.pos);
        if extra > 0 {
            return Err(Error::TrailingBytes {
                what: "derivation",
                extra,
            });
        }

        let kind = classify(&outputs)?;
        let drv = Self {
            outputs,
            input_drvs,
            input_srcs,
            platform,
            builder,
            args,
            env,
            kind,
        };
        // The checks above are meant to make this hold; keep the promise
        // even if one was missed.
        if drv.to_aterm().as_bytes() != bytes {
            return Err(Error::NonCanonical { what: "derivation" });
        }
        Ok(drv)
    }

    /// The store path Nix gives this derivation's file: `makeStorePath(
    /// "text:<refs>", SHA-256(file), "<name>.drv")`, its references being
    /// the input derivations and input sources. Comparing it with the path
    /// a `.drv` was read from shows whether the file was changed on disk.
    pub fn drv_path(&self, drv_name: &str) -> Result<DrvPath> {
        let mut refs: BTreeSet<&str> = self.input_srcs.iter().map(StorePath::as_str).collect();
        refs.extend(self.input_drvs.keys().map(DrvPath::as_str));
        let mut ty = String::from("text");
        for r in refs {
            ty.push(':');
            ty.push_str(r);
        }
        let name = alloc::format!("{drv_name}.drv");
        let path = StorePath::make(&ty, &Sha256Digest::of(self.to_aterm().as_bytes()), &name)?;
        DrvPath::try_from(path)
    }

    /// The ATerm text, byte for byte what Nix writes for this derivation.
    pub fn to_aterm(&self) -> String {
        let mut out = String::new();
        self.write_aterm(&mut out, false, None);
        out
    }

    /// The outputs, by name.
    pub fn outputs(&self) -> &BTreeMap<String, DerivationOutput> {
        &self.outputs
    }

    /// The input derivations and the outputs wanted from each.
    pub fn input_drvs(&self) -> &BTreeMap<DrvPath, BTreeSet<String>> {
        &self.input_drvs
    }

    /// The input sources (store paths used as they are).
    pub fn input_srcs(&self) -> &BTreeSet<StorePath> {
        &self.input_srcs
    }

    /// The system the derivation builds on (`x86_64-linux`, …).
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// The builder program.
    pub fn builder(&self) -> &str {
        &self.builder
    }

    /// The builder's arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The build environment.
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The derivation's kind.
    pub fn kind(&self) -> DerivationKind {
        self.kind
    }

    /// Nix 2.8's `hashDerivationModulo(store, drv, maskOutputs = true)`
    /// (inputs hashed unmasked, as Nix does).
    ///
    /// `drv_name` is the derivation's name (its `.drv` path's name without
    /// `.drv`, [`DrvPath::drv_name`]); fixed-output hashes include the output
    /// path, which includes the name. `resolve` reads an input derivation
    /// (return [`Error::MissingInputDerivation`] when it cannot); it is called
    /// at most once per path, and never for inputs of fixed-output
    /// derivations, whose hash does not depend on them. Inputs are walked
    /// without recursion, so deep graphs cannot exhaust the stack; a cycle
    /// (which real store paths cannot form) is [`Error::InvalidValue`].
    pub fn hash_modulo(
        &self,
        drv_name: &str,
        resolve: &mut dyn FnMut(&DrvPath) -> Result<Derivation>,
    ) -> Result<DrvHash> {
        self.hash_modulo_memo(drv_name, resolve, &mut BTreeMap::new())
    }

    /// [`Self::hash_modulo`] with the input derivations' hashes kept in
    /// `memo` across calls: an input already in it is neither resolved nor
    /// hashed again (what a daemon hashing build after build wants).
    pub fn hash_modulo_memo(
        &self,
        drv_name: &str,
        resolve: &mut dyn FnMut(&DrvPath) -> Result<Derivation>,
        memo: &mut BTreeMap<DrvPath, DrvHash>,
    ) -> Result<DrvHash> {
        struct Frame {
            path: DrvPath,
            drv: Derivation,
            pending: Vec<DrvPath>,
        }

        self.kind.check_hashable()?;
        let mut on_stack: BTreeSet<DrvPath> = BTreeSet::new();
        let mut frames: Vec<Frame> = Vec::new();
        let mut top_pending = self.pending_inputs();
        loop {
            let pending = match frames.last_mut() {
                Some(frame) => &mut frame.pending,
                None => &mut top_pending,
            };
            let next = loop {
                match pending.pop() {
                    Some(path) if memo.contains_key(&path) => continue,
                    other => break other,
                }
            };
            if let Some(path) = next {
                if on_stack.contains(&path) {
                    return Err(Error::InvalidValue {
                        what: "input derivations",
                        reason: "dependency cycle",
                    });
                }
                let drv = resolve(&path)?;
                drv.kind.check_hashable()?;
                let pending = drv.pending_inputs();
                on_stack.insert(path.clone());
                frames.push(Frame { path, drv, pending });
                continue;
            }
            match frames.pop() {
                Some(frame) => {
                    let hash = frame.drv.hash_step(frame.path.drv_name(), false, memo)?;
                    on_stack.remove(&frame.path);
                    memo.insert(frame.path, hash);
                }
                None => return self.hash_step(drv_name, true, memo),
            }
        }
    }

    /// Check every output path written in the file, and the environment
    /// variable named like each output, against the path recomputed as Nix
    /// does: [`output_path`] from `hash` (this derivation's
    /// [`Self::hash_modulo`]) for input-addressed outputs,
    /// [`OutputHash::store_path`] for a fixed output. `drv_name` is as for
    /// [`Self::hash_modulo`].
    pub fn check_output_paths(&self, drv_name: &str, hash: &DrvHash) -> Result<()> {
        self.kind.check_hashable()?;
        for (name, output) in &self.outputs {
            let expected = match output {
                DerivationOutput::InputAddressed(_) => {
                    let h = hash.output(name).ok_or(Error::InvalidValue {
                        what: "derivation hash",
                        reason: "no hash for one of the derivation's outputs",
                    })?;
                    output_path(drv_name, name, h)?
                }
                DerivationOutput::Fixed { hash: declared, .. } => {
                    declared.store_path(&output_path_name(drv_name, name))?
                }
                DerivationOutput::Floating { .. }
                | DerivationOutput::Deferred
                | DerivationOutput::Impure { .. } => {
                    return Err(Error::UnsupportedDerivation(
                        "output kind without a known path",
                    ))
                }
            };
            if output.path() != Some(&expected) {
                return Err(Error::OutputPathMismatch {
                    output: name.clone(),
                    what: "output path",
                    expected: String::from(expected.as_str()),
                    found: output
                        .path()
                        .map(|p| String::from(p.as_str()))
                        .unwrap_or_default(),
                });
            }
            let in_env = self.env.get(name);
            if in_env.map(String::as_str) != Some(expected.as_str()) {
                return Err(Error::OutputPathMismatch {
                    output: name.clone(),
                    what: "environment variable",
                    expected: String::from(expected.as_str()),
                    found: in_env.cloned().unwrap_or_default(),
                });
            }
        }
        Ok(())
    }

    /// Inputs whose hashes this derivation's hash needs, in reverse order
    /// (popped from the end). Fixed-output derivations need none.
    fn pending_inputs(&self) -> Vec<DrvPath> {
        match self.kind {
            DerivationKind::FixedOutput => Vec::new(),
            _ => self.input_drvs.keys().rev().cloned().collect(),
        }
    }

    /// One step of `hashDerivationModulo`, with the hashes of all input
    /// derivations already in `memo`. Nix masks the outputs only of the
    /// derivation asked about (`mask`): inputs are hashed with their output
    /// paths and output variables as written.
    fn hash_step(
        &self,
        drv_name: &str,
        mask: bool,
        memo: &BTreeMap<DrvPath, DrvHash>,
    ) -> Result<DrvHash> {
        self.kind.check_hashable()?;
        if self.kind == DerivationKind::FixedOutput {
            let mut hashes = BTreeMap::new();
            for (name, output) in &self.outputs {
                if let DerivationOutput::Fixed { hash, .. } = output {
                    let path = hash.store_path(&output_path_name(drv_name, name))?;
                    let h = Sha256Digest::of_parts(&[
                        b"fixed:out:",
                        hash.method_algo().as_bytes(),
                        b":",
                        hash.to_hex().as_bytes(),
                        b":",
                        path.as_str().as_bytes(),
                    ]);
                    hashes.insert(name.clone(), h);
                }
            }
            return DrvHash::new(hashes, true);
        }

        // Input .drv paths become the hex of their hashes; inputs that come
        // out the same (fixed outputs with equal content) merge.
        let mut inputs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, wanted) in &self.input_drvs {
            let input = memo
                .get(path)
                .ok_or_else(|| Error::MissingInputDerivation(String::from(path.as_str())))?;
            for name in wanted {
                let h = input.output(name).ok_or(Error::InvalidValue {
                    what: "input derivation",
                    reason: "has no output of a requested name",
                })?;
                inputs.entry(h.to_hex()).or_default().insert(name.clone());
            }
        }
        let mut text = String::new();
        self.write_aterm(&mut text, mask, Some(&inputs));
        let h = Sha256Digest::of(text.as_bytes());
        let hashes = self.outputs.keys().map(|name| (name.clone(), h)).collect();
        DrvHash::new(hashes, false)
    }

    /// Nix's `Derivation::unparse`: `mask` prints output paths and the
    /// environment variables named like outputs as `""`; `inputs` replaces
    /// the input derivations.
    fn write_aterm(
        &self,
        out: &mut String,
        mask: bool,
        inputs: Option<&BTreeMap<String, BTreeSet<String>>>,
    ) {
        out.push_str("Derive([");
        for (i, (name, output)) in self.outputs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('(');
            verbatim(out, name);
            out.push(',');
            let path = output
                .path()
                .filter(|_| !mask)
                .map_or("", StorePath::as_str);
            verbatim(out, path);
            out.push(',');
            match output {
                DerivationOutput::InputAddressed(_) | DerivationOutput::Deferred => {
                    out.push_str("\"\",\"\"");
                }
                DerivationOutput::Fixed { hash, .. } => {
                    verbatim(out, &hash.method_algo());
                    out.push(',');
                    verbatim(out, &hash.to_hex());
                }
                DerivationOutput::Floating { method, algo } => {
                    out.push('"');
                    out.push_str(method.prefix());
                    out.push_str(algo.name());
                    out.push_str("\",\"\"");
                }
                DerivationOutput::Impure { method, algo } => {
                    out.push('"');
                    out.push_str(method.prefix());
                    out.push_str(algo.name());
                    out.push_str("\",\"impure\"");
                }
            }
            out.push(')');
        }
        out.push_str("],[");
        let mut write_input = |i: usize, path: &str, names: &BTreeSet<String>| {
            if i > 0 {
                out.push(',');
            }
            out.push('(');
            verbatim(out, path);
            out.push_str(",[");
            for (j, name) in names.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                verbatim(out, name);
            }
            out.push_str("])");
        };
        match inputs {
            Some(inputs) => {
                for (i, (hex, names)) in inputs.iter().enumerate() {
                    write_input(i, hex, names);
                }
            }
            None => {
                for (i, (path, names)) in self.input_drvs.iter().enumerate() {
                    write_input(i, path.as_str(), names);
                }
            }
        }
        out.push_str("],[");
        for (i, path) in self.input_srcs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            verbatim(out, path.as_str());
        }
        out.push_str("],");
        verbatim(out, &self.platform);
        out.push(',');
        escaped(out, &self.builder);
        out.push_str(",[");
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            escaped(out, arg);
        }
        out.push_str("],[");
        for (i, (key, value)) in self.env.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('(');
            escaped(out, key);
            out.push(',');
            let value = if mask && self.outputs.contains_key(key) {
                ""
            } else {
                value
            };
            escaped(out, value);
            out.push(')');
        }
        out.push_str("])");
    }
}

/// The result of [`Derivation::hash_modulo`]: one hash per output.
///
/// For an input-addressed derivation every output has the same hash; for a
/// fixed-output derivation (one output, `out`) it is that output's
/// `fixed:out:` hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrvHash {
    hashes: BTreeMap<String, Sha256Digest>,
    primary: Sha256Digest,
    fixed_output: bool,
}

impl DrvHash {
    fn new(hashes: BTreeMap<String, Sha256Digest>, fixed_output: bool) -> Result<Self> {
        let primary = if fixed_output {
            hashes.get("out")
        } else {
            hashes.values().next()
        };
        let primary = *primary.ok_or(Error::InvalidValue {
            what: "derivation outputs",
            reason: "no output to hash",
        })?;
        Ok(Self {
            hashes,
            primary,
            fixed_output,
        })
    }

    /// The hash recorded as an entry's `drv_hash`: the shared hash of an
    /// input-addressed derivation, or the `out` hash of a fixed-output one.
    pub fn drv_hash(&self) -> Sha256Digest {
        self.primary
    }

    /// The hash for one output (what `makeOutputPath` takes).
    pub fn output(&self, name: &str) -> Option<&Sha256Digest> {
        self.hashes.get(name)
    }

    /// Every output's hash, by output name.
    pub fn outputs(&self) -> &BTreeMap<String, Sha256Digest> {
        &self.hashes
    }

    /// Whether this is the hash of a fixed-output derivation.
    pub fn is_fixed_output(&self) -> bool {
        self.fixed_output
    }
}

/// The store-path name of an output: `drv_name` for `out`, else
/// `drv_name-output` (Nix's `outputPathName`).
pub fn output_path_name(drv_name: &str, output_name: &str) -> String {
    if output_name == "out" {
        String::from(drv_name)
    } else {
        format!("{drv_name}-{output_name}")
    }
}

/// Nix's `makeOutputPath`: the path of input-addressed output `output_name`
/// of derivation `drv_name` whose modulo hash (for that output) is `hash`:
/// `makeStorePath("output:" + output_name, hash, output_path_name(..))`.
pub fn output_path(drv_name: &str, output_name: &str, hash: &Sha256Digest) -> Result<StorePath> {
    StorePath::make(
        &format!("output:{output_name}"),
        hash,
        &output_path_name(drv_name, output_name),
    )
}

/// Nix's `BasicDerivation::type()`: every output of one kind, at least one,
/// and a fixed-output derivation has exactly one, named `out`.
fn classify(outputs: &BTreeMap<String, DerivationOutput>) -> Result<DerivationKind> {
    let invalid = |reason| Error::InvalidValue {
        what: "derivation outputs",
        reason,
    };
    let mut kinds = outputs.values().map(DerivationOutput::kind);
    let kind = kinds.next().ok_or_else(|| invalid("no outputs"))?;
    if kinds.any(|k| k != kind) {
        return Err(invalid("outputs of different kinds"));
    }
    match kind {
        DerivationKind::FixedOutput if outputs.len() != 1 || !outputs.contains_key("out") => Err(
            invalid("a fixed-output derivation has exactly one output, named out"),
        ),
        DerivationKind::Floating => {
            let mut algos = outputs.values().filter_map(|o| match o {
                DerivationOutput::Floating { algo, .. } => Some(*algo),
                _ => None,
            });
            let first = algos.next();
            if algos.any(|a| Some(a) != first) {
                return Err(invalid("floating outputs with different hash algorithms"));
            }
            Ok(kind)
        }
        _ => Ok(kind),
    }
}

/// Collect `(key, value)` pairs that must be strictly sorted by key.
fn sorted_map<K: Ord, V>(what: &'static str, items: Vec<(K, V)>) -> Result<BTreeMap<K, V>> {
    if !items.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
        return Err(Error::Unsorted { what });
    }
    Ok(items.into_iter().collect())
}

/// Collect items that must be strictly sorted.
fn sorted_set<T: Ord>(what: &'static str, items: Vec<T>) -> Result<BTreeSet<T>> {
    if !items.windows(2).all(|w| matches!(w, [a, b] if a < b)) {
        return Err(Error::Unsorted { what });
    }
    Ok(items.into_iter().collect())
}

/// Decode lowercase hex of exactly `len` bytes.
fn lower_hex_decode(s: &str, len: usize) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if s.len() != len * 2 {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// Nix's `printUnquotedString`: the string between quotes, unescaped.
fn verbatim(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(s);
    out.push('"');
}

/// Nix's `printString`: escapes `"`, `\`, newline, carriage return and tab.
fn escaped(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// How a field is printed by Nix, and so what parsing accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// `printUnquotedString`: no escapes; a backslash would not round-trip.
    Verbatim,
    /// `printString`: the five escapes; raw newline, CR or tab would not
    /// round-trip.
    Escaped,
}

/// A string field with the offset where it starts, for error reports.
struct Field {
    text: String,
    offset: usize,
}

impl Field {
    fn error(&self, reason: &'static str) -> Error {
        Error::Derivation {
            offset: self.offset,
            reason,
        }
    }
}

/// A cursor over the `.drv` bytes.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, reason: &'static str) -> Error {
        Error::Derivation {
            offset: self.pos,
            reason,
        }
    }

    fn rest(&self) -> &[u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn literal(&mut self, literal: &'static [u8]) -> Result<()> {
        let rest = self.rest();
        if rest.starts_with(literal) {
            self.pos += literal.len();
            Ok(())
        } else if literal.starts_with(rest) {
            Err(self.error("unexpected end of input"))
        } else {
            Err(self.error(match literal {
                b"Derive(" => "expected 'Derive('",
                b"(" => "expected '('",
                b")" => "expected ')'",
                b"," => "expected ','",
                b"[" => "expected '['",
                _ => "unexpected input",
            }))
        }
    }

    /// `[item,item,…]`, at most `max` items.
    fn list<T>(
        &mut self,
        what: &'static str,
        max: usize,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.literal(b"[")?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            if items.len() == max {
                return Err(Error::TooLarge {
                    what,
                    len: max + 1,
                    max,
                });
            }
            items.push(item(self)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => return Err(self.error("expected ',' or ']'")),
                None => return Err(self.error("unexpected end of input")),
            }
        }
    }

    fn field(&mut self, quoting: Quoting) -> Result<Field> {
        let offset = self.pos;
        self.string(quoting).map(|text| Field { text, offset })
    }

    /// A double-quoted string.
    fn string(&mut self, quoting: Quoting) -> Result<String> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => self.pos += 1,
            Some(_) => return Err(self.error("expected '\"'")),
            None => return Err(self.error("unexpected end of input")),
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let rest = self.rest();
            let special = |c: &u8| match c {
                b'"' | b'\\' => true,
                b'\n' | b'\r' | b'\t' => quoting == Quoting::Escaped,
                _ => false,
            };
            let plain = rest.iter().position(special).unwrap_or(rest.len());
            out.extend_from_slice(rest.get(..plain).unwrap_or_default());
            self.pos += plain;
            match (self.peek(), quoting) {
                (None, _) => return Err(self.error("unterminated string")),
                (Some(b'"'), _) => {
                    self.pos += 1;
                    break;
                }
                (Some(b'\\'), Quoting::Verbatim) => {
                    return Err(self.error("backslash in a field Nix writes unescaped"))
                }
                (Some(b'\\'), Quoting::Escaped) => {
                    let c = match self.input.get(self.pos + 1) {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(_) => return Err(self.error("escape Nix never writes")),
                        None => return Err(self.error("unterminated string")),
                    };
                    out.push(c);
                    self.pos += 2;
                }
                (Some(_), _) => {
                    return Err(self.error("raw newline, carriage return or tab Nix would escape"))
                }
            }
        }
        String::from_utf8(out).map_err(|_| Error::Derivation {
            offset: start,
            reason: "string is not UTF-8",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/nix/drv/"
    );

    /// The three real `.drv` files of the shared Nix 2.8 vectors.
    const REAL: [(&str, &[u8]); 3] = [
        (
            "/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv",
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/testdata/nix/drv/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv"
            )),
        ),
        (
            "/nix/store/kxdvrmxzy066f0mmsi8gzv251izagqwj-multi.drv",
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/testdata/nix/drv/kxdvrmxzy066f0mmsi8gzv251izagqwj-multi.drv"
            )),
        ),
        (
            "/nix/store/3g95kqkpclirximgc55hjxq737048bq1-dependent.drv",
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/testdata/nix/drv/3g95kqkpclirximgc55hjxq737048bq1-dependent.drv"
            )),
        ),
    ];

    /// Written by `nix-instantiate` (Nix 2.8.0, Debian nix-bin) from
    ///
    /// ```nix
    /// let
    ///   mk = attrs: builtins.derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
    ///   h = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    ///   fetchA = mk { name = "src.txt"; args = [ "-c" "printf hello > $out" ]; outputHashAlgo = "sha256"; outputHash = h; };
    ///   fetchB = mk { name = "src.txt"; args = [ "-c" "echo -n hello > $out" ]; outputHashAlgo = "sha256"; outputHash = h; };
    ///   tree = mk { name = "tree"; args = [ "-c" "printf hello > $out" ]; outputHashMode = "recursive";
    ///     outputHashAlgo = "sha256"; outputHash = "0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969"; };
    ///   multi = mk { name = "multi"; outputs = [ "out" "dev" ]; args = [ "-c" "echo > $out; echo > $dev" ]; };
    ///   top = fetch: mk { name = "top"; args = [ "-c" "cat ${fetch} ${fetch} ${tree} ${multi.dev} ${multi.out} > $out" ];
    ///     weird = "q\" b\\ n\n t\t r\r"; };
    /// in { a = top fetchA; b = top fetchB; c = mk { name = "both"; args = ["-c" "cat ${fetchA} ${fetchB} > $out"]; }; }
    /// ```
    ///
    /// (`tests/drv_real_nix.rs` re-runs Nix on a superset of this.)
    const NIX: [(&str, &str); 7] = [
        (
            "/nix/store/4k8s6hjx491293qj6i2cyhpqzc0il3f5-both.drv",
            r#"Derive([("out","/nix/store/jvdmbl7vr0gxhqc8j2ifi8jlhqsq8wbw-both","","")],[("/nix/store/q7kz0fpmqvxaaq5figp3sr1hcj978g63-src.txt.drv",["out"]),("/nix/store/y345m5f5v6l8vd033cy4skkdrlb1pxli-src.txt.drv",["out"])],[],"x86_64-linux","/bin/sh",["-c","cat /nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt /nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt > $out"],[("builder","/bin/sh"),("name","both"),("out","/nix/store/jvdmbl7vr0gxhqc8j2ifi8jlhqsq8wbw-both"),("system","x86_64-linux")])"#,
        ),
        (
            "/nix/store/5pnvbg995pzj8nwzd7h85bivr4736qv2-multi.drv",
            r#"Derive([("dev","/nix/store/hackw64ywizphz9fl4rpqadwxkykszvx-multi-dev","",""),("out","/nix/store/ghnpv9v45a2b0pinzkwncaxk0a6ms6cl-multi","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo > $out; echo > $dev"],[("builder","/bin/sh"),("dev","/nix/store/hackw64ywizphz9fl4rpqadwxkykszvx-multi-dev"),("name","multi"),("out","/nix/store/ghnpv9v45a2b0pinzkwncaxk0a6ms6cl-multi"),("outputs","out dev"),("system","x86_64-linux")])"#,
        ),
        (
            "/nix/store/fxh7kswbkls1407svj9297c4m8i0d5m7-top.drv",
            r#"Derive([("out","/nix/store/37az8kmgbx3gb62ljs38qvwwlh40cq1n-top","","")],[("/nix/store/5pnvbg995pzj8nwzd7h85bivr4736qv2-multi.drv",["dev","out"]),("/nix/store/sglma4m1q5g2k5vmr3hanayb036759r3-tree.drv",["out"]),("/nix/store/y345m5f5v6l8vd033cy4skkdrlb1pxli-src.txt.drv",["out"])],[],"x86_64-linux","/bin/sh",["-c","cat /nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt /nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt /nix/store/xsqxcjl14fx4l4gpd8l3xm5nrzbfpdbq-tree /nix/store/hackw64ywizphz9fl4rpqadwxkykszvx-multi-dev /nix/store/ghnpv9v45a2b0pinzkwncaxk0a6ms6cl-multi > $out"],[("builder","/bin/sh"),("name","top"),("out","/nix/store/37az8kmgbx3gb62ljs38qvwwlh40cq1n-top"),("system","x86_64-linux"),("weird","q\" b\\ n\n t\t r\r")])"#,
        ),
        (
            "/nix/store/q2ww1myasckyjinhcskdflng5q4fl8a5-top.drv",
            r#"Derive([("out","/nix/store/37az8kmgbx3gb62ljs38qvwwlh40cq1n-top","","")],[("/nix/store/5pnvbg995pzj8nwzd7h85bivr4736qv2-multi.drv",["dev","out"]),("/nix/store/q7kz0fpmqvxaaq5figp3sr1hcj978g63-src.txt.drv",["out"]),("/nix/store/sglma4m1q5g2k5vmr3hanayb036759r3-tree.drv",["out"])],[],"x86_64-linux","/bin/sh",["-c","cat /nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt /nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt /nix/store/xsqxcjl14fx4l4gpd8l3xm5nrzbfpdbq-tree /nix/store/hackw64ywizphz9fl4rpqadwxkykszvx-multi-dev /nix/store/ghnpv9v45a2b0pinzkwncaxk0a6ms6cl-multi > $out"],[("builder","/bin/sh"),("name","top"),("out","/nix/store/37az8kmgbx3gb62ljs38qvwwlh40cq1n-top"),("system","x86_64-linux"),("weird","q\" b\\ n\n t\t r\r")])"#,
        ),
        (
            "/nix/store/q7kz0fpmqvxaaq5figp3sr1hcj978g63-src.txt.drv",
            r#"Derive([("out","/nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt","sha256","2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")],[],[],"x86_64-linux","/bin/sh",["-c","echo -n hello > $out"],[("builder","/bin/sh"),("name","src.txt"),("out","/nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt"),("outputHash","2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),("outputHashAlgo","sha256"),("system","x86_64-linux")])"#,
        ),
        (
            "/nix/store/sglma4m1q5g2k5vmr3hanayb036759r3-tree.drv",
            r#"Derive([("out","/nix/store/xsqxcjl14fx4l4gpd8l3xm5nrzbfpdbq-tree","r:sha256","0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969")],[],[],"x86_64-linux","/bin/sh",["-c","printf hello > $out"],[("builder","/bin/sh"),("name","tree"),("out","/nix/store/xsqxcjl14fx4l4gpd8l3xm5nrzbfpdbq-tree"),("outputHash","0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969"),("outputHashAlgo","sha256"),("outputHashMode","recursive"),("system","x86_64-linux")])"#,
        ),
        (
            "/nix/store/y345m5f5v6l8vd033cy4skkdrlb1pxli-src.txt.drv",
            r#"Derive([("out","/nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt","sha256","2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")],[],[],"x86_64-linux","/bin/sh",["-c","printf hello > $out"],[("builder","/bin/sh"),("name","src.txt"),("out","/nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt"),("outputHash","2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),("outputHashAlgo","sha256"),("system","x86_64-linux")])"#,
        ),
    ];

    /// Written by Nix 2.8.0 with `ca-derivations` and `impure-derivations`
    /// enabled: a floating CA derivation, one depending on it (deferred),
    /// and an impure one.
    const NIX_UNSUPPORTED: [(&str, &str, &str); 3] = [
        (
            "/nix/store/3815hsq6ls2ml8p8dy15p6lnd6lhhkkh-floating.drv",
            r#"Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",["-c","echo > $out"],[("builder","/bin/sh"),("name","floating"),("out","/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("outputHashAlgo","sha256"),("outputHashMode","recursive"),("system","x86_64-linux")])"#,
            "content-addressed floating derivation (ca-derivations)",
        ),
        (
            "/nix/store/mza4myqag917l50c250jpdz670nx5d52-deferred.drv",
            r#"Derive([("out","","","")],[("/nix/store/3815hsq6ls2ml8p8dy15p6lnd6lhhkkh-floating.drv",["out"])],[],"x86_64-linux","/bin/sh",["-c","cat /0239v9z0aq5sgyxrf26549z1v0kckirc9hns2f897lpy0gpnxdrr > $out"],[("builder","/bin/sh"),("name","deferred"),("out",""),("system","x86_64-linux")])"#,
            "deferred input-addressed derivation (depends on a floating one)",
        ),
        (
            "/nix/store/9gr3wy5wax0ncj6bqissnyb01i4yjxcz-impure.drv",
            r#"Derive([("out","","r:sha256","impure")],[],[],"x86_64-linux","/bin/sh",["-c","echo > $out"],[("builder","/bin/sh"),("name","impure"),("out","/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"),("system","x86_64-linux")])"#,
            "impure derivation (impure-derivations)",
        ),
    ];

    fn store(files: &[(&str, &[u8])]) -> BTreeMap<DrvPath, Vec<u8>> {
        files
            .iter()
            .map(|(p, b)| (DrvPath::parse(p).unwrap(), b.to_vec()))
            .collect()
    }

    fn nix_store() -> BTreeMap<DrvPath, Vec<u8>> {
        let files: Vec<(&str, &[u8])> = NIX.iter().map(|(p, t)| (*p, t.as_bytes())).collect();
        store(&files)
    }

    /// Hash `path` from `store`, counting `resolve` calls.
    fn hash_in(store: &BTreeMap<DrvPath, Vec<u8>>, path: &DrvPath) -> Result<(DrvHash, usize)> {
        let drv = Derivation::parse(&store[path])?;
        let mut calls = 0;
        let mut resolve = |p: &DrvPath| {
            calls += 1;
            let bytes = store
                .get(p)
                .ok_or_else(|| Error::MissingInputDerivation(String::from(p.as_str())))?;
            Derivation::parse(bytes)
        };
        let h = drv.hash_modulo(path.drv_name(), &mut resolve)?;
        Ok((h, calls))
    }

    fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        let s = core::str::from_utf8(bytes).unwrap();
        assert!(s.contains(from), "{from:?} not in the input");
        s.replacen(from, to, 1).into_bytes()
    }

    fn hello() -> &'static [u8] {
        REAL[0].1
    }

    #[test]
    fn testdata_dir_is_where_the_includes_point() {
        assert!(DIR.ends_with("/shared/testdata/nix/drv/"));
    }

    #[test]
    fn real_files_round_trip_byte_for_byte() {
        for (path, bytes) in REAL {
            let drv = Derivation::parse(bytes).unwrap();
            assert_eq!(drv.to_aterm().as_bytes(), bytes, "{path}");
            assert_eq!(drv.kind(), DerivationKind::InputAddressed);
            // The files are what their names say.
            let p = DrvPath::parse(path).unwrap();
            assert_eq!(drv.drv_path(p.drv_name()).unwrap(), p);
        }
        for (path, text) in NIX {
            let drv = Derivation::parse(text.as_bytes()).unwrap();
            assert_eq!(drv.to_aterm(), text, "{path}");
            let p = DrvPath::parse(path).unwrap();
            assert_eq!(drv.drv_path(p.drv_name()).unwrap(), p);
        }
    }

    #[test]
    fn real_output_paths_come_out_of_the_hash() {
        let store = store(&REAL);
        for (path, _) in REAL {
            let path = DrvPath::parse(path).unwrap();
            let drv = Derivation::parse(&store[&path]).unwrap();
            let (h, _) = hash_in(&store, &path).unwrap();
            assert!(!h.is_fixed_output());
            drv.check_output_paths(path.drv_name(), &h).unwrap();
            for (name, out) in drv.outputs() {
                assert_eq!(h.output(name), Some(&h.drv_hash()));
                assert_eq!(
                    output_path(path.drv_name(), name, &h.drv_hash())
                        .ok()
                        .as_ref(),
                    out.path()
                );
            }
        }
    }

    #[test]
    fn inputs_are_resolved_once_each() {
        // dependent -> {hello, multi}, multi -> hello: hello is read once.
        let store = store(&REAL);
        let dependent = DrvPath::parse(REAL[2].0).unwrap();
        assert_eq!(hash_in(&store, &dependent).unwrap().1, 2);
        // top -> {multi, tree, src.txt}; the fixed-output ones have no inputs.
        let store = nix_store();
        let top = DrvPath::parse(NIX[2].0).unwrap();
        assert_eq!(hash_in(&store, &top).unwrap().1, 3);
    }

    #[test]
    fn fixed_output_derivations_hash_as_nix_does() {
        let store = nix_store();
        for (path, text) in NIX {
            let path = DrvPath::parse(path).unwrap();
            let drv = Derivation::parse(text.as_bytes()).unwrap();
            let (h, _) = hash_in(&store, &path).unwrap();
            drv.check_output_paths(path.drv_name(), &h).unwrap();
        }
        // Flat sha256: SHA-256("fixed:out:sha256:<hex>:<out path>").
        let src = DrvPath::parse(NIX[6].0).unwrap();
        let (h, calls) = hash_in(&store, &src).unwrap();
        assert_eq!(calls, 0);
        assert!(h.is_fixed_output());
        let want = Sha256Digest::of(
            b"fixed:out:sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824:/nix/store/0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt",
        );
        assert_eq!(h.drv_hash(), want);
        assert_eq!(h.output("out"), Some(&want));
        // The other fetcher for the same content hashes the same.
        let other = DrvPath::parse(NIX[4].0).unwrap();
        assert_eq!(hash_in(&store, &other).unwrap().0, h);
        // Recursive sha256 ("r:sha256") path is makeStorePath("source", …).
        let tree = Derivation::parse(NIX[5].1.as_bytes()).unwrap();
        let Some(DerivationOutput::Fixed { hash, path }) = tree.outputs().get("out") else {
            panic!("tree is fixed-output");
        };
        assert_eq!(hash.method_algo(), "r:sha256");
        assert_eq!(hash.store_path("tree").unwrap(), *path);
        assert_eq!(
            StorePath::make("source", &hash.sha256().unwrap(), "tree").unwrap(),
            *path
        );
    }

    #[test]
    fn drv_hash_ignores_which_fixed_output_derivation_was_used() {
        // Two `top` derivations differ only in the fetcher of a fixed output:
        // different .drv files, one drv_hash, one output path.
        let store = nix_store();
        let a = DrvPath::parse(NIX[2].0).unwrap();
        let b = DrvPath::parse(NIX[3].0).unwrap();
        assert_ne!(store[&a], store[&b]);
        let (ha, _) = hash_in(&store, &a).unwrap();
        let (hb, _) = hash_in(&store, &b).unwrap();
        assert_eq!(ha, hb);
        // `both` names both fetchers; they merge into one input of the
        // masked ATerm, which is what makes its output path come out right.
        let both = DrvPath::parse(NIX[0].0).unwrap();
        let drv = Derivation::parse(&store[&both]).unwrap();
        let (h, _) = hash_in(&store, &both).unwrap();
        drv.check_output_paths("both", &h).unwrap();
        let src = hash_in(&store, &DrvPath::parse(NIX[6].0).unwrap())
            .unwrap()
            .0;
        let mut inputs = BTreeMap::new();
        inputs.insert(
            src.drv_hash().to_hex(),
            BTreeSet::from([String::from("out")]),
        );
        let mut masked = String::new();
        drv.write_aterm(&mut masked, true, Some(&inputs));
        assert_eq!(Sha256Digest::of(masked.as_bytes()), h.drv_hash());
        assert!(masked.starts_with("Derive([(\"out\",\"\",\"\",\"\")],[(\""));
        assert!(masked.contains("(\"out\",\"\")"));
    }

    #[test]
    fn inputs_are_hashed_unmasked() {
        // Nix masks the derivation asked about, not its inputs.
        let store = store(&REAL);
        let hello = Derivation::parse(REAL[0].1).unwrap();
        let masked = hash_in(&store, &DrvPath::parse(REAL[0].0).unwrap())
            .unwrap()
            .0;
        let unmasked = hello.hash_step("hello", false, &BTreeMap::new()).unwrap();
        assert_ne!(masked, unmasked);
        assert_eq!(unmasked.drv_hash(), Sha256Digest::of(REAL[0].1));
        let multi = Derivation::parse(REAL[1].1).unwrap();
        let mut inputs = BTreeMap::new();
        inputs.insert(
            unmasked.drv_hash().to_hex(),
            BTreeSet::from([String::from("out")]),
        );
        let mut text = String::new();
        multi.write_aterm(&mut text, true, Some(&inputs));
        let want = hash_in(&store, &DrvPath::parse(REAL[1].0).unwrap())
            .unwrap()
            .0;
        assert_eq!(Sha256Digest::of(text.as_bytes()), want.drv_hash());
    }

    #[test]
    fn kinds_without_known_paths_parse_but_do_not_hash() {
        for (path, text, reason) in NIX_UNSUPPORTED {
            let drv = Derivation::parse(text.as_bytes()).unwrap();
            assert_eq!(drv.to_aterm(), text);
            let p = DrvPath::parse(path).unwrap();
            let mut resolve = |_: &DrvPath| -> Result<Derivation> { panic!("not reached") };
            match drv.hash_modulo(p.drv_name(), &mut resolve) {
                Err(Error::UnsupportedDerivation(r)) => assert_eq!(r, reason),
                other => panic!("{path}: {other:?}"),
            }
        }
        let kinds: Vec<DerivationKind> = NIX_UNSUPPORTED
            .iter()
            .map(|(_, t, _)| Derivation::parse(t.as_bytes()).unwrap().kind())
            .collect();
        assert_eq!(
            kinds,
            [
                DerivationKind::Floating,
                DerivationKind::Deferred,
                DerivationKind::Impure
            ]
        );
        // An input-addressed derivation on top of an impure one fails too.
        let imp = DrvPath::parse(NIX_UNSUPPORTED[2].0).unwrap();
        let top = replace(
            hello(),
            "],[],[\"/nix/store/z56a",
            "],[(\"/nix/store/9gr3wy5wax0ncj6bqissnyb01i4yjxcz-impure.drv\",[\"out\"])],[\"/nix/store/z56a",
        );
        let drv = Derivation::parse(&top).unwrap();
        let mut resolve = |p: &DrvPath| {
            assert_eq!(p, &imp);
            Derivation::parse(NIX_UNSUPPORTED[2].1.as_bytes())
        };
        assert!(matches!(
            drv.hash_modulo("hello", &mut resolve),
            Err(Error::UnsupportedDerivation(_))
        ));
    }

    #[test]
    fn other_hash_algorithms_and_text_method() {
        // Fixed outputs with sha1 and r:sha512 (written by Nix 2.8 in
        // tests/drv_real_nix.rs); the hash and path follow the non-"source" rule.
        let sha1 = r#"Derive([("out","/nix/store/cwdn2k6q6ajv5lp26xs7lgknf96cp7mp-sha1","sha1","aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")],[],[],"x86_64-linux","/bin/sh",["-c","printf hello > $out"],[("builder","/bin/sh"),("name","sha1"),("out","/nix/store/cwdn2k6q6ajv5lp26xs7lgknf96cp7mp-sha1"),("outputHash","aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),("outputHashAlgo","sha1"),("system","x86_64-linux")])"#;
        let sha512 = r#"Derive([("out","/nix/store/3hb22vnnsn1xdpfvd4m4ma8nwjr1m778-recsha512","r:sha512","9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043")],[],[],"x86_64-linux","/bin/sh",["-c","printf hello > $out"],[("builder","/bin/sh"),("name","recsha512"),("out","/nix/store/3hb22vnnsn1xdpfvd4m4ma8nwjr1m778-recsha512"),("outputHash","sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="),("outputHashAlgo","sha512"),("outputHashMode","recursive"),("system","x86_64-linux")])"#;
        for (text, name) in [(sha1, "sha1"), (sha512, "recsha512")] {
            let drv = Derivation::parse(text.as_bytes()).unwrap();
            assert_eq!(drv.to_aterm(), text);
            let mut resolve = |_: &DrvPath| -> Result<Derivation> { panic!("not reached") };
            let h = drv.hash_modulo(name, &mut resolve).unwrap();
            drv.check_output_paths(name, &h).unwrap();
        }
        // `text:` parses (newer Nix writes it) but is not Nix 2.8.
        let text = replace(sha1.as_bytes(), "\"sha1\",\"aaf4", "\"text:sha1\",\"aaf4");
        let drv = Derivation::parse(&text).unwrap();
        let mut resolve = |_: &DrvPath| -> Result<Derivation> { panic!("not reached") };
        assert!(matches!(
            drv.hash_modulo("sha1", &mut resolve),
            Err(Error::UnsupportedDerivation(UNSUPPORTED_TEXT))
        ));
    }

    fn derivation_error(bytes: &[u8]) -> (usize, &'static str) {
        match Derivation::parse(bytes) {
            Err(Error::Derivation { offset, reason }) => (offset, reason),
            other => panic!("expected Error::Derivation, got {other:?}"),
        }
    }

    #[test]
    fn trailing_byte_is_refused() {
        let mut bytes = hello().to_vec();
        bytes.push(b'\n');
        assert!(matches!(
            Derivation::parse(&bytes),
            Err(Error::TrailingBytes {
                what: "derivation",
                extra: 1
            })
        ));
    }

    #[test]
    fn unsorted_or_duplicate_entries_are_refused() {
        let env_swapped = replace(
            hello(),
            "(\"builder\",\"/nix/store/z56a0nzrpznn3zcjqsyl9ppklasap124-busybox-static/bin/busybox\"),(\"name\",\"hello\")",
            "(\"name\",\"hello\"),(\"builder\",\"/nix/store/z56a0nzrpznn3zcjqsyl9ppklasap124-busybox-static/bin/busybox\")",
        );
        let env_duplicate = replace(
            hello(),
            "(\"name\",\"hello\")",
            "(\"name\",\"hello\"),(\"name\",\"hello\")",
        );
        let multi = REAL[1].1;
        let outputs_swapped = replace(
            multi,
            "(\"dev\",\"/nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev\",\"\",\"\"),(\"out\",\"/nix/store/3hv6sz99c5axq0n0y633vkbpyq3kjkml-multi\",\"\",\"\")",
            "(\"out\",\"/nix/store/3hv6sz99c5axq0n0y633vkbpyq3kjkml-multi\",\"\",\"\"),(\"dev\",\"/nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev\",\"\",\"\")",
        );
        let input_outputs = replace(
            NIX[2].1.as_bytes(),
            "[\"dev\",\"out\"]",
            "[\"out\",\"dev\"]",
        );
        let input_drvs = replace(
            REAL[2].1,
            "(\"/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv\",[\"out\"]),(\"/nix/store/kxdvrmxzy066f0mmsi8gzv251izagqwj-multi.drv\",[\"dev\"])",
            "(\"/nix/store/kxdvrmxzy066f0mmsi8gzv251izagqwj-multi.drv\",[\"dev\"]),(\"/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv\",[\"out\"])",
        );
        let srcs = replace(
            hello(),
            "[\"/nix/store/z56a0nzrpznn3zcjqsyl9ppklasap124-busybox-static\"]",
            "[\"/nix/store/z56a0nzrpznn3zcjqsyl9ppklasap124-busybox-static\",\"/nix/store/z56a0nzrpznn3zcjqsyl9ppklasap124-busybox-static\"]",
        );
        for (bytes, want) in [
            (env_swapped, "derivation env"),
            (env_duplicate, "derivation env"),
            (outputs_swapped, "derivation outputs"),
            (input_outputs, "derivation input outputs"),
            (input_drvs, "derivation input derivations"),
            (srcs, "derivation input sources"),
        ] {
            match Derivation::parse(&bytes) {
                Err(Error::Unsorted { what }) => assert_eq!(what, want),
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn strings_accept_only_what_nix_prints() {
        // An escape Nix's parser would accept but its printer never writes.
        let bad_escape = replace(hello(), "echo hello", "echo \\hello");
        assert_eq!(derivation_error(&bad_escape).1, "escape Nix never writes");
        // A raw newline where Nix writes `\n`.
        let raw_newline = replace(hello(), "echo hello", "echo\nhello");
        assert_eq!(
            derivation_error(&raw_newline).1,
            "raw newline, carriage return or tab Nix would escape"
        );
        // A backslash in a field Nix prints verbatim.
        let platform = replace(hello(), "\"x86_64-linux\"", "\"x86_64\\\\linux\"");
        assert_eq!(
            derivation_error(&platform).1,
            "backslash in a field Nix writes unescaped"
        );
        // Cut inside a string.
        let cut = hello().get(..hello().len() - 20).unwrap();
        assert_eq!(derivation_error(cut).1, "unterminated string");
        // Cut right after a backslash.
        let escaped = NIX[2].1.as_bytes();
        let at = NIX[2].1.find("q\\\"").unwrap() + 2;
        assert_eq!(
            derivation_error(&escaped[..at]),
            (at - 1, "unterminated string")
        );
        // Cut between values.
        let cut = hello().get(..hello().len() - 1).unwrap();
        assert_eq!(derivation_error(cut).1, "unexpected end of input");
        // Not UTF-8.
        let latin1 = [
            b"Derive([(\"out\",\"\",\"\",\"\")],[],[],\"x\",\"\xe9\"".as_slice(),
            b",[],[])",
        ]
        .concat();
        assert_eq!(derivation_error(&latin1), (36, "string is not UTF-8"));
        // Wrong header, missing comma, trailing comma.
        assert_eq!(derivation_error(b"derive([]"), (0, "expected 'Derive('"));
        let no_comma = replace(hello(), "\"],[(\"builder", "\"][(\"builder");
        assert_eq!(derivation_error(&no_comma).1, "expected ','");
        let trailing_comma = replace(hello(), "\"echo hello > $out\"]", "\"echo hello > $out\",]");
        assert_eq!(derivation_error(&trailing_comma).1, "expected '\"'");
        // Uppercase hex in a fixed output's hash.
        let upper = replace(
            NIX[6].1.as_bytes(),
            "\"sha256\",\"2cf24dba",
            "\"sha256\",\"2CF24DBA",
        );
        assert_eq!(
            derivation_error(&upper).1,
            "fixed-output hash is not lowercase hex of the algorithm's length"
        );
        let algo = replace(
            NIX[6].1.as_bytes(),
            "\"sha256\",\"2cf24dba",
            "\"sha3\",\"2cf24dba",
        );
        assert_eq!(derivation_error(&algo).1, "unknown output hash algorithm");
    }

    #[test]
    fn bad_paths_and_kinds_are_refused() {
        let not_drv = replace(REAL[2].1, "hello.drv\",[\"out\"]", "hello\",[\"out\"]");
        assert!(matches!(
            Derivation::parse(&not_drv),
            Err(Error::InvalidStorePath { .. })
        ));
        let mixed = replace(
            REAL[1].1,
            "(\"dev\",\"/nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev\",\"\",\"\")",
            "(\"dev\",\"\",\"\",\"\")",
        );
        assert!(matches!(
            Derivation::parse(&mixed),
            Err(Error::InvalidValue {
                what: "derivation outputs",
                reason: "outputs of different kinds"
            })
        ));
        let none = b"Derive([],[],[],\"x\",\"y\",[],[])";
        assert!(matches!(
            Derivation::parse(none),
            Err(Error::InvalidValue {
                what: "derivation outputs",
                reason: "no outputs"
            })
        ));
        let fixed_dev = replace(NIX[6].1.as_bytes(), "[(\"out\",\"/nix", "[(\"dev\",\"/nix");
        assert!(matches!(
            Derivation::parse(&fixed_dev),
            Err(Error::InvalidValue { .. })
        ));
    }

    #[test]
    fn wrong_output_paths_are_found() {
        // Output path replaced (in the output list and the env alike).
        let right = "/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello";
        let wrong = "/nix/store/0000000000000000000000000000000z-hello";
        let s = core::str::from_utf8(hello()).unwrap().replace(right, wrong);
        let drv = Derivation::parse(s.as_bytes()).unwrap();
        let mut resolve = |_: &DrvPath| -> Result<Derivation> { panic!("no inputs") };
        let h = drv.hash_modulo("hello", &mut resolve).unwrap();
        // Masking makes the hash independent of the written paths.
        let orig = Derivation::parse(hello()).unwrap();
        assert_eq!(orig.hash_modulo("hello", &mut resolve).unwrap(), h);
        match drv.check_output_paths("hello", &h) {
            Err(Error::OutputPathMismatch {
                output,
                what,
                expected,
                found,
            }) => {
                assert_eq!((output.as_str(), what), ("out", "output path"));
                assert_eq!((expected.as_str(), found.as_str()), (right, wrong));
            }
            other => panic!("{other:?}"),
        }
        // Only the env variable wrong.
        let env_only = replace(hello(), "-hello\"),(\"system\"", "-hellp\"),(\"system\"");
        let drv = Derivation::parse(&env_only).unwrap();
        assert!(matches!(
            drv.check_output_paths("hello", &h),
            Err(Error::OutputPathMismatch {
                what: "environment variable",
                ..
            })
        ));
        // Wrong name: the paths no longer match.
        assert!(matches!(
            orig.check_output_paths("hallo", &h),
            Err(Error::OutputPathMismatch {
                what: "output path",
                ..
            })
        ));
        // A fixed output whose path does not follow from its hash.
        let fixed = replace(
            NIX[6].1.as_bytes(),
            "0jrzd5f16zpwb923v5inqshydlcbc4r4-src.txt\",\"sha256",
            "0jrzd5f16zpwb923v5inqshydlcbc4r5-src.txt\",\"sha256",
        );
        let drv = Derivation::parse(&fixed).unwrap();
        let h = drv.hash_modulo("src.txt", &mut resolve).unwrap();
        assert!(matches!(
            drv.check_output_paths("src.txt", &h),
            Err(Error::OutputPathMismatch {
                what: "output path",
                ..
            })
        ));
    }

    #[test]
    fn missing_inputs_outputs_and_cycles() {
        let dependent = Derivation::parse(REAL[2].1).unwrap();
        let mut none = |p: &DrvPath| Err(Error::MissingInputDerivation(String::from(p.as_str())));
        assert!(matches!(
            dependent.hash_modulo("dependent", &mut none),
            Err(Error::MissingInputDerivation(p)) if p == REAL[0].0
        ));
        // Asking for an output the input does not have.
        let no_such = replace(REAL[2].1, "multi.drv\",[\"dev\"]", "multi.drv\",[\"doc\"]");
        let drv = Derivation::parse(&no_such).unwrap();
        let store = store(&REAL);
        let mut resolve = |p: &DrvPath| Derivation::parse(&store[p]);
        assert!(matches!(
            drv.hash_modulo("dependent", &mut resolve),
            Err(Error::InvalidValue {
                what: "input derivation",
                ..
            })
        ));
        // hello -> hello.
        let selfish = replace(
            hello(),
            "],[],[\"/nix/store/z56a",
            "],[(\"/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv\",[\"out\"])],[\"/nix/store/z56a",
        );
        let mut resolve = |_: &DrvPath| Derivation::parse(&selfish);
        assert!(matches!(
            Derivation::parse(&selfish)
                .unwrap()
                .hash_modulo("hello", &mut resolve),
            Err(Error::InvalidValue {
                reason: "dependency cycle",
                ..
            })
        ));
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        // 20,000 derivations, each depending on the previous: no stack
        // overflow, each read once.
        let mut store: BTreeMap<DrvPath, Derivation> = BTreeMap::new();
        let base = Derivation::parse(hello()).unwrap();
        let mut prev: Option<DrvPath> = None;
        for i in 0..20_000u32 {
            let mut drv = base.clone();
            drv.env.insert(String::from("i"), format!("{i}"));
            if let Some(p) = prev.take() {
                drv.input_drvs
                    .insert(p, BTreeSet::from([String::from("out")]));
            }
            let path = StorePath::make(
                "text",
                &Sha256Digest::of(drv.to_aterm().as_bytes()),
                "hello.drv",
            )
            .unwrap();
            let path = DrvPath::try_from(path).unwrap();
            store.insert(path.clone(), drv);
            prev = Some(path);
        }
        let top = prev.unwrap();
        let mut calls = 0usize;
        let mut resolve = |p: &DrvPath| {
            calls += 1;
            Ok(store[p].clone())
        };
        let h = store[&top].hash_modulo("hello", &mut resolve).unwrap();
        assert_eq!(calls, 19_999);
        assert_ne!(h.drv_hash(), Sha256Digest([0; 32]));
    }

    #[test]
    fn limits() {
        let big = vec![b' '; MAX_DRV_SIZE + 1];
        assert!(matches!(
            Derivation::parse(&big),
            Err(Error::TooLarge {
                what: "derivation",
                ..
            })
        ));
        let mut many = String::from("Derive([");
        for i in 0..=MAX_OUTPUTS {
            if i > 0 {
                many.push(',');
            }
            many.push_str(&format!("(\"o{i:04}\",\"\",\"\",\"\")"));
        }
        many.push_str("],[],[],\"x\",\"y\",[],[])");
        assert!(matches!(
            Derivation::parse(many.as_bytes()),
            Err(Error::TooLarge {
                what: "derivation outputs",
                max: MAX_OUTPUTS,
                ..
            })
        ));
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\r'),
                Just('\t'),
                Just('é'),
                Just('\u{1}'),
                proptest::char::range('a', 'z'),
            ],
            0..12,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn derivation_strategy() -> impl Strategy<Value = Derivation> {
        let name = "[a-z]{1,8}";
        (
            proptest::collection::btree_set(name, 1..4),
            proptest::collection::btree_map(
                name,
                proptest::collection::btree_set(name, 0..3),
                0..3,
            ),
            text_strategy(),
            proptest::collection::vec(text_strategy(), 0..4),
            proptest::collection::btree_map(text_strategy(), text_strategy(), 0..6),
        )
            .prop_map(|(outs, inputs, builder, args, env)| {
                let path = |n: &str, suffix: &str| {
                    let h = Sha256Digest::of(n.as_bytes());
                    StorePath::make("text", &h, &format!("{n}{suffix}")).unwrap()
                };
                Derivation {
                    outputs: outs
                        .iter()
                        .map(|o| (o.clone(), DerivationOutput::InputAddressed(path(o, ""))))
                        .collect(),
                    input_drvs: inputs
                        .into_iter()
                        .map(|(n, set)| (DrvPath::try_from(path(&n, ".drv")).unwrap(), set))
                        .collect(),
                    input_srcs: outs.iter().map(|o| path(o, "-src")).collect(),
                    platform: String::from("x86_64-linux"),
                    builder,
                    args,
                    env,
                    kind: DerivationKind::InputAddressed,
                }
            })
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(drv in derivation_strategy()) {
            let text = drv.to_aterm();
            let back = Derivation::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(&back, &drv);
            prop_assert_eq!(back.to_aterm(), text);
        }

        #[test]
        fn mutated_real_files_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = REAL[which].1.to_vec();
            for (at, b) in edits {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            if let Ok(drv) = Derivation::parse(&bytes) {
                let text = drv.to_aterm();
                prop_assert_eq!(text.as_bytes(), bytes.as_slice());
            }
        }
    }
}
