//! `.narinfo` files: parse and render as Nix 2.8 does (`libstore/nar-info.cc`).
//!
//! Every line is `<Field>: <value>\n`, the last one included. Nix requires
//! `StorePath`, `URL`, `NarHash` and a non-zero `NarSize`; without
//! `Compression` it assumes `bzip2`. Unknown fields are ignored (as Nix does);
//! a repeated field other than `Sig` is refused (Nix would silently keep the
//! last one, which a verifier must not). [`NarInfo::render`] writes fields in
//! Nix's order, so a narinfo written by Nix renders back byte for byte.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::hash::NarHash;
use crate::nix_sig::{fingerprint, NixPublicKey, NixSignature};
use crate::store_path::StorePath;

/// Largest narinfo accepted, in bytes.
pub const MAX_NARINFO: usize = 1024 * 1024;
/// Most references accepted.
pub const MAX_REFERENCES: usize = 16 * 1024;
/// Most `Sig:` lines accepted.
pub const MAX_SIGS: usize = 64;

const WHAT: &str = "narinfo";

/// A parsed narinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NarInfo {
    /// The store path described.
    pub store_path: StorePath,
    /// Where the (compressed) NAR is, relative to the cache.
    pub url: String,
    /// Compression of the file at `url` (`xz`, `zstd`, `bzip2`, `none`, …).
    pub compression: String,
    /// Hash of the compressed file.
    pub file_hash: Option<NarHash>,
    /// Size of the compressed file.
    pub file_size: Option<u64>,
    /// Hash of the uncompressed NAR.
    pub nar_hash: NarHash,
    /// Size of the uncompressed NAR (never zero).
    pub nar_size: u64,
    /// Store paths this path refers to.
    pub references: BTreeSet<StorePath>,
    /// The derivation that built it, if known.
    pub deriver: Option<StorePath>,
    /// The system type, if given.
    pub system: Option<String>,
    /// `Sig:` values, as written (Nix keeps malformed ones and ignores them
    /// when verifying; so does [`NarInfo::verify`]).
    pub sigs: Vec<String>,
    /// Content address (`CA:`), if any, as written.
    pub ca: Option<String>,
}

fn syntax(line: usize, reason: &'static str) -> Error {
    Error::Syntax {
        what: WHAT,
        line,
        reason,
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, field: &'static str) -> Result<()> {
    if slot.is_some() {
        return Err(Error::DuplicateField { what: WHAT, field });
    }
    *slot = Some(value);
    Ok(())
}

fn parse_u64(line: usize, s: &str) -> Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax(line, "expected a decimal number"));
    }
    s.parse().map_err(|_| syntax(line, "number out of range"))
}

impl NarInfo {
    /// Parse a narinfo.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_NARINFO {
            return Err(Error::TooLarge {
                what: WHAT,
                len: text.len(),
                max: MAX_NARINFO,
            });
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(syntax(text.lines().count(), "last line has no newline"))?;
        let mut store_path = None;
        let mut url = None;
        let mut compression = None;
        let mut file_hash = None;
        let mut file_size = None;
        let mut nar_hash = None;
        let mut nar_size = None;
        let mut references = None;
        let mut deriver = None;
        let mut system = None;
        let mut ca = None;
        let mut sigs = Vec::new();
        for (i, line) in body.split('\n').enumerate() {
            let n = i + 1;
            let (field, value) = line
                .split_once(": ")
                .ok_or(syntax(n, "expected '<Field>: <value>'"))?;
            match field {
                "StorePath" => set_once(&mut store_path, StorePath::parse(value)?, "StorePath")?,
                "URL" => set_once(&mut url, String::from(value), "URL")?,
                "Compression" => set_once(&mut compression, String::from(value), "Compression")?,
                "FileHash" => set_once(&mut file_hash, NarHash::parse(value)?, "FileHash")?,
                "FileSize" => set_once(&mut file_size, parse_u64(n, value)?, "FileSize")?,
                "NarHash" => set_once(&mut nar_hash, NarHash::parse(value)?, "NarHash")?,
                "NarSize" => set_once(&mut nar_size, parse_u64(n, value)?, "NarSize")?,
                "References" => {
                    let mut refs = BTreeSet::new();
                    for r in value.split(' ').filter(|r| !r.is_empty()) {
                        if refs.len() >= MAX_REFERENCES {
                            return Err(Error::TooLarge {
                                what: "narinfo references",
                                len: refs.len() + 1,
                                max: MAX_REFERENCES,
                            });
                        }
                        refs.insert(StorePath::from_base_name(r)?);
                    }
                    set_once(&mut references, refs, "References")?;
                }
                "Deriver" => {
                    let d = match value {
                        "unknown-deriver" => None,
                        v => Some(StorePath::from_base_name(v)?),
                    };
                    set_once(&mut deriver, d, "Deriver")?;
                }
                "System" => set_once(&mut system, String::from(value), "System")?,
                "CA" => set_once(&mut ca, String::from(value), "CA")?,
                "Sig" => {
                    if sigs.len() >= MAX_SIGS {
                        return Err(Error::TooLarge {
                            what: "narinfo Sig lines",
                            len: sigs.len() + 1,
                            max: MAX_SIGS,
                        });
                    }
                    sigs.push(String::from(value));
                }
                _ => {}
            }
        }
        let url = url.ok_or(Error::MissingField {
            what: WHAT,
            field: "URL",
        })?;
        if url.is_empty() {
            return Err(Error::MissingField {
                what: WHAT,
                field: "URL",
            });
        }
        let nar_size = nar_size.ok_or(Error::MissingField {
            what: WHAT,
            field: "NarSize",
        })?;
        if nar_size == 0 {
            return Err(Error::InvalidValue {
                what: "narinfo NarSize",
                reason: "zero",
            });
        }
        Ok(Self {
            store_path: store_path.ok_or(Error::MissingField {
                what: WHAT,
                field: "StorePath",
            })?,
            url,
            compression: compression
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| String::from("bzip2")),
            file_hash,
            file_size,
            nar_hash: nar_hash.ok_or(Error::MissingField {
                what: WHAT,
                field: "NarHash",
            })?,
            nar_size,
            references: references.unwrap_or_default(),
            deriver: deriver.flatten(),
            system,
            sigs,
            ca,
        })
    }

    /// Render in Nix's field order (`NarInfo::to_string`).
    pub fn render(&self) -> String {
        use core::fmt::Write as _;
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = write!(
            s,
            "StorePath: {}\nURL: {}\nCompression: {}\n",
            self.store_path, self.url, self.compression
        );
        if let Some(h) = &self.file_hash {
            let _ = writeln!(s, "FileHash: {}", h.to_nix_string());
        }
        if let Some(n) = self.file_size {
            let _ = writeln!(s, "FileSize: {n}");
        }
        let _ = write!(
            s,
            "NarHash: {}\nNarSize: {}\nReferences: ",
            self.nar_hash.to_nix_string(),
            self.nar_size
        );
        for (i, r) in self.references.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(r.base_name());
        }
        s.push('\n');
        if let Some(d) = &self.deriver {
            let _ = writeln!(s, "Deriver: {}", d.base_name());
        }
        if let Some(sys) = &self.system {
            let _ = writeln!(s, "System: {sys}");
        }
        // Nix keeps signatures in a std::set: sorted, no duplicates.
        let sigs: BTreeSet<&String> = self.sigs.iter().collect();
        for sig in sigs {
            let _ = writeln!(s, "Sig: {sig}");
        }
        if let Some(ca) = &self.ca {
            let _ = writeln!(s, "CA: {ca}");
        }
        s
    }

    /// The signature fingerprint of this path.
    pub fn fingerprint(&self) -> Result<String> {
        fingerprint(
            &self.store_path,
            &self.nar_hash,
            self.nar_size,
            &self.references,
        )
    }

    /// The names of the keys whose `Sig:` lines verify, as Nix counts them:
    /// a malformed line or one by an unknown key is skipped.
    pub fn verified_by<'k>(&self, keys: &'k [NixPublicKey]) -> Result<Vec<&'k NixPublicKey>> {
        let fp = self.fingerprint()?;
        let mut ok = Vec::new();
        for sig in self.sigs.iter().filter_map(|s| NixSignature::parse(s).ok()) {
            for k in keys.iter().filter(|k| k.name() == sig.key_name()) {
                if k.verify(fp.as_bytes(), &sig).is_ok() && !ok.contains(&k) {
                    ok.push(k);
                }
            }
        }
        Ok(ok)
    }

    /// Succeed when at least one `Sig:` line verifies under one of `keys`.
    pub fn verify(&self, keys: &[NixPublicKey]) -> Result<()> {
        if self.verified_by(keys)?.is_empty() {
            return Err(Error::BadSignature { what: WHAT });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "StorePath: /nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev
URL: nar/0zhaw429mpbx978zw9xwrb10rw7vn4dka5m4jksj9f3xfk3krb4g.nar.xz
Compression: xz
FileHash: sha256:0zhaw429mpbx978zw9xwrb10rw7vn4dka5m4jksj9f3xfk3krb4g
FileSize: 180
NarHash: sha256:09173b06h7hpwfqwjcpgqbxh3qb6as6ifrfj0bx2gxinhph510yi
NarSize: 456
References: 
Deriver: kxdvrmxzy066f0mmsi8gzv251izagqwj-multi.drv
Sig: test-1:TTPyyp/WFpXPegnkF7GS3V2PkE+R6MZwIKcjFdsxgIKja9F2YP9IWr9diea7faRi7GIxeG064BKgA2hVsBQ/Dg==
";

    #[test]
    fn round_trip() {
        let n = NarInfo::parse(SAMPLE).unwrap();
        assert_eq!(n.render(), SAMPLE);
        assert_eq!(n.nar_size, 456);
        assert!(n.references.is_empty());
    }

    fn broken(find: &str, replace: &str) -> Result<NarInfo> {
        NarInfo::parse(&SAMPLE.replacen(find, replace, 1))
    }

    #[test]
    fn refusals_one_field_each() {
        assert!(matches!(
            broken("NarSize: 456\n", ""),
            Err(Error::MissingField {
                field: "NarSize",
                ..
            })
        ));
        assert!(matches!(
            broken("NarSize: 456", "NarSize: 0"),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            broken("NarSize: 456", "NarSize: 4x6"),
            Err(Error::Syntax { line: 7, .. })
        ));
        assert!(matches!(
            broken("URL: ", "URL:"),
            Err(Error::Syntax { line: 2, .. })
        ));
        assert!(matches!(
            broken("Compression: xz", "Compression: xz\nURL: x"),
            Err(Error::DuplicateField { field: "URL", .. })
        ));
        assert!(matches!(
            broken("NarHash: sha256:", "NarHash: md5:"),
            Err(Error::UnsupportedHashAlgorithm(_))
        ));
        assert!(matches!(
            broken("/nix/store/bvmd", "/nix/stor/bvmd"),
            Err(Error::InvalidStorePath { .. })
        ));
        assert!(matches!(
            NarInfo::parse(SAMPLE.trim_end()),
            Err(Error::Syntax { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_ignored_and_compression_defaults() {
        let n = broken("Compression: xz\n", "Frobnicate: yes\n").unwrap();
        assert_eq!(n.compression, "bzip2");
    }
}
