//! The PE/COFF parser and Authenticode: generated images hash as an
//! independent reference says; each broken field gives one error kind; UKI
//! section handling. (Real images: `pesign -h` in verifier/tests/predict_tools.rs.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/pebuild.rs"]
mod pebuild;

use pebuild::*;
use proptest::prelude::*;
use provenix_measured_boot::pe::{PeFormat, PeImage};
use provenix_measured_boot::predict::{SystemdStub, Uki, UkiSection};
use provenix_measured_boot::{Error, HashAlgorithm};

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn sample() -> Pe {
    Pe {
        sections: vec![
            Sec::new(".text", &[0x90; 700]),
            Sec::new(".data", b"data"),
            Sec::new(".bss", b""),
        ],
        trailing: b"trailing bytes".to_vec(),
        certificates: Some(vec![0xa5; 40]),
        checksum: 0x1234,
    }
}

#[test]
fn sample_parses_and_hashes_like_the_reference() {
    let pe = sample();
    let bytes = pe.build();
    let img = PeImage::parse(&bytes).unwrap();
    assert_eq!(img.format(), PeFormat::Pe32Plus);
    assert_eq!(img.machine(), 0x8664);
    assert_eq!(img.sections().len(), 3);
    assert_eq!(img.section(b".data").unwrap().virtual_size(), 4);
    assert_eq!(&img.raw_data(img.section(b".data").unwrap())[..4], b"data");
    assert_eq!(img.data_directories().len(), 16);
    let (cert_at, cert_len) = img.certificate_table().unwrap();
    assert_eq!(cert_at + cert_len, bytes.len());
    assert_eq!(
        img.authenticode(HashAlgorithm::Sha256).unwrap().as_bytes(),
        pe.reference_authenticode(&bytes)
    );
}

#[test]
fn checksum_and_certificates_do_not_change_the_hash() {
    let mut a = sample();
    let h = |pe: &Pe| {
        PeImage::parse(&pe.build())
            .unwrap()
            .authenticode(HashAlgorithm::Sha256)
            .unwrap()
    };
    let base = h(&a);
    a.checksum = 0xdead_beef;
    assert_eq!(h(&a), base);
    a.certificates = Some(vec![1; 8]);
    assert_eq!(h(&a), base);
    a.trailing.push(1);
    assert_ne!(h(&a), base);
}

proptest! {
    #[test]
    fn authenticode_matches_reference(
        sections in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..1500), "[.a-z]{1,8}"), 0..5),
        trailing in prop::collection::vec(any::<u8>(), 0..40),
        certs in prop::option::of(prop::collection::vec(any::<u8>(), 1..64)),
        checksum in any::<u32>(),
    ) {
        let pe = Pe {
            sections: sections.iter().map(|(d, n)| Sec::new(n, d)).collect(),
            trailing,
            certificates: certs,
            checksum,
        };
        let bytes = pe.build();
        let img = PeImage::parse(&bytes).unwrap();
        let ours = img.authenticode(HashAlgorithm::Sha256).unwrap();
        prop_assert_eq!(ours.as_bytes(), pe.reference_authenticode(&bytes));
        for alg in HashAlgorithm::ALL {
            prop_assert_eq!(img.authenticode(alg).unwrap().algorithm(), alg.id());
        }
    }
}

/// Breaks one field of the sample and expects one error kind at one offset.
fn broken(edit: impl FnOnce(&mut Vec<u8>)) -> Error {
    let mut b = sample().build();
    edit(&mut b);
    PeImage::parse(&b).unwrap_err()
}

#[test]
fn one_broken_field_one_error() {
    let (headers, offsets) = sample().layout();
    let cases: Vec<(&str, Error)> = vec![
        ("no MZ", broken(|b| b[0] = b'X')),
        (
            "e_lfanew past the end",
            broken(|b| put_u32(b, E_LFANEW, 0x7fff_0000)),
        ),
        ("PE signature", broken(|b| b[PE + 1] = b'X')),
        (
            "97 sections",
            broken(|b| put_u16(b, NUMBER_OF_SECTIONS, 97)),
        ),
        ("magic", broken(|b| put_u16(b, OPT, 0x10c))),
        (
            "optional header too small",
            broken(|b| put_u16(b, SIZE_OF_OPTIONAL_HEADER, 100)),
        ),
        (
            "17 directories",
            broken(|b| put_u32(b, NUMBER_OF_RVA_AND_SIZES, 17)),
        ),
        (
            "directories beyond the optional header",
            broken(|b| put_u16(b, SIZE_OF_OPTIONAL_HEADER, 120)),
        ),
        (
            "SizeOfHeaders past the end",
            broken(|b| put_u32(b, SIZE_OF_HEADERS, 0x10_0000)),
        ),
        (
            "SizeOfHeaders inside the section table",
            broken(|b| put_u32(b, SIZE_OF_HEADERS, SECTION_TABLE as u32 + 8)),
        ),
        (
            "section past the end",
            broken(|b| put_u32(b, SECTION_TABLE + 16, 0x10_0000)),
        ),
        (
            "section inside the headers",
            broken(|b| put_u32(b, SECTION_TABLE + 20, 0x100)),
        ),
        (
            "overlapping sections",
            broken(|b| put_u32(b, SECTION_TABLE + 40 + 20, offsets[0] as u32 + 0x200)),
        ),
        (
            "certificates not at the end",
            broken(|b| {
                let n = b.len();
                put_u32(b, CERT_DIRECTORY + 4, 8);
                let _ = n;
            }),
        ),
        (
            "certificates without an offset",
            broken(|b| put_u32(b, CERT_DIRECTORY, 0)),
        ),
        (
            "certificates over section data",
            broken(|b| {
                let size = (b.len() - headers) as u32;
                put_u32(b, CERT_DIRECTORY, headers as u32);
                put_u32(b, CERT_DIRECTORY + 4, size);
            }),
        ),
    ];
    let kinds: Vec<(&str, &str, Option<usize>)> = cases
        .iter()
        .map(|(name, e)| {
            let kind = match e {
                Error::NotPe { .. } => "NotPe",
                Error::MalformedPe { .. } => "MalformedPe",
                Error::Truncated { .. } => "Truncated",
                other => panic!("{name}: unexpected {other:?}"),
            };
            (*name, kind, e.offset())
        })
        .collect();
    let expected = [
        ("no MZ", "NotPe", Some(0)),
        ("e_lfanew past the end", "Truncated", None),
        ("PE signature", "NotPe", Some(PE)),
        ("97 sections", "MalformedPe", Some(NUMBER_OF_SECTIONS)),
        ("magic", "MalformedPe", Some(OPT)),
        (
            "optional header too small",
            "MalformedPe",
            Some(SIZE_OF_OPTIONAL_HEADER),
        ),
        (
            "17 directories",
            "MalformedPe",
            Some(NUMBER_OF_RVA_AND_SIZES),
        ),
        (
            "directories beyond the optional header",
            "MalformedPe",
            Some(SIZE_OF_OPTIONAL_HEADER),
        ),
        (
            "SizeOfHeaders past the end",
            "MalformedPe",
            Some(SIZE_OF_HEADERS),
        ),
        (
            "SizeOfHeaders inside the section table",
            "MalformedPe",
            Some(SIZE_OF_HEADERS),
        ),
        (
            "section past the end",
            "MalformedPe",
            Some(SECTION_TABLE + 16),
        ),
        (
            "section inside the headers",
            "MalformedPe",
            Some(SECTION_TABLE + 20),
        ),
        ("overlapping sections", "MalformedPe", None),
        (
            "certificates not at the end",
            "MalformedPe",
            Some(CERT_DIRECTORY),
        ),
        (
            "certificates without an offset",
            "MalformedPe",
            Some(CERT_DIRECTORY),
        ),
        (
            "certificates over section data",
            "MalformedPe",
            Some(CERT_DIRECTORY),
        ),
    ];
    for ((name, kind, offset), (ename, ekind, eoffset)) in kinds.iter().zip(expected) {
        assert_eq!((*name, *kind), (ename, ekind), "{name}");
        if let Some(o) = eoffset {
            assert_eq!(*offset, Some(o), "{name}");
        }
    }
    // Every error names an offset inside the input and reads as a sentence.
    for (name, e) in &cases {
        let len = sample().build().len();
        assert!(e.offset().unwrap() <= len, "{name}: {e}");
        assert!(e.to_string().starts_with("byte "), "{name}: {e}");
    }
}

#[test]
fn truncations() {
    let bytes = sample().build();
    for cut in [1, 2, 63, 64, PE + 2, OPT + 1, SECTION_TABLE + 10] {
        let e = PeImage::parse(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(e, Error::Truncated { .. } | Error::NotPe { .. }),
            "cut {cut}: {e:?}"
        );
    }
}

fn uki(sections: Vec<Sec>) -> Vec<u8> {
    Pe {
        sections,
        ..Pe::default()
    }
    .build()
}

#[test]
fn uki_sections_in_systemd_order() {
    let kernel = tiny_kernel();
    // Table order differs from measurement order; .sbat and .sdmagic are
    // in every stub.
    let bytes = uki(vec![
        Sec::new(".sdmagic", &sdmagic("252.39-1~deb12u2")),
        Sec::new(".sbat", b"sbat,1\n"),
        Sec::new(".initrd", b"initrd"),
        Sec::new(".cmdline", b" console=ttyS0\tquiet\n"),
        Sec::new(".osrel", b"ID=x\n"),
        Sec::new(".linux", &kernel),
        Sec::new(".empty", b""),
    ]);
    let u = Uki::parse(&bytes, None).unwrap();
    assert_eq!(u.stub(), SystemdStub::from_major(252));
    assert_eq!(u.stub_version(), Some("252.39-1~deb12u2"));
    let names: Vec<&str> = u
        .measured_sections()
        .iter()
        .map(|(k, _)| k.name())
        .collect();
    assert_eq!(names, [".linux", ".osrel", ".cmdline", ".initrd"]);
    assert_eq!(u.section(UkiSection::Linux).unwrap(), kernel.as_slice());
    // systemd 252 keeps leading whitespace, 255+ drops it.
    assert_eq!(
        u.cmdline().unwrap().as_deref(),
        Some(" console=ttyS0 quiet")
    );
    assert_eq!(
        u.kernel()
            .unwrap()
            .authenticode(HashAlgorithm::Sha256)
            .unwrap(),
        PeImage::parse(&kernel)
            .unwrap()
            .authenticode(HashAlgorithm::Sha256)
            .unwrap()
    );
    let modern = Uki::parse(&bytes, Some(SystemdStub::from_major(257))).unwrap();
    let names: Vec<&str> = modern
        .measured_sections()
        .iter()
        .map(|(k, _)| k.name())
        .collect();
    assert_eq!(names, [".linux", ".osrel", ".cmdline", ".initrd", ".sbat"]);
    let v257 = uki(vec![
        Sec::new(".sdmagic", &sdmagic("257.9")),
        Sec::new(".linux", &kernel),
        Sec::new(".sbat", b"sbat,1\n"),
    ]);
    assert_eq!(
        Uki::parse(&v257, None).unwrap().stub(),
        SystemdStub::from_major(257)
    );
}

#[test]
fn unsupported_ukis_are_refused() {
    let kernel = tiny_kernel();
    let magic = Sec::new(".sdmagic", &sdmagic("255.1"));
    let cases: Vec<(&str, Vec<Sec>, Option<SystemdStub>)> = vec![
        (
            "no .linux",
            vec![magic.clone(), Sec::new(".cmdline", b"x")],
            None,
        ),
        ("no .sdmagic", vec![Sec::new(".linux", &kernel)], None),
        (
            "twice",
            vec![
                magic.clone(),
                Sec::new(".linux", &kernel),
                Sec::new(".linux", &kernel),
            ],
            None,
        ),
        (
            "profile",
            vec![
                magic.clone(),
                Sec::new(".linux", &kernel),
                Sec::new(".profile", b"ID=a"),
            ],
            None,
        ),
        (
            "ucode",
            vec![
                magic.clone(),
                Sec::new(".linux", &kernel),
                Sec::new(".ucode", b"u"),
            ],
            None,
        ),
        (
            "pcrsig",
            vec![
                magic.clone(),
                Sec::new(".linux", &kernel),
                Sec::new(".pcrsig", b"{}"),
            ],
            None,
        ),
        (
            "virtual size",
            vec![
                magic.clone(),
                Sec::new(".linux", &kernel),
                Sec {
                    virtual_size: Some(0x10_0000),
                    ..Sec::new(".initrd", b"i")
                },
            ],
            None,
        ),
    ];
    for (name, sections, stub) in cases {
        let bytes = uki(sections);
        match Uki::parse(&bytes, stub) {
            Err(Error::UnsupportedUki { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    // The stub generation can be given when .sdmagic is missing.
    let bytes = uki(vec![Sec::new(".linux", &kernel)]);
    assert!(Uki::parse(&bytes, Some(SystemdStub::from_major(257))).is_ok());
    // A non-ASCII command line is refused when asked for.
    let bytes = uki(vec![
        magic,
        Sec::new(".linux", &kernel),
        Sec::new(".cmdline", "é".as_bytes()),
    ]);
    assert!(matches!(
        Uki::parse(&bytes, None).unwrap().cmdline(),
        Err(Error::UnsupportedUki { .. })
    ));
}
