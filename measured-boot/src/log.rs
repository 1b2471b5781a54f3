//! TCG PC Client binary event logs, as Linux exposes them in
//! `/sys/kernel/security/tpm0/binary_bios_measurements`.
//!
//! Two formats (TCG PC Client Platform Firmware Profile, §10.2):
//!
//! ```text
//! SHA-1 format (TPM 1.2, and TPM 2.0 firmware that logs SHA-1 only):
//!   every record a TCG_PCClientPCREvent
//!     u32 PCRIndex | u32 EventType | 20-byte SHA-1 digest | u32 EventSize | data
//!
//! crypto-agile format (TPM 2.0):
//!   record 0: a TCG_PCClientPCREvent, PCRIndex 0, EV_NO_ACTION, 20 zero bytes,
//!             data = TCG_EfiSpecIDEventStruct ("Spec ID Event03\0", platform
//!             class, version, uintnSize, the banks and their digest sizes,
//!             vendorInfo)
//!   then TCG_PCR_EVENT2 records
//!     u32 PCRIndex | u32 EventType | u32 count | count × (u16 alg | digest)
//!     | u32 EventSize | data
//! ```
//!
//! All integers are little-endian. The format is decided by the first
//! record: a crypto-agile log's first record is an EV_NO_ACTION whose data
//! starts with the Spec ID Event03 signature; anything else is read as a
//! SHA-1-format log.
//!
//! What this parser refuses, and why:
//! - an empty input, or one over [`MAX_LOG_SIZE`];
//! - a record cut short, or bytes after the last record (Linux hands out
//!   exactly the log; padding is refused with [`Error::TrailingBytes`]);
//! - a Spec ID event whose fields do not fill its EventSize exactly (e.g.
//!   vendorInfo beyond EventSize), that declares no bank, more than
//!   [`MAX_ALGORITHMS`], a bank twice, a known bank with the wrong digest
//!   size or a digest over 64 bytes;
//! - a crypto-agile record with a digest of an undeclared bank, or two
//!   digests of one bank. (The specification says every record carries
//!   every declared bank; tpm2-tools' own fixtures do not, so a record may
//!   carry a subset, and [`Replay`] leaves out any bank that some measured
//!   record lacks rather than present a partial replay.)
//! - a measured record (anything but EV_NO_ACTION) for a PCR over 23;
//! - a StartupLocality event that is not in PCR 0, not exactly 17 bytes,
//!   names a locality over 4, repeats, or follows a PCR 0 measurement.
//!
//! A StartupLocality event is honoured in both formats (the go-attestation
//! fixture `short_no_action_eventlog` is a SHA-1-format log holding only
//! one).

use alloc::vec::Vec;

use crate::alg::{AlgorithmId, Digest, HashAlgorithm, MAX_DIGEST_SIZE};
use crate::error::{Error, Result};
use crate::event::{Event, EventType, Locality, PcrIndexField};
use crate::reader::{Fault, Reader};
use crate::replay::Replay;

/// The largest log accepted: 16 MiB (real firmware logs are 5-100 KB; a TDX
/// CCEL area is at most a few hundred KiB).
pub const MAX_LOG_SIZE: usize = 16 * 1024 * 1024;

/// The most banks a Spec ID event may declare.
pub const MAX_ALGORITHMS: usize = 16;

/// The signature of a TPM 2.0 crypto-agile log header.
pub(crate) const SPEC_ID_EVENT03: &[u8; 16] = b"Spec ID Event03\0";

/// The signature of a StartupLocality EV_NO_ACTION event.
pub(crate) const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";

/// How the records of a log are laid out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum LogFormat {
    /// Every record a `TCG_PCClientPCREvent` with one SHA-1 digest, no Spec
    /// ID Event03 header.
    Sha1,
    /// A Spec ID Event03 header, then `TCG_PCR_EVENT2` records carrying one
    /// digest per declared bank.
    CryptoAgile,
}

/// The size of `UINTN` fields the firmware declares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UintnSize {
    /// uintnSize 1: UINT32.
    U32,
    /// uintnSize 2: UINT64.
    U64,
}

/// One bank a Spec ID event declares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AlgorithmSize {
    /// The algorithm.
    pub algorithm: AlgorithmId,
    /// Its digest size in bytes (1-64; the algorithm's own size for banks
    /// this crate knows).
    pub digest_size: usize,
}

/// The decoded `TCG_EfiSpecIDEventStruct` of a crypto-agile log header
/// ("Spec ID Event03"). Its fields are as the firmware wrote them; only the
/// list of banks is checked (it decides how records are read).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SpecIdEvent {
    platform_class: u32,
    spec_version_major: u8,
    spec_version_minor: u8,
    spec_errata: u8,
    uintn_size: UintnSize,
    algorithms: Vec<AlgorithmSize>,
    vendor_info: Vec<u8>,
}

impl SpecIdEvent {
    /// Decodes the event data of a Spec ID Event03 record (`data` starts at
    /// `base` in the log). The fields must fill `data` exactly.
    pub(crate) fn parse(data: &[u8], base: usize) -> Result<Self, Fault> {
        let mut r = Reader::new(data, base);
        if &r.array::<16>("the signature \"Spec ID Event03\\0\"")? != SPEC_ID_EVENT03 {
            return Err(r.invalid("the signature \"Spec ID Event03\\0\""));
        }
        let platform_class = r.u32("platformClass")?;
        let spec_version_minor = r.u8("specVersionMinor")?;
        let spec_version_major = r.u8("specVersionMajor")?;
        let spec_errata = r.u8("specErrata")?;
        let at = r.invalid("uintnSize 1 (UINT32) or 2 (UINT64)");
        let uintn_size = match r.u8("uintnSize")? {
            1 => UintnSize::U32,
            2 => UintnSize::U64,
            _ => return Err(at),
        };
        let at = r.invalid("numberOfAlgorithms between 1 and 16");
        let count = r.u32("numberOfAlgorithms")?;
        if count == 0 || usize::try_from(count).map_or(true, |c| c > MAX_ALGORITHMS) {
            return Err(at);
        }
        let mut algorithms: Vec<AlgorithmSize> = Vec::new();
        for _ in 0..count {
            let at = r.invalid("each algorithm declared once");
            let algorithm = AlgorithmId(r.u16("an algorithm identifier (digestSizes)")?);
            if algorithms.iter().any(|a| a.algorithm == algorithm) {
                return Err(at);
            }
            let at = r.invalid("the algorithm's digest size (1-64 bytes, exact for known banks)");
            let digest_size = usize::from(r.u16("a digest size (digestSizes)")?);
            let ok = match algorithm.hash_algorithm() {
                Some(a) => a.digest_size() == digest_size,
                None => (1..=MAX_DIGEST_SIZE).contains(&digest_size),
            };
            if !ok {
                return Err(at);
            }
            algorithms.push(AlgorithmSize {
                algorithm,
                digest_size,
            });
        }
        let vendor_size = r.u8("vendorInfoSize")?;
        let vendor_info = r
            .take(
                usize::from(vendor_size),
                "vendorInfo (vendorInfoSize bytes) within the event's EventSize",
            )?
            .to_vec();
        if !r.is_empty() {
            return Err(r.invalid("the end of the Spec ID event after vendorInfo"));
        }
        Ok(Self {
            platform_class,
            spec_version_major,
            spec_version_minor,
            spec_errata,
            uintn_size,
            algorithms,
            vendor_info,
        })
    }

    /// platformClass (0 = client, 1 = server).
    pub fn platform_class(&self) -> u32 {
        self.platform_class
    }

    /// specVersionMajor, specVersionMinor and specErrata.
    pub fn spec_version(&self) -> (u8, u8, u8) {
        (
            self.spec_version_major,
            self.spec_version_minor,
            self.spec_errata,
        )
    }

    /// uintnSize.
    pub fn uintn_size(&self) -> UintnSize {
        self.uintn_size
    }

    /// The banks every record carries a digest for, in declared order.
    pub fn algorithms(&self) -> &[AlgorithmSize] {
        &self.algorithms
    }

    /// vendorInfo (unauthenticated, like all event data).
    pub fn vendor_info(&self) -> &[u8] {
        &self.vendor_info
    }

    fn digest_size(&self, algorithm: AlgorithmId) -> Option<usize> {
        self.algorithms
            .iter()
            .find(|a| a.algorithm == algorithm)
            .map(|a| a.digest_size)
    }
}

/// Which kind of log is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A TPM event log: PCRs 0-23, StartupLocality honoured, no padding.
    Tpm,
    /// A TDX CCEL: crypto-agile only, MR indices 1-4, 0xFF padding allowed.
    Ccel,
}

/// What the record parser found.
pub(crate) struct Parsed {
    pub(crate) format: LogFormat,
    pub(crate) spec_id: Option<SpecIdEvent>,
    pub(crate) events: Vec<Event>,
    pub(crate) startup_locality: Option<Locality>,
    pub(crate) padding: usize,
}

/// A parsed TCG PC Client event log: every record in file order (for a
/// crypto-agile log, record 0 is the Spec ID header), ready to replay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EventLog {
    format: LogFormat,
    spec_id: Option<SpecIdEvent>,
    events: Vec<Event>,
    startup_locality: Option<Locality>,
}

impl EventLog {
    /// Parses a whole log. Nothing may follow the last record.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let p = parse_records(bytes, Mode::Tpm)?;
        Ok(Self {
            format: p.format,
            spec_id: p.spec_id,
            events: p.events,
            startup_locality: p.startup_locality,
        })
    }

    /// The record layout.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The Spec ID Event03 header of a crypto-agile log.
    pub fn spec_id(&self) -> Option<&SpecIdEvent> {
        self.spec_id.as_ref()
    }

    /// Every record, in file order (the Spec ID header included).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The locality of the StartupLocality event, if the log has one: PCR 0
    /// then starts at `00…00 || locality` instead of zero.
    pub fn startup_locality(&self) -> Option<Locality> {
        self.startup_locality
    }

    /// The banks every record carries, in declared order (a SHA-1 log:
    /// SHA-1 only).
    pub fn banks(&self) -> Vec<AlgorithmId> {
        banks(self.spec_id.as_ref())
    }

    /// Replays every bank this crate can compute (see [`Replay`]).
    pub fn replay(&self) -> Replay {
        Replay::tpm(&self.banks(), &self.events, self.startup_locality)
    }

    /// The log's bytes: parsing them gives this log again.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_records(self.format, &self.events)
    }
}

pub(crate) fn banks(spec_id: Option<&SpecIdEvent>) -> Vec<AlgorithmId> {
    match spec_id {
        Some(s) => s.algorithms.iter().map(|a| a.algorithm).collect(),
        None => alloc::vec![AlgorithmId::SHA1],
    }
}

/// Parses every record of a TPM log or a CCEL.
pub(crate) fn parse_records(bytes: &[u8], mode: Mode) -> Result<Parsed> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    if bytes.len() > MAX_LOG_SIZE {
        return Err(Error::TooLarge {
            offset: 0,
            what: "event log",
            len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            max: MAX_LOG_SIZE as u64,
        });
    }
    let mut r = Reader::new(bytes, 0);
    let first = read_sha1_record(&mut r, mode)?;
    let is_header = first.event_type == EventType::EV_NO_ACTION
        && first.unauthenticated_data.starts_with(SPEC_ID_EVENT03);
    let mut state = State {
        mode,
        startup_locality: None,
        pcr0_measured: false,
    };
    let mut events = Vec::new();
    let (format, spec_id) = if is_header {
        if mode == Mode::Tpm && first.pcr_index != PcrIndexField(0) {
            return Err(Error::InvalidHeader {
                offset: first.offset,
                expected: "PCRIndex 0 (a TDX CCEL has another index here: read it as a CCEL)",
            });
        }
        if first
            .digests
            .iter()
            .any(|d| d.as_bytes().iter().any(|b| *b != 0))
        {
            return Err(Error::InvalidHeader {
                offset: first.offset.saturating_add(8),
                expected: "a digest of 20 zero bytes",
            });
        }
        let spec =
            SpecIdEvent::parse(&first.unauthenticated_data, first.data_offset).map_err(|f| {
                Error::InvalidHeader {
                    offset: f.offset,
                    expected: f.expected,
                }
            })?;
        events.push(first);
        (LogFormat::CryptoAgile, Some(spec))
    } else {
        if mode == Mode::Ccel {
            return Err(Error::InvalidHeader {
                offset: first.data_offset,
                expected: "the signature \"Spec ID Event03\\0\" (a CCEL is crypto-agile)",
            });
        }
        state.check(&first)?;
        events.push(first);
        (LogFormat::Sha1, None)
    };
    // Where the input's final run of 0xFF bytes, and of zero bytes, starts
    // (computed once, so the loop stays linear).
    let tail = |fill: u8| bytes.iter().rposition(|b| *b != fill).map_or(0, |p| p + 1);
    let (ff_tail, zero_tail) = (tail(0xff), tail(0));
    let mut padding = 0;
    loop {
        let rest = r.rest();
        if rest.is_empty() {
            break;
        }
        if mode == Mode::Ccel && r.offset() >= ff_tail {
            padding = rest.len();
            break;
        }
        if r.offset() >= ff_tail || r.offset() >= zero_tail {
            return Err(Error::TrailingBytes {
                offset: r.offset(),
                count: rest.len(),
            });
        }
        let event = match &spec_id {
            Some(spec) => read_agile_record(&mut r, spec, mode)?,
            None => read_sha1_record(&mut r, mode)?,
        };
        state.check(&event)?;
        events.push(event);
    }
    Ok(Parsed {
        format,
        spec_id,
        events,
        startup_locality: state.startup_locality,
        padding,
    })
}

/// Checks that follow record by record.
struct State {
    mode: Mode,
    startup_locality: Option<Locality>,
    pcr0_measured: bool,
}

impl State {
    fn check(&mut self, e: &Event) -> Result<()> {
        if self.mode == Mode::Tpm {
            if e.is_measured() {
                self.pcr0_measured |= e.pcr_index.0 == 0;
            } else if e.unauthenticated_data.starts_with(STARTUP_LOCALITY) {
                self.startup_locality(e)?;
            }
        }
        Ok(())
    }

    fn startup_locality(&mut self, e: &Event) -> Result<()> {
        let bad =
            |offset: usize, expected: &'static str| Error::MalformedRecord { offset, expected };
        if e.pcr_index != PcrIndexField(0) {
            return Err(bad(e.offset, "PCRIndex 0 for a StartupLocality event"));
        }
        if self.startup_locality.is_some() {
            return Err(bad(e.offset, "at most one StartupLocality event"));
        }
        if self.pcr0_measured {
            return Err(bad(
                e.offset,
                "the StartupLocality event before any PCR 0 measurement",
            ));
        }
        let locality = match e.unauthenticated_data.as_slice() {
            [_, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, l] => *l,
            _ => {
                return Err(bad(
                    e.data_offset,
                    "17 bytes of StartupLocality event data (signature and locality)",
                ))
            }
        };
        let locality = Locality::new(locality).ok_or(bad(
            e.data_offset.saturating_add(16),
            "a startup locality of 0-4",
        ))?;
        self.startup_locality = Some(locality);
        Ok(())
    }
}

/// Refuses a measured record for a register the log kind does not have
/// (checked before the rest of the record is read, so that a file that is
/// not a log at all fails at byte 0 with a clear message).
fn check_index(mode: Mode, offset: usize, index: PcrIndexField, t: EventType) -> Result<()> {
    if t == EventType::EV_NO_ACTION {
        return Ok(());
    }
    let index = index.0;
    match mode {
        Mode::Tpm if index > u32::from(provenix_protocol::PcrIndex::MAX) => {
            Err(Error::PcrIndexOutOfRange { offset, index })
        }
        Mode::Ccel if !(1..=4).contains(&index) => Err(Error::MrIndexOutOfRange { offset, index }),
        _ => Ok(()),
    }
}

fn read_sha1_record(r: &mut Reader<'_>, mode: Mode) -> Result<Event> {
    let offset = r.offset();
    let pcr_index = PcrIndexField(r.u32("PCRIndex").map_err(Fault::record)?);
    let event_type = EventType(r.u32("EventType").map_err(Fault::record)?);
    check_index(mode, offset, pcr_index, event_type)?;
    let digest = r
        .take(20, "a 20-byte SHA-1 digest")
        .map_err(Fault::record)?;
    let digest = Digest::new(AlgorithmId::SHA1, digest).map_err(|_| Error::Truncated {
        offset,
        expected: "a 20-byte SHA-1 digest",
    })?;
    let (data_offset, data) = read_event_data(r)?;
    Ok(Event {
        offset,
        pcr_index,
        event_type,
        digests: alloc::vec![digest],
        data_offset,
        unauthenticated_data: data,
        ccel: mode == Mode::Ccel,
    })
}

fn read_agile_record(r: &mut Reader<'_>, spec: &SpecIdEvent, mode: Mode) -> Result<Event> {
    let offset = r.offset();
    let pcr_index = PcrIndexField(r.u32("PCRIndex").map_err(Fault::record)?);
    let event_type = EventType(r.u32("EventType").map_err(Fault::record)?);
    check_index(mode, offset, pcr_index, event_type)?;
    let count_at = r.offset();
    let count = r
        .u32("the digest count (TPML_DIGEST_VALUES)")
        .map_err(Fault::record)?;
    if usize::try_from(count).map_or(true, |c| c > spec.algorithms.len()) {
        return Err(Error::MalformedRecord {
            offset: count_at,
            expected: "a digest count of at most the number of banks the Spec ID event declares",
        });
    }
    let mut digests: Vec<Digest> = Vec::with_capacity(spec.algorithms.len());
    for _ in 0..count {
        let alg_at = r.offset();
        let algorithm = AlgorithmId(
            r.u16("a digest's algorithm identifier")
                .map_err(Fault::record)?,
        );
        let size = spec
            .digest_size(algorithm)
            .ok_or(Error::UndeclaredAlgorithm {
                offset: alg_at,
                algorithm,
            })?;
        if digests.iter().any(|d| d.algorithm() == algorithm) {
            return Err(Error::MalformedRecord {
                offset: alg_at,
                expected: "one digest per declared bank (this bank's digest repeats)",
            });
        }
        let bytes = r
            .take(size, "a digest of the size the Spec ID event declares")
            .map_err(Fault::record)?;
        let digest = Digest::new(algorithm, bytes).map_err(|_| Error::MalformedRecord {
            offset: alg_at,
            expected: "a digest of the size the Spec ID event declares",
        })?;
        digests.push(digest);
    }
    let (data_offset, data) = read_event_data(r)?;
    Ok(Event {
        offset,
        pcr_index,
        event_type,
        digests,
        data_offset,
        unauthenticated_data: data,
        ccel: mode == Mode::Ccel,
    })
}

fn read_event_data(r: &mut Reader<'_>) -> Result<(usize, Vec<u8>)> {
    let size = r.u32("EventSize").map_err(Fault::record)?;
    let data_offset = r.offset();
    let data = r
        .take_u64(u64::from(size), "event data (EventSize bytes)")
        .map_err(Fault::record)?;
    Ok((data_offset, data.to_vec()))
}

/// Writes records back in `format` (record 0 of a crypto-agile log in SHA-1
/// format, the rest as TCG_PCR_EVENT2).
pub(crate) fn encode_records(format: LogFormat, events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        out.extend_from_slice(&e.pcr_index.0.to_le_bytes());
        out.extend_from_slice(&e.event_type.0.to_le_bytes());
        let sha1_layout = format == LogFormat::Sha1 || i == 0;
        if sha1_layout {
            for d in &e.digests {
                out.extend_from_slice(d.as_bytes());
            }
        } else {
            let count = u32::try_from(e.digests.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_le_bytes());
            for d in &e.digests {
                out.extend_from_slice(&d.algorithm().0.to_le_bytes());
                out.extend_from_slice(d.as_bytes());
            }
        }
        let size = u32::try_from(e.unauthenticated_data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&e.unauthenticated_data);
    }
    out
}

/// The supported banks of `banks`, and the rest.
pub(crate) fn split_banks(banks: &[AlgorithmId]) -> (Vec<HashAlgorithm>, Vec<AlgorithmId>) {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for b in banks {
        match b.hash_algorithm() {
            Some(a) => known.push(a),
            None => unknown.push(*b),
        }
    }
    (known, unknown)
}
