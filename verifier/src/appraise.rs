//! Appraisal of one builder's log: every attestation in it checked, step by
//! step, each failure its own error kind (DESIGN.md "Verifier").
//!
//! ```text
//! checkpoint ─ entry bundles, leaf by leaf (streaming: the Merkle tree is
//! kept as its right edge, entries go to the caller):
//!   Enrollment  AK attributes ─ LK and SK bindings: Certify of L / K by the
//!               AK (Name = H(public), extraData = key binding), a quote of
//!               the seal set (SHA-256, both ways) with the same extraData,
//!               K's authPolicy = PolicyPCR of that quote ─ the system from
//!               its CEL log; the firmware event log then the CEL log replay
//!               to that quote's PCR digest
//!   KeyRebinding  the new SK binding, checked the same way
//!   Entry       SK signature (verify_strict) ─ builder, seq = leaf index,
//!               system = the binding's system
//!   Batch       AK signature ─ extraData = batch nonce ─ leaf range and
//!               entries root ─ seal set ─ PCR digest = the SK binding
//!               quote's ─ counter strictly up ─ chain to the previous batch
//!               ─ clockInfo never backwards (per AK, in log order)
//! ─ root of all leaves = the checkpoint's ─ the checkpoint signed by LK
//!   under origin provenix/<AK Name> ─ consistent with the checkpoint seen
//!   before (its size's root recomputed on the way)
//! ```
//! The EK certificate, witnesses and the policy are `policy::Policy::admit`'s;
//! credential activation records are not checked yet (issue 6 continues).

use ed25519_dalek::VerifyingKey;
use provenix_measured_boot::CelLog;
use provenix_protocol::batch::BatchAttestation;
use provenix_protocol::binding::key_binding_digest;
use provenix_protocol::enrollment::{Enrollment, KeyBinding};
use provenix_protocol::leaf::{decode_bundle, LeafReader, Record};
use provenix_protocol::merkle::{leaf_hash, root, CompactTree};
use provenix_protocol::note::{Checkpoint, KeyName, Note, NoteVerifierKey};
use provenix_protocol::tiles::{bundles, TILE_WIDTH};
use provenix_protocol::tpm::{
    policy_pcr_with_digest, AttestType, ClockInfo, Digest, EccScheme, HashAlg, PcrSelectionList,
    Public, PublicKey, RsaScheme, Signature,
};
use provenix_protocol::{BuilderId, PcrIndex, Sha256Digest, SignedEntry};

use crate::source::{FetchError, LogSource};

/// Why a log was not accepted. Each check has its own kind.
#[derive(Debug, thiserror::Error)]
pub enum AppraisalError {
    /// A file could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Something does not parse.
    #[error("{at}: malformed: {reason}")]
    Malformed {
        /// Where.
        at: String,
        /// What.
        reason: String,
    },
    /// The first record is not an enrollment.
    #[error("the log does not start with an enrollment record")]
    NoEnrollment,
    /// The checkpoint is not signed by the enrolled LK under its origin.
    #[error("checkpoint: {0}")]
    CheckpointSignature(String),
    /// The leaves do not hash to the checkpoint's root.
    #[error("the leaves do not give the checkpoint's root (size {size})")]
    CheckpointRoot {
        /// The checkpoint's size.
        size: u64,
    },
    /// The log is not an extension of the checkpoint seen before.
    #[error("not consistent with the checkpoint seen before (size {size}): the log was rewritten or forked")]
    Inconsistent {
        /// The earlier checkpoint's size.
        size: u64,
    },
    /// The AK's attributes are not those of an attestation key.
    #[error("the AK is not an attestation key: {0}")]
    AkAttributes(&'static str),
    /// A TPM attestation is not what its use requires.
    #[error("{what}: {reason}")]
    QuoteStructure {
        /// Which attestation.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A TPM attestation is not signed by the AK.
    #[error("{what}: not signed by the AK: {reason}")]
    AkSignature {
        /// Which attestation.
        what: String,
        /// The verification error.
        reason: String,
    },
    /// A key binding's Certify names another TPM key.
    #[error("{which} binding: the Certify names another key than its public area")]
    KeyBindingName {
        /// "SK" or "LK".
        which: &'static str,
    },
    /// A key binding's extraData is not the binding digest.
    #[error("{which} binding: {what}'s extraData is not the key-binding digest")]
    KeyBindingData {
        /// "SK" or "LK".
        which: &'static str,
        /// "certify" or "quote".
        what: &'static str,
    },
    /// K's policy does not seal it to the quoted PCRs.
    #[error("SK binding: K's authPolicy is not PolicyPCR over its binding quote's PCRs ({0})")]
    KeyPolicy(&'static str),
    /// A quote does not cover exactly the seal set in the SHA-256 bank.
    #[error("{what}: PCR selection {found} is not the seal set {expected} (SHA-256 bank)")]
    PcrSelection {
        /// Which quote.
        what: String,
        /// What it selects.
        found: String,
        /// The seal set.
        expected: String,
    },
    /// A batch quote's extraData is not the batch nonce.
    #[error("batch at leaf {leaf}: the quote's extraData is not the batch nonce")]
    BatchNonce {
        /// The batch leaf.
        leaf: u64,
    },
    /// A batch does not cover exactly the entries before it.
    #[error("batch at leaf {leaf}: {reason}")]
    BatchRange {
        /// The batch leaf.
        leaf: u64,
        /// What differs.
        reason: String,
    },
    /// A batch quote's PCR digest is not its SK binding quote's: the
    /// machine was in another boot state.
    #[error("batch at leaf {leaf}: PCR digest differs from the SK binding's (another boot state)")]
    BatchPcrDigest {
        /// The batch leaf.
        leaf: u64,
    },
    /// Counters not strictly increasing.
    #[error("batch at leaf {leaf}: counter {counter} does not follow {previous}")]
    Counter {
        /// The batch leaf.
        leaf: u64,
        /// Its counter.
        counter: u64,
        /// The previous batch's.
        previous: u64,
    },
    /// The batch chain is broken.
    #[error("batch at leaf {leaf}: previous_batch is not the previous batch's leaf hash")]
    BatchChain {
        /// The batch leaf.
        leaf: u64,
    },
    /// The TPM clock went backwards.
    #[error("{what}: TPM clock went backwards: {reason}")]
    Clock {
        /// Which attestation.
        what: String,
        /// How.
        reason: String,
    },
    /// An entry's signature does not verify under the SK in force.
    #[error("entry at leaf {leaf}: signature does not verify under the bound SK")]
    EntrySignature {
        /// The entry leaf.
        leaf: u64,
    },
    /// An entry names another builder or position.
    #[error("entry at leaf {leaf}: {reason}")]
    EntryField {
        /// The entry leaf.
        leaf: u64,
        /// What differs.
        reason: String,
    },
    /// An entry's system is not the system its key binding attests.
    #[error("entry at leaf {leaf}: system {claimed} is not the measured system {measured}")]
    EntrySystem {
        /// The entry leaf.
        leaf: u64,
        /// The entry's system.
        claimed: String,
        /// The binding's.
        measured: String,
    },
    /// The event logs of a boot do not replay to the PCRs its binding quote
    /// covers (only event digests count; edited event data does not
    /// matter, edited digests do).
    #[error("{what}: the event logs do not replay to the quoted PCRs ({reason}); replayed sha256: {replayed}")]
    EventLogReplay {
        /// Which binding.
        what: String,
        /// Why.
        reason: String,
        /// The replayed values of the seal set.
        replayed: String,
        /// The PCRs whose replayed value is not the TPM's, when the binding
        /// carries the quoted values (authenticated by the quote's digest);
        /// empty when they are unknown.
        pcrs: Vec<u8>,
    },
    /// Entries at the end that no batch attests.
    #[error("{count} entries at the end of the log are not attested by a batch")]
    Unattested {
        /// How many.
        count: usize,
    },
}

/// Result with [`AppraisalError`].
pub type Result<T> = std::result::Result<T, AppraisalError>;

fn malformed(at: impl Into<String>, e: impl std::fmt::Display) -> AppraisalError {
    AppraisalError::Malformed {
        at: at.into(),
        reason: e.to_string(),
    }
}

/// A checkpoint seen before: the log must extend it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Sha256Digest,
}

/// What an accepted log showed.
#[derive(Debug)]
pub struct Appraisal {
    /// The builder (AK Name).
    pub builder: BuilderId,
    /// The checkpoint accepted.
    pub checkpoint: Checkpoint,
    /// The checkpoint as served (with any cosignatures).
    pub checkpoint_note: Note,
    /// The enrollment record.
    pub enrollment: Box<Enrollment>,
    /// Entries appraised, in all.
    pub entries: u64,
    /// Of those, the entries appraised by this sync (all of them unless it
    /// went on from a checkpoint appraised before).
    pub new_entries: u64,
    /// Batches appraised.
    pub batches: u64,
    /// SK bindings (the enrollment's and each rebinding).
    pub bindings: u64,
    /// The TPM firmware version its latest SK binding quote states
    /// (signed by the AK, unlike the enrollment record's copy).
    pub firmware_version: u64,
    /// Every boot the log binds SK to (the enrollment's, then each
    /// rebinding's), as its event logs showed it.
    pub boots: Vec<Boot>,
}

impl Appraisal {
    /// Measured events per PCR over every boot the log binds SK to.
    pub fn events_per_pcr(&self) -> std::collections::BTreeMap<u8, usize> {
        let mut n = std::collections::BTreeMap::new();
        for e in self.boots.iter().flat_map(|b| &b.events) {
            *n.entry(e.pcr).or_default() += 1;
        }
        n
    }
}

/// One boot a key binding was made in, from its event logs (which replay
/// to the binding quote's PCR digest, so the quoted values are the TPM's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// Which binding: "enrollment" or "rebinding at leaf N".
    pub what: String,
    /// The quoted PCRs (the seal set) and their SHA-256 values.
    pub pcrs: std::collections::BTreeMap<u8, Sha256Digest>,
    /// Every measured event in log order (firmware log, then CEL log).
    pub events: Vec<BootEvent>,
    /// The system the CEL log measured last into the system PCR.
    pub system: Option<Sha256Digest>,
}

/// One measured event of a boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootEvent {
    /// Its PCR.
    pub pcr: u8,
    /// Its SHA-256 digest (None: the log has no SHA-256 digest for it).
    pub sha256: Option<Sha256Digest>,
    /// Its event type or CEL content type, for people (unauthenticated).
    pub kind: String,
}

/// A key binding that passed: the Ed25519 key and what its quote showed.
#[derive(Clone)]
struct Bound {
    key: VerifyingKey,
    pcr_digest: Digest,
    /// The system its CEL log measured (None: no system event).
    system: Option<Sha256Digest>,
}

/// What an enrollment record names: its AK, the builder (the AK's Name)
/// and the seal set as a SHA-256 selection.
fn enrolled(e: &Enrollment) -> Result<(Public, BuilderId, PcrSelectionList)> {
    let ak = Public::from_bytes(&e.ak_public).map_err(|er| malformed("AK", er))?;
    let builder = ak.builder_id().map_err(|er| malformed("AK", er))?;
    let pcrs = e
        .seal_pcrs
        .iter()
        .map(|p| PcrIndex::new(*p))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|er| malformed("seal set", er))?;
    Ok((ak, builder, PcrSelectionList::single(HashAlg::Sha256, pcrs)))
}

/// The AK's attributes: restricted signing key, fixed to this TPM, made
/// inside it, with a SHA-256-or-better scheme.
fn check_ak(ak: &Public) -> Result<()> {
    let a = ak.attributes;
    let fail = |r| Err(AppraisalError::AkAttributes(r));
    if !a.restricted() {
        return fail("not restricted (it could sign digests that look like quotes)");
    }
    if !a.sign() || a.decrypt() {
        return fail("not a signing-only key");
    }
    if !a.fixed_tpm() || !a.fixed_parent() {
        return fail("not fixed to its TPM");
    }
    if !a.sensitive_data_origin() {
        return fail("its private key was not made inside the TPM");
    }
    let strong = |h: HashAlg| matches!(h, HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512);
    match &ak.key {
        PublicKey::Ecc { params, .. } => match params.scheme {
            EccScheme::EcDsa(h) if strong(h) => Ok(()),
            _ => fail("its scheme is not ECDSA with SHA-256 or stronger"),
        },
        PublicKey::Rsa { params, .. } => match params.scheme {
            RsaScheme::RsaSsa(h) | RsaScheme::RsaPss(h) if strong(h) => Ok(()),
            _ => fail("its scheme is not RSASSA/RSAPSS with SHA-256 or stronger"),
        },
        _ => fail("not an RSA or ECC key"),
    }
}

/// Verify a TPM attestation by the AK and require its type.
fn attested(
    ak: &Public,
    what: &str,
    attest: &[u8],
    sig: &[u8],
    kind: AttestType,
) -> Result<provenix_protocol::tpm::Attest> {
    let sig = Signature::from_bytes(sig).map_err(|e| malformed(what, e))?;
    // Verified once here (the hot path: one per batch); nothing is parsed
    // from bytes whose signature failed.
    sig.verify(ak, attest)
        .map_err(|e| AppraisalError::AkSignature {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    provenix_protocol::tpm::Attest::from_bytes_expecting(attest, kind).map_err(|e| {
        AppraisalError::QuoteStructure {
            what: what.to_owned(),
            reason: e.to_string(),
        }
    })
}

fn describe(sel: &PcrSelectionList) -> String {
    sel.banks()
        .iter()
        .map(|(h, p)| format!("{h:?}:{:?}", p.iter().map(|i| i.get()).collect::<Vec<_>>()))
        .collect::<Vec<_>>()
        .join("+")
}

/// The quote covers exactly the seal set in the SHA-256 bank.
fn check_selection(what: &str, sel: &PcrSelectionList, seal: &PcrSelectionList) -> Result<()> {
    if sel.banks() == seal.banks() {
        Ok(())
    } else {
        Err(AppraisalError::PcrSelection {
            what: what.to_owned(),
            found: describe(sel),
            expected: describe(seal),
        })
    }
}

/// The clock rule per AK: resetCount and restartCount never decrease; the
/// clock never decreases within a resetCount, and across one only when
/// the TPM says its clock is not safe (an unorderly shutdown).
fn check_clock(what: &str, previous: Option<ClockInfo>, now: ClockInfo) -> Result<()> {
    let Some(p) = previous else { return Ok(()) };
    let fail = |reason: String| {
        Err(AppraisalError::Clock {
            what: what.to_owned(),
            reason,
        })
    };
    if now.reset_count < p.reset_count {
        return fail(format!(
            "resetCount {} after {}",
            now.reset_count, p.reset_count
        ));
    }
    if now.reset_count == p.reset_count {
        if now.restart_count < p.restart_count {
            return fail(format!(
                "restartCount {} after {}",
                now.restart_count, p.restart_count
            ));
        }
        if now.clock < p.clock {
            return fail(format!("clock {} ms after {} ms", now.clock, p.clock));
        }
    } else if now.clock < p.clock && now.safe {
        return fail(format!(
            "clock {} ms after {} ms across a reset with safe = YES",
            now.clock, p.clock
        ));
    }
    Ok(())
}

/// The AK's clock as the log has shown it. A record's attestations (an
/// enrollment's four, a rebinding's two) were made in an order its fields
/// do not show: each is checked against the clock before the record, and
/// the latest of them is the clock after it.
struct Clocks {
    before: Option<ClockInfo>,
    latest: Option<ClockInfo>,
}

fn clock_key(c: &ClockInfo) -> (u32, u32, u64) {
    (c.reset_count, c.restart_count, c.clock)
}

impl Clocks {
    fn new(before: Option<ClockInfo>) -> Self {
        Self {
            before,
            latest: before,
        }
    }

    fn check(&mut self, what: &str, now: ClockInfo) -> Result<()> {
        check_clock(what, self.before, now)?;
        if self.latest.is_none_or(|l| clock_key(&now) > clock_key(&l)) {
            self.latest = Some(now);
        }
        Ok(())
    }
}

/// A boot's event logs, each parsed once: its firmware event log and then
/// its CEL log replayed (SHA-256 bank) must give `quoted`, the binding
/// quote's PCR digest. The result is the boot: quoted values, measured
/// events, and the system the CEL log last measured into `system_pcr`.
/// `values`, the binding's copy of the quoted values, names the PCRs that
/// differ when the replay fails (if their digest is the quote's).
fn check_boot(
    what: &str,
    (firmware, cel): (&[u8], &[u8]),
    seal: &PcrSelectionList,
    quoted: &Digest,
    values: &[[u8; 32]],
    system_pcr: u8,
) -> Result<Boot> {
    use provenix_measured_boot::{AlgorithmId, EventLog, HashAlgorithm};
    let sha256 = |d: Option<&provenix_measured_boot::Digest>| {
        d.and_then(|d| <[u8; 32]>::try_from(d.as_bytes()).ok())
            .map(Sha256Digest)
    };
    let mut events = Vec::new();
    // An empty CEL log is an empty log.
    let cel = CelLog::parse(cel).map_err(|e| malformed(format!("{what} CEL log"), e))?;
    let replay = if firmware.is_empty() {
        cel.replay(&[HashAlgorithm::Sha256])
            .map_err(|e| malformed(format!("{what} CEL log"), e))?
    } else {
        let log = EventLog::parse(firmware)
            .map_err(|e| malformed(format!("{what} firmware event log"), e))?;
        for e in log.events().iter().filter(|e| e.is_measured()) {
            if let Some(p) = e.pcr() {
                events.push(BootEvent {
                    pcr: p.get(),
                    sha256: sha256(e.digest(AlgorithmId::SHA256)),
                    kind: e.event_type().to_string(),
                });
            }
        }
        let mut r = log.replay();
        r.apply_cel(&cel)
            .map_err(|e| malformed(format!("{what} CEL log"), e))?;
        r
    };
    let Some(bank) = replay.bank(HashAlgorithm::Sha256) else {
        return Err(AppraisalError::EventLogReplay {
            what: what.to_owned(),
            reason: "the logs have no complete SHA-256 bank (SHA-1-only evidence is refused)"
                .into(),
            replayed: String::new(),
            pcrs: Vec::new(),
        });
    };
    let mut concat = Vec::new();
    let mut listed = Vec::new();
    for (_, pcr) in seal.selected() {
        let v = bank.value(pcr);
        concat.extend_from_slice(v.as_bytes());
        listed.push(format!(
            "{}={}",
            pcr.get(),
            provenix_protocol::encoding::hex_encode(v.as_bytes())
        ));
    }
    if Sha256Digest::of(&concat).as_bytes() != quoted.as_bytes() {
        let authentic = Sha256Digest::of(&values.concat()).as_bytes() == quoted.as_bytes()
            && values.len() == seal.selected().count();
        let pcrs: Vec<u8> = if authentic {
            seal.selected()
                .zip(values)
                .filter(|((_, pcr), v)| bank.value(*pcr).as_bytes() != v.as_slice())
                .map(|((_, pcr), _)| pcr.get())
                .collect()
        } else {
            Vec::new()
        };
        let reason = match pcrs.as_slice() {
            [] => "their digest differs from the quote's".to_string(),
            named => format!(
                "PCR {} replay to values the TPM did not hold",
                named
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Err(AppraisalError::EventLogReplay {
            what: what.to_owned(),
            reason,
            replayed: listed.join(" "),
            pcrs,
        });
    }
    for r in cel.records() {
        events.push(BootEvent {
            pcr: r.pcr().get(),
            sha256: sha256(r.digest(HashAlgorithm::Sha256)),
            kind: r.content().content_type().to_owned(),
        });
    }
    let pcr = PcrIndex::new(system_pcr).map_err(|e| malformed(what, e))?;
    let system = cel
        .system_measurements()
        .filter(|(i, _)| cel.records().get(*i).map(|r| r.pcr()) == Some(pcr))
        .last()
        .map(|(_, m)| m.digest());
    Ok(Boot {
        what: what.to_owned(),
        pcrs: seal
            .selected()
            .filter_map(|(_, p)| Some((p.get(), sha256(Some(&bank.value(p)))?)))
            .collect(),
        events,
        system,
    })
}

/// Check a key binding: Certify of the TPM key and a quote of the seal
/// set, both by the AK with extraData = the key-binding digest; for SK,
/// K sealed by PolicyPCR to that quote's PCRs.
fn check_binding(
    ak: &Public,
    which: &'static str,
    b: &KeyBinding,
    seal: &PcrSelectionList,
    clock: &mut Clocks,
) -> Result<(VerifyingKey, Digest, u64)> {
    let tpm_public = Public::from_bytes(&b.tpm_public).map_err(|e| malformed(which, e))?;
    let name = tpm_public.name().map_err(|e| malformed(which, e))?;
    let binding = key_binding_digest(&b.public_key, name.as_bytes());
    let what = format!("{which} binding certify");
    let certify = attested(
        ak,
        &what,
        &b.certify_attest,
        &b.certify_signature,
        AttestType::Certify,
    )?;
    clock.check(&what, certify.clock_info)?;
    let info = certify.certify().map_err(|e| malformed(&what, e))?;
    if info.name != name {
        return Err(AppraisalError::KeyBindingName { which });
    }
    if certify.extra_data.as_bytes() != binding.as_bytes() {
        return Err(AppraisalError::KeyBindingData {
            which,
            what: "certify",
        });
    }
    let what = format!("{which} binding quote");
    let quote = attested(
        ak,
        &what,
        &b.quote_attest,
        &b.quote_signature,
        AttestType::Quote,
    )?;
    clock.check(&what, quote.clock_info)?;
    if quote.extra_data.as_bytes() != binding.as_bytes() {
        return Err(AppraisalError::KeyBindingData {
            which,
            what: "quote",
        });
    }
    let q = quote.quote().map_err(|e| malformed(&what, e))?;
    check_selection(&what, &q.pcr_select, seal)?;
    if which == "SK" {
        let a = tpm_public.attributes;
        if a.user_with_auth() || a.admin_with_policy() {
            return Err(AppraisalError::KeyPolicy(
                "userWithAuth or adminWithPolicy is set: K is usable without its policy",
            ));
        }
        let policy =
            policy_pcr_with_digest(tpm_public.name_alg, None, &q.pcr_select, &q.pcr_digest)
                .map_err(|e| malformed(&what, e))?;
        if policy != tpm_public.auth_policy {
            return Err(AppraisalError::KeyPolicy("the digests differ"));
        }
    }
    let key = VerifyingKey::from_bytes(&b.public_key).map_err(|e| malformed(which, e))?;
    Ok((key, q.pcr_digest.clone(), quote.firmware_version))
}

/// What reading the log established so far; at a checkpoint it is all a
/// later appraisal needs to go on from there.
#[derive(Clone)]
struct Walk {
    enrollment: Option<Box<Enrollment>>,
    builder: Option<BuilderId>,
    ak: Option<Public>,
    seal: Option<PcrSelectionList>,
    lk: Option<VerifyingKey>,
    sk: Option<Bound>,
    clock: Option<ClockInfo>,
    last_counter: Option<u64>,
    last_batch: [u8; 32],
    /// Leaf hashes since the last batch or record boundary.
    pending: Vec<Sha256Digest>,
    pending_start: u64,
    /// Entries among `pending`.
    pending_entries: usize,
    entries: u64,
    batches: u64,
    bindings: u64,
    firmware_version: u64,
    boots: Vec<Boot>,
    /// The tree of every leaf read.
    tree: CompactTree,
}

impl Walk {
    fn new() -> Self {
        Self {
            enrollment: None,
            builder: None,
            ak: None,
            seal: None,
            lk: None,
            sk: None,
            clock: None,
            last_counter: None,
            last_batch: [0; 32],
            pending: Vec::new(),
            pending_start: 0,
            pending_entries: 0,
            entries: 0,
            batches: 0,
            bindings: 0,
            firmware_version: 0,
            boots: Vec::new(),
            tree: CompactTree::new(),
        }
    }

    fn enrolled(&self) -> Result<(&Public, &PcrSelectionList, &BuilderId)> {
        match (&self.ak, &self.seal, &self.builder) {
            (Some(a), Some(s), Some(b)) => Ok((a, s, b)),
            _ => Err(AppraisalError::NoEnrollment),
        }
    }

    fn record(
        &mut self,
        leaf: u64,
        record: Record,
        leaf_bytes: &[u8],
        on_entry: &mut dyn FnMut(u64, &SignedEntry),
    ) -> Result<()> {
        match record {
            Record::Enrollment(e) => {
                if self.enrollment.is_some() || leaf + 1 != self.pending.len() as u64 {
                    return Err(malformed(
                        format!("leaf {leaf}"),
                        "an enrollment record that is not the log's first record",
                    ));
                }
                let (ak, builder, seal) = enrolled(&e)?;
                check_ak(&ak)?;
                let mut clock = Clocks::new(self.clock);
                let (lk, _, _) = check_binding(&ak, "LK", &e.log_key, &seal, &mut clock)?;
                let (sk, pcr_digest, firmware) =
                    check_binding(&ak, "SK", &e.signing_key, &seal, &mut clock)?;
                self.firmware_version = firmware;
                let boot = check_boot(
                    "enrollment",
                    (&e.firmware_event_log, &e.cel_event_log),
                    &seal,
                    &pcr_digest,
                    &e.signing_key.quote_pcr_values,
                    e.system_pcr,
                )?;
                let system = boot.system;
                self.boots.push(boot);
                self.clock = clock.latest;
                self.sk = Some(Bound {
                    key: sk,
                    pcr_digest,
                    system,
                });
                self.lk = Some(lk);
                self.ak = Some(ak);
                self.seal = Some(seal);
                self.builder = Some(builder);
                self.enrollment = Some(e);
                self.bindings += 1;
                self.boundary(leaf);
            }
            Record::KeyRebinding(r) => {
                let (ak, seal, _) = self.enrolled()?;
                let (ak, seal) = (ak.clone(), seal.clone());
                if self.pending_entries > 0 {
                    return Err(AppraisalError::Unattested {
                        count: self.pending_entries,
                    });
                }
                let system_pcr = self.enrollment.as_ref().map_or(0, |e| e.system_pcr);
                let mut clock = Clocks::new(self.clock);
                let (sk, pcr_digest, firmware) =
                    check_binding(&ak, "SK", &r.signing_key, &seal, &mut clock)?;
                let boot = check_boot(
                    &format!("rebinding at leaf {leaf}"),
                    (&r.firmware_event_log, &r.cel_event_log),
                    &seal,
                    &pcr_digest,
                    &r.signing_key.quote_pcr_values,
                    system_pcr,
                )?;
                let system = boot.system;
                self.boots.push(boot);
                self.firmware_version = firmware;
                self.clock = clock.latest;
                self.sk = Some(Bound {
                    key: sk,
                    pcr_digest,
                    system,
                });
                self.bindings += 1;
                self.boundary(leaf);
            }
            Record::Entry(e) => {
                let (_, _, builder) = self.enrolled()?;
                let builder = *builder;
                let sk = self.sk.as_ref().ok_or(AppraisalError::NoEnrollment)?;
                e.verify(&sk.key)
                    .map_err(|_| AppraisalError::EntrySignature { leaf })?;
                let entry = e.entry();
                if entry.builder != builder {
                    return Err(AppraisalError::EntryField {
                        leaf,
                        reason: format!("names builder {}", entry.builder),
                    });
                }
                if entry.seq != leaf {
                    return Err(AppraisalError::EntryField {
                        leaf,
                        reason: format!("seq {} is not its leaf index", entry.seq),
                    });
                }
                match sk.system {
                    Some(s) if s == entry.system => {}
                    measured => {
                        return Err(AppraisalError::EntrySystem {
                            leaf,
                            claimed: entry.system.to_hex(),
                            measured: measured.map_or_else(
                                || "none (the binding's CEL log has no system event)".into(),
                                |m| m.to_hex(),
                            ),
                        })
                    }
                }
                self.pending_entries += 1;
                self.entries += 1;
                on_entry(leaf, &e);
            }
            Record::Batch(b) => self.batch(leaf, &b, leaf_bytes)?,
            _ => {
                return Err(malformed(
                    format!("leaf {leaf}"),
                    "a record kind this verifier does not know",
                ))
            }
        }
        Ok(())
    }

    /// After a record that no batch covers: the next run starts after it.
    fn boundary(&mut self, leaf: u64) {
        self.pending.clear();
        self.pending_entries = 0;
        self.pending_start = leaf + 1;
    }

    fn batch(&mut self, leaf: u64, b: &BatchAttestation, leaf_bytes: &[u8]) -> Result<()> {
        let (ak, seal, _) = self.enrolled()?;
        let (ak, seal) = (ak.clone(), seal.clone());
        let what = format!("batch at leaf {leaf}");
        let quote = attested(
            &ak,
            &what,
            &b.quote_attest,
            &b.quote_signature,
            AttestType::Quote,
        )?;
        if quote.extra_data.as_bytes() != b.nonce().as_bytes() {
            return Err(AppraisalError::BatchNonce { leaf });
        }
        b.validate_form().map_err(|e| malformed(&what, e))?;
        // `pending` ends with this batch leaf's own hash.
        let covered = self
            .pending
            .get(..self.pending.len().saturating_sub(1))
            .unwrap_or_default();
        if b.first_leaf != self.pending_start || b.leaf_count != covered.len() as u64 {
            return Err(AppraisalError::BatchRange {
                leaf,
                reason: format!(
                    "covers leaves {}..+{}, the entries before it are {}..+{}",
                    b.first_leaf,
                    b.leaf_count,
                    self.pending_start,
                    covered.len()
                ),
            });
        }
        if root(covered).0 != b.entries_root {
            return Err(AppraisalError::BatchRange {
                leaf,
                reason: "entries_root is not the root of the leaves it covers".into(),
            });
        }
        let q = quote.quote().map_err(|e| malformed(&what, e))?;
        check_selection(&what, &q.pcr_select, &seal)?;
        let sk = self.sk.as_ref().ok_or(AppraisalError::NoEnrollment)?;
        if q.pcr_digest != sk.pcr_digest {
            return Err(AppraisalError::BatchPcrDigest { leaf });
        }
        if let Some(previous) = self.last_counter {
            if b.counter <= previous {
                return Err(AppraisalError::Counter {
                    leaf,
                    counter: b.counter,
                    previous,
                });
            }
        }
        if b.previous_batch != self.last_batch {
            return Err(AppraisalError::BatchChain { leaf });
        }
        check_clock(&what, self.clock, quote.clock_info)?;
        self.clock = Some(quote.clock_info);
        self.last_counter = Some(b.counter);
        self.last_batch = leaf_hash(leaf_bytes).0;
        self.batches += 1;
        self.boundary(leaf);
        Ok(())
    }
}

/// Appraise the log at `source` from its first leaf: every record, batch
/// and entry, the checkpoint, and consistency with `seen` (the checkpoint
/// accepted last time). `on_entry` gets each entry that passed, with its
/// leaf index.
pub fn appraise(
    source: &LogSource,
    seen: Option<Seen>,
    on_entry: &mut dyn FnMut(u64, &SignedEntry),
) -> Result<Appraisal> {
    Appraiser::new().sync(source, seen, on_entry)
}

/// A log appraised up to a checkpoint, able to go on from there: a later
/// [`Appraiser::sync`] reads and checks only the leaves added since, and
/// requires the new checkpoint to extend the old one (its root must be the
/// root of the old leaves, known by the tree's right edge, followed by the
/// new ones). Saved in the verifier's state directory
/// ([`Appraiser::to_json`]).
#[derive(Clone)]
pub struct Appraiser {
    walk: Walk,
    /// The checkpoint accepted last, as served.
    note: Option<(Checkpoint, Note)>,
}

impl Default for Appraiser {
    fn default() -> Self {
        Self::new()
    }
}

/// The saved form of an [`Appraiser`] (JSON; byte strings in hex).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    format: String,
    checkpoint: String,
    peaks: Vec<String>,
    enrollment: String,
    sk: String,
    sk_pcr_digest: String,
    sk_system: Option<String>,
    clock: Option<(u32, u32, u64, bool)>,
    last_counter: Option<u64>,
    last_batch: String,
    entries: u64,
    batches: u64,
    bindings: u64,
    firmware_version: u64,
    boots: Vec<SavedBoot>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedBoot {
    what: String,
    pcrs: std::collections::BTreeMap<u8, String>,
    events: Vec<(u8, Option<String>, String)>,
    system: Option<String>,
}

const SAVED_FORMAT: &str = "provenix-appraiser-v1";

/// An enrollment record holds two event logs at most.
const MAX_SAVED_ENROLLMENT: usize = 2 * provenix_protocol::enrollment::MAX_EVENT_LOG + (1 << 20);

impl Appraiser {
    /// The state to save: JSON (None before a first successful sync).
    pub fn to_json(&self) -> Option<String> {
        use provenix_protocol::encoding::hex_encode;
        let w = &self.walk;
        let (Some((_, note)), Some(e), Some(sk)) = (&self.note, &w.enrollment, &w.sk) else {
            return None;
        };
        let saved = Saved {
            format: SAVED_FORMAT.into(),
            checkpoint: note.render(),
            peaks: w.tree.peaks().iter().map(|p| p.to_hex()).collect(),
            enrollment: hex_encode(&e.encode().ok()?),
            sk: hex_encode(sk.key.as_bytes()),
            sk_pcr_digest: hex_encode(sk.pcr_digest.as_bytes()),
            sk_system: sk.system.map(|s| s.to_hex()),
            clock: w
                .clock
                .map(|c| (c.reset_count, c.restart_count, c.clock, c.safe)),
            last_counter: w.last_counter,
            last_batch: hex_encode(&w.last_batch),
            entries: w.entries,
            batches: w.batches,
            bindings: w.bindings,
            firmware_version: w.firmware_version,
            boots: w
                .boots
                .iter()
                .map(|b| SavedBoot {
                    what: b.what.clone(),
                    pcrs: b.pcrs.iter().map(|(p, v)| (*p, v.to_hex())).collect(),
                    events: b
                        .events
                        .iter()
                        .map(|e| (e.pcr, e.sha256.map(|d| d.to_hex()), e.kind.clone()))
                        .collect(),
                    system: b.system.map(|s| s.to_hex()),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&saved).ok()
    }

    /// An appraiser from its saved state (`what` names it in errors). The
    /// state is the auditor's own, but read as strictly as any input.
    pub fn from_json(json: &[u8], what: &str) -> Result<Self> {
        use provenix_protocol::encoding::{hex_decode, hex_decode_array};
        let bad = |e: &dyn std::fmt::Display| malformed(what, e);
        let s: Saved = serde_json::from_slice(json).map_err(|e| bad(&e))?;
        if s.format != SAVED_FORMAT {
            return Err(bad(&format!("format {:?}", s.format)));
        }
        let digest = |h: &str| Sha256Digest::from_hex(h).map_err(|e| bad(&e));
        let note = Note::parse(s.checkpoint.as_bytes()).map_err(|e| bad(&e))?;
        let cp = Checkpoint::parse_body(note.text()).map_err(|e| bad(&e))?;
        let peaks = s
            .peaks
            .iter()
            .map(|p| digest(p))
            .collect::<Result<Vec<_>>>()?;
        let tree = CompactTree::from_peaks(cp.size, peaks).map_err(|e| bad(&e))?;
        if tree.root() != cp.root {
            return Err(bad(&"the tree's edge does not give the checkpoint's root"));
        }
        let e = Enrollment::decode(
            &hex_decode(&s.enrollment, MAX_SAVED_ENROLLMENT).map_err(|e| bad(&e))?,
        )
        .map_err(|e| bad(&e))?;
        let (ak, builder, seal) = enrolled(&e)?;
        let key = |h: &str| {
            hex_decode_array::<32>(h)
                .map_err(|e| bad(&e))
                .and_then(|k| VerifyingKey::from_bytes(&k).map_err(|e| bad(&e)))
        };
        let walk = Walk {
            lk: Some(VerifyingKey::from_bytes(&e.log_key.public_key).map_err(|e| bad(&e))?),
            sk: Some(Bound {
                key: key(&s.sk)?,
                pcr_digest: Digest::new(&hex_decode(&s.sk_pcr_digest, 64).map_err(|e| bad(&e))?)
                    .map_err(|e| bad(&e))?,
                system: s.sk_system.as_deref().map(digest).transpose()?,
            }),
            clock: s
                .clock
                .map(|(reset_count, restart_count, clock, safe)| ClockInfo {
                    clock,
                    reset_count,
                    restart_count,
                    safe,
                }),
            last_counter: s.last_counter,
            last_batch: hex_decode_array::<32>(&s.last_batch).map_err(|e| bad(&e))?,
            pending: Vec::new(),
            pending_start: cp.size,
            pending_entries: 0,
            entries: s.entries,
            batches: s.batches,
            bindings: s.bindings,
            firmware_version: s.firmware_version,
            boots: s
                .boots
                .iter()
                .map(|b| {
                    Ok(Boot {
                        what: b.what.clone(),
                        pcrs: b
                            .pcrs
                            .iter()
                            .map(|(p, v)| Ok((*p, digest(v)?)))
                            .collect::<Result<_>>()?,
                        events: b
                            .events
                            .iter()
                            .map(|(pcr, d, kind)| {
                                Ok(BootEvent {
                                    pcr: *pcr,
                                    sha256: d.as_deref().map(digest).transpose()?,
                                    kind: kind.clone(),
                                })
                            })
                            .collect::<Result<_>>()?,
                        system: b.system.as_deref().map(digest).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
            tree,
            builder: Some(builder),
            ak: Some(ak),
            seal: Some(seal),
            enrollment: Some(Box::new(e)),
        };
        Ok(Self {
            walk,
            note: Some((cp, note)),
        })
    }

    /// Nothing appraised yet.
    pub fn new() -> Self {
        Self {
            walk: Walk::new(),
            note: None,
        }
    }

    /// The checkpoint accepted last (size and root; size 0 before any).
    pub fn seen(&self) -> Seen {
        Seen {
            size: self.walk.tree.size(),
            root: self.walk.tree.root(),
        }
    }

    /// Fetch the log's checkpoint and appraise the leaves added since the
    /// last one accepted (all of them the first time). `seen`, from a
    /// first sync, is a checkpoint the log must pass through. Nothing
    /// changes unless all of it passes.
    pub fn sync(
        &mut self,
        source: &LogSource,
        seen: Option<Seen>,
        on_entry: &mut dyn FnMut(u64, &SignedEntry),
    ) -> Result<Appraisal> {
        let note_bytes = source.fetch("checkpoint")?;
        let note = Note::parse(&note_bytes).map_err(|e| malformed("checkpoint", e))?;
        let cp = Checkpoint::parse_body(note.text()).map_err(|e| malformed("checkpoint", e))?;
        let from = self.walk.tree.size();
        let resumed = from > 0;
        let before = self.seen();
        if cp.size < from || (cp.size == from && cp.root != before.root) {
            return Err(AppraisalError::Inconsistent { size: from });
        }
        if let Some(s) = seen.filter(|s| s.size >= from) {
            if cp.size < s.size {
                return Err(AppraisalError::Inconsistent { size: s.size });
            }
        }
        let mut w = self.walk.clone();
        let mut reader = LeafReader::new();
        let mut new_entries = 0u64;
        for (id, range) in bundles(from, cp.size, cp.size) {
            let path = id.path();
            let bytes = source.fetch(&path)?;
            let leaves = decode_bundle(&bytes).map_err(|e| malformed(&path, e))?;
            if leaves.len() != usize::from(id.width) {
                return Err(malformed(
                    &path,
                    format!("holds {} leaves, not {}", leaves.len(), id.width),
                ));
            }
            let skip = usize::try_from(
                range
                    .start
                    .saturating_sub(id.index.saturating_mul(TILE_WIDTH as u64)),
            )
            .map_err(|e| malformed(&path, e))?;
            for (at, leaf) in range.zip(leaves.into_iter().skip(skip)) {
                let h = leaf_hash(leaf);
                w.pending.push(h);
                // The leaf's own checks first: they name what is wrong with
                // it; consistency only says that something changed.
                match reader.push(leaf) {
                    Ok(Some(record)) => w.record(at, record, leaf, &mut |i, e| {
                        new_entries += 1;
                        on_entry(i, e)
                    })?,
                    Ok(None) => {}
                    Err(e) => return Err(malformed(format!("leaf {at}"), e)),
                }
                w.tree.append(h).map_err(|e| malformed(&path, e))?;
                if let Some(s) = seen {
                    if w.tree.size() == s.size && w.tree.root() != s.root {
                        return Err(AppraisalError::Inconsistent { size: s.size });
                    }
                }
            }
        }
        reader.finish().map_err(|e| malformed("the log's end", e))?;
        if w.pending_entries > 0 {
            return Err(AppraisalError::Unattested {
                count: w.pending_entries,
            });
        }
        if w.tree.root() != cp.root {
            // Resumed, the old leaves are known only by the tree's edge:
            // either they changed or the new ones are not the checkpoint's.
            return Err(if resumed {
                AppraisalError::Inconsistent { size: from }
            } else {
                AppraisalError::CheckpointRoot { size: cp.size }
            });
        }
        let (Some(enrollment), Some(builder), Some(lk)) = (&w.enrollment, w.builder, w.lk) else {
            return Err(AppraisalError::NoEnrollment);
        };
        let origin = format!("provenix/{}", builder.to_hex());
        if cp.origin != origin {
            return Err(AppraisalError::CheckpointSignature(format!(
                "origin {:?} is not this builder's {origin:?}",
                cp.origin
            )));
        }
        let name = KeyName::new(&origin).map_err(|e| malformed("origin", e))?;
        note.verify(&[NoteVerifierKey::new(name, lk)])
            .map_err(|e| AppraisalError::CheckpointSignature(e.to_string()))?;
        let appraisal = Appraisal {
            builder,
            checkpoint: cp.clone(),
            checkpoint_note: note.clone(),
            enrollment: enrollment.clone(),
            entries: w.entries,
            new_entries,
            batches: w.batches,
            bindings: w.bindings,
            firmware_version: w.firmware_version,
            boots: w.boots.clone(),
        };
        self.walk = w;
        self.note = Some((cp, note));
        Ok(appraisal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(reset: u32, restart: u32, clock: u64, safe: bool) -> ClockInfo {
        ClockInfo {
            clock,
            reset_count: reset,
            restart_count: restart,
            safe,
        }
    }

    #[test]
    fn the_clock_rule() {
        let p = Some(c(3, 2, 1000, true));
        assert!(check_clock("q", None, c(0, 0, 0, true)).is_ok());
        assert!(check_clock("q", p, c(3, 2, 1000, true)).is_ok());
        assert!(check_clock("q", p, c(3, 3, 1500, true)).is_ok());
        assert!(
            check_clock("q", p, c(4, 0, 1200, true)).is_ok(),
            "restartCount restarts after a reset"
        );
        assert!(
            check_clock("q", p, c(4, 0, 900, false)).is_ok(),
            "an unorderly shutdown"
        );
        for (now, why) in [
            (c(3, 2, 999, true), "clock back within a reset"),
            (c(3, 1, 1001, true), "restartCount back"),
            (c(2, 9, 5000, true), "resetCount back"),
            (c(4, 0, 900, true), "clock back across a reset, safe"),
        ] {
            assert!(
                matches!(check_clock("q", p, now), Err(AppraisalError::Clock { .. })),
                "{why}"
            );
        }
    }

    #[test]
    fn clocks_of_a_record_are_checked_against_the_clock_before_it() {
        let mut k = Clocks::new(Some(c(1, 0, 100, true)));
        k.check("a", c(1, 0, 580, true)).unwrap();
        k.check("b", c(1, 0, 571, true)).unwrap();
        assert_eq!(k.latest, Some(c(1, 0, 580, true)));
        assert!(k.check("c", c(1, 0, 99, true)).is_err());
    }
}
