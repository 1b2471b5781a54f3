//! Unified kernel images (systemd-stub + kernel + initrd + command line in
//! one PE file) and systemd-pcrphase phases: what systemd-stub and the
//! kernel it starts will measure.
//!
//! systemd-stub measures, into PCR 11, each UKI section it knows that is
//! present and not empty, in systemd's canonical order (systemd
//! `src/fundamental/uki.h`, "PLEASE DO NOT REORDER"): first the section
//! name with its trailing NUL, then the section's contents, both as
//! `EV_IPL` events. The contents are the section as loaded in memory:
//! `VirtualSize` bytes (the file's raw data is padded to the file
//! alignment and is *not* what is measured). The order:
//!
//! | stub          | sections measured, in order |
//! |---------------|-----------------------------|
//! | systemd < 254 | .linux .osrel .cmdline .initrd .splash .dtb .pcrpkey |
//! | systemd ≥ 254 | .linux .osrel .cmdline .initrd .splash .dtb .uname .sbat .pcrpkey |
//!
//! (`.pcrsig` is never measured: it signs the result.) The stub version is
//! read from the `.sdmagic` section the stub carries
//! (`#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####`). It also decides
//! how `.cmdline` is cleaned up before the stub passes it to the kernel as
//! load options ([`SystemdStub::mangle_cmdline`]), which PCR 9 covers.
//!
//! Refused, so that no prediction is silently wrong
//! ([`Error::UnsupportedUki`]): a UKI without `.linux`; a measured section
//! twice; a measured section whose `VirtualSize` exceeds its raw data;
//! multi-profile and newer UKIs (`.profile`, `.ucode`, `.dtbauto`,
//! `.hwids`, `.efifw`), and `.pcrsig`/`.pcrpkey` (the stub then hands the
//! kernel an extra generated initrd, which PCR 9 would cover).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::pe::{PeImage, Section};

/// A UKI section systemd-stub knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UkiSection {
    /// `.linux`: the kernel (a PE image with an EFI stub).
    Linux,
    /// `.osrel`: os-release.
    Osrel,
    /// `.cmdline`: the kernel command line.
    Cmdline,
    /// `.initrd`: the initrd.
    Initrd,
    /// `.splash`: a boot splash bitmap.
    Splash,
    /// `.dtb`: a devicetree.
    Dtb,
    /// `.uname`: the kernel's `uname -r` (measured from systemd 254).
    Uname,
    /// `.sbat`: SBAT metadata (measured from systemd 254).
    Sbat,
    /// `.pcrpkey`: the public key PCR signatures are made with.
    Pcrpkey,
}

impl UkiSection {
    /// The section's name.
    pub fn name(self) -> &'static str {
        match self {
            UkiSection::Linux => ".linux",
            UkiSection::Osrel => ".osrel",
            UkiSection::Cmdline => ".cmdline",
            UkiSection::Initrd => ".initrd",
            UkiSection::Splash => ".splash",
            UkiSection::Dtb => ".dtb",
            UkiSection::Uname => ".uname",
            UkiSection::Sbat => ".sbat",
            UkiSection::Pcrpkey => ".pcrpkey",
        }
    }
}

/// The systemd version of the stub that will boot the UKI (its major
/// number): it decides which sections are measured and how the command
/// line is cleaned up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SystemdStub {
    major: u32,
}

impl SystemdStub {
    /// The stub of systemd `major` (e.g. 252, 257).
    pub fn from_major(major: u32) -> Self {
        Self { major }
    }

    /// The systemd major version.
    pub fn major(self) -> u32 {
        self.major
    }

    /// The sections this stub measures, in order (`.uname` and `.sbat`
    /// from systemd 254).
    pub fn measured_sections(self) -> &'static [UkiSection] {
        use UkiSection::*;
        if self.major >= 254 {
            &[
                Linux, Osrel, Cmdline, Initrd, Splash, Dtb, Uname, Sbat, Pcrpkey,
            ]
        } else {
            &[Linux, Osrel, Cmdline, Initrd, Splash, Dtb, Pcrpkey]
        }
    }

    /// The command line this stub passes the kernel for an ASCII `.cmdline`
    /// (up to its first NUL), as its `mangle_stub_cmdline` leaves it:
    /// - before systemd 255: every control character (< 0x20) becomes a
    ///   space and trailing spaces are dropped (systemd 253's fix, which
    ///   Debian's 252.39 carries: checked in a real OVMF boot);
    /// - from systemd 255: leading whitespace is dropped too (systemd PR
    ///   28909).
    pub fn mangle_cmdline(self, raw: &[u8]) -> String {
        let ws = |b: &u8| *b <= 0x20;
        let start = if self.major >= 255 {
            raw.iter().position(|b| !ws(b)).unwrap_or(raw.len())
        } else {
            0
        };
        let end = raw.iter().rposition(|b| !ws(b)).map_or(start, |p| p + 1);
        raw.get(start..end.max(start))
            .unwrap_or(&[])
            .iter()
            .map(|b| if ws(b) { ' ' } else { char::from(*b) })
            .collect()
    }
}

/// Sections whose presence means a UKI this crate cannot predict for.
const UNSUPPORTED: [(&[u8], &str); 7] = [
    (b".profile", "multi-profile UKIs (.profile) are not supported"),
    (b".ucode", "UKIs with microcode (.ucode) are not supported"),
    (b".dtbauto", "UKIs with .dtbauto are not supported"),
    (b".hwids", "UKIs with .hwids are not supported"),
    (b".efifw", "UKIs with .efifw are not supported"),
    (b".pcrsig", "UKIs with .pcrsig are not supported (the stub passes it to the kernel as an extra initrd)"),
    (b".pcrpkey", "UKIs with .pcrpkey are not supported (the stub passes it to the kernel as an extra initrd)"),
];

/// A parsed unified kernel image.
#[derive(Clone, Debug)]
pub struct Uki<'a> {
    image: PeImage<'a>,
    stub: SystemdStub,
    stub_version: Option<String>,
    /// Measured sections present, in measurement order, with their
    /// contents (VirtualSize bytes).
    sections: Vec<(UkiSection, &'a [u8])>,
}

fn loader_info(image: &PeImage<'_>) -> Option<String> {
    let s = image.section(b".sdmagic")?;
    let raw = image.raw_data(s);
    let len = (s.virtual_size() as usize).min(raw.len());
    let text = core::str::from_utf8(raw.get(..len)?).ok()?;
    let text = text.trim_end_matches('\0');
    let rest = text.split("systemd-stub ").nth(1)?;
    let version = rest.split_whitespace().next()?;
    Some(version.to_string())
}

fn major(version: &str) -> Option<u32> {
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A section's contents as loaded: its first `VirtualSize` bytes.
fn contents<'a>(image: &PeImage<'a>, s: &Section) -> Result<&'a [u8]> {
    image
        .raw_data(s)
        .get(..s.virtual_size() as usize)
        .ok_or(Error::UnsupportedUki {
            reason: "a measured section's VirtualSize exceeds its raw data (it would be zero-filled in memory)",
        })
}

impl<'a> Uki<'a> {
    /// Parses a UKI. `stub` overrides the stub generation; without it, it
    /// is read from the `.sdmagic` section.
    pub fn parse(bytes: &'a [u8], stub: Option<SystemdStub>) -> Result<Self> {
        let image = PeImage::parse(bytes)?;
        for (name, reason) in UNSUPPORTED {
            if image.section(name).is_some() {
                return Err(Error::UnsupportedUki { reason });
            }
        }
        let stub_version = loader_info(&image);
        let stub = match (stub, stub_version.as_deref().and_then(major)) {
            (Some(s), _) => s,
            (None, Some(m)) => SystemdStub { major: m },
            (None, None) => {
                return Err(Error::UnsupportedUki {
                    reason: "no .sdmagic section naming the systemd-stub version: give the stub generation explicitly",
                })
            }
        };
        let mut sections = Vec::new();
        for kind in stub.measured_sections() {
            let name = kind.name().as_bytes();
            let mut found = image.sections().iter().filter(|s| s.name() == name);
            let Some(s) = found.next() else { continue };
            if found.next().is_some() {
                return Err(Error::UnsupportedUki {
                    reason: "a measured section appears twice",
                });
            }
            let data = contents(&image, s)?;
            if !data.is_empty() {
                sections.push((*kind, data));
            }
        }
        if !sections.iter().any(|(k, _)| *k == UkiSection::Linux) {
            return Err(Error::UnsupportedUki {
                reason: "no (non-empty) .linux section: not a UKI",
            });
        }
        Ok(Self {
            image,
            stub,
            stub_version,
            sections,
        })
    }

    /// The UKI as a PE image (its Authenticode hash is what firmware
    /// measures into PCR 4).
    pub fn image(&self) -> &PeImage<'a> {
        &self.image
    }

    /// The stub generation predictions follow.
    pub fn stub(&self) -> SystemdStub {
        self.stub
    }

    /// The systemd-stub version named by `.sdmagic`, if any.
    pub fn stub_version(&self) -> Option<&str> {
        self.stub_version.as_deref()
    }

    /// The measured sections present (non-empty), in measurement order,
    /// with their contents.
    pub fn measured_sections(&self) -> &[(UkiSection, &'a [u8])] {
        &self.sections
    }

    /// One section's contents, if present and measured.
    pub fn section(&self, kind: UkiSection) -> Option<&'a [u8]> {
        self.sections
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
    }

    /// The embedded kernel (`.linux`) as a PE image.
    pub fn kernel(&self) -> Result<PeImage<'a>> {
        let data = self
            .section(UkiSection::Linux)
            .ok_or(Error::UnsupportedUki {
                reason: "no .linux section",
            })?;
        PeImage::parse(data)
    }

    /// The initrd the stub hands the kernel (`.initrd`), if any.
    pub fn initrd(&self) -> Option<&'a [u8]> {
        self.section(UkiSection::Initrd)
    }

    /// The command line the stub passes to the kernel as its load options,
    /// from `.cmdline`: up to the first NUL, cleaned up as this stub does
    /// ([`SystemdStub::mangle_cmdline`]). `None` without a `.cmdline`
    /// section. Refuses a command line that is not ASCII or holds DEL
    /// (0x7F): stub versions convert those differently.
    pub fn cmdline(&self) -> Result<Option<String>> {
        let Some(raw) = self.section(UkiSection::Cmdline) else {
            return Ok(None);
        };
        let raw = raw.split(|b| *b == 0).next().unwrap_or(&[]);
        if !raw.is_ascii() || raw.contains(&0x7f) {
            return Err(Error::UnsupportedUki {
                reason: "a .cmdline that is not ASCII or holds DEL (0x7F)",
            });
        }
        Ok(Some(self.stub.mangle_cmdline(raw)))
    }
}

/// A systemd-pcrphase phase as `systemd-measure --phase=` takes it: words
/// joined by `:`, each extended into PCR 11 in order
/// (`enter-initrd:leave-initrd:sysinit:ready` is a booted system). The
/// empty string is no phase word at all.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PcrPhase {
    words: Vec<String>,
}

impl PcrPhase {
    /// Parses a phase. Each word is 1-64 characters of `A-Z a-z 0-9 - _ .`.
    pub fn parse(phase: &str) -> Result<Self> {
        if phase.is_empty() {
            return Ok(Self { words: Vec::new() });
        }
        let mut words = Vec::new();
        for w in phase.split(':') {
            let ok = (1..=64).contains(&w.len())
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(Error::InvalidInput {
                    what: "phase",
                    expected: "words of 1-64 characters A-Z a-z 0-9 - _ . joined by ':' (e.g. enter-initrd:leave-initrd:sysinit:ready)",
                });
            }
            words.push(w.to_string());
        }
        Ok(Self { words })
    }

    /// The words, in extend order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The phase as written (`:`-joined).
    pub fn as_string(&self) -> String {
        self.words.join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangle_like_systemd_stub() {
        let (old, new) = (SystemdStub::from_major(252), SystemdStub::from_major(255));
        for stub in [old, new] {
            let m = |b: &[u8]| stub.mangle_cmdline(b);
            assert_eq!(
                m(b"console=ttyS0 quiet panic=-1"),
                "console=ttyS0 quiet panic=-1"
            );
            assert_eq!(m(b"a\nb\t\tc \n"), "a b  c");
            assert_eq!(m(b"\x01 "), "");
            assert_eq!(m(b""), "");
        }
        assert_eq!(old.mangle_cmdline(b" \ta b\n"), "  a b");
        assert_eq!(new.mangle_cmdline(b" \ta b\n"), "a b");
    }

    #[test]
    fn phases() {
        let p = PcrPhase::parse("enter-initrd:leave-initrd:sysinit:ready").unwrap();
        assert_eq!(p.words().len(), 4);
        assert_eq!(p.as_string(), "enter-initrd:leave-initrd:sysinit:ready");
        assert!(PcrPhase::parse("").unwrap().words().is_empty());
        for bad in [":", "a::b", "a b", "ready:", "x/y"] {
            assert!(PcrPhase::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stub_generations() {
        assert!(!SystemdStub::from_major(253)
            .measured_sections()
            .contains(&UkiSection::Sbat));
        assert!(SystemdStub::from_major(254)
            .measured_sections()
            .contains(&UkiSection::Uname));
        assert_eq!(major("252.39-1~deb12u2"), Some(252));
        assert_eq!(major("v257"), None);
    }
}
