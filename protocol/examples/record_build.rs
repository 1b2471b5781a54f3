//! What the agent does for one build, with a software key (demo only: the
//! agent derives its signing key SK inside the TPM, see DESIGN.md).
//!
//! ```text
//! cargo run -p provenix-protocol --example record_build -- \
//!     --store-root ROOT --drv /nix/store/…-x.drv --key-seed FILE --out BUNDLE \
//!     [--ref OUTPUT=/nix/store/…]...
//! ```
//! Reads the `.drv` from a chroot store at ROOT, computes `drv_hash`
//! (hashDerivationModulo) and checks the output paths written in the file
//! against it, hashes every output and every direct input from content,
//! builds an Entry, signs it and writes its leaves as a tlog-tiles entry
//! bundle. `--ref out=PATH` lists one reference of output `out` (the agent
//! will take references from the build). Prints the SK public key (hex) for `provenix entry show`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use provenix_protocol::drv::Derivation;
use provenix_protocol::leaf::encode_bundle;
use provenix_protocol::nar;
use provenix_protocol::system::{ClosurePath, MeasurementMode};
use provenix_protocol::{
    BuildEnv, BuilderId, DrvPath, Entry, EntryOutput, ResolvedInput, Sha256Digest, StorePath,
    SystemIdentity,
};

fn on_disk(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut root, mut drv, mut seed_file, mut out) = (None, None, None, None);
    let mut refs: std::collections::BTreeMap<String, BTreeSet<StorePath>> = Default::default();
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--store-root" => root = Some(PathBuf::from(v)),
            "--drv" => drv = Some(DrvPath::parse(&v)?),
            "--key-seed" => seed_file = Some(PathBuf::from(v)),
            "--out" => out = Some(PathBuf::from(v)),
            "--ref" => {
                let (output, path) = v.split_once('=').ok_or("--ref takes OUTPUT=PATH")?;
                refs.entry(output.to_owned())
                    .or_default()
                    .insert(StorePath::parse(path)?);
            }
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let root = root.ok_or("--store-root is required")?;
    let drv_path = drv.ok_or("--drv is required")?;
    let out = out.ok_or("--out is required")?;
    let seed_file = seed_file.ok_or("--key-seed is required")?;

    let read_drv = |p: &DrvPath| -> provenix_protocol::Result<Derivation> {
        let bytes = std::fs::read(on_disk(&root, p.as_str())).map_err(|source| {
            provenix_protocol::Error::Io {
                path: on_disk(&root, p.as_str()),
                source,
            }
        })?;
        Derivation::parse(&bytes)
    };
    let drv = read_drv(&drv_path)?;
    let hash = drv.hash_modulo(drv_path.drv_name(), &mut |p| read_drv(p))?;
    drv.check_output_paths(drv_path.drv_name(), &hash)?;
    println!("drv_hash (hashDerivationModulo): {}", hash.drv_hash());
    println!("output paths in the .drv: recomputed from drv_hash and equal");

    // Direct inputs: the used outputs of input derivations, and input sources.
    let mut inputs: BTreeSet<StorePath> = drv.input_srcs().clone();
    for (input, outputs) in drv.input_drvs() {
        let d = read_drv(input)?;
        for name in outputs {
            let p = d
                .outputs()
                .get(name)
                .and_then(|o| o.path())
                .ok_or("input output has no path")?;
            inputs.insert(p.clone());
        }
    }
    let input_list: Vec<StorePath> = inputs.into_iter().collect();
    let output_list: Vec<(String, StorePath)> = drv
        .outputs()
        .iter()
        .map(|(n, o)| {
            (
                n.clone(),
                o.path().cloned().expect("input-addressed output"),
            )
        })
        .collect();
    let disk: Vec<PathBuf> = input_list
        .iter()
        .chain(output_list.iter().map(|(_, p)| p))
        .map(|p| on_disk(&root, p.as_str()))
        .collect();
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    let sums = nar::hash_paths(&disk, jobs)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let (in_sums, out_sums) = sums.split_at(input_list.len());

    let seed: [u8; 32] = match std::fs::read(&seed_file) {
        Ok(b) => b.try_into().map_err(|_| "key seed must be 32 bytes")?,
        Err(_) => {
            let s = Sha256Digest::of(format!("{:?}", std::time::SystemTime::now()).as_bytes()).0;
            std::fs::write(&seed_file, s)?;
            s
        }
    };
    let sk = SigningKey::from_bytes(&seed);

    let outputs: Vec<EntryOutput> = output_list
        .iter()
        .zip(out_sums)
        .map(|((name, p), s)| EntryOutput {
            name: name.clone(),
            store_path: p.clone(),
            nar_hash: s.hash,
            nar_size: s.size,
            references: refs.get(name).into_iter().flatten().cloned().collect(),
        })
        .collect();
    let resolved_inputs: Vec<ResolvedInput> = input_list
        .iter()
        .zip(in_sums)
        .map(|(p, s)| ResolvedInput {
            store_path: p.clone(),
            nar_hash: s.hash,
        })
        .collect();
    // Stand-in for the booted system: the identity of the inputs' closure.
    let closure: Vec<ClosurePath> = resolved_inputs
        .iter()
        .zip(in_sums)
        .map(|(i, s)| ClosurePath {
            path: i.store_path.clone(),
            nar_hash: i.nar_hash,
            nar_size: s.size,
        })
        .collect();
    let system = SystemIdentity::from_closure(
        input_list.first().cloned().ok_or("no inputs")?,
        MeasurementMode::ContentRehash,
        &closure,
    )?;
    let mut entry = Entry {
        builder: BuilderId::from_public_digest(&Sha256Digest::of(sk.verifying_key().as_bytes())),
        seq: 0,
        drv_path,
        drv_hash: hash.drv_hash(),
        outputs,
        built_locally: false,
        build_env: BuildEnv {
            settings_digest: Sha256Digest::of(b"demo: settings not recorded"),
            sandbox: false,
            remote_builders: false,
        },
        resolved_inputs,
        source: None,
        system: system.digest()?,
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    };
    entry.normalize();
    let signed = entry.sign(&sk)?;
    let leaves = signed.to_leaves();
    std::fs::write(&out, encode_bundle(&leaves)?)?;
    println!(
        "signed entry: {} leaf/leaves, {} bytes, written to {}",
        leaves.len(),
        leaves.iter().map(Vec::len).sum::<usize>(),
        out.display()
    );
    println!(
        "SK public key: {}",
        provenix_protocol::encoding::hex_encode(sk.verifying_key().as_bytes())
    );
    Ok(())
}
