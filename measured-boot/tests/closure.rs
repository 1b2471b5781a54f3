//! Closure manifests (`nix path-info --json --recursive`, both forms) and
//! the system prediction built from content hashes. Real Nix output is
//! exercised in verifier/tests/predict_closure.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use provenix_measured_boot::predict::closure::predict_system;
use provenix_measured_boot::predict::ClosureManifest;
use provenix_measured_boot::Error;
use provenix_protocol::hash::{NarHash, Sha256Digest};
use provenix_protocol::system::{ClosurePath, MeasurementMode};
use provenix_protocol::{StorePath, SystemIdentity};
use serde_json_alloc::{json, Value};

const TOP: &str = "/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello";
const LIB: &str = "/nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev";
const DEP: &str = "/nix/store/fmf8731hf6vl8p1jly0qn7xc50msji5k-dependent";

fn hash(b: u8) -> NarHash {
    NarHash(Sha256Digest([b; 32]))
}

/// Nix 2.8's array form, hashes in SRI form.
fn array_form() -> Value {
    json!([
        {"path": LIB, "narHash": hash(2).to_sri(), "narSize": 456, "references": [LIB],
         "deriver": "/nix/store/i9pjmvpsddnsz1b8aaip3kd5xk53f4kg-lib.drv", "registrationTime": 1, "ultimate": true},
        {"path": TOP, "narHash": hash(1).to_sri(), "narSize": 128, "references": [LIB, DEP], "valid": true},
        {"path": DEP, "narHash": hash(3).to_nix_string(), "narSize": 64, "references": []},
    ])
}

/// Newer Nix's object form, keyed by path.
fn object_form() -> Value {
    let mut m = serde_json_alloc::Map::new();
    for e in array_form().as_array().unwrap() {
        let mut e = e.clone();
        let path = e.as_object_mut().unwrap().remove("path").unwrap();
        m.insert(path.as_str().unwrap().to_string(), e);
    }
    Value::Object(m)
}

fn parse(v: &Value) -> Result<ClosureManifest, Error> {
    ClosureManifest::parse(v.to_string().as_bytes())
}

fn measured(hashes: [(u8, u64); 3]) -> Vec<ClosurePath> {
    [TOP, LIB, DEP]
        .iter()
        .zip(hashes)
        .map(|(p, (b, s))| ClosurePath {
            path: StorePath::parse(p).unwrap(),
            nar_hash: hash(b),
            nar_size: s,
        })
        .collect()
}

#[test]
fn both_forms_read_alike() {
    let a = parse(&array_form()).unwrap();
    let o = parse(&object_form()).unwrap();
    assert_eq!(a, o);
    assert_eq!(a.entries().len(), 3);
    assert_eq!(a.toplevel().unwrap().as_str(), TOP);
    let top = a.get(&StorePath::parse(TOP).unwrap()).unwrap();
    assert_eq!((top.nar_hash, top.nar_size), (hash(1), 128));
    let dep = a.get(&StorePath::parse(DEP).unwrap()).unwrap();
    assert_eq!(dep.nar_hash, hash(3), "sha256:<nix32> form");
}

#[test]
fn identity_comes_from_content_and_mismatches_are_reported() {
    let m = parse(&array_form()).unwrap();
    let top = StorePath::parse(TOP).unwrap();
    let honest = measured([(1, 128), (2, 456), (3, 64)]);
    let p = predict_system(&m, &top, MeasurementMode::ContentRehash, &honest).unwrap();
    assert!(p.mismatches().is_empty());
    assert_eq!(p.paths(), 3);
    let direct =
        SystemIdentity::from_closure(top.clone(), MeasurementMode::ContentRehash, &honest).unwrap();
    assert_eq!(p.measurement().identity(), &direct);
    assert_eq!(p.measurement().digest(), direct.digest().unwrap());

    // LIB's content differs from the manifest: reported, and the identity
    // follows the content, not the manifest.
    let tampered = measured([(1, 128), (9, 456), (3, 64)]);
    let t = predict_system(&m, &top, MeasurementMode::ContentRehash, &tampered).unwrap();
    assert_eq!(t.mismatches().len(), 1);
    assert_eq!(t.mismatches()[0].path.as_str(), LIB);
    assert_eq!(t.mismatches()[0].manifest, (hash(2), 456));
    assert_eq!(t.mismatches()[0].content, (hash(9), 456));
    assert_ne!(t.measurement().digest(), p.measurement().digest());

    let verity = MeasurementMode::DmVerity {
        root_hash: Sha256Digest([7; 32]),
    };
    let v = predict_system(&m, &top, verity, &honest).unwrap();
    assert_ne!(v.measurement().digest(), p.measurement().digest());
}

#[test]
fn measured_set_must_be_the_manifest() {
    let m = parse(&array_form()).unwrap();
    let top = StorePath::parse(TOP).unwrap();
    let mut short = measured([(1, 128), (2, 456), (3, 64)]);
    short.pop();
    let mut twice = measured([(1, 128), (2, 456), (3, 64)]);
    twice[2] = twice[1].clone();
    for bad in [short, twice] {
        assert!(matches!(
            predict_system(&m, &top, MeasurementMode::ContentRehash, &bad),
            Err(Error::Closure { .. })
        ));
    }
    let stranger =
        StorePath::parse("/nix/store/v1kz7qm058x72gf2x97ab5zd0l23hkh5-toplevel").unwrap();
    assert!(matches!(
        predict_system(
            &m,
            &stranger,
            MeasurementMode::ContentRehash,
            &measured([(1, 128), (2, 456), (3, 64)])
        ),
        Err(Error::Closure { .. })
    ));
}

/// Breaks one field of the array form's entry 1 (the toplevel).
fn broken(field: &str, value: Option<Value>) -> Error {
    let mut v = array_form();
    let e = v[1].as_object_mut().unwrap();
    match value {
        Some(x) => {
            e.insert(field.into(), x);
        }
        None => {
            e.remove(field);
        }
    }
    parse(&v).unwrap_err()
}

#[test]
fn one_broken_field_one_error() {
    let field_err = |e: Error| match e {
        Error::ManifestField { entry, field, .. } => (entry, field),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field_err(broken("path", Some(json!("/tmp/x")))),
        (1, "path")
    );
    assert_eq!(field_err(broken("path", None)), (1, "path"));
    assert_eq!(
        field_err(broken("narHash", Some(json!("md5:abc")))),
        (1, "narHash")
    );
    assert_eq!(
        field_err(broken("narHash", Some(json!("sha256-short")))),
        (1, "narHash")
    );
    assert_eq!(field_err(broken("narHash", None)), (1, "narHash"));
    assert_eq!(
        field_err(broken("narSize", Some(json!(-1)))),
        (1, "narSize")
    );
    assert_eq!(field_err(broken("narSize", None)), (1, "narSize"));
    assert_eq!(
        field_err(broken("references", Some(json!("x")))),
        (1, "references")
    );
    assert_eq!(
        field_err(broken("references", Some(json!(["/tmp/x"])))),
        (1, "references")
    );
    assert_eq!(field_err(broken("references", None)), (1, "references"));
    assert_eq!(field_err(broken("valid", Some(json!(false)))), (1, "valid"));

    let mut o = object_form();
    o[TOP] = Value::Null;
    assert!(matches!(
        parse(&o),
        Err(Error::ManifestField {
            field: "(value)",
            ..
        })
    ));
    let mut o = object_form();
    let entry = o.as_object_mut().unwrap().remove(TOP).unwrap();
    o.as_object_mut()
        .unwrap()
        .insert("not-a-path".into(), entry);
    assert!(matches!(
        parse(&o),
        Err(Error::ManifestField { field: "(key)", .. })
    ));

    // The manifest as a whole.
    let closure = |v: Value| matches!(parse(&v), Err(Error::Closure { .. }));
    let mut twice = array_form();
    let first = twice[0].clone();
    twice.as_array_mut().unwrap().push(first);
    assert!(closure(twice), "a path twice");
    let mut dangling = array_form();
    dangling[2]["references"] = json!(["/nix/store/v1kz7qm058x72gf2x97ab5zd0l23hkh5-toplevel"]);
    assert!(closure(dangling), "a reference outside the closure");
    assert!(matches!(
        parse(&json!("x")),
        Err(Error::ManifestJson { .. })
    ));
    assert!(matches!(
        ClosureManifest::parse(b"[{\"path\": 1, \"path\": 2}]"),
        Err(Error::ManifestJson { .. })
    ));
    // Two roots: no toplevel can be inferred.
    let mut two_roots = array_form();
    two_roots[1]["references"] = json!([LIB]);
    assert!(matches!(
        parse(&two_roots).unwrap().toplevel(),
        Err(Error::Closure { .. })
    ));
}
