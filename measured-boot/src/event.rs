//! One record of an event log: where it sits, which PCR it names, its type,
//! its digests (the only part a TPM quote authenticates) and its
//! unauthenticated event data.

use alloc::vec::Vec;
use core::fmt;

use provenix_protocol::PcrIndex;

use crate::alg::{AlgorithmId, Digest};
use crate::data::UnverifiedEventData;
use crate::error::Result;

/// An event type (`TCG_EVENTTYPE`, TCG PC Client Platform Firmware Profile
/// §10.4.1). Any `u32` is a valid value: unknown types are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct EventType(pub u32);

macro_rules! event_types {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl EventType {
            $($(#[$doc])* pub const $name: EventType = EventType($value);)*

            /// The specification's name (`EV_SEPARATOR`), if the type is
            /// one this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    /// EV_PREBOOT_CERT (reserved).
    EV_PREBOOT_CERT = 0x0000_0000;
    /// EV_POST_CODE: a POST code, embedded SMM code, ACPI data or option ROM.
    EV_POST_CODE = 0x0000_0001;
    /// EV_UNUSED.
    EV_UNUSED = 0x0000_0002;
    /// EV_NO_ACTION: informational, never extended into a PCR.
    EV_NO_ACTION = 0x0000_0003;
    /// EV_SEPARATOR: the end of pre-OS measurements in a PCR.
    EV_SEPARATOR = 0x0000_0004;
    /// EV_ACTION: an ASCII action string.
    EV_ACTION = 0x0000_0005;
    /// EV_EVENT_TAG: tagged events (`TCG_PCClientTaggedEvent`).
    EV_EVENT_TAG = 0x0000_0006;
    /// EV_S_CRTM_CONTENTS.
    EV_S_CRTM_CONTENTS = 0x0000_0007;
    /// EV_S_CRTM_VERSION: the S-CRTM version (UTF-16 string or GUID).
    EV_S_CRTM_VERSION = 0x0000_0008;
    /// EV_CPU_MICROCODE.
    EV_CPU_MICROCODE = 0x0000_0009;
    /// EV_PLATFORM_CONFIG_FLAGS.
    EV_PLATFORM_CONFIG_FLAGS = 0x0000_000a;
    /// EV_TABLE_OF_DEVICES.
    EV_TABLE_OF_DEVICES = 0x0000_000b;
    /// EV_COMPACT_HASH.
    EV_COMPACT_HASH = 0x0000_000c;
    /// EV_IPL: initial program loader data (boot loaders, kernel command
    /// lines, UKI sections).
    EV_IPL = 0x0000_000d;
    /// EV_IPL_PARTITION_DATA.
    EV_IPL_PARTITION_DATA = 0x0000_000e;
    /// EV_NONHOST_CODE.
    EV_NONHOST_CODE = 0x0000_000f;
    /// EV_NONHOST_CONFIG.
    EV_NONHOST_CONFIG = 0x0000_0010;
    /// EV_NONHOST_INFO.
    EV_NONHOST_INFO = 0x0000_0011;
    /// EV_OMIT_BOOT_DEVICE_EVENTS.
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x0000_0012;
    /// EV_POST_CODE2: like EV_POST_CODE, with a described blob.
    EV_POST_CODE2 = 0x0000_0013;
    /// EV_EFI_EVENT_BASE.
    EV_EFI_EVENT_BASE = 0x8000_0000;
    /// EV_EFI_VARIABLE_DRIVER_CONFIG: a UEFI variable (`UEFI_VARIABLE_DATA`).
    EV_EFI_VARIABLE_DRIVER_CONFIG = 0x8000_0001;
    /// EV_EFI_VARIABLE_BOOT: a boot variable (`UEFI_VARIABLE_DATA`).
    EV_EFI_VARIABLE_BOOT = 0x8000_0002;
    /// EV_EFI_BOOT_SERVICES_APPLICATION: an image (`UEFI_IMAGE_LOAD_EVENT`).
    EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003;
    /// EV_EFI_BOOT_SERVICES_DRIVER: a driver (`UEFI_IMAGE_LOAD_EVENT`).
    EV_EFI_BOOT_SERVICES_DRIVER = 0x8000_0004;
    /// EV_EFI_RUNTIME_SERVICES_DRIVER: a driver (`UEFI_IMAGE_LOAD_EVENT`).
    EV_EFI_RUNTIME_SERVICES_DRIVER = 0x8000_0005;
    /// EV_EFI_GPT_EVENT: the GPT of the boot disk (`UEFI_GPT_DATA`).
    EV_EFI_GPT_EVENT = 0x8000_0006;
    /// EV_EFI_ACTION: an ASCII action string.
    EV_EFI_ACTION = 0x8000_0007;
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB (`UEFI_PLATFORM_FIRMWARE_BLOB`).
    EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x8000_0008;
    /// EV_EFI_HANDOFF_TABLES (`UEFI_HANDOFF_TABLE_POINTERS`).
    EV_EFI_HANDOFF_TABLES = 0x8000_0009;
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB2 (`UEFI_PLATFORM_FIRMWARE_BLOB2`).
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000_000a;
    /// EV_EFI_HANDOFF_TABLES2 (`UEFI_HANDOFF_TABLE_POINTERS2`).
    EV_EFI_HANDOFF_TABLES2 = 0x8000_000b;
    /// EV_EFI_VARIABLE_BOOT2: a boot variable (`UEFI_VARIABLE_DATA`).
    EV_EFI_VARIABLE_BOOT2 = 0x8000_000c;
    /// EV_EFI_GPT_EVENT2.
    EV_EFI_GPT_EVENT2 = 0x8000_000d;
    /// EV_EFI_HCRTM_EVENT.
    EV_EFI_HCRTM_EVENT = 0x8000_0010;
    /// EV_EFI_VARIABLE_AUTHORITY: the signature-database entry that
    /// authorised an image (`UEFI_VARIABLE_DATA`).
    EV_EFI_VARIABLE_AUTHORITY = 0x8000_00e0;
    /// EV_EFI_SPDM_FIRMWARE_BLOB.
    EV_EFI_SPDM_FIRMWARE_BLOB = 0x8000_00e1;
    /// EV_EFI_SPDM_FIRMWARE_CONFIG.
    EV_EFI_SPDM_FIRMWARE_CONFIG = 0x8000_00e2;
    /// EV_EFI_SPDM_DEVICE_POLICY.
    EV_EFI_SPDM_DEVICE_POLICY = 0x8000_00e3;
    /// EV_EFI_SPDM_DEVICE_AUTHORITY.
    EV_EFI_SPDM_DEVICE_AUTHORITY = 0x8000_00e4;
}

impl fmt::Display for EventType {
    /// The specification's name, or `0x` and eight hex digits for a type
    /// this crate does not know.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:08x}", self.0),
        }
    }
}

/// The PCRIndex field of a record exactly as the log writes it. For measured
/// events of a parsed TPM log it is a PCR (0-23, see [`Event::pcr`]);
/// EV_NO_ACTION records may carry any value (Windows writes 0xFFFFFFFF).
/// In a TDX CCEL log it is the CC measurement-register index (1-4 =
/// RTMR0-3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PcrIndexField(pub u32);

impl fmt::Display for PcrIndexField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A TPM locality (0-4), as a StartupLocality event reports the locality
/// that sent TPM2_Startup.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Locality(u8);

impl Locality {
    /// The highest TPM locality (4: the H-CRTM).
    pub const MAX: u8 = 4;

    /// A checked locality (0-4).
    pub fn new(locality: u8) -> Option<Self> {
        (locality <= Self::MAX).then_some(Self(locality))
    }

    /// The locality.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One record of an event log.
///
/// Only the digests are what the firmware extended into the PCR, so only
/// they are authenticated by a quote of the replayed PCR values. The event
/// data ([`Event::unauthenticated_data`]) is whatever the log writer chose
/// to put beside them: a verifier may read it to understand a log, but must
/// not trust it unless it re-hashes it to the digest itself.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Event {
    pub(crate) offset: usize,
    pub(crate) pcr_index: PcrIndexField,
    pub(crate) event_type: EventType,
    pub(crate) digests: Vec<Digest>,
    pub(crate) data_offset: usize,
    pub(crate) unauthenticated_data: Vec<u8>,
    /// The record comes from a TDX CCEL: its index is an MR index, not a PCR.
    pub(crate) ccel: bool,
}

impl Event {
    /// Byte offset of the record in the log.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The PCRIndex field as written.
    pub fn pcr_index(&self) -> PcrIndexField {
        self.pcr_index
    }

    /// The PCR this event extends: `None` for EV_NO_ACTION records (never
    /// extended) and for records of a CCEL log (see
    /// [`crate::ccel::CcelLog`]).
    pub fn pcr(&self) -> Option<PcrIndex> {
        if self.event_type == EventType::EV_NO_ACTION || self.ccel {
            return None;
        }
        u8::try_from(self.pcr_index.0)
            .ok()
            .and_then(|i| PcrIndex::new(i).ok())
    }

    /// Whether the record was extended into a register (everything but
    /// EV_NO_ACTION).
    pub fn is_measured(&self) -> bool {
        self.event_type != EventType::EV_NO_ACTION
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The digests, in log order: at most one per bank the log declares
    /// (normally one for each; a SHA-1 log: one SHA-1 digest).
    pub fn digests(&self) -> &[Digest] {
        &self.digests
    }

    /// The digest for one algorithm.
    pub fn digest(&self, algorithm: AlgorithmId) -> Option<&Digest> {
        self.digests.iter().find(|d| d.algorithm() == algorithm)
    }

    /// The raw event data. **Not authenticated**: no PCR covers these bytes,
    /// only the digests (which the firmware may or may not have computed
    /// over them).
    pub fn unauthenticated_data(&self) -> &[u8] {
        &self.unauthenticated_data
    }

    /// Byte offset of the event data in the log.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The event data decoded by event type. **Not authenticated** (see
    /// [`UnverifiedEventData`]). An error here says only that the data does
    /// not have its type's layout; the record and its digests stay valid.
    pub fn decode_unverified_data(&self) -> Result<UnverifiedEventData<'_>> {
        UnverifiedEventData::decode(self)
    }
}
