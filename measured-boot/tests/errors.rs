//! Negative tests: break one field of a valid log, expect one error kind at
//! the right byte offset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/logbuild.rs"]
mod logbuild;

use logbuild::{agile_record, header, sha1_record, startup_locality};
use provenix_measured_boot::log::MAX_LOG_SIZE;
use provenix_measured_boot::{AlgorithmId, CcelLog, Error, EventLog, EventType};

const SHA1: (u16, u16) = (0x04, 20);
const SHA256: (u16, u16) = (0x0b, 32);

fn digests(fill: u8) -> Vec<(u16, Vec<u8>)> {
    vec![(0x04, vec![fill; 20]), (0x0b, vec![fill; 32])]
}

/// A valid two-bank log: header (69 bytes), StartupLocality 3, one
/// EV_EFI_ACTION on PCR 4.
fn valid() -> Vec<u8> {
    let mut log = header(&[SHA1, SHA256]);
    log.extend(agile_record(0, 3, &digests(0), &startup_locality(3)));
    log.extend(agile_record(4, 0x8000_0007, &digests(0xaa), b"action"));
    log
}

#[test]
fn the_valid_log_parses() {
    let log = EventLog::parse(&valid()).unwrap();
    assert_eq!(log.events().len(), 3);
    assert_eq!(log.startup_locality().unwrap().get(), 3);
    assert_eq!(log.to_bytes(), valid());
}

#[test]
fn empty_and_oversized_inputs() {
    assert_eq!(EventLog::parse(&[]), Err(Error::Empty));
    assert_eq!(Error::Empty.offset(), Some(0));
    let huge = vec![0u8; MAX_LOG_SIZE + 1];
    assert!(matches!(
        EventLog::parse(&huge),
        Err(Error::TooLarge { offset: 0, .. })
    ));
}

#[test]
fn truncation_anywhere_is_refused() {
    let log = valid();
    let boundaries: Vec<usize> = EventLog::parse(&log)
        .unwrap()
        .events()
        .iter()
        .map(|e| e.offset())
        .collect();
    for cut in (1..log.len()).filter(|c| !boundaries.contains(c)) {
        let err = EventLog::parse(&log[..cut]).unwrap_err();
        match err {
            Error::Truncated { offset, expected } => {
                assert!(offset <= cut, "cut {cut}: offset {offset}");
                assert!(!expected.is_empty());
            }
            // A cut that leaves only zero bytes of the next record.
            Error::TrailingBytes { offset, .. } => {
                assert!(log[offset..cut].iter().all(|b| *b == 0), "cut {cut}");
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn header_fields() {
    // PCR index 1 in the header (as a TDX CCEL has).
    let mut log = valid();
    log[0] = 1;
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::InvalidHeader { offset: 0, .. })
    ));
    // A non-zero header digest.
    let mut log = valid();
    log[8] = 1;
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::InvalidHeader { offset: 8, .. })
    ));
    // uintnSize 3 (signature 16 + platformClass 4 + 3 version bytes: 23).
    let mut log = valid();
    log[32 + 23] = 3;
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::InvalidHeader { offset: 55, .. })
    ));
    // SHA-256 declared with 20-byte digests.
    let mut log = header(&[SHA1, (0x0b, 20)]);
    log.extend(agile_record(4, 5, &[(0x04, vec![1; 20])], b""));
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::InvalidHeader { .. })
    ));
    // A bank declared twice.
    assert!(matches!(
        EventLog::parse(&header(&[SHA1, SHA1])),
        Err(Error::InvalidHeader { .. })
    ));
    // No bank.
    assert!(matches!(
        EventLog::parse(&header(&[])),
        Err(Error::InvalidHeader { .. })
    ));
    // An unknown bank with a digest over 64 bytes.
    assert!(matches!(
        EventLog::parse(&header(&[(0x27, 65)])),
        Err(Error::InvalidHeader { .. })
    ));
    // vendorInfoSize 1 with no vendorInfo inside EventSize.
    let mut log = header(&[SHA1]);
    let last = log.len() - 1;
    log[last] = 1;
    log.push(0xde);
    let err = EventLog::parse(&log).unwrap_err();
    assert!(
        matches!(err, Error::InvalidHeader { offset, .. } if offset == last + 1),
        "{err:?}"
    );
    // A byte after vendorInfo, inside EventSize.
    let mut log = header(&[SHA1]);
    log[28] += 1;
    log.push(0);
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::InvalidHeader { .. })
    ));
}

#[test]
fn digest_lists() {
    let mut log = header(&[SHA1, SHA256]);
    let at = log.len();
    // Three digests for two banks.
    let mut three = digests(1);
    three.push((0x0c, vec![1; 48]));
    log.extend(agile_record(4, 5, &three, b""));
    assert_eq!(
        EventLog::parse(&log).unwrap_err().offset(),
        Some(at + 8),
        "the digest count"
    );
    // An undeclared bank.
    let mut log = header(&[SHA1, SHA256]);
    log.extend(agile_record(4, 5, &[(0x0c, vec![1; 48])], b""));
    assert_eq!(
        EventLog::parse(&log),
        Err(Error::UndeclaredAlgorithm {
            offset: at + 12,
            algorithm: AlgorithmId::SHA384
        })
    );
    // One bank twice.
    let mut log = header(&[SHA1, SHA256]);
    log.extend(agile_record(
        4,
        5,
        &[(0x04, vec![1; 20]), (0x04, vec![1; 20])],
        b"",
    ));
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::MalformedRecord { offset, .. }) if offset == at + 12 + 22
    ));
    // A subset is accepted, and the bank it lacks is not replayed.
    let mut log = header(&[SHA1, SHA256]);
    log.extend(agile_record(4, 5, &[(0x0b, vec![1; 32])], b""));
    let parsed = EventLog::parse(&log).unwrap();
    let replay = parsed.replay();
    assert_eq!(replay.banks().len(), 1);
    assert_eq!(replay.incomplete_banks(), &[AlgorithmId::SHA1]);
}

#[test]
fn pcr_indices() {
    let mut log = valid();
    let second = log.len() - agile_record(4, 0x8000_0007, &digests(0xaa), b"action").len();
    log[second] = 24;
    assert_eq!(
        EventLog::parse(&log),
        Err(Error::PcrIndexOutOfRange {
            offset: second,
            index: 24
        })
    );
    // EV_NO_ACTION may name any index; it is not extended.
    let mut log = valid();
    log.extend(agile_record(0xffff_ffff, 3, &digests(0), b"Windows data"));
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(parsed.events().last().unwrap().pcr(), None);
    assert_eq!(
        parsed.events().last().unwrap().event_type(),
        EventType::EV_NO_ACTION
    );
    assert_eq!(parsed.replay(), EventLog::parse(&valid()).unwrap().replay());
}

#[test]
fn startup_locality_rules() {
    let measure0 = agile_record(0, 8, &digests(2), b"");
    let locality = |l: u8| agile_record(0, 3, &digests(0), &startup_locality(l));
    // After a PCR 0 measurement.
    let mut log = header(&[SHA1, SHA256]);
    log.extend(&measure0);
    log.extend(locality(3));
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::MalformedRecord { .. })
    ));
    // Twice.
    let mut log = header(&[SHA1, SHA256]);
    log.extend(locality(3));
    log.extend(locality(3));
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::MalformedRecord { .. })
    ));
    // Locality 5.
    let mut log = header(&[SHA1, SHA256]);
    log.extend(locality(5));
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::MalformedRecord { .. })
    ));
    // In PCR 1.
    let mut log = header(&[SHA1, SHA256]);
    log.extend(agile_record(1, 3, &digests(0), &startup_locality(3)));
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::MalformedRecord { .. })
    ));
    // 18 bytes of data.
    let mut data = startup_locality(3);
    data.push(0);
    let mut log = header(&[SHA1, SHA256]);
    log.extend(agile_record(0, 3, &digests(0), &data));
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::MalformedRecord { .. })
    ));
}

#[test]
fn trailing_bytes() {
    for fill in [0u8, 0xff] {
        let mut log = valid();
        let end = log.len();
        log.extend([fill; 7]);
        assert_eq!(
            EventLog::parse(&log),
            Err(Error::TrailingBytes {
                offset: end,
                count: 7
            })
        );
    }
    // Other left-over bytes are an incomplete record.
    let mut log = valid();
    log.extend([1, 2, 3]);
    assert!(matches!(
        EventLog::parse(&log),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn sha1_format() {
    let mut log = sha1_record(0, 8, &[1; 20], b"v\0e\0r\0");
    log.extend(sha1_record(7, 4, &[2; 20], &[0; 4]));
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(parsed.events().len(), 2);
    assert_eq!(parsed.banks(), vec![AlgorithmId::SHA1]);
    assert_eq!(parsed.to_bytes(), log);
    // A measured record for PCR 30.
    let mut bad = log.clone();
    let second = 32 + 6;
    bad[second] = 30;
    assert!(matches!(
        EventLog::parse(&bad),
        Err(Error::PcrIndexOutOfRange { index: 30, .. })
    ));
}

#[test]
fn ccel_rules() {
    let mut log = header(&[(0x0c, 48)]);
    log[0] = 1;
    log.extend(agile_record(
        1,
        0x8000_000a,
        &[(0x0c, vec![3; 48])],
        &[0; 17],
    ));
    let unpadded = log.clone();
    log.extend([0xff; 100]);
    let ccel = CcelLog::parse(&log).unwrap();
    assert_eq!(ccel.padding_len(), 100);
    assert_eq!(ccel.to_bytes(), unpadded);
    assert_eq!(ccel.replay_rtmrs().len(), 1);
    // MR index 0 (MRTD) for a measured event.
    let mut bad = unpadded.clone();
    let second = bad.len() - agile_record(1, 0x8000_000a, &[(0x0c, vec![3; 48])], &[0; 17]).len();
    bad[second] = 0;
    assert_eq!(
        CcelLog::parse(&bad),
        Err(Error::MrIndexOutOfRange {
            offset: second,
            index: 0
        })
    );
    // Zero padding is not CCEL padding.
    let mut zeros = unpadded.clone();
    zeros.extend([0; 10]);
    assert!(matches!(
        CcelLog::parse(&zeros),
        Err(Error::TrailingBytes { count: 10, .. })
    ));
    // A SHA-1-format log is not a CCEL.
    assert!(matches!(
        CcelLog::parse(&sha1_record(1, 8, &[1; 20], b"")),
        Err(Error::InvalidHeader { .. })
    ));
}

#[test]
fn event_data_decoding_errors_name_the_type_and_offset() {
    let mut log = header(&[SHA1, SHA256]);
    let at = log.len();
    log.extend(agile_record(4, 4, &digests(1), &[0, 0, 0])); // separator of 3 bytes
    let parsed = EventLog::parse(&log).unwrap();
    let e = &parsed.events()[1];
    let err = e.decode_unverified_data().unwrap_err();
    assert_eq!(
        err,
        Error::MalformedEventData {
            offset: at + 8 + 4 + 2 + 20 + 2 + 32 + 4,
            event_type: EventType::EV_SEPARATOR,
            expected: "a 4-byte separator value",
        }
    );
    assert!(err.to_string().contains("EV_SEPARATOR"));
}
