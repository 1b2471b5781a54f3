//! `provenix quote verify`: check a raw TPM quote from the files
//! `tpm2_quote` writes, as `tpm2_checkquote -g sha256 -q NONCE` does.
//!
//! ```text
//! AK (PEM SubjectPublicKeyInfo, TPM2B_PUBLIC or TPMT_PUBLIC)
//!   ─ TPMT_SIGNATURE over the message verifies ─ the message is a
//!   TPMS_ATTEST of type quote ─ extraData = the nonce ─ its PCR selection
//!   = the PCR file's ─ its PCR digest = H(the file's values)
//! ```
//! Exit 0: valid; 1: invalid (which check failed is printed); 2: an input
//! cannot be read or parsed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use provenix_protocol::encoding::{hex_decode, hex_encode};
use provenix_protocol::tpm::{
    verify_attest, AttestType, EccCurve, EccParameter, EccParams, EccPoint, EccScheme, HashAlg,
    KdfScheme, ObjectAttributes, PcrValues, Public, PublicKey, PublicKeyRsa, RsaParams, RsaScheme,
    Signature,
};

#[derive(Subcommand)]
pub(crate) enum QuoteCommand {
    /// Verify a TPM quote made by `tpm2_quote` (exit 0 valid, 1 invalid,
    /// 2 unreadable input).
    Verify {
        /// The AK's public key: PEM (as `tpm2_createak -f pem` writes it),
        /// or a TPM2B_PUBLIC / TPMT_PUBLIC (`tpm2_createak -u`).
        #[arg(long, value_name = "FILE")]
        ak: PathBuf,
        /// The quoted TPMS_ATTEST (`tpm2_quote --message`).
        #[arg(long, value_name = "FILE")]
        msg: PathBuf,
        /// The TPMT_SIGNATURE (`tpm2_quote --signature`).
        #[arg(long, value_name = "FILE")]
        sig: PathBuf,
        /// The PCR values (`tpm2_quote --pcr`, its default serialized form).
        #[arg(long, value_name = "FILE")]
        pcrs: PathBuf,
        /// The nonce (qualifying data) the quote must carry, in hex.
        #[arg(long, value_name = "HEX")]
        nonce: String,
        /// The hash the PCR digest is computed with.
        #[arg(long, default_value = "sha256", value_parser = ["sha256", "sha384", "sha512"])]
        hash: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The AK public key from PEM or TPM structures.
fn read_ak(path: &Path) -> anyhow::Result<Public> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") {
        let pem = std::str::from_utf8(&bytes).context("the PEM file is not text")?;
        return public_from_pem(pem)
            .with_context(|| format!("{}: not a public key", path.display()));
    }
    Public::from_tpm2b_bytes(&bytes)
        .or_else(|_| Public::from_bytes(&bytes))
        .with_context(|| {
            format!(
                "{}: neither PEM nor a TPM2B_PUBLIC / TPMT_PUBLIC",
                path.display()
            )
        })
}

/// A signing key's public area for a bare public key (SubjectPublicKeyInfo
/// PEM): scheme NULL, so the signature names its own scheme and hash.
fn public_from_pem(pem: &str) -> anyhow::Result<Public> {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    use p256::pkcs8::DecodePublicKey as _;
    let sign = ObjectAttributes::from_bits(ObjectAttributes::SIGN)?;
    let ecc = |curve, x: &[u8], y: &[u8]| -> anyhow::Result<PublicKey> {
        Ok(PublicKey::Ecc {
            params: EccParams {
                symmetric: None,
                scheme: EccScheme::Null,
                curve,
                kdf: KdfScheme::Null,
            },
            point: EccPoint {
                x: EccParameter::new(x)?,
                y: EccParameter::new(y)?,
            },
        })
    };
    let key = if let Ok(k) = p256::PublicKey::from_public_key_pem(pem) {
        let p = k.to_encoded_point(false);
        ecc(
            EccCurve::NistP256,
            p.x().map(|x| x.as_slice()).unwrap_or_default(),
            p.y().map(|y| y.as_slice()).unwrap_or_default(),
        )?
    } else if let Ok(k) = p384::PublicKey::from_public_key_pem(pem) {
        let p = k.to_encoded_point(false);
        ecc(
            EccCurve::NistP384,
            p.x().map(|x| x.as_slice()).unwrap_or_default(),
            p.y().map(|y| y.as_slice()).unwrap_or_default(),
        )?
    } else {
        use rsa::traits::PublicKeyParts as _;
        let k = rsa::RsaPublicKey::from_public_key_pem(pem)
            .map_err(|_| anyhow::anyhow!("not an RSA, P-256 or P-384 public key"))?;
        let e_bytes = k.e().to_bytes_be();
        if e_bytes.len() > 4 {
            anyhow::bail!("RSA exponent beyond 32 bits");
        }
        let e = e_bytes
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        let n = k.n().to_bytes_be();
        PublicKey::Rsa {
            params: RsaParams {
                symmetric: None,
                scheme: RsaScheme::Null,
                key_bits: u16::try_from(n.len() * 8).context("RSA modulus too long")?,
                exponent: if e == 65537 { 0 } else { e },
            },
            modulus: PublicKeyRsa::new(&n)?,
        }
    };
    Ok(Public {
        name_alg: HashAlg::Sha256,
        attributes: sign,
        auth_policy: provenix_protocol::tpm::Digest::new(&[])?,
        key,
    })
}

pub(crate) fn run(cmd: QuoteCommand) -> anyhow::Result<ExitCode> {
    let QuoteCommand::Verify {
        ak,
        msg,
        sig,
        pcrs,
        nonce,
        hash,
        json,
    } = cmd;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let key = read_ak(&ak)?;
    let message = read(&msg)?;
    let signature = Signature::from_bytes(&read(&sig)?)
        .with_context(|| format!("{}: not a TPMT_SIGNATURE", sig.display()))?;
    let (selection, values) = PcrValues::from_tpm2_tools_serialized(&read(&pcrs)?)
        .with_context(|| format!("{}: not a tpm2-tools PCR file", pcrs.display()))?;
    // TPM2B_DATA holds at most 64 bytes (a SHA-512 digest).
    let nonce = hex_decode(nonce.trim(), 64).context("--nonce")?;
    let hash = match hash.as_str() {
        "sha384" => HashAlg::Sha384,
        "sha512" => HashAlg::Sha512,
        _ => HashAlg::Sha256,
    };
    let refuse = |check: &str, why: String| -> anyhow::Result<ExitCode> {
        if json {
            println!(
                "{}",
                serde_json::json!({"valid": false, "check": check, "reason": why})
            );
        } else {
            println!("INVALID: {check}: {why}");
        }
        Ok(ExitCode::from(1))
    };
    let attest = match verify_attest(&key, &message, &signature, AttestType::Quote) {
        Ok(a) => a,
        Err(e) => return refuse("signature", e.to_string()),
    };
    if attest.extra_data.as_bytes() != nonce.as_slice() {
        return refuse(
            "nonce",
            format!(
                "the quote carries {}, not the nonce given",
                hex_encode(attest.extra_data.as_bytes())
            ),
        );
    }
    let quote = attest.quote()?;
    if quote.pcr_select.banks() != selection.banks() {
        return refuse(
            "pcr selection",
            format!(
                "the quote covers {:?}, the PCR file holds {:?}",
                quote.pcr_select.banks(),
                selection.banks()
            ),
        );
    }
    if let Err(e) = quote.check_pcr_values(hash, &values) {
        return refuse("pcr digest", e.to_string());
    }
    let banks: Vec<String> = selection
        .banks()
        .iter()
        .map(|(h, p)| format!("{h:?}:{:?}", p.iter().map(|i| i.get()).collect::<Vec<_>>()))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "valid": true,
                "signer": hex_encode(attest.qualified_signer.as_bytes()),
                "pcrs": banks,
                "clock": attest.clock_info.clock,
                "reset_count": attest.clock_info.reset_count,
                "restart_count": attest.clock_info.restart_count,
                "safe": attest.clock_info.safe,
                "firmware_version": format!("{:#018x}", attest.firmware_version),
            })
        );
    } else {
        println!("valid quote: signature, nonce, PCR selection and digest");
        println!("  PCRs      {}", banks.join(" "));
        println!(
            "  clock     {} ms (resets {}, restarts {}, safe {})",
            attest.clock_info.clock,
            attest.clock_info.reset_count,
            attest.clock_info.restart_count,
            attest.clock_info.safe
        );
        println!("  firmware  {:#018x}", attest.firmware_version);
    }
    Ok(ExitCode::SUCCESS)
}
