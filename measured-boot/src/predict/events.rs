//! The events firmware, systemd-stub, the Linux EFI stub, systemd-pcrphase
//! and the provenix agent log, one constructor each, and the sequences a
//! boot produces.
//!
//! Every constructor computes the digest in each bank of `banks`.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use provenix_protocol::PcrIndex;

use super::uki::{PcrPhase, Uki, UkiSection};
use super::{EventSource, PredictedEvent};
use crate::alg::HashAlgorithm;
use crate::cel::{SystemMeasurement, CONTENT_TYPE_PROVENIX, CONTENT_TYPE_SYSTEMD};
use crate::error::{Error, Result};
use crate::event::EventType;
use crate::pe::PeImage;

/// The EV_EFI_ACTION string EDK2 logs in PCR 4 before starting a boot
/// option's application (TCG PC Client PFP §10.4.4).
pub const CALLING_EFI_APPLICATION: &str = "Calling EFI Application from Boot Option";

/// The Linux EFI stub's tag for its load-options measurement.
pub const LOAD_OPTIONS_EVENT_TAG: u32 = 0x8f3b_22ed;

/// The Linux EFI stub's tag for its initrd measurement.
pub const INITRD_EVENT_TAG: u32 = 0x8f3b_22ec;

/// The PCR firmware measures boot applications into.
pub const PCR_BOOT_APPLICATIONS: u8 = 4;

/// The PCR the Linux EFI stub measures load options and initrd into.
pub const PCR_KERNEL_PARAMETERS: u8 = 9;

/// The PCR systemd-stub and systemd-pcrphase measure into.
pub const PCR_KERNEL_BOOT: u8 = 11;

fn pcr(index: u8) -> Result<PcrIndex> {
    PcrIndex::new(index).map_err(|_| Error::InvalidInput {
        what: "PCR index",
        expected: "0-23",
    })
}

/// An event whose digest in each bank is that bank's hash of `measured`.
fn hashed(
    banks: &[HashAlgorithm],
    pcr: PcrIndex,
    source: EventSource,
    measured: &[u8],
    event_data: Option<Vec<u8>>,
    description: String,
) -> PredictedEvent {
    let digests = banks.iter().map(|b| b.hash(measured)).collect();
    PredictedEvent::new(pcr, source, digests, event_data, description)
}

/// EV_EFI_ACTION: `text` (no NUL) is both the data and what is hashed.
pub fn efi_action(banks: &[HashAlgorithm], pcr: PcrIndex, text: &str) -> PredictedEvent {
    hashed(
        banks,
        pcr,
        EventSource::Firmware(EventType::EV_EFI_ACTION),
        text.as_bytes(),
        Some(text.as_bytes().to_vec()),
        format!("\"{text}\""),
    )
}

/// EV_SEPARATOR with the value 0 (four zero bytes, hashed).
pub fn separator(banks: &[HashAlgorithm], pcr: PcrIndex) -> PredictedEvent {
    hashed(
        banks,
        pcr,
        EventSource::Firmware(EventType::EV_SEPARATOR),
        &[0; 4],
        Some(vec![0; 4]),
        String::from("separator"),
    )
}

/// EV_EFI_BOOT_SERVICES_APPLICATION in PCR 4: the Authenticode hash of
/// `image` (its event data holds a load address, so it is not predicted).
pub fn efi_application(
    banks: &[HashAlgorithm],
    image: &PeImage<'_>,
    description: &str,
) -> Result<PredictedEvent> {
    let digests = banks
        .iter()
        .map(|b| image.authenticode(*b))
        .collect::<Result<Vec<_>>>()?;
    Ok(PredictedEvent::new(
        pcr(PCR_BOOT_APPLICATIONS)?,
        EventSource::Firmware(EventType::EV_EFI_BOOT_SERVICES_APPLICATION),
        digests,
        None,
        String::from(description),
    ))
}

/// The data of an EV_EVENT_TAG event: `TCG_PCClientTaggedEvent` (u32 id,
/// u32 size, data), as the Linux EFI stub writes it.
fn tagged_event(id: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A kernel command line as EFI load options: UTF-16LE with a trailing NUL
/// character, what a boot loader (or systemd-stub) passes the kernel and
/// the kernel measures.
pub fn load_options_utf16(cmdline: &str) -> Vec<u8> {
    cmdline
        .encode_utf16()
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// The Linux EFI stub's PCR 9 load-options event: the hash of
/// `load_options` (the raw bytes, e.g. [`load_options_utf16`]).
pub fn linux_load_options(banks: &[HashAlgorithm], load_options: &[u8]) -> Result<PredictedEvent> {
    Ok(hashed(
        banks,
        pcr(PCR_KERNEL_PARAMETERS)?,
        EventSource::Firmware(EventType::EV_EVENT_TAG),
        load_options,
        Some(tagged_event(
            LOAD_OPTIONS_EVENT_TAG,
            b"LOADED_IMAGE::LoadOptions\0",
        )),
        format!(
            "Linux EFI stub: load options ({} bytes)",
            load_options.len()
        ),
    ))
}

/// The Linux EFI stub's PCR 9 initrd event: the hash of the initrd bytes.
pub fn linux_initrd(banks: &[HashAlgorithm], initrd: &[u8]) -> Result<PredictedEvent> {
    Ok(hashed(
        banks,
        pcr(PCR_KERNEL_PARAMETERS)?,
        EventSource::Firmware(EventType::EV_EVENT_TAG),
        initrd,
        Some(tagged_event(INITRD_EVENT_TAG, b"Linux initrd\0")),
        format!("Linux EFI stub: initrd ({} bytes)", initrd.len()),
    ))
}

/// systemd-stub's two PCR 11 events for one section: the name with its
/// NUL, then the contents (both EV_IPL; the event data is the name in
/// UTF-16LE with a NUL).
pub fn stub_section(
    banks: &[HashAlgorithm],
    name: &str,
    contents: &[u8],
) -> Result<[PredictedEvent; 2]> {
    let pcr = pcr(PCR_KERNEL_BOOT)?;
    let mut name_nul = Vec::with_capacity(name.len() + 1);
    name_nul.extend_from_slice(name.as_bytes());
    name_nul.push(0);
    let data = load_options_utf16(name);
    Ok([
        hashed(
            banks,
            pcr,
            EventSource::Firmware(EventType::EV_IPL),
            &name_nul,
            Some(data.clone()),
            format!("systemd-stub: section name {name}"),
        ),
        hashed(
            banks,
            pcr,
            EventSource::Firmware(EventType::EV_IPL),
            contents,
            Some(data),
            format!("systemd-stub: section {name} ({} bytes)", contents.len()),
        ),
    ])
}

/// systemd-pcrphase's PCR 11 events for `phase`: each word's hash (the
/// word's bytes, no NUL), logged by systemd in its CEL log.
pub fn pcrphase(banks: &[HashAlgorithm], phase: &PcrPhase) -> Result<Vec<PredictedEvent>> {
    let pcr = pcr(PCR_KERNEL_BOOT)?;
    Ok(phase
        .words()
        .iter()
        .map(|w| {
            hashed(
                banks,
                pcr,
                EventSource::Userspace(CONTENT_TYPE_SYSTEMD),
                w.as_bytes(),
                None,
                format!("systemd-pcrphase: \"{w}\""),
            )
        })
        .collect())
}

/// The provenix agent's system measurement in `system_pcr`.
pub fn system_measurement(
    banks: &[HashAlgorithm],
    measurement: &SystemMeasurement,
    system_pcr: PcrIndex,
) -> Result<PredictedEvent> {
    let digests = banks
        .iter()
        .map(|b| measurement.measurement(*b))
        .collect::<Result<Vec<_>>>()?;
    Ok(PredictedEvent::new(
        system_pcr,
        EventSource::Userspace(CONTENT_TYPE_PROVENIX),
        digests,
        None,
        format!(
            "provenix system {} ({})",
            measurement.digest().to_hex(),
            measurement.identity().toplevel.as_str()
        ),
    ))
}

/// The events of OVMF booting `uki` from an ESP boot option, in log order:
/// PCR 4 "Calling EFI Application from Boot Option", PCR 4 separator,
/// PCR 4 the UKI; PCR 11 systemd-stub's sections; PCR 4 the embedded
/// kernel (started with `LoadImage`); PCR 9 the kernel's load options and
/// initrd.
pub fn uki_boot(banks: &[HashAlgorithm], uki: &Uki<'_>) -> Result<Vec<PredictedEvent>> {
    let pcr4 = pcr(PCR_BOOT_APPLICATIONS)?;
    let mut out = vec![
        efi_action(banks, pcr4, CALLING_EFI_APPLICATION),
        separator(banks, pcr4),
        efi_application(banks, uki.image(), "the UKI (Authenticode)")?,
    ];
    for (kind, contents) in uki.measured_sections() {
        out.extend(stub_section(banks, kind.name(), contents)?);
    }
    out.push(efi_application(
        banks,
        &uki.kernel()?,
        "the UKI's .linux kernel (Authenticode)",
    )?);
    if let Some(cmdline) = uki.cmdline()? {
        out.push(linux_load_options(banks, &load_options_utf16(&cmdline))?);
    }
    if let Some(initrd) = uki.section(UkiSection::Initrd) {
        out.push(linux_initrd(banks, initrd)?);
    }
    Ok(out)
}

/// The events of a kernel booted directly as the boot option's EFI
/// application (no UKI), in log order: PCR 4 "Calling EFI Application
/// from Boot Option", separator, the kernel; PCR 9 its load options
/// (`cmdline` as UTF-16LE + NUL) and initrd. Any part may be left out.
pub fn kernel_boot(
    banks: &[HashAlgorithm],
    kernel: Option<&PeImage<'_>>,
    cmdline: Option<&str>,
    initrd: Option<&[u8]>,
) -> Result<Vec<PredictedEvent>> {
    let mut out = Vec::new();
    if let Some(k) = kernel {
        let pcr4 = pcr(PCR_BOOT_APPLICATIONS)?;
        out.push(efi_action(banks, pcr4, CALLING_EFI_APPLICATION));
        out.push(separator(banks, pcr4));
        out.push(efi_application(banks, k, "the kernel (Authenticode)")?);
    }
    if let Some(c) = cmdline {
        out.push(linux_load_options(banks, &load_options_utf16(c))?);
    }
    if let Some(i) = initrd {
        out.push(linux_initrd(banks, i)?);
    }
    Ok(out)
}
