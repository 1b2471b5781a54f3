//! `provenix substituter`: a Nix binary cache in front of an upstream one
//! (a `file://` directory or an `http(s)://` cache) that lets through only
//! what the policy trusts.
//!
//! ```text
//! builders' logs ─ sync (an Appraiser per builder, from where it stood;
//!   in the background, every sync_interval) ─ admitted by the policy ─
//!   claims per output path (decide::Builders)
//! GET /<hash>.narinfo ─ the store path some builder attests ─ decide
//!   M-of-N (cached decision_ttl) ─ upstream's narinfo ─ NarHash, NarSize
//!   and References equal to the attested ones ─ upstream Sig: lines
//!   dropped, one signature by the substituter's key, Compression explicit
//! GET /<URL of a narinfo it served> ─ upstream's file, passed through in
//!   its compression ─ decompressed and hashed on the way ─ the last chunk
//!   sent only when NarHash and NarSize are the attested ones
//! ```
//! Nix accepts a path from any of its substituters signed by any key it
//! trusts, so a user who keeps upstream's (or builders') keys in
//! `trusted-public-keys` bypasses the policy: the substituter's own key must
//! be the only one (README, "Substituting through the policy").

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use provenix_io::{text, Body, Handler};
use provenix_protocol::narinfo::{NarInfo, MAX_NARINFO};
use provenix_protocol::nix_sig::NixSecretKey;
use provenix_protocol::{NarHash, StorePath};
use serde::Deserialize;

use crate::appraise::{AppraisalError, Appraiser};
use crate::decide::{Builders, Claim, Verdict};
use crate::policy::Policy;
use crate::source::LogSource;
use crate::state::StateDir;

/// NARs remembered from served narinfos (the URLs a client may fetch).
const MAX_PROMISED: usize = 100_000;

/// The configuration file (TOML); command-line options override it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubstituterConfig {
    /// Listen here (e.g. `127.0.0.1:8080`).
    pub listen: Option<std::net::SocketAddr>,
    /// The upstream binary cache: `file:///path` or `http(s)://host/path`.
    pub upstream: Option<String>,
    /// The policy file.
    pub policy: Option<PathBuf>,
    /// The substituter's Nix secret key file (`provenix substituter init`).
    pub key: Option<PathBuf>,
    /// Where each builder's appraisal is kept between runs.
    pub state_dir: Option<PathBuf>,
    /// Root certificates (PEM) for HTTPS logs and upstream.
    pub ca_file: Option<PathBuf>,
    /// Seconds between log syncs (default 30).
    pub sync_interval_secs: Option<u64>,
    /// Seconds a decision is kept (default 10).
    pub decision_ttl_secs: Option<u64>,
    /// `Priority:` in /nix-cache-info (default 40; lower is preferred).
    pub priority: Option<u32>,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (loopback addresses only).
    pub plain_http: Option<bool>,
}

/// Where NARs and narinfos come from.
#[derive(Clone)]
pub enum Upstream {
    /// A `file://` binary cache.
    Dir(PathBuf),
    /// An `http(s)://` binary cache and the client to fetch with.
    Http(String, ureq::Agent),
}

/// Why upstream did not give a file.
#[derive(Debug, thiserror::Error)]
#[error("upstream {upstream}: {path}: {reason}")]
pub struct UpstreamError {
    /// The cache.
    pub upstream: String,
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl Upstream {
    /// An upstream from its URL (`file://` or `http(s)://`).
    pub fn parse(url: &str, client: ureq::Agent) -> Result<Self, String> {
        if let Some(dir) = url.strip_prefix("file://") {
            return Ok(Self::Dir(PathBuf::from(dir)));
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Self::Http(url.trim_end_matches('/').to_owned(), client));
        }
        Err(format!(
            "upstream {url:?}: only file:// and http(s):// caches are supported"
        ))
    }

    fn name(&self) -> String {
        match self {
            Self::Dir(d) => format!("file://{}", d.display()),
            Self::Http(u, _) => u.clone(),
        }
    }

    /// Open `path` (relative to the cache, checked by [`cache_path`]);
    /// None when upstream does not have it.
    pub fn open(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>, UpstreamError> {
        let err = |reason: String| UpstreamError {
            upstream: self.name(),
            path: path.to_owned(),
            reason,
        };
        match self {
            Self::Dir(d) => match std::fs::File::open(d.join(path)) {
                Ok(f) => Ok(Some(Box::new(f))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(err(e.to_string())),
            },
            Self::Http(base, client) => {
                let r = client
                    .get(&format!("{base}/{path}"))
                    .call()
                    .map_err(|e| err(e.to_string()))?;
                match r.status().as_u16() {
                    200 => Ok(Some(Box::new(r.into_body().into_reader()))),
                    404 | 403 => Ok(None),
                    s => Err(err(format!("HTTP {s}"))),
                }
            }
        }
    }

    /// Read a narinfo (None: upstream does not have it).
    pub fn narinfo(&self, hash_part: &str) -> Result<Option<NarInfo>, UpstreamError> {
        let path = format!("{hash_part}.narinfo");
        let Some(r) = self.open(&path)? else {
            return Ok(None);
        };
        let err = |reason: String| UpstreamError {
            upstream: self.name(),
            path: path.clone(),
            reason,
        };
        let mut bytes = Vec::new();
        r.take(MAX_NARINFO as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| err(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8".into()))?;
        NarInfo::parse(&text)
            .map(Some)
            .map_err(|e| err(e.to_string()))
    }
}

/// A relative cache path a request may name: `nar/…` style names of
/// letters, digits and `._-+`, no `..`, no leading `/`.
pub fn cache_path(p: &str) -> Option<&str> {
    let ok = !p.is_empty()
        && p.len() <= 512
        && !p.starts_with('/')
        && p.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+/=".contains(&b));
    ok.then_some(p)
}

/// One builder's log as the substituter follows it.
struct Followed {
    source: LogSource,
    appraiser: Appraiser,
}

/// What a served narinfo promises about its NAR.
#[derive(Clone, Debug)]
struct Promised {
    path: StorePath,
    nar_hash: NarHash,
    nar_size: u64,
    compression: String,
}

/// The substituter.
pub struct Substituter {
    policy: Policy,
    upstream: Upstream,
    key: NixSecretKey,
    state: Option<StateDir>,
    ttl: Duration,
    priority: u32,
    followed: Mutex<Vec<Followed>>,
    builders: RwLock<Builders>,
    /// Store paths by hash part, over every claim seen.
    paths: RwLock<HashMap<String, StorePath>>,
    decisions: Mutex<HashMap<StorePath, (Instant, Verdict)>>,
    nars: Mutex<HashMap<String, Promised>>,
}

impl Substituter {
    /// A substituter following the policy's builders (nothing synced yet).
    pub fn new(
        policy: Policy,
        upstream: Upstream,
        key: NixSecretKey,
        client: &ureq::Agent,
        state: Option<StateDir>,
        ttl: Duration,
        priority: u32,
    ) -> Result<Self, crate::state::StateError> {
        let mut followed = Vec::new();
        let mut builders = Vec::new();
        for b in &policy.file.builders {
            let source = LogSource::from_arg(&b.log, client);
            let appraiser = match &state {
                Some(s) => s.appraiser(&source.name())?.unwrap_or_default(),
                None => Appraiser::new(),
            };
            followed.push(Followed { source, appraiser });
            builders.push(crate::decide::BuilderIndex {
                name: b.name.clone(),
                operator: b.operator.clone(),
                admitted: Err("not synced yet".into()),
                claims: BTreeMap::new(),
            });
        }
        Ok(Self {
            policy,
            upstream,
            key,
            state,
            ttl,
            priority,
            followed: Mutex::new(followed),
            builders: RwLock::new(Builders(builders)),
            paths: RwLock::new(HashMap::new()),
            decisions: Mutex::new(HashMap::new()),
            nars: Mutex::new(HashMap::new()),
        })
    }

    /// Sync every builder's log from where it stood: new entries become
    /// claims; a log that cannot be fetched or does not verify, or that
    /// the policy does not admit, counts as "no" until it does again.
    pub fn sync(&self) -> Result<(), crate::state::StateError> {
        let Ok(mut followed) = self.followed.lock() else {
            return Ok(());
        };
        for (i, f) in followed.iter_mut().enumerate() {
            let Some(bp) = self.policy.file.builders.get(i) else {
                continue;
            };
            let mut next = f.appraiser.clone();
            let mut claims = Vec::new();
            // Inputs are only looked at with an inputs_depth.
            let keep_inputs = self.policy.file.inputs_depth > 0;
            let result = next.sync(&f.source, None, &mut |leaf, e| {
                for o in &e.entry().outputs {
                    let mut claim = Claim::of(leaf, e.entry(), o);
                    if !keep_inputs {
                        claim.inputs = Vec::new();
                    }
                    claims.push((o.store_path.clone(), claim));
                }
            });
            let admitted = match &result {
                Err(e @ AppraisalError::Fetch(_)) => Err(format!("log unreachable: {e}")),
                Err(e) => Err(format!("log not accepted: {e}")),
                Ok(a) if !a.builder.to_hex().eq_ignore_ascii_case(&bp.ak_name) => Err(format!(
                    "its log is enrolled by AK {}, not the pinned {}",
                    a.builder, bp.ak_name
                )),
                Ok(a) => self
                    .policy
                    .admit_pinned(a, self.state.as_ref())?
                    .map(|ad| ad.tpm.cert_sha256)
                    .map_err(|e| e.to_string()),
            };
            if let Ok(a) = &result {
                if let Some(s) = &self.state {
                    s.accept(&f.source.name(), &next)?;
                }
                if a.new_entries > 0 {
                    tracing::info!("{}: {} new entries", bp.name, a.new_entries);
                }
                f.appraiser = next;
            }
            if let Err(why) = &admitted {
                tracing::warn!("builder {} does not count: {why}", bp.name);
            }
            // Entries from a sync that failed part-way were never accepted:
            // their claims are dropped with it.
            if result.is_err() {
                claims.clear();
            }
            if let (Ok(mut builders), Ok(mut paths)) = (self.builders.write(), self.paths.write()) {
                if let Some(b) = builders.0.get_mut(i) {
                    for (path, claim) in claims {
                        paths.insert(path.hash_part().to_owned(), path.clone());
                        b.claims.insert(path, claim);
                    }
                    b.admitted = admitted;
                }
            }
        }
        if let Ok(mut d) = self.decisions.lock() {
            d.clear();
        }
        Ok(())
    }

    /// The verdict for `path`, from the cache if recent enough.
    pub fn verdict(&self, path: &StorePath) -> Option<Verdict> {
        if let Ok(d) = self.decisions.lock() {
            if let Some((at, v)) = d.get(path) {
                if at.elapsed() < self.ttl {
                    return Some(v.clone());
                }
            }
        }
        let v = self.builders.read().ok()?.decide(&self.policy, path);
        if let Ok(mut d) = self.decisions.lock() {
            d.insert(path.clone(), (Instant::now(), v.clone()));
        }
        Some(v)
    }

    /// The narinfo to serve for a hash part, or why not (status, reason).
    pub fn narinfo(&self, hash_part: &str) -> Result<String, (StatusCode, String)> {
        let not_found = |why: String| (StatusCode::NOT_FOUND, why);
        let path = self
            .paths
            .read()
            .ok()
            .and_then(|p| p.get(hash_part).cloned())
            .ok_or_else(|| not_found(format!("{hash_part}: no builder attests this path")))?;
        let v = self
            .verdict(&path)
            .ok_or_else(|| (StatusCode::INTERNAL_SERVER_ERROR, "lock poisoned".into()))?;
        let Some(attested) = v.trusted.clone() else {
            return Err(not_found(format!(
                "{path}: not trusted: {}; {}",
                v.reason.as_deref().unwrap_or("no quorum"),
                describe(&v)
            )));
        };
        let mut info = self
            .upstream
            .narinfo(hash_part)
            .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?
            .ok_or_else(|| not_found(format!("{path}: trusted, but upstream does not have it")))?;
        let refs: std::collections::BTreeSet<StorePath> =
            attested.references.iter().cloned().collect();
        if info.store_path != path
            || info.nar_hash != attested.nar_hash
            || info.nar_size != attested.nar_size
            || info.references != refs
        {
            return Err(not_found(format!(
                "{path}: upstream's narinfo differs from what the builders attest (NarHash {} \
                 vs {}, NarSize {} vs {}, {} vs {} references)",
                info.nar_hash.to_nix_string(),
                attested.nar_hash.to_nix_string(),
                info.nar_size,
                attested.nar_size,
                info.references.len(),
                refs.len()
            )));
        }
        cache_path(&info.url).ok_or_else(|| {
            (
                StatusCode::BAD_GATEWAY,
                format!("{path}: upstream's URL {:?} is not a cache path", info.url),
            )
        })?;
        let fingerprint = info
            .fingerprint()
            .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
        info.sigs = vec![self.key.sign(fingerprint.as_bytes()).to_string()];
        if let Ok(mut nars) = self.nars.lock() {
            // Nix asks for the NAR right after its narinfo: a full table is
            // simply started again.
            if nars.len() >= MAX_PROMISED {
                nars.clear();
            }
            nars.insert(
                info.url.clone(),
                Promised {
                    path: path.clone(),
                    nar_hash: info.nar_hash,
                    nar_size: info.nar_size,
                    compression: info.compression.clone(),
                },
            );
        }
        Ok(info.render())
    }

    /// The HTTP handler.
    pub fn handler(self: Arc<Self>) -> Handler {
        provenix_io::handler(self, Self::handle)
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: std::net::SocketAddr,
    ) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        let head = req.method() == Method::HEAD;
        let path = req.uri().path().trim_start_matches('/').to_owned();
        if path == "nix-cache-info" {
            return text(
                StatusCode::OK,
                format!(
                    "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: {}\n",
                    self.priority
                ),
            );
        }
        if let Some(hash) = path.strip_suffix(".narinfo") {
            if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return text(StatusCode::NOT_FOUND, "not a narinfo name\n");
            }
            let s = Arc::clone(&self);
            let hash = hash.to_owned();
            let r = tokio::task::spawn_blocking(move || s.narinfo(&hash)).await;
            return match r {
                Ok(Ok(info)) => {
                    let mut r = text(StatusCode::OK, if head { String::new() } else { info });
                    r.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/x-nix-narinfo"));
                    r
                }
                Ok(Err((status, why))) => {
                    tracing::info!("{peer}: {path}: {status}: {why}");
                    text(status, format!("{why}\n"))
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            };
        }
        let promised = self.nars.lock().ok().and_then(|n| n.get(&path).cloned());
        let Some(promised) = promised else {
            return text(
                StatusCode::NOT_FOUND,
                "not a NAR of a narinfo this substituter served\n",
            );
        };
        if head {
            return Response::new(provenix_io::full(Bytes::new()));
        }
        let upstream = self.upstream.clone();
        let (tx, body) = provenix_io::server::channel_body(4);
        tokio::task::spawn_blocking(move || {
            let outcome = match upstream.open(&path) {
                Ok(Some(r)) => pass_nar(r, &promised, &tx),
                Ok(None) => Err(format!("upstream does not have {path}")),
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = outcome {
                tracing::warn!("{peer}: NAR of {}: cut off: {why}", promised.path);
                let _ = tx.blocking_send(Err(std::io::Error::other(why)));
            }
        });
        let mut r = Response::new(body);
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-nix-nar"),
        );
        r
    }
}

/// The agreeing, disagreeing and missing builders, for log lines.
fn describe(v: &Verdict) -> String {
    let mut parts = Vec::new();
    if !v.agreeing.is_empty() {
        parts.push(format!("agreeing: {}", v.agreeing.join(", ")));
    }
    if !v.disagreeing.is_empty() {
        let d: Vec<String> = v
            .disagreeing
            .iter()
            .map(|(n, a)| format!("{n} ({})", a.nar_hash.to_nix_string()))
            .collect();
        parts.push(format!("disagreeing: {}", d.join(", ")));
    }
    if !v.missing.is_empty() {
        let m: Vec<String> = v
            .missing
            .iter()
            .map(|(n, why)| format!("{n} ({why})"))
            .collect();
        parts.push(format!("missing: {}", m.join(", ")));
    }
    parts.join("; ")
}

/// How much of the upstream file is read, and sent on, at a time.
const CHUNK: usize = 256 * 1024;

/// Passes the upstream file through in chunks of up to [`CHUNK`] bytes,
/// holding the last one back: it goes out only when the decompressed NAR
/// has the promised hash and size, so a NAR that differs never arrives
/// whole. Reads from it are served from the chunk in hand.
struct Tee<'t> {
    inner: Box<dyn Read + Send>,
    tx: &'t tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    /// The chunk in hand (not yet sent) and how much of it was read.
    held: Option<Bytes>,
    pos: usize,
}

impl Tee<'_> {
    /// Send the chunk in hand and read the next one (None at the end).
    fn next_chunk(&mut self) -> std::io::Result<Option<()>> {
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0;
        while n < CHUNK {
            match self.inner.read(buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        if let Some(prev) = self.held.replace(Bytes::from(buf)) {
            self.tx
                .blocking_send(Ok(prev))
                .map_err(|_| std::io::Error::other("the client went away"))?;
        }
        self.pos = 0;
        Ok(Some(()))
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let in_hand = self.held.as_ref().map_or(0, |h| h.len() - self.pos);
        if in_hand == 0 && self.next_chunk()?.is_none() {
            return Ok(0);
        }
        let Some(held) = &self.held else {
            return Ok(0);
        };
        let rest = held.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(out.len());
        out.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(rest.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}

/// Counts and hashes what is written to it (the decompressed NAR).
struct NarSink {
    hasher: sha2::Sha256,
    size: u64,
}

impl std::io::Write for NarSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.hasher, buf);
        self.size = self.size.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `std::io::copy` with a buffer as large as a chunk.
fn copy(from: &mut dyn Read, to: &mut dyn std::io::Write) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(buf.get(..n).unwrap_or_default())?;
        total += n as u64;
    }
}

/// Stream `file` (in `promised.compression`) to `tx`, checking the NAR.
fn pass_nar(
    file: Box<dyn Read + Send>,
    promised: &Promised,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<(), String> {
    let mut tee = Tee {
        inner: file,
        tx,
        held: None,
        pos: 0,
    };
    let mut sink = NarSink {
        hasher: <sha2::Sha256 as sha2::Digest>::new(),
        size: 0,
    };
    {
        let mut decoder: Box<dyn Read + '_> = match promised.compression.as_str() {
            "none" | "" => Box::new(&mut tee),
            "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(&mut tee)),
            "zstd" => {
                Box::new(zstd::stream::read::Decoder::new(&mut tee).map_err(|e| e.to_string())?)
            }
            "bzip2" => Box::new(bzip2::read::MultiBzDecoder::new(&mut tee)),
            other => return Err(format!("compression {other:?} is not supported")),
        };
        copy(&mut decoder, &mut sink).map_err(|e| format!("reading or decompressing: {e}"))?;
    }
    // Anything after the compressed stream still goes to the client.
    copy(&mut tee, &mut std::io::sink()).map_err(|e| e.to_string())?;
    let hash = NarHash(provenix_protocol::Sha256Digest(
        sha2::Digest::finalize(sink.hasher).into(),
    ));
    if hash != promised.nar_hash || sink.size != promised.nar_size {
        return Err(format!(
            "the NAR is {} ({} bytes), the builders attest {} ({} bytes)",
            hash.to_nix_string(),
            sink.size,
            promised.nar_hash.to_nix_string(),
            promised.nar_size
        ));
    }
    if let Some(last) = tee.held.take() {
        tx.blocking_send(Ok(last))
            .map_err(|_| "the client went away".to_string())?;
    }
    Ok(())
}

/// A Nix secret key file's key.
pub fn read_key(path: &Path) -> Result<NixSecretKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    NixSecretKey::parse(text.trim()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn promised(nar: &[u8], compression: &str) -> Promised {
        Promised {
            path: StorePath::parse("/nix/store/00000000000000000000000000000000-x").unwrap(),
            nar_hash: NarHash(provenix_protocol::Sha256Digest::of(nar)),
            nar_size: nar.len() as u64,
            compression: compression.into(),
        }
    }

    /// What the client receives: the chunks, then whether it was cut off.
    fn pass(file: Vec<u8>, p: &Promised) -> (Vec<u8>, bool) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 16);
        let r = pass_nar(Box::new(std::io::Cursor::new(file)), p, &tx);
        if let Err(why) = &r {
            tx.blocking_send(Err(std::io::Error::other(why.clone())))
                .unwrap();
        }
        drop(tx);
        let mut got = Vec::new();
        let mut cut = false;
        while let Some(c) = rx.blocking_recv() {
            match c {
                Ok(b) => got.extend_from_slice(&b),
                Err(_) => cut = true,
            }
        }
        (got, cut)
    }

    #[test]
    fn nars_pass_whole_in_each_compression_or_are_cut_off() {
        let nar: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut xz = Vec::new();
        liblzma::write::XzEncoder::new(&mut xz, 6)
            .write_all(&nar)
            .unwrap();
        let zst = zstd::stream::encode_all(nar.as_slice(), 3).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&nar).unwrap();
        let bz = bz.finish().unwrap();
        for (c, file) in [
            ("none", nar.clone()),
            ("xz", xz),
            ("zstd", zst),
            ("bzip2", bz),
        ] {
            // The attested NAR: passed through byte for byte, complete.
            let (got, cut) = pass(file.clone(), &promised(&nar, c));
            assert!(!cut, "{c}");
            assert_eq!(got, file, "{c}");
            // Another NAR promised: the client never gets the whole file.
            let mut other = nar.clone();
            other[7] ^= 1;
            let (got, cut) = pass(file.clone(), &promised(&other, c));
            assert!(cut, "{c}");
            assert!(got.len() < file.len(), "{c}: the last chunk was held back");
        }
        let (_, cut) = pass(b"x".to_vec(), &promised(b"x", "lz4"));
        assert!(cut, "an unknown compression is refused");
    }

    #[test]
    fn cache_paths_stay_inside_the_cache() {
        assert!(cache_path("nar/0abc.nar.xz").is_some());
        for bad in [
            "",
            "/etc/passwd",
            "nar/../../etc",
            "nar//x",
            "./x",
            "a b",
            "nar/x?y",
        ] {
            assert!(cache_path(bad).is_none(), "{bad}");
        }
    }
}
