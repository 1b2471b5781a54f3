//! Policy digests computed in software (Part 3 §23.7 TPM2_PolicyPCR).

use super::pcr::{PcrSelectionList, PcrValues};
use super::types::{Digest, HashAlg};
use crate::error::{Error, Result};

/// TPM_CC_PolicyPCR.
pub const TPM_CC_POLICY_PCR: u32 = 0x0000_017f;

/// The policy digest after TPM2_PolicyPCR over `selection` with the given
/// PCR values:
/// `H(previous || TPM_CC_PolicyPCR (u32 BE) || TPML_PCR_SELECTION ||
/// H(selected values concatenated in selection order))`, all with the
/// session's hash `alg`. `previous` is the digest before this assertion;
/// `None` is the start of a policy (all zeros).
pub fn policy_pcr(
    alg: HashAlg,
    previous: Option<&Digest>,
    selection: &PcrSelectionList,
    values: &PcrValues,
) -> Result<Digest> {
    let pcr_digest = selection.pcr_digest(alg, values)?;
    policy_pcr_with_digest(alg, previous, selection, &pcr_digest)
}

/// As [`policy_pcr`], given the PCR digest itself (e.g. a quote's
/// pcrDigest over the same selection, hashed with `alg`).
pub fn policy_pcr_with_digest(
    alg: HashAlg,
    previous: Option<&Digest>,
    selection: &PcrSelectionList,
    pcr_digest: &Digest,
) -> Result<Digest> {
    let zeros = [0u8; 64];
    let previous = match previous {
        Some(p) if p.len() == alg.digest_size() => p.as_bytes(),
        Some(p) => {
            return Err(Error::InvalidLength {
                what: "previous policy digest",
                expected: alg.digest_size(),
                found: p.len(),
            })
        }
        None => zeros.get(..alg.digest_size()).unwrap_or(&zeros),
    };
    if pcr_digest.len() != alg.digest_size() {
        return Err(Error::InvalidLength {
            what: "PolicyPCR pcrDigest",
            expected: alg.digest_size(),
            found: pcr_digest.len(),
        });
    }
    alg.hash(&[
        previous,
        &TPM_CC_POLICY_PCR.to_be_bytes(),
        &selection.to_bytes(),
        pcr_digest.as_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PcrIndex;

    #[test]
    fn fresh_policy_starts_at_zeros() {
        // The swtpm trial-session vector is in tests/tpm_vectors.rs; here:
        // no previous digest means all zeros, and a wrong size is refused.
        let sel =
            PcrSelectionList::single(HashAlg::Sha256, [0u8, 1].map(|i| PcrIndex::new(i).unwrap()));
        let mut v = PcrValues::new();
        v.insert(HashAlg::Sha256, PcrIndex::new(0).unwrap(), &[0; 32])
            .unwrap();
        v.insert(HashAlg::Sha256, PcrIndex::new(1).unwrap(), &[0; 32])
            .unwrap();
        let a = policy_pcr(HashAlg::Sha256, None, &sel, &v).unwrap();
        let b = policy_pcr(
            HashAlg::Sha256,
            Some(&Digest::new(&[0; 32]).unwrap()),
            &sel,
            &v,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert!(matches!(
            policy_pcr(
                HashAlg::Sha256,
                Some(&Digest::new(&[0; 20]).unwrap()),
                &sel,
                &v
            ),
            Err(Error::InvalidLength { .. })
        ));
    }
}
