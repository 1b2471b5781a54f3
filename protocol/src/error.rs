//! The one error type of the protocol crate.

use alloc::string::String;

/// Everything that can go wrong while parsing, encoding, signing or checking
/// protocol data. Kinds are meant to be branched on: a test that breaks one
/// field expects one kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input ended before a complete value was read.
    #[error("{what}: input ends early")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A complete value was read but bytes remain.
    #[error("{what}: {extra} trailing byte(s)")]
    TrailingBytes {
        /// What was being read.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// A value or list exceeds its bound.
    #[error("{what}: {len} exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size (bytes or items).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Decoding and re-encoding did not give the same bytes.
    #[error("{what}: not in canonical form")]
    NonCanonical {
        /// What was decoded.
        what: &'static str,
    },
    /// A list that must be strictly sorted is not (or holds duplicates).
    #[error("{what}: list not strictly sorted (unsorted or duplicate items)")]
    Unsorted {
        /// Which list.
        what: &'static str,
    },
    /// A character or byte outside the encoding's alphabet.
    #[error("{what}: invalid character or encoding")]
    InvalidEncoding {
        /// Which encoding (nix32, hex, base64, ...).
        what: &'static str,
    },
    /// A fixed-size value has the wrong length.
    #[error("{what}: expected {expected} bytes, found {found}")]
    InvalidLength {
        /// What was read.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A hash named an algorithm other than SHA-256.
    #[error("unsupported hash algorithm {0:?} (only sha256)")]
    UnsupportedHashAlgorithm(String),
    /// A store path or store-path name is malformed.
    #[error("invalid store path: {reason}")]
    InvalidStorePath {
        /// Why it was refused.
        reason: &'static str,
    },
    /// A versioned structure carries a version this code does not know.
    #[error("{what}: unknown version {found}")]
    UnknownVersion {
        /// What carried the version.
        what: &'static str,
        /// The version found.
        found: u32,
    },
    /// A log leaf starts with a tag this code does not know.
    #[error("unknown leaf tag {0:#04x}")]
    UnknownLeafTag(u8),
    /// A postcard value could not be decoded.
    #[error("{what}: malformed encoding")]
    Malformed {
        /// What was decoded.
        what: &'static str,
    },
    /// A field holds a value that is well-formed but not allowed.
    #[error("{what}: {reason}")]
    InvalidValue {
        /// Which field.
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A signature did not verify under the given key.
    #[error("{what}: signature does not verify")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// A key or signature names a different key than expected.
    #[error("{what}: key name {found:?} does not match {expected:?}")]
    KeyMismatch {
        /// What was being checked.
        what: &'static str,
        /// The expected key name.
        expected: String,
        /// The key name found.
        found: String,
    },
    /// A line-oriented text format (narinfo, key file, note) is malformed.
    #[error("{what}, line {line}: {reason}")]
    Syntax {
        /// Which format.
        what: &'static str,
        /// 1-based line number (0 when not line-related).
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A required field of a text format is missing.
    #[error("{what}: missing field {field}")]
    MissingField {
        /// Which format.
        what: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field that may appear once appears twice.
    #[error("{what}: duplicate field {field}")]
    DuplicateField {
        /// Which format.
        what: &'static str,
        /// The repeated field.
        field: &'static str,
    },
    /// A NAR archive is malformed.
    #[error("NAR: {reason} at byte {offset}")]
    Nar {
        /// Byte offset in the archive.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// A `.drv` (ATerm) file is malformed.
    #[error("derivation: {reason} at byte {offset}")]
    Derivation {
        /// Byte offset in the file.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A derivation kind that cannot be hashed here (content-addressed
    /// floating or impure derivations).
    #[error("derivation: unsupported kind: {0}")]
    UnsupportedDerivation(&'static str),
    /// An input derivation needed for hashing was not provided.
    #[error("derivation: input derivation {0} not available")]
    MissingInputDerivation(String),
    /// A Merkle proof or tree index does not fit the tree.
    #[error("merkle: {reason}")]
    InvalidProof {
        /// What was wrong.
        reason: &'static str,
    },
    /// A signed note carries no signature by a known key.
    #[error("note: no valid signature by a known key")]
    NoKnownSignature,
    /// A derivation's output path, or the environment variable naming it,
    /// is not the one recomputed from its hash as Nix does.
    #[error("derivation output {output}: {what} is {found:?}, expected {expected:?}")]
    OutputPathMismatch {
        /// The output's name.
        output: String,
        /// What was compared: `output path` or `environment variable`.
        what: &'static str,
        /// The path recomputed from the hash.
        expected: String,
        /// What the derivation holds (empty when absent).
        found: String,
    },
    /// A TPMS_ATTEST does not start with TPM_GENERATED_VALUE (0xff544347):
    /// the TPM did not produce it.
    #[error("TPMS_ATTEST: magic {found:#010x} is not TPM_GENERATED_VALUE (0xff544347)")]
    TpmBadMagic {
        /// The magic found.
        found: u32,
    },
    /// A TPMS_ATTEST of a type this code does not read (only quote 0x8018
    /// and certify 0x8017).
    #[error("TPMS_ATTEST: unsupported attestation type {found:#06x}")]
    TpmUnsupportedAttestType {
        /// The TPM_ST value found.
        found: u16,
    },
    /// An attestation of one type where another was required (a certify
    /// where a quote was expected, or the reverse).
    #[error("TPMS_ATTEST: type {found:#06x} where {expected:#06x} was required")]
    TpmAttestTypeMismatch {
        /// The TPM_ST value required.
        expected: u16,
        /// The TPM_ST value found.
        found: u16,
    },
    /// A TPM algorithm identifier (hash, object type, scheme, curve,
    /// symmetric algorithm or mode) unknown or not supported where it appears.
    #[error("{what}: unsupported TPM algorithm {alg:#06x}")]
    TpmUnsupportedAlgorithm {
        /// Where it appeared.
        what: &'static str,
        /// The TPM_ALG_ID (or TPM_ECC_CURVE) found.
        alg: u16,
    },
    /// A TPM signature's algorithm or hash does not fit the key: another key
    /// type, or not the scheme the key is restricted to.
    #[error("TPM signature: {reason}")]
    TpmSchemeMismatch {
        /// What did not fit.
        reason: &'static str,
    },
    /// A TPM public key that cannot serve the operation asked of it (a point
    /// off the curve, a bad modulus, a key that is not a decryption key).
    #[error("{what}: unusable TPM key: {reason}")]
    TpmInvalidKey {
        /// What the key was used for.
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A TPM signature (over a TPMS_ATTEST or other bytes) does not verify
    /// under the given public key.
    #[error("TPM signature does not verify")]
    TpmBadSignature,
    /// The digest of the given PCR values differs from the quote's pcrDigest.
    #[error("TPM quote: PCR values do not match pcrDigest")]
    TpmPcrDigestMismatch,
    /// A PCR that a selection names has no value among those given.
    #[error("PCR {index} of bank {bank:#06x} is selected but has no value")]
    TpmMissingPcrValue {
        /// The bank's TPM_ALG_ID.
        bank: u16,
        /// The PCR index.
        index: u8,
    },
    /// A credential blob's integrity HMAC does not match (wrong seed, wrong
    /// object name, or tampered bytes).
    #[error("TPM credential: integrity check failed")]
    TpmCredentialIntegrity,
    /// A file-system operation failed (std only).
    #[cfg(feature = "std")]
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file type that NAR cannot represent (device, socket, fifo).
    #[cfg(feature = "std")]
    #[error("{0}: unsupported file type (only regular files, directories and symlinks)")]
    UnsupportedFileType(std::path::PathBuf),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
