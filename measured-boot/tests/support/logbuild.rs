//! Builds binary event logs byte by byte for tests, independently of the
//! crate's own encoder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// A crypto-agile header (record 0) declaring `banks` as (algorithm id,
/// digest size).
pub(crate) fn header(banks: &[(u16, u16)]) -> Vec<u8> {
    let mut spec = Vec::new();
    spec.extend_from_slice(b"Spec ID Event03\0");
    spec.extend_from_slice(&0u32.to_le_bytes()); // platformClass
    spec.extend_from_slice(&[0, 2, 0, 2]); // minor, major, errata, uintnSize
    spec.extend_from_slice(&(banks.len() as u32).to_le_bytes());
    for (alg, size) in banks {
        spec.extend_from_slice(&alg.to_le_bytes());
        spec.extend_from_slice(&size.to_le_bytes());
    }
    spec.push(0); // vendorInfoSize
    sha1_record(0, 3, &[0; 20], &spec)
}

/// A TCG_PCClientPCREvent.
pub(crate) fn sha1_record(pcr: u32, event_type: u32, digest: &[u8; 20], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&pcr.to_le_bytes());
    out.extend_from_slice(&event_type.to_le_bytes());
    out.extend_from_slice(digest);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A TCG_PCR_EVENT2 with `digests` as (algorithm id, bytes).
pub(crate) fn agile_record(
    pcr: u32,
    event_type: u32,
    digests: &[(u16, Vec<u8>)],
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&pcr.to_le_bytes());
    out.extend_from_slice(&event_type.to_le_bytes());
    out.extend_from_slice(&(digests.len() as u32).to_le_bytes());
    for (alg, d) in digests {
        out.extend_from_slice(&alg.to_le_bytes());
        out.extend_from_slice(d);
    }
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// StartupLocality event data.
pub(crate) fn startup_locality(locality: u8) -> Vec<u8> {
    let mut d = b"StartupLocality\0".to_vec();
    d.push(locality);
    d
}
