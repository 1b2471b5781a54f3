//! Event data decoded by event type. **None of it is authenticated.**
//!
//! A TPM quote covers PCR values; replay ties them to the *digests* of a
//! log's records, not to the event data written beside them. Firmware
//! usually hashes the data it logs, but not always (EV_EFI_BOOT_SERVICES_*
//! digests are Authenticode hashes of the image, not of the logged
//! `UEFI_IMAGE_LOAD_EVENT`; EV_IPL and EV_EVENT_TAG digests often cover
//! other bytes), and anyone who can write the log file can write any data.
//! So everything here, [`UnverifiedEventData`] and the structures in it,
//! is for understanding a log, never for a policy decision, unless the
//! caller re-hashes the data and compares it with the record's digest.
//!
//! Layouts (TCG PC Client Platform Firmware Profile §10.2 and §10.4; UEFI
//! 2.x for device paths and load options; all integers little-endian):
//!
//! ```text
//! UEFI_VARIABLE_DATA           GUID[16] | u64 name chars | u64 data bytes | UTF-16 name | data
//! UEFI_IMAGE_LOAD_EVENT        u64 location | u64 length | u64 link-time address
//!                              | u64 device-path bytes | device path
//! UEFI_GPT_DATA                partition table header[92] | u64 count
//!                              | count × entry (SizeOfPartitionEntry bytes each)
//! UEFI_PLATFORM_FIRMWARE_BLOB  u64 base | u64 length
//! UEFI_PLATFORM_FIRMWARE_BLOB2 u8 size | description | u64 base | u64 length
//! UEFI_HANDOFF_TABLE_POINTERS  u64 count | count × (GUID[16] | u64 address)
//! UEFI_HANDOFF_TABLE_POINTERS2 u8 size | description | u64 count | count × (GUID | u64)
//! TCG_PCClientTaggedEvent      u32 id | u32 size | data   (repeated to fill the event)
//! StartupLocality              "StartupLocality\0" | u8 locality
//! EV_SEPARATOR                 u32 (0 = end of pre-OS, 0xFFFFFFFF = error)
//! ```
//!
//! The `UEFI_*` structures use UINT64 fields whatever the log's uintnSize.
//! Decoding is exact (the fields must fill the event data), except that
//! bytes after a UEFI_VARIABLE_DATA or UEFI_IMAGE_LOAD_EVENT are kept as
//! `trailing` instead of refused: real firmware (GCE's, for images and
//! certificates shim reports) writes a few.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use crate::error::{Error, Result};
use crate::event::{Event, EventType, Locality};
use crate::log::{SpecIdEvent, UintnSize, SPEC_ID_EVENT03, STARTUP_LOCALITY};
use crate::reader::{Fault, Reader};

/// How many characters of unauthenticated text a summary shows.
const SUMMARY_CHARS: usize = 160;

/// Size of a GPT header in UEFI_GPT_DATA.
const GPT_HEADER_SIZE: usize = 92;

/// An EFI_GUID, as stored (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EfiGuid(pub [u8; 16]);

impl EfiGuid {
    /// EFI_GLOBAL_VARIABLE (8be4df61-93ca-11d2-aa0d-00e098032b8c): BootOrder,
    /// Boot####, SecureBoot, PK, KEK.
    pub const GLOBAL_VARIABLE: EfiGuid = EfiGuid([
        0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b,
        0x8c,
    ]);
}

impl fmt::Display for EfiGuid {
    /// The registry form, `8be4df61-93ca-11d2-aa0d-00e098032b8c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
        for (n, i) in order.into_iter().enumerate() {
            if matches!(n, 4 | 6 | 8 | 10) {
                f.write_char('-')?;
            }
            write!(f, "{:02x}", b.get(i).copied().unwrap_or(0))?;
        }
        Ok(())
    }
}

/// UTF-16LE text as logged (unauthenticated).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Utf16Text<'a>(pub &'a [u8]);

impl Utf16Text<'_> {
    /// The text, invalid code units replaced by U+FFFD, trailing NULs
    /// dropped.
    pub fn to_string_lossy(&self) -> String {
        let units = self
            .0
            .chunks_exact(2)
            .map(|c| match c {
                [lo, hi] => u16::from_le_bytes([*lo, *hi]),
                _ => 0,
            })
            .collect::<Vec<u16>>();
        let mut s: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        while s.ends_with('\0') {
            s.pop();
        }
        s
    }
}

/// UEFI_VARIABLE_DATA: a measured UEFI variable (EV_EFI_VARIABLE_*).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UefiVariableData<'a> {
    /// The variable's vendor GUID.
    pub vendor: EfiGuid,
    /// Its name.
    pub name: Utf16Text<'a>,
    /// Its data as logged.
    pub data: &'a [u8],
    /// Bytes after the data (none per the specification; some firmware, e.g.
    /// GCE's for shim's EV_EFI_VARIABLE_AUTHORITY, appends a few).
    pub trailing: &'a [u8],
}

impl UefiVariableData<'_> {
    /// For a `Boot####` variable of EFI_GLOBAL_VARIABLE, the description of
    /// its EFI_LOAD_OPTION.
    pub fn load_option_description(&self) -> Option<String> {
        let name = self.name.to_string_lossy();
        let digits = name.strip_prefix("Boot")?;
        if self.vendor != EfiGuid::GLOBAL_VARIABLE
            || digits.len() != 4
            || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        // u32 Attributes | u16 FilePathListLength | NUL-terminated UTF-16.
        let text = self.data.get(6..)?;
        let end = text
            .chunks_exact(2)
            .position(|c| c == [0, 0])
            .map(|p| p * 2)?;
        Some(Utf16Text(text.get(..end)?).to_string_lossy())
    }
}

/// UEFI_IMAGE_LOAD_EVENT: a loaded PE/COFF image
/// (EV_EFI_BOOT_SERVICES_APPLICATION/DRIVER, EV_EFI_RUNTIME_SERVICES_DRIVER).
/// The record's digest is the image's Authenticode hash, not a hash of
/// this structure.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UefiImageLoadEvent<'a> {
    /// ImageLocationInMemory.
    pub location: u64,
    /// ImageLengthInMemory.
    pub length: u64,
    /// ImageLinkTimeAddress.
    pub link_time_address: u64,
    /// The EFI device path, kept as bytes.
    pub device_path: &'a [u8],
    /// Bytes after the device path (none per the specification; some
    /// firmware appends a few, e.g. for images shim loads).
    pub trailing: &'a [u8],
}

impl UefiImageLoadEvent<'_> {
    /// The media file-path nodes of the device path
    /// (`\EFI\BOOT\BOOTX64.EFI`), best effort: stops at the first malformed
    /// node.
    pub fn file_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = self.device_path;
        while let [kind, subtype, lo, hi, ..] = rest {
            let len = usize::from(u16::from_le_bytes([*lo, *hi]));
            let (Some(node), Some(next)) = (rest.get(..len), rest.get(len..)) else {
                break;
            };
            if len < 4 || *kind == 0x7f {
                break;
            }
            if *kind == 0x04 && *subtype == 0x04 {
                out.push(Utf16Text(node.get(4..).unwrap_or(&[])).to_string_lossy());
            }
            rest = next;
        }
        out
    }
}

/// One partition of a UEFI_GPT_DATA.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GptPartition<'a> {
    /// PartitionTypeGUID.
    pub type_guid: EfiGuid,
    /// UniquePartitionGUID.
    pub unique_guid: EfiGuid,
    /// StartingLBA.
    pub starting_lba: u64,
    /// EndingLBA.
    pub ending_lba: u64,
    /// Attributes.
    pub attributes: u64,
    /// PartitionName (up to 36 UTF-16 characters).
    pub name: Utf16Text<'a>,
}

/// UEFI_GPT_DATA (EV_EFI_GPT_EVENT, EV_EFI_GPT_EVENT2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UefiGptData<'a> {
    /// The 92-byte partition table header as logged.
    pub header: &'a [u8],
    /// DiskGUID from the header.
    pub disk_guid: EfiGuid,
    /// The partitions.
    pub partitions: Vec<GptPartition<'a>>,
}

/// UEFI_PLATFORM_FIRMWARE_BLOB.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FirmwareBlob {
    /// BlobBase.
    pub base: u64,
    /// BlobLength.
    pub length: u64,
}

/// UEFI_PLATFORM_FIRMWARE_BLOB2.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FirmwareBlob2<'a> {
    /// BlobDescription.
    pub description: &'a [u8],
    /// BlobBase.
    pub base: u64,
    /// BlobLength.
    pub length: u64,
}

/// One EFI_CONFIGURATION_TABLE entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConfigurationTable {
    /// VendorGuid.
    pub vendor: EfiGuid,
    /// VendorTable (an address).
    pub address: u64,
}

/// UEFI_HANDOFF_TABLE_POINTERS(2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HandoffTables<'a> {
    /// TableDescription (EV_EFI_HANDOFF_TABLES2 only).
    pub description: Option<&'a [u8]>,
    /// The tables.
    pub tables: Vec<ConfigurationTable>,
}

/// One TCG_PCClientTaggedEvent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TaggedEvent<'a> {
    /// taggedEventID.
    pub id: u32,
    /// taggedEventData.
    pub data: &'a [u8],
}

/// EV_POST_CODE / EV_POST_CODE2 data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PostCode<'a> {
    /// A string ("POST CODE", "SMM CODE", "ACPI DATA", "Embedded UEFI
    /// Driver", …).
    Text(&'a str),
    /// A UEFI_PLATFORM_FIRMWARE_BLOB.
    Blob(FirmwareBlob),
    /// A UEFI_PLATFORM_FIRMWARE_BLOB2.
    Blob2(FirmwareBlob2<'a>),
}

/// EV_S_CRTM_VERSION data.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CrtmVersion<'a> {
    /// A UTF-16 string (trailing NULs dropped).
    Text(String),
    /// A GUID.
    Guid(EfiGuid),
    /// Anything else (some firmware writes ASCII).
    Other(&'a [u8]),
}

/// An event's data decoded by its type. **Unauthenticated**: see the
/// [module documentation](self). Only the record's digests are covered by
/// the PCRs.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum UnverifiedEventData<'a> {
    /// EV_NO_ACTION: the Spec ID Event03 (a crypto-agile log's header).
    SpecId(SpecIdEvent),
    /// EV_NO_ACTION: the locality that sent TPM2_Startup.
    StartupLocality(Locality),
    /// Any other EV_NO_ACTION data (SP800-155 events, Windows data, …).
    NoAction(&'a [u8]),
    /// EV_SEPARATOR: its 32-bit value.
    Separator(u32),
    /// EV_ACTION, EV_EFI_ACTION: the action string.
    Action(&'a str),
    /// EV_POST_CODE, EV_POST_CODE2.
    PostCode(PostCode<'a>),
    /// EV_S_CRTM_VERSION.
    CrtmVersion(CrtmVersion<'a>),
    /// EV_EFI_VARIABLE_DRIVER_CONFIG, _BOOT, _BOOT2, _AUTHORITY.
    Variable(UefiVariableData<'a>),
    /// EV_EFI_BOOT_SERVICES_APPLICATION, _DRIVER, EV_EFI_RUNTIME_SERVICES_DRIVER.
    ImageLoad(UefiImageLoadEvent<'a>),
    /// EV_EFI_GPT_EVENT, EV_EFI_GPT_EVENT2.
    Gpt(UefiGptData<'a>),
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB.
    FirmwareBlob(FirmwareBlob),
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB2.
    FirmwareBlob2(FirmwareBlob2<'a>),
    /// EV_EFI_HANDOFF_TABLES, EV_EFI_HANDOFF_TABLES2.
    HandoffTables(HandoffTables<'a>),
    /// EV_EVENT_TAG: one or more tagged events.
    EventTag(Vec<TaggedEvent<'a>>),
    /// EV_IPL: loader-defined bytes (grub commands, kernel command lines,
    /// UKI section names).
    Ipl(&'a [u8]),
    /// Any other type, and types whose data has no defined layout.
    Opaque(&'a [u8]),
}

impl<'a> UnverifiedEventData<'a> {
    /// Decodes `event`'s data by its type.
    pub fn decode(event: &'a Event) -> Result<Self> {
        let t = event.event_type();
        let data = event.unauthenticated_data();
        let err = |f: Fault| Error::MalformedEventData {
            offset: f.offset,
            event_type: t,
            expected: f.expected,
        };
        let mut r = Reader::new(data, event.data_offset());
        let decoded = match t {
            EventType::EV_NO_ACTION => {
                if data.starts_with(SPEC_ID_EVENT03) {
                    Self::SpecId(SpecIdEvent::parse(data, event.data_offset()).map_err(err)?)
                } else if let Some(l) = startup_locality(data) {
                    Self::StartupLocality(l)
                } else {
                    Self::NoAction(data)
                }
            }
            EventType::EV_SEPARATOR => {
                let v = r.u32("a 4-byte separator value").map_err(err)?;
                end(&r).map_err(err)?;
                Self::Separator(v)
            }
            EventType::EV_ACTION | EventType::EV_EFI_ACTION => Self::Action(
                core::str::from_utf8(data).map_err(|_| err(r.invalid("an ASCII action string")))?,
            ),
            EventType::EV_POST_CODE => Self::PostCode(post_code(data, &mut r).map_err(err)?),
            EventType::EV_POST_CODE2 => Self::PostCode(post_code2(data, &mut r).map_err(err)?),
            EventType::EV_S_CRTM_VERSION => Self::CrtmVersion(crtm_version(data)),
            EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
            | EventType::EV_EFI_VARIABLE_BOOT
            | EventType::EV_EFI_VARIABLE_BOOT2
            | EventType::EV_EFI_VARIABLE_AUTHORITY => {
                Self::Variable(variable(&mut r).map_err(err)?)
            }
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION
            | EventType::EV_EFI_BOOT_SERVICES_DRIVER
            | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => {
                Self::ImageLoad(image_load(&mut r).map_err(err)?)
            }
            EventType::EV_EFI_GPT_EVENT | EventType::EV_EFI_GPT_EVENT2 => {
                Self::Gpt(gpt(&mut r).map_err(err)?)
            }
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB => {
                let b = blob(&mut r).map_err(err)?;
                end(&r).map_err(err)?;
                Self::FirmwareBlob(b)
            }
            EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2 => {
                let b = blob2(&mut r).map_err(err)?;
                end(&r).map_err(err)?;
                Self::FirmwareBlob2(b)
            }
            EventType::EV_EFI_HANDOFF_TABLES => {
                Self::HandoffTables(handoff(&mut r, false).map_err(err)?)
            }
            EventType::EV_EFI_HANDOFF_TABLES2 => {
                Self::HandoffTables(handoff(&mut r, true).map_err(err)?)
            }
            EventType::EV_EVENT_TAG => Self::EventTag(tags(&mut r).map_err(err)?),
            EventType::EV_IPL => Self::Ipl(data),
            _ => Self::Opaque(data),
        };
        Ok(decoded)
    }
}

fn end(r: &Reader<'_>) -> Result<(), Fault> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(r.invalid("the end of the event data"))
    }
}

/// The locality of a well-formed StartupLocality event's data.
pub(crate) fn startup_locality(data: &[u8]) -> Option<Locality> {
    match data.strip_prefix(STARTUP_LOCALITY.as_slice()) {
        Some([l]) => Locality::new(*l),
        _ => None,
    }
}

fn is_text(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t')
}

/// UTF-16LE bytes that read as Latin text (firmware strings are ASCII in
/// practice; binary data such as a GUID often decodes to CJK characters),
/// trailing NULs dropped.
fn utf16_text(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let s = Utf16Text(bytes).to_string_lossy();
    (is_text(&s) && s.chars().all(|c| u32::from(c) < 0x250)).then_some(s)
}

fn post_code<'a>(data: &'a [u8], r: &mut Reader<'a>) -> Result<PostCode<'a>, Fault> {
    if let Ok(s) = core::str::from_utf8(data) {
        if is_text(s.trim_end_matches('\0')) {
            return Ok(PostCode::Text(s));
        }
    }
    let b = blob(r)?;
    end(r)?;
    Ok(PostCode::Blob(b))
}

fn post_code2<'a>(data: &'a [u8], r: &mut Reader<'a>) -> Result<PostCode<'a>, Fault> {
    let mut probe = Reader::new(data, r.offset());
    if let Ok(b) = blob2(&mut probe) {
        if probe.is_empty() {
            return Ok(PostCode::Blob2(b));
        }
    }
    match core::str::from_utf8(data) {
        Ok(s) if is_text(s.trim_end_matches('\0')) => Ok(PostCode::Text(s)),
        _ => Err(r.invalid("a UEFI_PLATFORM_FIRMWARE_BLOB2 or a string")),
    }
}

fn crtm_version(data: &[u8]) -> CrtmVersion<'_> {
    if data.len() == 2 && data.iter().all(|b| *b == 0) {
        return CrtmVersion::Text(String::new());
    }
    if let Some(text) = utf16_text(data) {
        return CrtmVersion::Text(text);
    }
    match <[u8; 16]>::try_from(data) {
        Ok(g) => CrtmVersion::Guid(EfiGuid(g)),
        Err(_) => CrtmVersion::Other(data),
    }
}

fn guid(r: &mut Reader<'_>, expected: &'static str) -> Result<EfiGuid, Fault> {
    Ok(EfiGuid(r.array(expected)?))
}

fn variable<'a>(r: &mut Reader<'a>) -> Result<UefiVariableData<'a>, Fault> {
    let vendor = guid(r, "the variable's vendor GUID")?;
    let chars = r.u64("UnicodeNameLength")?;
    let len = r.u64("VariableDataLength")?;
    let name = r.take_u64(
        chars.saturating_mul(2),
        "the variable name (UnicodeNameLength UTF-16 characters)",
    )?;
    let data = r.take_u64(len, "the variable data (VariableDataLength bytes)")?;
    Ok(UefiVariableData {
        vendor,
        name: Utf16Text(name),
        data,
        trailing: r.rest(),
    })
}

fn image_load<'a>(r: &mut Reader<'a>) -> Result<UefiImageLoadEvent<'a>, Fault> {
    let location = r.u64("ImageLocationInMemory")?;
    let length = r.u64("ImageLengthInMemory")?;
    let link_time_address = r.u64("ImageLinkTimeAddress")?;
    let path_len = r.u64("LengthOfDevicePath")?;
    let device_path = r.take_u64(path_len, "the device path (LengthOfDevicePath bytes)")?;
    Ok(UefiImageLoadEvent {
        location,
        length,
        link_time_address,
        device_path,
        trailing: r.rest(),
    })
}

fn gpt<'a>(r: &mut Reader<'a>) -> Result<UefiGptData<'a>, Fault> {
    let header = r.take(GPT_HEADER_SIZE, "a 92-byte GPT header")?;
    if header.get(..8) != Some(b"EFI PART".as_slice()) {
        return Err(Fault {
            offset: r.offset().saturating_sub(GPT_HEADER_SIZE),
            expected: "the GPT header signature \"EFI PART\"",
            truncated: false,
        });
    }
    let disk_guid = header
        .get(56..72)
        .and_then(|g| <[u8; 16]>::try_from(g).ok())
        .map(EfiGuid)
        .unwrap_or(EfiGuid([0; 16]));
    let entry_size = header
        .get(84..88)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0);
    let at = r.invalid("SizeOfPartitionEntry of at least 128 bytes");
    let entry_size = usize::try_from(entry_size).map_err(|_| at)?;
    if entry_size < 128 {
        return Err(at);
    }
    let count = r.u64("NumberOfPartitions")?;
    let mut partitions = Vec::new();
    for _ in 0..count {
        let entry = r.take(entry_size, "a partition entry (SizeOfPartitionEntry bytes)")?;
        let mut e = Reader::new(entry, 0);
        let parsed = (|| {
            Some(GptPartition {
                type_guid: EfiGuid(e.array("").ok()?),
                unique_guid: EfiGuid(e.array("").ok()?),
                starting_lba: e.u64("").ok()?,
                ending_lba: e.u64("").ok()?,
                attributes: e.u64("").ok()?,
                name: Utf16Text(e.take(72, "").ok()?),
            })
        })();
        if let Some(p) = parsed {
            partitions.push(p);
        }
    }
    end(r)?;
    Ok(UefiGptData {
        header,
        disk_guid,
        partitions,
    })
}

fn blob(r: &mut Reader<'_>) -> Result<FirmwareBlob, Fault> {
    Ok(FirmwareBlob {
        base: r.u64("BlobBase")?,
        length: r.u64("BlobLength")?,
    })
}

fn blob2<'a>(r: &mut Reader<'a>) -> Result<FirmwareBlob2<'a>, Fault> {
    let size = r.u8("BlobDescriptionSize")?;
    let description = r.take(usize::from(size), "BlobDescription")?;
    let b = blob(r)?;
    Ok(FirmwareBlob2 {
        description,
        base: b.base,
        length: b.length,
    })
}

fn handoff<'a>(r: &mut Reader<'a>, described: bool) -> Result<HandoffTables<'a>, Fault> {
    let description = if described {
        let size = r.u8("TableDescriptionSize")?;
        Some(r.take(usize::from(size), "TableDescription")?)
    } else {
        None
    };
    let count = r.u64("NumberOfTables")?;
    let mut tables = Vec::new();
    for _ in 0..count {
        tables.push(ConfigurationTable {
            vendor: guid(r, "a configuration table's VendorGuid")?,
            address: r.u64("a configuration table's VendorTable")?,
        });
    }
    end(r)?;
    Ok(HandoffTables {
        description,
        tables,
    })
}

fn tags<'a>(r: &mut Reader<'a>) -> Result<Vec<TaggedEvent<'a>>, Fault> {
    let mut out = Vec::new();
    loop {
        let id = r.u32("taggedEventID")?;
        let size = r.u32("taggedEventDataSize")?;
        let data = r.take_u64(
            u64::from(size),
            "taggedEventData (taggedEventDataSize bytes)",
        )?;
        out.push(TaggedEvent { id, data });
        if r.is_empty() {
            return Ok(out);
        }
    }
}

/// Writes `s` quoted, with control characters, bidirectional-text controls
/// and `"` escaped (unauthenticated text may hold terminal escape
/// sequences), cut at [`SUMMARY_CHARS`] characters.
fn quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for (n, c) in s.chars().enumerate() {
        if n == SUMMARY_CHARS {
            return f.write_str("\"…");
        }
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi || c == '"' {
            for e in c.escape_default() {
                f.write_char(e)?;
            }
        } else {
            f.write_char(c)?;
        }
    }
    f.write_char('"')
}

/// Bytes as text if they read as UTF-8 or UTF-16LE text (trailing NULs
/// dropped), else their length.
fn bytes_summary(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    if let Ok(s) = core::str::from_utf8(bytes) {
        let s = s.trim_end_matches('\0');
        if is_text(s) {
            return quoted(f, s);
        }
    }
    if let Some(s) = utf16_text(bytes) {
        return quoted(f, &s);
    }
    write!(f, "{} bytes", bytes.len())
}

fn trailing(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    match bytes.len() {
        0 => Ok(()),
        n => write!(f, " (+{n} trailing bytes)"),
    }
}

impl fmt::Display for UnverifiedEventData<'_> {
    /// A one-line summary; text from the log is quoted and escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SpecId(s) => {
                let (major, minor, errata) = s.spec_version();
                write!(
                    f,
                    "Spec ID Event03: platform class {}, spec {major}.{minor} errata {errata}, uintn {}, banks",
                    s.platform_class(),
                    match s.uintn_size() {
                        UintnSize::U32 => "UINT32",
                        UintnSize::U64 => "UINT64",
                    }
                )?;
                for a in s.algorithms() {
                    write!(f, " {} ({} bytes)", a.algorithm, a.digest_size)?;
                }
                write!(f, ", vendorInfo {} bytes", s.vendor_info().len())
            }
            Self::StartupLocality(l) => write!(f, "StartupLocality {l}"),
            Self::NoAction(d) => {
                f.write_str("EV_NO_ACTION data ")?;
                match d.get(..16) {
                    Some(sig) => bytes_summary(f, sig)?,
                    None => bytes_summary(f, d)?,
                }
                write!(f, " ({} bytes)", d.len())
            }
            Self::Separator(0) => f.write_str("separator 0x00000000"),
            Self::Separator(0xffff_ffff) => f.write_str("separator 0xffffffff (error)"),
            Self::Separator(v) => write!(f, "separator 0x{v:08x}"),
            Self::Action(s) => quoted(f, s),
            Self::PostCode(PostCode::Text(s)) => quoted(f, s.trim_end_matches('\0')),
            Self::PostCode(PostCode::Blob(b)) => {
                write!(f, "blob at 0x{:x}, {} bytes", b.base, b.length)
            }
            Self::PostCode(PostCode::Blob2(b)) | Self::FirmwareBlob2(b) => {
                bytes_summary(f, b.description)?;
                write!(f, " at 0x{:x}, {} bytes", b.base, b.length)
            }
            Self::CrtmVersion(CrtmVersion::Text(s)) => quoted(f, s),
            Self::CrtmVersion(CrtmVersion::Guid(g)) => write!(f, "{g}"),
            Self::CrtmVersion(CrtmVersion::Other(d)) => bytes_summary(f, d),
            Self::Variable(v) => {
                write!(f, "{} ", v.vendor)?;
                quoted(f, &v.name.to_string_lossy())?;
                match (v.load_option_description(), v.data) {
                    (Some(d), _) => {
                        f.write_str(": ")?;
                        quoted(f, &d)?;
                    }
                    (None, [b]) => write!(f, " = 0x{b:02x}")?,
                    (None, d) => write!(f, ", {} bytes", d.len())?,
                }
                trailing(f, v.trailing)
            }
            Self::ImageLoad(i) => {
                write!(f, "image at 0x{:x}, {} bytes", i.location, i.length)?;
                for p in i.file_paths() {
                    f.write_str(", path ")?;
                    quoted(f, &p)?;
                }
                trailing(f, i.trailing)
            }
            Self::Gpt(g) => write!(
                f,
                "GPT of disk {}, {} partition(s)",
                g.disk_guid,
                g.partitions.len()
            ),
            Self::FirmwareBlob(b) => write!(f, "blob at 0x{:x}, {} bytes", b.base, b.length),
            Self::HandoffTables(h) => {
                if let Some(d) = h.description {
                    bytes_summary(f, d)?;
                    f.write_str(": ")?;
                }
                write!(f, "{} table(s)", h.tables.len())?;
                for t in &h.tables {
                    write!(f, " {}", t.vendor)?;
                }
                Ok(())
            }
            Self::EventTag(tags) => {
                for (n, t) in tags.iter().enumerate() {
                    if n > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "tag 0x{:08x}: ", t.id)?;
                    bytes_summary(f, t.data)?;
                }
                Ok(())
            }
            Self::Ipl(d) | Self::Opaque(d) => bytes_summary(f, d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn guid_display_is_the_registry_form() {
        assert_eq!(
            EfiGuid::GLOBAL_VARIABLE.to_string(),
            "8be4df61-93ca-11d2-aa0d-00e098032b8c"
        );
    }

    #[test]
    fn summaries_escape_control_characters() {
        let d = UnverifiedEventData::Action("a\u{1b}[2J\"b\\c");
        assert_eq!(d.to_string(), "\"a\\u{1b}[2J\\\"b\\c\"");
        let long = "x".repeat(500);
        assert!(UnverifiedEventData::Action(&long)
            .to_string()
            .ends_with("\"…"));
    }

    #[test]
    fn utf16_heuristic_rejects_binary() {
        // A GUID is not text.
        assert_eq!(utf16_text(&EfiGuid::GLOBAL_VARIABLE.0), None);
        assert_eq!(utf16_text(b"v\x001\x00\x00\x00").as_deref(), Some("v1"));
    }
}
