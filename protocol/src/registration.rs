//! Nix store registrations: the text `nix-store --dump-db` writes and
//! `nix-store --load-db` reads, which NixOS images carry for their closure
//! (nixpkgs' `closureInfo` `registration` file).
//!
//! Per path, one line each: the store path; the NAR hash (Nix 2.8 writes
//! bare lowercase hex; `sha256:`-prefixed forms are accepted too); the NAR
//! size; the deriver (empty line if unknown); the number of references;
//! then each reference. Registration hashes are **claims** of the Nix
//! database: `provenix-agent measure` recomputes every hash from content.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::hash::{NarHash, Sha256Digest};
use crate::store_path::StorePath;
use crate::system::MAX_CLOSURE_PATHS;

/// Most references of one path.
pub const MAX_REFERENCES: usize = 16 * 1024;

/// One registered path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The store path.
    pub path: StorePath,
    /// The NAR hash the database claims.
    pub nar_hash: NarHash,
    /// The NAR size the database claims.
    pub nar_size: u64,
    /// The deriver, if known.
    pub deriver: Option<StorePath>,
    /// References (store paths).
    pub references: BTreeSet<StorePath>,
}

const WHAT: &str = "store registration";

fn syntax(line: usize, reason: &'static str) -> Error {
    Error::Syntax {
        what: WHAT,
        line,
        reason,
    }
}

fn number(line: usize, s: &str) -> Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(syntax(line, "expected a decimal number"));
    }
    s.parse().map_err(|_| syntax(line, "number out of range"))
}

/// Parse a registration. Every line ends with a newline; paths appear once.
pub fn parse_registration(text: &str) -> Result<Vec<Registration>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let body = text
        .strip_suffix('\n')
        .ok_or(syntax(text.lines().count(), "last line has no newline"))?;
    let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    let mut next = |what: &'static str| lines.next().ok_or(Error::Truncated { what });
    let mut out: Vec<Registration> = Vec::new();
    let mut seen = BTreeSet::new();
    while let Ok((n, path)) = next("store registration path") {
        if out.len() >= MAX_CLOSURE_PATHS {
            return Err(Error::TooLarge {
                what: "store registration",
                len: out.len() + 1,
                max: MAX_CLOSURE_PATHS,
            });
        }
        let path = StorePath::parse(path)?;
        if !seen.insert(path.clone()) {
            return Err(syntax(n, "path registered twice"));
        }
        let (_, hash) = next("store registration NAR hash")?;
        let nar_hash = match hash.len() {
            64 => NarHash(Sha256Digest::from_hex(hash)?),
            _ => NarHash::parse(hash)?,
        };
        let (n, size) = next("store registration NAR size")?;
        let nar_size = number(n, size)?;
        let (_, deriver) = next("store registration deriver")?;
        let deriver = match deriver {
            "" => None,
            d => Some(StorePath::parse(d)?),
        };
        let (n, count) = next("store registration reference count")?;
        let count = usize::try_from(number(n, count)?).unwrap_or(usize::MAX);
        if count > MAX_REFERENCES {
            return Err(Error::TooLarge {
                what: "store registration references",
                len: count,
                max: MAX_REFERENCES,
            });
        }
        let mut references = BTreeSet::new();
        for _ in 0..count {
            let (n, r) = next("store registration reference")?;
            if !references.insert(StorePath::parse(r)?) {
                return Err(syntax(n, "reference listed twice"));
            }
        }
        out.push(Registration {
            path,
            nar_hash,
            nar_size,
            deriver,
            references,
        });
    }
    Ok(out)
}

/// Render registrations as Nix 2.8 writes them (hashes as bare hex).
pub fn render_registration(registrations: &[Registration]) -> alloc::string::String {
    use core::fmt::Write as _;
    let mut s = alloc::string::String::new();
    for r in registrations {
        // Writing into a String cannot fail.
        let _ = write!(
            s,
            "{}\n{}\n{}\n{}\n{}\n",
            r.path,
            r.nar_hash.0.to_hex(),
            r.nar_size,
            r.deriver
                .as_ref()
                .map(StorePath::as_str)
                .unwrap_or_default(),
            r.references.len()
        );
        for q in &r.references {
            let _ = writeln!(s, "{q}");
        }
    }
    s
}

/// The closure of `root` within `registrations`: every path reachable by
/// references, sorted. Refuses a root or reference that is not registered
/// (an incomplete registration cannot describe a system).
pub fn closure<'a>(
    registrations: &'a [Registration],
    root: &StorePath,
) -> Result<Vec<&'a Registration>> {
    let by_path: BTreeMap<&StorePath, &Registration> =
        registrations.iter().map(|r| (&r.path, r)).collect();
    let mut done: BTreeMap<&StorePath, &Registration> = BTreeMap::new();
    let mut todo = alloc::vec![root];
    while let Some(p) = todo.pop() {
        if done.contains_key(p) {
            continue;
        }
        let r = by_path.get(p).ok_or(Error::InvalidValue {
            what: "store registration",
            reason: "a path of the closure is not registered",
        })?;
        done.insert(p, r);
        todo.extend(r.references.iter().filter(|q| !done.contains_key(q)));
    }
    Ok(done.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/34m5lmnfj4rswf88xhzh2213369hl15q-a";
    const TOP: &str = "/nix/store/79ydpa7c195vv90qyvi8rmkzavcxib11-top";

    fn sample() -> alloc::string::String {
        alloc::format!(
            "{TOP}\n72580944640af599a0f73e1cb659ae01c9f3065b48e21e6bac30095cecb0c02c\n560\n/nix/store/il8f9f8vs1xivqbb9c2660426shl7ayi-top.drv\n1\n{A}\n\
             {A}\nsha256:1yr00w11wmyqmrgfdzcrf3gddwy226nn27v4riqska3pnazjbqbl\n128\n\n0\n"
        )
    }

    #[test]
    fn parses_nix_dump_db_output_and_walks_closures() {
        let regs = parse_registration(&sample()).unwrap();
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[0].nar_size, 560);
        assert_eq!(regs[0].references.len(), 1);
        assert!(regs[1].deriver.is_none());
        let c = closure(&regs, &StorePath::parse(TOP).unwrap()).unwrap();
        assert_eq!(c.len(), 2);
        let c = closure(&regs, &StorePath::parse(A).unwrap()).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn render_round_trip() {
        let regs = parse_registration(&sample()).unwrap();
        let text = render_registration(&regs);
        assert_eq!(parse_registration(&text).unwrap(), regs);
        // Nix's own output (bare hex) renders back byte for byte.
        let first: alloc::string::String = sample()
            .lines()
            .take(6)
            .map(|l| alloc::format!("{l}\n"))
            .collect();
        assert_eq!(
            render_registration(&parse_registration(&first).unwrap()),
            first
        );
    }

    #[test]
    fn refusals() {
        let s = sample();
        assert!(matches!(
            parse_registration(s.trim_end()),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            parse_registration(&s.replacen("\n560\n", "\n0560\n", 1)),
            Err(Error::Syntax { line: 3, .. })
        ));
        assert!(matches!(
            parse_registration(&s.replacen("\n1\n", "\n2\n", 1)),
            Err(Error::InvalidStorePath { .. } | Error::Syntax { .. })
        ));
        let cut: alloc::string::String =
            s.lines().take(4).map(|l| alloc::format!("{l}\n")).collect();
        assert!(matches!(
            parse_registration(&cut),
            Err(Error::Truncated { .. })
        ));
        let twice = alloc::format!(
            "{s}{}",
            s.lines()
                .skip(6)
                .map(|l| alloc::format!("{l}\n"))
                .collect::<alloc::string::String>()
        );
        assert!(matches!(
            parse_registration(&twice),
            Err(Error::Syntax {
                reason: "path registered twice",
                ..
            })
        ));
        // A closure with an unregistered reference.
        let only_top: alloc::string::String =
            s.lines().take(6).map(|l| alloc::format!("{l}\n")).collect();
        let regs = parse_registration(&only_top).unwrap();
        assert!(matches!(
            closure(&regs, &StorePath::parse(TOP).unwrap()),
            Err(Error::InvalidValue { .. })
        ));
    }
}
