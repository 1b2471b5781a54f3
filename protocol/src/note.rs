//! C2SP signed notes, checkpoints and witness cosignatures.
//!
//! Three specifications, each on top of the previous one:
//!
//! - **signed-note** (c2sp.org/signed-note, the format of Go's
//!   `golang.org/x/mod/sumdb/note`): a UTF-8 text ending in a newline, a
//!   blank line, then one or more lines `— <key name> <base64(key ID ||
//!   signature)>` (U+2014 em dash, space). The text is separated from the
//!   signatures by the *last* blank line, so the text itself may hold blank
//!   lines. No ASCII control characters other than newline anywhere. Key
//!   IDs are the first four bytes of SHA-256(key name || `\n` || signature
//!   type || public key); Ed25519 note signatures are type `0x01` and sign
//!   the text (with its final newline). Keys travel as *verifier key*
//!   strings `<name>+<hex key ID>+<base64(type || public key)>` and *signer
//!   key* strings `PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`.
//! - **tlog-checkpoint** (c2sp.org/tlog-checkpoint): a note whose text is
//!   the log's origin, the tree size in decimal (no leading zeros), the
//!   base64 RFC 6962 root hash, then optional non-empty extension lines
//!   ([`Checkpoint`]).
//! - **tlog-cosignature/v1** (c2sp.org/tlog-cosignature, Ed25519 type
//!   `0x04`): a witness's extra signature line on a checkpoint. Its bytes
//!   are key ID (4) || timestamp (u64 big-endian, POSIX seconds, at most
//!   2^63 - 1) || Ed25519 signature (64) over
//!   `"cosignature/v1\ntime <timestamp>\n" || checkpoint text`. The witness
//!   name is not signed ([`Cosignature`], [`cosign`], [`verify_cosignature`]).
//!
//! Verification follows the signed-note rules: a signature whose name and
//! key ID do not both match a known key is ignored; one that matches and does
//! not verify fails the whole note ([`Error::BadSignature`]); a note without
//! a valid signature by a known key is [`Error::NoKnownSignature`]. Input is
//! bounded: [`MAX_NOTE_LEN`] bytes and [`MAX_SIGNATURES`] signature lines
//! ([`Error::TooLarge`]); syntax errors are [`Error::Syntax`] with the
//! 1-based line. Signatures verify with Ed25519 `verify_strict`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::encoding::{
    base64_decode, base64_decode_array, base64_encode, hex_decode_array, hex_encode,
};
use crate::error::{Error, Result};
use crate::hash::Sha256Digest;

/// Largest signed note accepted, in bytes (1 MiB).
pub const MAX_NOTE_LEN: usize = 1 << 20;

/// Most signature lines accepted in one note (the spec asks for at least 16;
/// Go's `note.Open` also stops at 100).
pub const MAX_SIGNATURES: usize = 100;

/// Signature type byte of plain Ed25519 note signatures (signed-note).
pub const SIG_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of timestamped Ed25519 witness cosignatures
/// (tlog-cosignature/v1).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Em dash (U+2014) and a space: the start of every signature line.
const SIG_LINE_PREFIX: &str = "\u{2014} ";

/// Literal first words of a signer key string.
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Largest timestamp a cosignature may carry (2^63 - 1).
const MAX_COSIGNATURE_TIMESTAMP: u64 = i64::MAX as u64;

/// Length of the signature bytes of an Ed25519 cosignature after the key
/// ID: timestamp (8) and signature (64).
const COSIGNATURE_LEN: usize = 8 + 64;

fn syntax(what: &'static str, line: usize, reason: &'static str) -> Error {
    Error::Syntax { what, line, reason }
}

// ---------------------------------------------------------------------------
// Key names and key IDs

/// A key name: non-empty, without Unicode white space, `+` or ASCII control
/// characters below U+0020 (signed-note forbids the first two in names and
/// the last anywhere in a note, so such a name could never sign one).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName(String);

impl KeyName {
    /// Check and wrap a key name.
    pub fn new(name: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidValue {
            what: "key name",
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        for c in name.chars() {
            if c == '+' {
                return Err(bad("contains '+'"));
            }
            if c.is_whitespace() {
                return Err(bad("contains white space"));
            }
            if u32::from(c) < 0x20 {
                return Err(bad("contains a control character"));
            }
        }
        Ok(Self(String::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({:?})", self.0)
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 4-byte key ID: SHA-256(key name || `\n` || type || public key)[..4].
/// Written as 8 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// The key ID of a key of signature type `sig_type` with these public
    /// key bytes.
    pub fn compute(name: &KeyName, sig_type: u8, public_key: &[u8]) -> Self {
        let d = Sha256Digest::of_parts(&[name.as_str().as_bytes(), b"\n", &[sig_type], public_key]);
        let mut id = [0u8; 4];
        for (dst, src) in id.iter_mut().zip(d.as_bytes()) {
            *dst = *src;
        }
        Self(id)
    }

    /// The ID as a big-endian integer (how Go's `note` package shows it).
    pub fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_encode(&self.0))
    }
}

// ---------------------------------------------------------------------------
// Key strings

/// The three fields of `<name>+<hex id>+<base64 key>` (already split off a
/// signer key's `PRIVATE+KEY+`), with the decoded key material checked for
/// its type byte and 32-byte length.
fn parse_key_fields(
    what: &'static str,
    s: &str,
    sig_type: u8,
) -> Result<(KeyName, KeyId, [u8; 32])> {
    // The base64 part may itself contain '+', so split at most twice.
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(syntax(what, 0, "expected <name>+<key ID>+<key>"));
    };
    let name = KeyName::new(name)?;
    if id.len() != 8 {
        return Err(syntax(what, 0, "key ID is not 8 hex digits"));
    }
    let id = KeyId(hex_decode_array(id)?);
    let raw = base64_decode(b64)?;
    let (&found_type, key) = raw.split_first().ok_or(Error::InvalidValue {
        what,
        reason: "no key material",
    })?;
    if found_type != sig_type {
        return Err(Error::InvalidValue {
            what,
            reason: "unsupported signature type for this key",
        });
    }
    let key: [u8; 32] = key.try_into().map_err(|_| Error::InvalidLength {
        what,
        expected: 32,
        found: key.len(),
    })?;
    Ok((name, id, key))
}

fn parse_verifier_key(s: &str, sig_type: u8) -> Result<(KeyName, KeyId, VerifyingKey)> {
    const WHAT: &str = "verifier key";
    let (name, id, key_bytes) = parse_key_fields(WHAT, s, sig_type)?;
    if KeyId::compute(&name, sig_type, &key_bytes) != id {
        return Err(Error::InvalidValue {
            what: WHAT,
            reason: "key ID does not match the name and public key",
        });
    }
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| Error::InvalidValue {
        what: WHAT,
        reason: "not a valid Ed25519 public key",
    })?;
    Ok((name, id, key))
}

fn parse_signer_key(s: &str, sig_type: u8) -> Result<(KeyName, KeyId, SigningKey)> {
    const WHAT: &str = "signer key";
    let rest = s.strip_prefix(SIGNER_KEY_PREFIX).ok_or(syntax(
        WHAT,
        0,
        "does not start with PRIVATE+KEY+",
    ))?;
    let (name, id, seed) = parse_key_fields(WHAT, rest, sig_type)?;
    let key = SigningKey::from_bytes(&seed);
    // The ID names the public key, so it can only be checked once the
    // public key is derived from the seed.
    if KeyId::compute(&name, sig_type, key.verifying_key().as_bytes()) != id {
        return Err(Error::InvalidValue {
            what: WHAT,
            reason: "key ID does not match the name and public key",
        });
    }
    Ok((name, id, key))
}

fn format_key(prefix: &str, name: &KeyName, id: KeyId, sig_type: u8, key: &[u8; 32]) -> String {
    let mut material = Vec::with_capacity(33);
    material.push(sig_type);
    material.extend_from_slice(key);
    let mut s = String::from(prefix);
    s.push_str(name.as_str());
    s.push('+');
    s.push_str(&hex_encode(&id.0));
    s.push('+');
    s.push_str(&base64_encode(&material));
    s
}

/// Verify an Ed25519 signature (exactly 64 bytes) strictly.
fn ed25519_verify(key: &VerifyingKey, msg: &[u8], sig: &[u8], what: &'static str) -> Result<()> {
    let sig = Signature::from_slice(sig).map_err(|_| Error::BadSignature { what })?;
    key.verify_strict(msg, &sig)
        .map_err(|_| Error::BadSignature { what })
}

/// A public Ed25519 key for signed-note signature type `T`: `0x01` verifies
/// a log's checkpoint signatures ([`NoteVerifierKey`]), `0x04` a witness's
/// cosignatures ([`CosignerKey`]). The type byte is part of the key ID, so
/// one key has a different ID in each role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey<const T: u8> {
    name: KeyName,
    id: KeyId,
    key: VerifyingKey,
}

/// A log's public note key (signature type `0x01`).
pub type NoteVerifierKey = VerifierKey<SIG_TYPE_ED25519>;
/// A witness's public cosignature key (tlog-cosignature/v1, type `0x04`).
pub type CosignerKey = VerifierKey<SIG_TYPE_COSIGNATURE_V1>;

impl<const T: u8> VerifierKey<T> {
    /// The verifier for `key` under `name`.
    pub fn new(name: KeyName, key: VerifyingKey) -> Self {
        let id = KeyId::compute(&name, T, key.as_bytes());
        Self { name, id, key }
    }

    /// Parse a verifier key string `<name>+<hex key ID>+<base64(T ||
    /// public key)>`. The key ID must match the name and key.
    pub fn parse(vkey: &str) -> Result<Self> {
        let (name, id, key) = parse_verifier_key(vkey, T)?;
        Ok(Self { name, id, key })
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    fn matches(&self, sig: &NoteSignature) -> bool {
        self.name == sig.name && self.id == sig.key_id
    }
}

impl<const T: u8> fmt::Display for VerifierKey<T> {
    /// The verifier key string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_key("", &self.name, self.id, T, self.key.as_bytes()))
    }
}

/// A private Ed25519 key for signed-note signature type `T`: the log's key
/// that signs checkpoints ([`NoteSigningKey`], `0x01`) or a witness's key
/// ([`CosignerSigningKey`], `0x04`). `Debug` does not show the seed.
#[derive(Clone)]
pub struct SignerKey<const T: u8> {
    name: KeyName,
    id: KeyId,
    key: SigningKey,
}

/// A log's private note key (signature type `0x01`).
pub type NoteSigningKey = SignerKey<SIG_TYPE_ED25519>;
/// A witness's private cosignature key (type `0x04`).
pub type CosignerSigningKey = SignerKey<SIG_TYPE_COSIGNATURE_V1>;

impl<const T: u8> SignerKey<T> {
    /// The signer for `key` under `name`.
    pub fn new(name: KeyName, key: SigningKey) -> Self {
        let id = KeyId::compute(&name, T, key.verifying_key().as_bytes());
        Self { name, id, key }
    }

    /// Parse a signer key string `PRIVATE+KEY+<name>+<hex key ID>+<base64(T
    /// || 32-byte seed)>`. The key ID must match the derived public key.
    pub fn parse(skey: &str) -> Result<Self> {
        let (name, id, key) = parse_signer_key(skey, T)?;
        Ok(Self { name, id, key })
    }

    /// The signer key string. It holds the secret seed.
    pub fn to_signer_key_string(&self) -> String {
        format_key(
            SIGNER_KEY_PREFIX,
            &self.name,
            self.id,
            T,
            self.key.as_bytes(),
        )
    }

    /// The matching public key.
    pub fn verifier_key(&self) -> VerifierKey<T> {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.id
    }
}

impl NoteSigningKey {
    /// The signature line of this key over a note `text`.
    pub fn sign_text(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.name.clone(),
            key_id: self.id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }
}

impl<const T: u8> fmt::Debug for SignerKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("type", &T)
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Signed notes

/// One signature line of a note: who signed (name and key ID) and the
/// signature bytes that follow the key ID (their meaning depends on the
/// key's signature type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: KeyName,
    /// The key ID.
    pub key_id: KeyId,
    /// The signature bytes after the key ID (at least one).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, `— <name> <base64(key ID || signature)>\n`.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        let mut line = String::from(SIG_LINE_PREFIX);
        line.push_str(self.name.as_str());
        line.push(' ');
        line.push_str(&base64_encode(&raw));
        line.push('\n');
        line
    }

    /// Parse one signature line without its newline; `line_no` is for errors.
    fn parse_line(line: &str, line_no: usize) -> Result<Self> {
        const WHAT: &str = "note";
        let rest = line.strip_prefix(SIG_LINE_PREFIX).ok_or(syntax(
            WHAT,
            line_no,
            "signature line does not start with an em dash and a space",
        ))?;
        let (name, b64) =
            rest.split_once(' ')
                .ok_or(syntax(WHAT, line_no, "signature line has no signature"))?;
        let name = KeyName::new(name).map_err(|_| syntax(WHAT, line_no, "invalid key name"))?;
        let raw = base64_decode(b64)
            .map_err(|_| syntax(WHAT, line_no, "signature is not valid base64"))?;
        let (id, signature) = raw
            .split_first_chunk::<4>()
            .filter(|(_, sig)| !sig.is_empty())
            .ok_or(syntax(
                WHAT,
                line_no,
                "signature shorter than a key ID and one byte",
            ))?;
        Ok(Self {
            name,
            key_id: KeyId(*id),
            signature: signature.to_vec(),
        })
    }
}

/// Check what every note text must satisfy: at most [`MAX_NOTE_LEN`] bytes,
/// no ASCII control characters other than newline, a final newline.
fn check_text(what: &'static str, text: &str) -> Result<()> {
    if text.len() > MAX_NOTE_LEN {
        return Err(Error::TooLarge {
            what,
            len: text.len(),
            max: MAX_NOTE_LEN,
        });
    }
    check_characters(what, text, 1)?;
    if !text.ends_with('\n') {
        return Err(syntax(
            what,
            text.split('\n').count(),
            "text does not end with a newline",
        ));
    }
    Ok(())
}

/// Refuse ASCII control characters other than newline; lines are numbered
/// from `first_line`.
fn check_characters(what: &'static str, s: &str, first_line: usize) -> Result<()> {
    let mut line = first_line;
    for c in s.chars() {
        if c == '\n' {
            line += 1;
        } else if u32::from(c) < 0x20 {
            return Err(syntax(what, line, "control character"));
        }
    }
    Ok(())
}

/// A signed note: its text and signature lines, in order.
///
/// [`Note::parse`] checks syntax only; [`Note::verify`],
/// [`Note::verify_cosignatures`] and [`Note::open`] check signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// An unsigned note with this text (which must end in a newline and hold
    /// no control characters other than newlines). Sign it before
    /// rendering: a note without signatures renders to something
    /// [`Note::parse`] refuses.
    pub fn new(text: &str) -> Result<Self> {
        check_text("note", text)?;
        Ok(Self {
            text: String::from(text),
            signatures: Vec::new(),
        })
    }

    /// Parse a signed note (syntax only: no signature is checked).
    pub fn parse(msg: &[u8]) -> Result<Self> {
        const WHAT: &str = "note";
        if msg.len() > MAX_NOTE_LEN {
            return Err(Error::TooLarge {
                what: WHAT,
                len: msg.len(),
                max: MAX_NOTE_LEN,
            });
        }
        let msg = core::str::from_utf8(msg).map_err(|e| {
            let line = msg
                .get(..e.valid_up_to())
                .map_or(0, |ok| ok.iter().filter(|&&b| b == b'\n').count() + 1);
            syntax(WHAT, line, "not valid UTF-8")
        })?;
        check_characters(WHAT, msg, 1)?;
        let split = msg.rfind("\n\n").ok_or(syntax(
            WHAT,
            msg.split('\n').count(),
            "no blank line before the signatures",
        ))?;
        let text =
            msg.get(..=split)
                .ok_or(syntax(WHAT, 0, "no blank line before the signatures"))?;
        let sigs = msg
            .get(split + 2..)
            .ok_or(syntax(WHAT, 0, "no signature lines"))?;
        // Line numbers: the text has one line per newline, then the blank line.
        let first_sig_line = text.matches('\n').count() + 2;
        if sigs.is_empty() {
            return Err(syntax(WHAT, first_sig_line, "no signature lines"));
        }
        let Some(body) = sigs.strip_suffix('\n') else {
            return Err(syntax(
                WHAT,
                first_sig_line + sigs.matches('\n').count(),
                "last signature line does not end with a newline",
            ));
        };
        let count = body.split('\n').count();
        if count > MAX_SIGNATURES {
            return Err(Error::TooLarge {
                what: "note signatures",
                len: count,
                max: MAX_SIGNATURES,
            });
        }
        let signatures = body
            .split('\n')
            .enumerate()
            .map(|(i, line)| NoteSignature::parse_line(line, first_sig_line + i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            text: String::from(text),
            signatures,
        })
    }

    /// Parse a signed note and verify it against `keys` (see
    /// [`Note::verify`]).
    pub fn open(msg: &[u8], keys: &[NoteVerifierKey]) -> Result<Self> {
        let note = Self::parse(msg)?;
        note.verify(keys)?;
        Ok(note)
    }

    /// The note text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Add a signature line, replacing any line with the same name and key
    /// ID; the new line goes last. Refuses to grow past [`MAX_SIGNATURES`]
    /// lines or [`MAX_NOTE_LEN`] bytes.
    pub fn add_signature(&mut self, sig: NoteSignature) -> Result<()> {
        self.signatures
            .retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(Error::TooLarge {
                what: "note signatures",
                len: self.signatures.len() + 1,
                max: MAX_SIGNATURES,
            });
        }
        let len = self.rendered_len() + sig.to_line().len();
        if len > MAX_NOTE_LEN {
            return Err(Error::TooLarge {
                what: "note",
                len,
                max: MAX_NOTE_LEN,
            });
        }
        self.signatures.push(sig);
        Ok(())
    }

    /// Sign the text with an Ed25519 note key (replacing an earlier
    /// signature by the same key).
    pub fn sign(&mut self, key: &NoteSigningKey) -> Result<()> {
        let sig = key.sign_text(&self.text);
        self.add_signature(sig)
    }

    /// Add a witness cosignature over this note's text, which must be a
    /// checkpoint (see [`cosign`]).
    pub fn cosign(&mut self, key: &CosignerSigningKey, timestamp: u64) -> Result<()> {
        let sig = cosign(&self.text, key, timestamp)?;
        self.add_signature(sig)
    }

    fn rendered_len(&self) -> usize {
        self.text.len()
            + 1
            + self
                .signatures
                .iter()
                .map(|s| s.to_line().len())
                .sum::<usize>()
    }

    /// The signed note: text, blank line, signature lines.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.rendered_len());
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }

    /// Verify the note's Ed25519 signatures against the known `keys`.
    ///
    /// Lines whose name and key ID do not both match a key are ignored.
    /// Every line that matches must verify ([`Error::BadSignature`]
    /// otherwise), and at least one must ([`Error::NoKnownSignature`]).
    /// Returns the keys that signed, each once, in signature order. Two
    /// different keys in `keys` with the same name and ID are refused when a
    /// signature names them.
    pub fn verify<'k>(&self, keys: &'k [NoteVerifierKey]) -> Result<Vec<&'k NoteVerifierKey>> {
        let mut signed: Vec<&NoteVerifierKey> = Vec::new();
        for sig in &self.signatures {
            let Some(key) = unique_match(keys, |k| k.matches(sig), |a, b| a.key == b.key)? else {
                continue;
            };
            ed25519_verify(
                &key.key,
                self.text.as_bytes(),
                &sig.signature,
                "note signature",
            )?;
            if !signed
                .iter()
                .any(|k| k.key == key.key && k.name == key.name)
            {
                signed.push(key);
            }
        }
        if signed.is_empty() {
            return Err(Error::NoKnownSignature);
        }
        Ok(signed)
    }

    /// Verify the witness cosignatures on this note (a checkpoint) against
    /// the known `witnesses`.
    ///
    /// Lines that do not match a witness by name and key ID are ignored;
    /// every line that does must verify ([`Error::BadSignature`]). Returns
    /// the valid cosignatures, one per witness (the first), possibly none:
    /// how many are required is the caller's policy.
    pub fn verify_cosignatures(&self, witnesses: &[CosignerKey]) -> Result<Vec<Cosignature>> {
        let mut out: Vec<Cosignature> = Vec::new();
        for sig in &self.signatures {
            let Some(key) = unique_match(witnesses, |k| k.matches(sig), |a, b| a.key == b.key)?
            else {
                continue;
            };
            let cosig = verify_cosignature(&self.text, sig, key)?;
            if !out
                .iter()
                .any(|c| c.name == cosig.name && c.key_id == cosig.key_id)
            {
                out.push(cosig);
            }
        }
        Ok(out)
    }
}

/// The one key of `keys` that `is_match` selects, if any; an error if two
/// different keys (per `same`) are selected.
fn unique_match<K>(
    keys: &[K],
    is_match: impl Fn(&K) -> bool,
    same: impl Fn(&K, &K) -> bool,
) -> Result<Option<&K>> {
    let mut found: Option<&K> = None;
    for k in keys.iter().filter(|k| is_match(k)) {
        match found {
            None => found = Some(k),
            Some(f) if same(f, k) => {}
            Some(_) => {
                return Err(Error::InvalidValue {
                    what: "known keys",
                    reason: "two different keys share a name and key ID",
                })
            }
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------
// Checkpoints

/// A tlog-checkpoint: the note text a log signs for each tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line: non-empty, unique per log (a schema-less URL
    /// by convention, which clients must not rely on).
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 6962 root hash of the tree.
    pub root: Sha256Digest,
    /// Optional extension lines (non-empty, opaque).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parse a checkpoint note text (the text of the note, with its final
    /// newline, without the blank line and signatures).
    pub fn parse_body(text: &str) -> Result<Self> {
        const WHAT: &str = "checkpoint";
        check_text(WHAT, text)?;
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or("");
        if origin.is_empty() {
            return Err(syntax(WHAT, 1, "empty origin line"));
        }
        let size = lines
            .next()
            .ok_or(syntax(WHAT, 2, "missing tree size line"))?;
        let size = parse_tree_size(size).map_err(|reason| syntax(WHAT, 2, reason))?;
        let root = lines
            .next()
            .ok_or(syntax(WHAT, 3, "missing root hash line"))?;
        let root = match base64_decode_array::<32>(root) {
            Ok(bytes) => Sha256Digest(bytes),
            Err(Error::InvalidLength { .. }) => {
                return Err(syntax(WHAT, 3, "root hash is not 32 bytes"))
            }
            Err(_) => return Err(syntax(WHAT, 3, "root hash is not valid base64")),
        };
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(syntax(WHAT, i + 4, "empty extension line"));
            }
            extensions.push(String::from(line));
        }
        Ok(Self {
            origin: String::from(origin),
            size,
            root,
            extensions,
        })
    }

    /// The checkpoint's note text. Refuses an empty origin, empty extension
    /// lines and any line holding a newline or control character.
    pub fn to_note_text(&self) -> Result<String> {
        const WHAT: &str = "checkpoint";
        if self.origin.is_empty() {
            return Err(syntax(WHAT, 1, "empty origin line"));
        }
        let mut text = String::new();
        text.push_str(&self.origin);
        text.push('\n');
        text.push_str(&alloc::format!("{}\n", self.size));
        text.push_str(&base64_encode(self.root.as_bytes()));
        text.push('\n');
        for (i, ext) in self.extensions.iter().enumerate() {
            if ext.is_empty() {
                return Err(syntax(WHAT, i + 4, "empty extension line"));
            }
            text.push_str(ext);
            text.push('\n');
        }
        check_text(WHAT, &text)?;
        // A newline inside a field would shift the lines: the text must
        // read back as this checkpoint.
        if Self::parse_body(&text).ok().as_ref() != Some(self) {
            return Err(syntax(WHAT, 0, "a field holds a newline"));
        }
        Ok(text)
    }

    /// Sign this checkpoint with the log's note key.
    pub fn sign(&self, key: &NoteSigningKey) -> Result<Note> {
        let mut note = Note::new(&self.to_note_text()?)?;
        note.sign(key)?;
        Ok(note)
    }

    /// Parse a signed checkpoint, verify it against the log's keys (see
    /// [`Note::verify`]) and parse its text.
    pub fn open(msg: &[u8], log_keys: &[NoteVerifierKey]) -> Result<(Self, Note)> {
        let note = Note::open(msg, log_keys)?;
        let checkpoint = Self::parse_body(note.text())?;
        Ok((checkpoint, note))
    }
}

/// Parse a decimal tree size: ASCII digits, no sign, no leading zero (but
/// `0` itself), at most `u64::MAX`.
fn parse_tree_size(s: &str) -> core::result::Result<u64, &'static str> {
    if s.is_empty() {
        return Err("empty tree size");
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("tree size is not a decimal number");
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err("tree size has a leading zero");
    }
    s.parse::<u64>()
        .map_err(|_| "tree size does not fit in 64 bits")
}

// ---------------------------------------------------------------------------
// Cosignatures

/// A witness cosignature (tlog-cosignature/v1, Ed25519).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness name.
    pub name: KeyName,
    /// The witness key ID (signature type `0x04`).
    pub key_id: KeyId,
    /// When the witness signed, POSIX seconds (at most 2^63 - 1).
    pub timestamp: u64,
    /// Ed25519 signature over [`cosignature_message`].
    pub signature: [u8; 64],
}

impl Cosignature {
    /// Read a cosignature from a note signature line: timestamp (8 bytes,
    /// big-endian) and signature (64 bytes) after the key ID.
    pub fn from_note_signature(sig: &NoteSignature) -> Result<Self> {
        let (ts, signature) = sig
            .signature
            .split_first_chunk::<8>()
            .filter(|_| sig.signature.len() == COSIGNATURE_LEN)
            .ok_or(Error::InvalidLength {
                what: "cosignature",
                expected: COSIGNATURE_LEN,
                found: sig.signature.len(),
            })?;
        let timestamp = u64::from_be_bytes(*ts);
        if timestamp > MAX_COSIGNATURE_TIMESTAMP {
            return Err(Error::InvalidValue {
                what: "cosignature timestamp",
                reason: "exceeds 2^63 - 1",
            });
        }
        let signature: [u8; 64] = signature.try_into().map_err(|_| Error::InvalidLength {
            what: "cosignature",
            expected: COSIGNATURE_LEN,
            found: sig.signature.len(),
        })?;
        Ok(Self {
            name: sig.name.clone(),
            key_id: sig.key_id,
            timestamp,
            signature,
        })
    }

    /// The note signature line for this cosignature.
    pub fn to_note_signature(&self) -> NoteSignature {
        let mut bytes = Vec::with_capacity(COSIGNATURE_LEN);
        bytes.extend_from_slice(&self.timestamp.to_be_bytes());
        bytes.extend_from_slice(&self.signature);
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: bytes,
        }
    }
}

/// The message an Ed25519 cosignature signs:
/// `"cosignature/v1\ntime <timestamp>\n" || checkpoint text`.
pub fn cosignature_message(checkpoint_text: &str, timestamp: u64) -> Vec<u8> {
    let header = alloc::format!("cosignature/v1\ntime {timestamp}\n");
    let mut msg = Vec::with_capacity(header.len() + checkpoint_text.len());
    msg.extend_from_slice(header.as_bytes());
    msg.extend_from_slice(checkpoint_text.as_bytes());
    msg
}

/// Cosign a checkpoint text as a witness at `timestamp` (POSIX seconds, at
/// most 2^63 - 1): the signature line to add to the checkpoint's note.
/// Refuses a text that is not a checkpoint.
pub fn cosign(
    checkpoint_text: &str,
    key: &CosignerSigningKey,
    timestamp: u64,
) -> Result<NoteSignature> {
    Checkpoint::parse_body(checkpoint_text)?;
    if timestamp > MAX_COSIGNATURE_TIMESTAMP {
        return Err(Error::InvalidValue {
            what: "cosignature timestamp",
            reason: "exceeds 2^63 - 1",
        });
    }
    let msg = cosignature_message(checkpoint_text, timestamp);
    let cosig = Cosignature {
        name: key.name.clone(),
        key_id: key.id,
        timestamp,
        signature: key.key.sign(&msg).to_bytes(),
    };
    Ok(cosig.to_note_signature())
}

/// Verify one cosignature line by the witness `key` over `checkpoint_text`.
///
/// A line naming another key (name or key ID) is [`Error::KeyMismatch`];
/// a line by this key that is malformed or does not verify is
/// [`Error::BadSignature`].
pub fn verify_cosignature(
    checkpoint_text: &str,
    sig: &NoteSignature,
    key: &CosignerKey,
) -> Result<Cosignature> {
    const WHAT: &str = "cosignature";
    if !key.matches(sig) {
        return Err(Error::KeyMismatch {
            what: WHAT,
            expected: alloc::format!("{}+{}", key.name, key.id),
            found: alloc::format!("{}+{}", sig.name, sig.key_id),
        });
    }
    Checkpoint::parse_body(checkpoint_text)?;
    let cosig =
        Cosignature::from_note_signature(sig).map_err(|_| Error::BadSignature { what: WHAT })?;
    let msg = cosignature_message(checkpoint_text, cosig.timestamp);
    ed25519_verify(&key.key, &msg, &cosig.signature, WHAT)?;
    Ok(cosig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use proptest::prelude::*;

    // Vectors from golang/mod, sumdb/note/note_test.go (TestNewVerifier,
    // TestNewSigner, TestSign, TestOpen).
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    // Example from C2SP tlog-checkpoint.md and tlog-cosignature.md (the
    // cosigned form adds the witness line; no public keys are published).
    const SPEC_CHECKPOINT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    const SPEC_WITNESS_LINE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";

    // Example from C2SP signed-note.md: the text holds a blank line.
    const SPEC_NOTE: &str = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

    // Witness key from transparency-dev/formats, witness/witness_test.go
    // (an Ed25519 note key that Go's NewSignerForCosignatureV1 also uses for
    // cosignatures, with key type 0x04).
    const WIT1_SKEY: &str =
        "PRIVATE+KEY+Wit1+55ee4561+AeadRiG7XM4XiieCHzD8lxysXMwcViy5nYsoXURWGrlE";
    const WIT1_VKEY: &str = "Wit1+55ee4561+AVhZSmQj9+SoL+p/nN0Hh76xXmF7QcHfytUrI1XfSClk";

    fn peter() -> NoteVerifierKey {
        NoteVerifierKey::parse(PETER_VKEY).unwrap()
    }

    fn enoch() -> NoteVerifierKey {
        NoteVerifierKey::parse(ENOCH_VKEY).unwrap()
    }

    fn syntax_reason<T: fmt::Debug>(r: Result<T>) -> (&'static str, usize, &'static str) {
        match r {
            Err(Error::Syntax { what, line, reason }) => (what, line, reason),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    fn wit1_cosigner() -> CosignerSigningKey {
        let k = NoteSigningKey::parse(WIT1_SKEY).unwrap();
        CosignerSigningKey::new(k.name.clone(), k.key.clone())
    }

    fn test_log_key() -> NoteSigningKey {
        NoteSigningKey::new(
            KeyName::new("example.com/log").unwrap(),
            SigningKey::from_bytes(&[7u8; 32]),
        )
    }

    fn test_checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.com/log".to_string(),
            size: 8,
            root: Sha256Digest::from_hex(
                "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
            )
            .unwrap(),
            extensions: Vec::new(),
        }
    }

    #[test]
    fn go_keys_parse_and_format() {
        let v = peter();
        assert_eq!(v.name().as_str(), "PeterNeumann");
        assert_eq!(v.key_id().to_u32(), 0xc74f20a3);
        assert_eq!(v.to_string(), PETER_VKEY);
        let s = NoteSigningKey::parse(PETER_SKEY).unwrap();
        assert_eq!(s.verifier_key(), v);
        assert_eq!(s.to_signer_key_string(), PETER_SKEY);
        assert_eq!(enoch().key_id().to_u32(), 0xaf0cfe78);
        assert_eq!(enoch().to_string(), ENOCH_VKEY);
        assert!(!format!("{s:?}").contains("AYEK"));
    }

    #[test]
    fn go_sign_vector() {
        let key = NoteSigningKey::parse(PETER_SKEY).unwrap();
        let mut note = Note::new(GO_TEXT).unwrap();
        note.sign(&key).unwrap();
        let want = format!("{GO_TEXT}\n{PETER_SIG}");
        assert_eq!(note.render(), want);
        // Signing again replaces the signature by the same key.
        note.sign(&key).unwrap();
        assert_eq!(note.render(), want);
    }

    #[test]
    fn go_open_vectors() {
        let msg = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let note = Note::parse(msg.as_bytes()).unwrap();
        assert_eq!(note.text(), GO_TEXT);
        assert_eq!(note.signatures().len(), 2);
        assert_eq!(note.render(), msg);

        let keys = [peter()];
        let signed = note.verify(&keys).unwrap();
        assert_eq!(signed, [&keys[0]]);
        let both = [enoch(), peter()];
        let signed = note.verify(&both).unwrap();
        assert_eq!(signed, [&both[1], &both[0]]);
        assert!(matches!(note.verify(&[]), Err(Error::NoKnownSignature)));
        assert!(Note::open(msg.as_bytes(), &keys).is_ok());

        // Repeated lines are fine (each verified).
        let msg = format!("{GO_TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}");
        assert_eq!(
            Note::open(msg.as_bytes(), &keys)
                .unwrap()
                .signatures()
                .len(),
            4
        );
    }

    #[test]
    fn go_bad_keys() {
        // Wrong length key and unknown algorithm, each with an adjusted key ID.
        assert!(matches!(
            NoteVerifierKey::parse(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            ),
            // Non-canonical base64 (Go decodes it and then refuses the length).
            Err(Error::InvalidEncoding { .. })
        ));
        assert!(matches!(
            NoteVerifierKey::parse(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEA=="
            ),
            Err(Error::InvalidLength {
                expected: 32,
                found: 36,
                ..
            })
        ));
        assert!(matches!(
            NoteVerifierKey::parse(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(Error::InvalidValue { .. })
        ));
        // Every truncation and every one-byte change is refused.
        for key in [PETER_VKEY, PETER_SKEY] {
            let parse = |s: &str| {
                if key == PETER_VKEY {
                    NoteVerifierKey::parse(s).is_ok()
                } else {
                    NoteSigningKey::parse(s).is_ok()
                }
            };
            let b = key.as_bytes();
            for i in 0..=b.len() {
                for j in i + 1..=b.len() {
                    if (i, j) != (0, b.len()) {
                        let s = core::str::from_utf8(&b[i..j]).unwrap();
                        assert!(!parse(s), "{s}");
                    }
                }
            }
            for i in 0..b.len() {
                let mut m = b.to_vec();
                m[i] = m[i].wrapping_add(1);
                if let Ok(s) = core::str::from_utf8(&m) {
                    assert!(!parse(s), "{s}");
                }
            }
        }
    }

    #[test]
    fn key_refusals() {
        let wrong_id = PETER_VKEY.replace("c74f20a3", "c74f20a4");
        assert!(matches!(
            NoteVerifierKey::parse(&wrong_id),
            Err(Error::InvalidValue {
                reason: "key ID does not match the name and public key",
                ..
            })
        ));
        let wrong_id = PETER_SKEY.replace("c74f20a3", "c74f20a4");
        assert!(matches!(
            NoteSigningKey::parse(&wrong_id),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            NoteVerifierKey::parse("Peter+Neumann"),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            NoteSigningKey::parse(PETER_VKEY),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            CosignerKey::parse(PETER_VKEY),
            Err(Error::InvalidValue {
                reason: "unsupported signature type for this key",
                ..
            })
        ));
        for bad in ["", "a b", "a+b", "a\u{a0}b", "a\u{1}b", "a\nb"] {
            assert!(
                matches!(KeyName::new(bad), Err(Error::InvalidValue { .. })),
                "{bad:?}"
            );
        }
        assert!(KeyName::new("example.com/log-1").is_ok());
        // DEL is not a control character below U+0020: allowed, as in Go.
        assert!(KeyName::new("a\u{7f}b").is_ok());
    }

    #[test]
    fn cosigner_key_vectors() {
        // transparency-dev/formats note/note_cosigv1_test.go
        // (TestCoSigV1NewVerifier): a native 0x04 witness key; parsing checks
        // the key ID over type 0x04.
        let vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
        let k = CosignerKey::parse(vkey).unwrap();
        assert_eq!(k.key_id().to_u32(), 0xda77ade7);
        assert_eq!(k.to_string(), vkey);
        assert!(NoteVerifierKey::parse(vkey).is_err());
        // The same test's 0x01 key is a note key.
        let vkey = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6";
        assert_eq!(NoteVerifierKey::parse(vkey).unwrap().to_string(), vkey);
        // Same seed, different signature type: different key ID.
        let wit1 = wit1_cosigner();
        let note_key = NoteVerifierKey::parse(WIT1_VKEY).unwrap();
        assert_eq!(
            wit1.verifier_key().verifying_key(),
            note_key.verifying_key()
        );
        assert_ne!(wit1.key_id(), note_key.key_id());
        let skey = wit1.to_signer_key_string();
        let again = CosignerSigningKey::parse(&skey).unwrap();
        assert_eq!(again.verifier_key(), wit1.verifier_key());
        assert_eq!(
            CosignerKey::parse(&wit1.verifier_key().to_string()).unwrap(),
            wit1.verifier_key()
        );
    }

    #[test]
    fn cosignature_timestamp_vectors() {
        // transparency-dev/formats note/note_cosigv1_test.go
        // (TestCosignatureTimestamp).
        let line = "\u{2014} w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";
        let sig = NoteSignature::parse_line(line, 1).unwrap();
        assert_eq!(
            Cosignature::from_note_signature(&sig).unwrap().timestamp,
            1727964367
        );
        let plain = "\u{2014} w eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=";
        let sig = NoteSignature::parse_line(plain, 1).unwrap();
        assert!(matches!(
            Cosignature::from_note_signature(&sig),
            Err(Error::InvalidLength {
                expected: 72,
                found: 64,
                ..
            })
        ));
        // The spec's example witness line carries the spec's example time.
        let msg = format!("{SPEC_CHECKPOINT}{SPEC_WITNESS_LINE}");
        let note = Note::parse(msg.as_bytes()).unwrap();
        let cosig = Cosignature::from_note_signature(&note.signatures()[1]).unwrap();
        assert_eq!(cosig.timestamp, 1679315147);
        assert_eq!(cosig.name.as_str(), "witness.example.com/w1");
        assert_eq!(cosig.to_note_signature(), note.signatures()[1]);
    }

    #[test]
    fn spec_examples_parse() {
        let note = Note::parse(SPEC_CHECKPOINT.as_bytes()).unwrap();
        let cp = Checkpoint::parse_body(note.text()).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert_eq!(
            base64_encode(cp.root.as_bytes()),
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
        );
        assert!(cp.extensions.is_empty());
        assert_eq!(cp.to_note_text().unwrap(), note.text());
        assert_eq!(note.render(), SPEC_CHECKPOINT);

        let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
        assert_eq!(
            note.text(),
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n"
        );
        assert_eq!(note.signatures().len(), 1);
        assert_eq!(
            note.signatures()[0].name.as_str(),
            "quasimodo.example/salvatore"
        );
        assert_eq!(note.render(), SPEC_NOTE);
        // No key for it: parsed, but not trusted.
        assert!(matches!(
            note.verify(&[peter()]),
            Err(Error::NoKnownSignature)
        ));
    }

    #[test]
    fn go_malformed_notes() {
        let peter_sig_no_nl = PETER_SIG.strip_suffix('\n').unwrap();
        let cases: [(String, &str); 7] = [
            (GO_TEXT.to_string(), "no blank line before the signatures"),
            (format!("{GO_TEXT}\n"), "no signature lines"),
            (
                format!("{GO_TEXT}\n{peter_sig_no_nl}"),
                "last signature line does not end with a newline",
            ),
            (format!("\u{1}{GO_TEXT}\n{PETER_SIG}"), "control character"),
            (
                format!("{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
                "signature is not valid base64",
            ),
            (
                format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
                "signature line does not start with an em dash and a space",
            ),
            (
                format!("{GO_TEXT}\n\u{2014} PeterNeumann x08gow==\n"),
                "signature shorter than a key ID and one byte",
            ),
        ];
        for (msg, want) in cases {
            let (what, _, reason) = syntax_reason(Note::parse(msg.as_bytes()));
            assert_eq!((what, reason), ("note", want), "{msg:?}");
        }
        let mut bad_utf8 = b"\xff".to_vec();
        bad_utf8.extend_from_slice(format!("{GO_TEXT}\n{PETER_SIG}").as_bytes());
        assert_eq!(
            syntax_reason(Note::parse(&bad_utf8)),
            ("note", 1, "not valid UTF-8")
        );
        // Line numbers count from the top of the note.
        let msg = format!("{GO_TEXT}\n{PETER_SIG}junk\n");
        assert_eq!(syntax_reason(Note::parse(msg.as_bytes())).1, 5);
    }

    #[test]
    fn note_bounds() {
        let msg = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
        assert!(matches!(
            Note::parse(msg.as_bytes()),
            Err(Error::TooLarge {
                len: 101,
                max: 100,
                ..
            })
        ));
        let msg = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(100));
        assert!(Note::open(msg.as_bytes(), &[peter()]).is_ok());
        let big = format!("{}\n\n{PETER_SIG}", "a".repeat(MAX_NOTE_LEN));
        assert!(matches!(
            Note::parse(big.as_bytes()),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            Note::new(&format!("{}\n", "a".repeat(MAX_NOTE_LEN))),
            Err(Error::TooLarge { .. })
        ));
        let mut note = Note::new("x\n").unwrap();
        for i in 0..MAX_SIGNATURES {
            note.add_signature(NoteSignature {
                name: KeyName::new(&format!("k{i}")).unwrap(),
                key_id: KeyId([0; 4]),
                signature: vec![1],
            })
            .unwrap();
        }
        assert!(matches!(
            note.add_signature(NoteSignature {
                name: KeyName::new("one-too-many").unwrap(),
                key_id: KeyId([0; 4]),
                signature: vec![1],
            }),
            Err(Error::TooLarge { .. })
        ));
        assert!(Note::new("no newline").is_err());
        assert!(Note::new("tab\there\n").is_err());
    }

    #[test]
    fn broken_signatures() {
        let keys = [peter()];
        // One byte of the signature changed (the base64 still decodes).
        let sig = PETER_SIG.replace("x08go/ZJ", "x08go/ZK");
        let msg = format!("{GO_TEXT}\n{sig}");
        assert!(matches!(
            Note::open(msg.as_bytes(), &keys),
            Err(Error::BadSignature {
                what: "note signature"
            })
        ));
        // Go's "invalid signature" case: 3 extra bytes inside the signature.
        let msg = format!("{GO_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert!(matches!(
            Note::open(msg.as_bytes(), &keys),
            Err(Error::BadSignature { .. })
        ));
        // A bad signature by a known key fails the note even when another
        // known key signed it well.
        let msg = format!("{GO_TEXT}\n{ENOCH_SIG}{sig}");
        assert!(matches!(
            Note::open(msg.as_bytes(), &[enoch(), peter()]),
            Err(Error::BadSignature { .. })
        ));
        // A wrong key ID makes the line someone else's: ignored.
        let wrong_id = PETER_SIG.replace("x08g", "xxxx");
        let msg = format!("{GO_TEXT}\n{wrong_id}");
        assert!(matches!(
            Note::open(msg.as_bytes(), &keys),
            Err(Error::NoKnownSignature)
        ));
        // So is a known key ID under another name.
        let renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
        let msg = format!("{GO_TEXT}\n{renamed}");
        assert!(matches!(
            Note::open(msg.as_bytes(), &keys),
            Err(Error::NoKnownSignature)
        ));
        // The text changed.
        let msg = format!("{}\n{PETER_SIG}", GO_TEXT.replace("answer", "Answer"));
        assert!(matches!(
            Note::open(msg.as_bytes(), &keys),
            Err(Error::BadSignature { .. })
        ));
        // Two different known keys claiming one name and ID.
        let mut impostor = peter();
        impostor.key = enoch().key;
        let msg = format!("{GO_TEXT}\n{PETER_SIG}");
        assert!(matches!(
            Note::open(msg.as_bytes(), &[peter(), impostor]),
            Err(Error::InvalidValue {
                what: "known keys",
                ..
            })
        ));
        assert!(Note::open(msg.as_bytes(), &[peter(), peter()]).is_ok());
    }

    #[test]
    fn checkpoint_sign_open_and_cosign() {
        let log = test_log_key();
        let cp = test_checkpoint();
        let mut note = cp.sign(&log).unwrap();
        let text = note.text().to_string();
        assert_eq!(
            text,
            "example.com/log\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqt\
             L0lgz+Nw7/RgQyg=\n"
        );
        let wit = wit1_cosigner();
        note.cosign(&wit, 1_700_000_000).unwrap();
        let msg = note.render();
        let (back, opened) = Checkpoint::open(msg.as_bytes(), &[log.verifier_key()]).unwrap();
        assert_eq!(back, cp);
        let cosigs = opened.verify_cosignatures(&[wit.verifier_key()]).unwrap();
        assert_eq!(cosigs.len(), 1);
        assert_eq!(cosigs[0].timestamp, 1_700_000_000);
        assert_eq!(cosigs[0].name.as_str(), "Wit1");
        // The witness line is ignored by the log key and vice versa.
        assert!(opened.verify_cosignatures(&[]).unwrap().is_empty());
        assert!(matches!(
            opened.verify(&[NoteVerifierKey::parse(WIT1_VKEY).unwrap()]),
            Err(Error::NoKnownSignature)
        ));
        // The signed message is the spec's: header, time line, checkpoint.
        let sig = &opened.signatures()[1];
        let c = Cosignature::from_note_signature(sig).unwrap();
        let m = format!("cosignature/v1\ntime 1700000000\n{text}");
        assert_eq!(cosignature_message(&text, 1_700_000_000), m.as_bytes());
        assert!(wit
            .verifier_key()
            .verifying_key()
            .verify_strict(m.as_bytes(), &Signature::from_bytes(&c.signature))
            .is_ok());
    }

    #[test]
    fn cosignature_refusals() {
        let text = test_checkpoint().to_note_text().unwrap();
        let wit = wit1_cosigner();
        let key = wit.verifier_key();
        let sig = cosign(&text, &wit, 42).unwrap();
        assert_eq!(verify_cosignature(&text, &sig, &key).unwrap().timestamp, 42);

        let mut flipped = sig.clone();
        flipped.signature[20] ^= 1;
        assert!(matches!(
            verify_cosignature(&text, &flipped, &key),
            Err(Error::BadSignature {
                what: "cosignature"
            })
        ));
        let mut retimed = sig.clone();
        retimed.signature[7] ^= 1;
        assert!(matches!(
            verify_cosignature(&text, &retimed, &key),
            Err(Error::BadSignature { .. })
        ));
        let mut short = sig.clone();
        short.signature.pop();
        assert!(matches!(
            verify_cosignature(&text, &short, &key),
            Err(Error::BadSignature { .. })
        ));
        let other = CosignerSigningKey::new(
            KeyName::new("Wit2").unwrap(),
            SigningKey::from_bytes(&[9; 32]),
        );
        assert!(matches!(
            verify_cosignature(&text, &sig, &other.verifier_key()),
            Err(Error::KeyMismatch { .. })
        ));
        let other_text = text.replace("\n8\n", "\n9\n");
        assert!(matches!(
            verify_cosignature(&other_text, &sig, &key),
            Err(Error::BadSignature { .. })
        ));
        assert!(matches!(
            cosign(&text, &wit, 1 << 63),
            Err(Error::InvalidValue {
                what: "cosignature timestamp",
                ..
            })
        ));
        assert!(matches!(
            cosign("not a checkpoint\n", &wit, 1),
            Err(Error::Syntax { .. })
        ));
        // A witness whose line does not verify fails the note.
        let mut note = test_checkpoint().sign(&test_log_key()).unwrap();
        note.add_signature(flipped).unwrap();
        assert!(matches!(
            note.verify_cosignatures(&[key]),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn checkpoint_refusals() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let cases: [(String, usize, &str); 10] = [
            (format!("\n5\n{root}\n"), 1, "empty origin line"),
            ("log\n".to_string(), 2, "missing tree size line"),
            ("log\n5\n".to_string(), 3, "missing root hash line"),
            (
                format!("log\n05\n{root}\n"),
                2,
                "tree size has a leading zero",
            ),
            (
                format!("log\n+5\n{root}\n"),
                2,
                "tree size is not a decimal number",
            ),
            (format!("log\n\n{root}\n"), 2, "empty tree size"),
            (
                format!("log\n18446744073709551616\n{root}\n"),
                2,
                "tree size does not fit in 64 bits",
            ),
            (
                "log\n5\nnot base64!\n".to_string(),
                3,
                "root hash is not valid base64",
            ),
            // transparency-dev/formats log/checkpoint_test.go: a 7-byte "root".
            (
                "Log\n123\nYmFuYW5hcw==\n".to_string(),
                3,
                "root hash is not 32 bytes",
            ),
            (
                format!("log\n5\n{root}\next\n\n"),
                5,
                "empty extension line",
            ),
        ];
        for (text, line, reason) in cases {
            assert_eq!(
                syntax_reason(Checkpoint::parse_body(&text)),
                ("checkpoint", line, reason),
                "{text:?}"
            );
        }
        assert_eq!(
            syntax_reason(Checkpoint::parse_body(&format!("log\n5\n{root}"))).2,
            "text does not end with a newline"
        );
        assert!(Checkpoint::parse_body(&format!("log\n0\n{root}\n")).is_ok());
        let cp = Checkpoint::parse_body(&format!(
            "log with space\n18446744073709551615\n{root}\na\nb c\n"
        ))
        .unwrap();
        assert_eq!(cp.size, u64::MAX);
        assert_eq!(cp.extensions, ["a", "b c"]);

        let mut cp = test_checkpoint();
        cp.origin = "two\nlines".to_string();
        assert!(cp.to_note_text().is_err());
        cp.origin = String::new();
        assert!(cp.to_note_text().is_err());
        let mut cp = test_checkpoint();
        cp.extensions = vec![String::new()];
        assert!(cp.to_note_text().is_err());
        cp.extensions = vec!["tab\t".to_string()];
        assert!(cp.to_note_text().is_err());
    }

    #[test]
    fn fuzz_corpus_seeds() {
        macro_rules! seed {
            ($name:literal) => {
                (
                    $name,
                    include_bytes!(concat!("../../fuzz/corpus/note/", $name)).as_slice(),
                )
            };
        }
        let notes = [
            seed!("valid-go-peterneumann"),
            seed!("valid-go-two-signers"),
            seed!("valid-spec-signed-note"),
        ];
        for (name, bytes) in notes {
            assert!(Note::parse(bytes).is_ok(), "{name}");
        }
        let checkpoints = [
            seed!("valid-spec-checkpoint"),
            seed!("valid-spec-checkpoint-cosigned"),
            seed!("valid-checkpoint-cosigned"),
            seed!("valid-checkpoint-empty-tree-extension"),
        ];
        for (name, bytes) in checkpoints {
            let note = Note::parse(bytes).unwrap();
            assert!(Checkpoint::parse_body(note.text()).is_ok(), "{name}");
        }
        // The two made by this module verify under its test keys.
        let log = test_log_key().verifier_key();
        let wit = CosignerSigningKey::new(
            KeyName::new("witness.example/w1").unwrap(),
            SigningKey::from_bytes(&[9; 32]),
        );
        let (cp, note) = Checkpoint::open(checkpoints[2].1, core::slice::from_ref(&log)).unwrap();
        assert_eq!(cp, test_checkpoint());
        let cosigs = note.verify_cosignatures(&[wit.verifier_key()]).unwrap();
        assert_eq!(cosigs[0].timestamp, 1_700_000_000);
        let (cp, _) = Checkpoint::open(checkpoints[3].1, &[log]).unwrap();
        assert_eq!((cp.size, cp.root), (0, crate::merkle::empty_root()));

        let bad_notes = [
            seed!("bad-no-blank-line"),
            seed!("bad-no-signatures"),
            seed!("bad-missing-final-newline"),
            seed!("bad-trailing-garbage"),
            seed!("bad-control-character"),
            seed!("bad-invalid-utf8"),
            seed!("bad-name-with-space"),
            seed!("bad-short-signature"),
            seed!("bad-hyphen-not-em-dash"),
        ];
        for (name, bytes) in bad_notes {
            assert!(
                matches!(Note::parse(bytes), Err(Error::Syntax { .. })),
                "{name}"
            );
        }
        let bad_checkpoints = [
            seed!("bad-checkpoint-leading-zero"),
            seed!("bad-checkpoint-root-base64"),
        ];
        for (name, bytes) in bad_checkpoints {
            let note = Note::parse(bytes).unwrap();
            assert!(Checkpoint::parse_body(note.text()).is_err(), "{name}");
        }
    }

    fn arb_name() -> impl Strategy<Value = KeyName> {
        "[a-zA-Z0-9./_\u{e8}\u{2014}-]{1,16}".prop_map(|s| KeyName::new(&s).unwrap())
    }

    fn arb_text() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-zA-Z0-9 +/=.:\u{e8}\u{2014}\u{7f}]{0,12}", 1..6).prop_map(
            |lines| {
                let mut t = lines.join("\n");
                t.push('\n');
                t
            },
        )
    }

    fn arb_signature() -> impl Strategy<Value = NoteSignature> {
        (
            arb_name(),
            any::<[u8; 4]>(),
            proptest::collection::vec(any::<u8>(), 1..80),
        )
            .prop_map(|(name, id, signature)| NoteSignature {
                name,
                key_id: KeyId(id),
                signature,
            })
    }

    fn arb_line() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 +/=.:\u{e8}]{1,20}"
    }

    proptest! {
        #[test]
        fn note_render_parse_round_trip(
            text in arb_text(),
            sigs in proptest::collection::vec(arb_signature(), 1..5),
        ) {
            let mut note = Note::new(&text).unwrap();
            for s in sigs {
                note.add_signature(s).unwrap();
            }
            let rendered = note.render();
            let back = Note::parse(rendered.as_bytes()).unwrap();
            prop_assert_eq!(&back, &note);
            prop_assert_eq!(back.render(), rendered);
        }

    }

    // Ed25519 is slow in unoptimised test builds: fewer cases for the
    // properties that sign.
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn signed_notes_verify(text in arb_text(), name in arb_name(), seed in any::<[u8; 32]>()) {
            let key = NoteSigningKey::new(name, SigningKey::from_bytes(&seed));
            let mut note = Note::new(&text).unwrap();
            note.sign(&key).unwrap();
            let vkey = key.verifier_key();
            let opened = Note::open(note.render().as_bytes(), core::slice::from_ref(&vkey)).unwrap();
            prop_assert_eq!(opened, note);
        }

        #[test]
        fn key_strings_round_trip(name in arb_name(), seed in any::<[u8; 32]>()) {
            let s = NoteSigningKey::new(name.clone(), SigningKey::from_bytes(&seed));
            let again = NoteSigningKey::parse(&s.to_signer_key_string()).unwrap();
            prop_assert_eq!(again.to_signer_key_string(), s.to_signer_key_string());
            let v = s.verifier_key();
            prop_assert_eq!(NoteVerifierKey::parse(&v.to_string()).unwrap(), v);

            let c = CosignerSigningKey::new(name, SigningKey::from_bytes(&seed));
            let again = CosignerSigningKey::parse(&c.to_signer_key_string()).unwrap();
            prop_assert_eq!(again.verifier_key(), c.verifier_key());
            let ck = c.verifier_key();
            prop_assert_eq!(CosignerKey::parse(&ck.to_string()).unwrap(), ck);
        }

        #[test]
        fn checkpoint_round_trip(
            origin in arb_line(),
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            extensions in proptest::collection::vec(arb_line(), 0..3),
        ) {
            let cp = Checkpoint { origin, size, root: Sha256Digest(root), extensions };
            let text = cp.to_note_text().unwrap();
            prop_assert_eq!(Checkpoint::parse_body(&text).unwrap(), cp);
        }

        #[test]
        fn cosignatures_round_trip(seed in any::<[u8; 32]>(), timestamp in 0..=i64::MAX as u64) {
            let wit = CosignerSigningKey::new(KeyName::new("w").unwrap(), SigningKey::from_bytes(&seed));
            let mut note = test_checkpoint().sign(&test_log_key()).unwrap();
            note.cosign(&wit, timestamp).unwrap();
            let back = Note::parse(note.render().as_bytes()).unwrap();
            let cosigs = back.verify_cosignatures(&[wit.verifier_key()]).unwrap();
            prop_assert_eq!(cosigs.len(), 1);
            prop_assert_eq!(cosigs[0].timestamp, timestamp);
        }
    }
}
