//! Quote verification speed: `provenix quote verify`'s checks in process,
//! against a bare P-256 ECDSA verify of the same signature. The quote files
//! come from `scripts/bench-quote.sh` (tpm2_quote on swtpm), which also
//! times `tpm2_checkquote` on them in the same run.
//!
//! Run: `QUOTE_DIR=DIR cargo bench -p provenix-verifier --bench quote`
//! (DIR holds ak.tpm2b, q.msg, q.sig, q.pcrs and nonce.hex).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use provenix_protocol::tpm::{
    verify_attest, AttestType, HashAlg, PcrValues, Public, PublicKey, Signature,
};
use sha2::Digest as _;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median seconds per call of `f` over `rounds` rounds of `n` calls.
fn time(rounds: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let mut per = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        per.push(t.elapsed().as_secs_f64() / n as f64);
    }
    median(per)
}

fn main() {
    let Ok(dir) = std::env::var("QUOTE_DIR") else {
        eprintln!("set QUOTE_DIR (scripts/bench-quote.sh does)");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let ak_bytes = read("ak.tpm2b");
    let msg = read("q.msg");
    let sig_bytes = read("q.sig");
    let pcr_bytes = read("q.pcrs");
    let nonce = String::from_utf8(read("nonce.hex")).unwrap();
    let nonce = provenix_protocol::encoding::hex_decode(nonce.trim(), 64).unwrap();

    // Everything `provenix quote verify` checks, from the files' bytes.
    let full = || {
        let ak = Public::from_tpm2b_bytes(&ak_bytes).unwrap();
        let sig = Signature::from_bytes(&sig_bytes).unwrap();
        let (sel, values) = PcrValues::from_tpm2_tools_serialized(&pcr_bytes).unwrap();
        let a = verify_attest(&ak, &msg, &sig, AttestType::Quote).unwrap();
        assert_eq!(a.extra_data.as_bytes(), nonce.as_slice());
        let q = a.quote().unwrap();
        assert_eq!(q.pcr_select.banks(), sel.banks());
        q.check_pcr_values(HashAlg::Sha256, &values).unwrap();
    };
    // A bare P-256 verify of the same signature over the same message.
    let ak = Public::from_tpm2b_bytes(&ak_bytes).unwrap();
    let PublicKey::Ecc { point, .. } = &ak.key else {
        panic!("an ECC AK")
    };
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(point.x.as_bytes());
    sec1.extend_from_slice(point.y.as_bytes());
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let Signature::EcDsa { r, s, .. } = Signature::from_bytes(&sig_bytes).unwrap() else {
        panic!("an ECDSA signature")
    };
    let sig = p256::ecdsa::Signature::from_scalars(
        <[u8; 32]>::try_from(r.as_bytes()).unwrap(),
        <[u8; 32]>::try_from(s.as_bytes()).unwrap(),
    )
    .unwrap();
    // The same through the portable p256 crate (what a no_std verifier has).
    let portable = || {
        let digest = sha2::Sha256::digest(&msg);
        key.verify_prehash(&digest, &sig).unwrap();
    };
    // A bare verify by the fastest implementation here (ring), the same one
    // `provenix` uses for this curve and hash: the floor.
    let fixed = sig.to_bytes();
    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        sec1.clone(),
    );
    let bare = || ring_key.verify(&msg, &fixed).unwrap();
    full();
    bare();
    portable();
    let t_full = time(9, 2000, full);
    let t_bare = time(9, 2000, bare);
    let t_portable = time(9, 500, portable);
    println!(
        "BENCH quote verify in process: {:.1} us per quote ({:.0} quotes/s per core)",
        t_full * 1e6,
        1.0 / t_full
    );
    println!(
        "BENCH bare P-256 verify (hash + ECDSA, ring): {:.1} us; quote verify / bare = {:.2}x",
        t_bare * 1e6,
        t_full / t_bare
    );
    println!(
        "BENCH the same P-256 verify in the portable p256 crate: {:.1} us",
        t_portable * 1e6
    );
    println!("BENCH seconds {t_full:.9} {t_bare:.9}");
}
