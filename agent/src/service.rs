//! The builder's read-only log service (HTTPS; plain HTTP on loopback when
//! configured), run by the daemon beside its worker. URL layout
//! (docs/service.md):
//!
//! ```text
//! GET  /checkpoint                    signed note (LK + witness cosignatures)
//! GET  /tile/<L>/<N>[.p/<W>]          hash tiles     } C2SP tlog-tiles, only
//! GET  /tile/entries/<N>[.p/<W>]      entry bundles  } within the checkpoint
//! GET  /enrollment                    the enrollment record (canonical bytes)
//! GET  /eventlog/firmware             this boot's firmware event log (TCG)
//! GET  /eventlog/cel                  this boot's provenix CEL-JSON log
//! GET  /lookup/output/<name>          entries naming /nix/store/<name> (JSON)
//! GET  /lookup/drv/<name>.drv         entries for /nix/store/<name>.drv (JSON)
//! GET  /sig/<name>                    Nix Sig: by LK over the attested fields
//! GET  /status                        enrollment, keys, queue, log (JSON)
//! POST /activate                      credential challenge → answer (TPM;
//!                                     rate-limited)
//! ```
//! Everything but `/activate` reads files the worker has made durable;
//! `/activate` goes to the worker, which owns the TPM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use provenix_io::server::read_body;
use provenix_io::{full, text, Body, Handler};
use provenix_protocol::nix_sig::{fingerprint, NixSecretKey};
use provenix_protocol::tiles::TileId;
use provenix_protocol::tpm::CredentialChallenge;
use provenix_protocol::{DrvPath, SignedEntry, StorePath};

use crate::daemon::Msg;
use crate::enroll::ENROLLMENT_FILE;
use crate::error::AgentError;
use crate::log::{published, read_entry};
use crate::measure::CEL_LOG;
use crate::recorder::LogView;
use crate::spool::Spool;
use crate::state::StateDir;
use crate::status::collect;

/// Default credential activations per minute.
pub const DEFAULT_ACTIVATIONS_PER_MINUTE: u32 = 6;
/// Largest challenge accepted.
const MAX_CHALLENGE: usize = 4096;
/// How long an activation may wait for the worker (it may be mid-batch).
const ACTIVATION_WAIT: Duration = Duration::from_secs(60);
/// The store directory the served paths are in.
const STORE_DIR: &str = "/nix/store/";

/// What the service serves from.
pub struct ServiceContext {
    /// The log directory.
    pub log_dir: PathBuf,
    /// The agent's state directory.
    pub state: StateDir,
    /// The job spool.
    pub spool: Spool,
    /// This boot's firmware event log.
    pub firmware_event_log: PathBuf,
    /// LK as a Nix signing key (for `/sig`; None: not served).
    pub nix_key: Option<NixSecretKey>,
    /// The worker (for `/activate`).
    pub worker: Sender<Msg>,
    /// Activations allowed per minute.
    pub activations_per_minute: u32,
}

/// The Nix key name of a builder's LK: `provenix-<AK Name hex>`.
pub fn nix_key_name(builder: &provenix_protocol::BuilderId) -> String {
    format!("provenix-{}", builder.to_hex())
}

/// A token bucket: `per_minute` tokens a minute, as many at most.
struct RateLimit {
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            tokens: f64::from(per_minute),
            last: Instant::now(),
        }
    }

    /// Take a token, or say how many seconds until one is there.
    fn take(&mut self) -> Result<(), u64> {
        let now = Instant::now();
        let rate = f64::from(self.per_minute) / 60.0;
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate)
            .min(f64::from(self.per_minute));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if rate > 0.0 {
            Err(((1.0 - self.tokens) / rate).ceil() as u64)
        } else {
            Err(60)
        }
    }
}

struct Service {
    ctx: ServiceContext,
    view: Mutex<LogView>,
    limit: Mutex<RateLimit>,
}

/// The service's request handler.
pub fn handler(ctx: ServiceContext) -> Handler {
    let limit = RateLimit::new(ctx.activations_per_minute);
    let svc = Arc::new(Service {
        ctx,
        view: Mutex::new(LogView::default()),
        limit: Mutex::new(limit),
    });
    provenix_io::handler(svc, Service::handle)
}

fn bytes(content_type: &'static str, body: Vec<u8>, cache: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

fn json(v: &serde_json::Value) -> Response<Body> {
    bytes("application/json", v.to_string().into_bytes(), "no-cache")
}

fn not_found(what: impl Into<String>) -> Response<Body> {
    text(StatusCode::NOT_FOUND, what)
}

fn internal(e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!("service: {e}");
    text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
}

/// A file, or 404 when it does not exist.
fn file(path: &Path, content_type: &'static str, cache: &'static str) -> Response<Body> {
    match std::fs::read(path) {
        Ok(b) => bytes(content_type, b, cache),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            not_found(format!("{} does not exist here\n", path.display()))
        }
        Err(e) => internal(format!("{}: {e}", path.display())),
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

const INDEX: &str = "provenix builder log service\n\
GET  /checkpoint\n\
GET  /tile/<L>/<N>[.p/<W>]\n\
GET  /tile/entries/<N>[.p/<W>]\n\
GET  /enrollment\n\
GET  /eventlog/firmware\n\
GET  /eventlog/cel\n\
GET  /lookup/output/<store path name>\n\
GET  /lookup/drv/<derivation name>.drv\n\
GET  /sig/<store path name>\n\
GET  /status\n\
POST /activate\n";

fn entry_json(leaf: u64, e: &SignedEntry) -> serde_json::Value {
    let e = e.entry();
    serde_json::json!({
        "leaf": leaf,
        "drv_path": e.drv_path.as_str(),
        "drv_hash": e.drv_hash.to_hex(),
        "built_locally": e.built_locally,
        "system": e.system.to_hex(),
        "time": e.time,
        "outputs": e.outputs.iter().map(|o| serde_json::json!({
            "name": o.name,
            "store_path": o.store_path.as_str(),
            "nar_hash": o.nar_hash.to_nix_string(),
            "nar_size": o.nar_size,
            "references": o.references.iter().map(StorePath::as_str).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

impl Service {
    async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path().to_owned();
        match *req.method() {
            Method::POST if path == "/activate" => self.activate(req, peer).await,
            Method::GET | Method::HEAD => {
                let head = req.method() == Method::HEAD;
                let svc = Arc::clone(&self);
                let r = tokio::task::spawn_blocking(move || svc.get(&path))
                    .await
                    .unwrap_or_else(internal);
                if head {
                    let (parts, _) = r.into_parts();
                    Response::from_parts(parts, full(Vec::new()))
                } else {
                    r
                }
            }
            _ => {
                let mut r = text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "read-only, but POST /activate\n",
                );
                r.headers_mut().insert(
                    hyper::header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, POST"),
                );
                r
            }
        }
    }

    fn get(&self, path: &str) -> Response<Body> {
        let log = &self.ctx.log_dir;
        let state = &self.ctx.state;
        match path {
            "/" => text(StatusCode::OK, INDEX),
            "/checkpoint" => file(
                &log.join(crate::log::CHECKPOINT),
                "text/plain; charset=utf-8",
                "no-cache",
            ),
            "/enrollment" => file(
                &state.file(ENROLLMENT_FILE),
                "application/octet-stream",
                "no-cache",
            ),
            "/eventlog/firmware" => file(
                &self.ctx.firmware_event_log,
                "application/octet-stream",
                "no-cache",
            ),
            "/eventlog/cel" => file(&state.file(CEL_LOG), "application/json", "no-cache"),
            "/status" => self.status(),
            p if p.starts_with("/tile/") => self.tile(p),
            p => {
                if let Some(name) = p.strip_prefix("/lookup/output/") {
                    self.lookup_output(name)
                } else if let Some(name) = p.strip_prefix("/lookup/drv/") {
                    self.lookup_drv(name)
                } else if let Some(name) = p.strip_prefix("/sig/") {
                    self.sig(name)
                } else {
                    not_found("no such resource; GET / lists them\n")
                }
            }
        }
    }

    fn tile(&self, path: &str) -> Response<Body> {
        let id = match TileId::parse(path.trim_start_matches('/')) {
            Ok(id) => id,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        let size = match published(&self.ctx.log_dir) {
            Ok(Some((_, cp))) => cp.size,
            Ok(None) => 0,
            Err(e) => return internal(e),
        };
        if !id.within(size) {
            return not_found(format!(
                "{path} is not within the checkpoint (size {size})\n"
            ));
        }
        file(
            &self.ctx.log_dir.join(id.path()),
            "application/octet-stream",
            IMMUTABLE,
        )
    }

    /// Bring the view up to the published checkpoint; its size.
    fn view(&self) -> crate::Result<(std::sync::MutexGuard<'_, LogView>, u64)> {
        let size = published(&self.ctx.log_dir)?.map_or(0, |(_, cp)| cp.size);
        let mut view = self
            .view
            .lock()
            .map_err(|_| AgentError::Config("the log view is poisoned".into()))?;
        view.catch_up(&self.ctx.log_dir, size)?;
        Ok((view, size))
    }

    /// The entries at `leaves`.
    fn entries(&self, leaves: &[u64], size: u64) -> crate::Result<Vec<(u64, SignedEntry)>> {
        leaves
            .iter()
            .map(|&l| read_entry(&self.ctx.log_dir, l, size).map(|e| (l, e)))
            .collect()
    }

    /// The store path `/nix/store/<name>`, or why not.
    fn store_path(name: &str) -> Result<StorePath, String> {
        StorePath::parse(&format!("{STORE_DIR}{name}"))
            .map_err(|_| format!("{name:?} is not a store path name\n"))
    }

    /// The entries the index names for a key, as JSON under `field`.
    fn lookup(
        &self,
        field: &str,
        key: &str,
        leaves: impl FnOnce(&LogView) -> Vec<u64>,
    ) -> Response<Body> {
        let (leaves, size) = match self.view() {
            Ok((v, size)) => (leaves(&v), size),
            Err(e) => return internal(e),
        };
        match self.entries(&leaves, size) {
            Ok(es) => json(&serde_json::json!({
                field: key,
                "log_size": size,
                "entries": es.iter().map(|(l, e)| entry_json(*l, e)).collect::<Vec<_>>(),
            })),
            Err(e) => internal(e),
        }
    }

    fn lookup_output(&self, name: &str) -> Response<Body> {
        match Self::store_path(name) {
            Ok(path) => self.lookup("store_path", path.as_str(), |v| {
                v.index.entries_for_output(&path)
            }),
            Err(why) => text(StatusCode::BAD_REQUEST, why),
        }
    }

    fn lookup_drv(&self, name: &str) -> Response<Body> {
        match DrvPath::parse(&format!("{STORE_DIR}{name}")) {
            Ok(drv) => self.lookup("drv_path", drv.as_str(), |v| v.index.entries_for_drv(&drv)),
            Err(_) => text(
                StatusCode::BAD_REQUEST,
                format!("{name:?} is not a derivation name\n"),
            ),
        }
    }

    /// LK's Nix signature over the fields the latest entry naming the path
    /// attests.
    fn sig(&self, name: &str) -> Response<Body> {
        let Some(nix_key) = &self.ctx.nix_key else {
            return not_found(
                "this builder does not serve Nix signatures (serve_nix_sigs = false)\n",
            );
        };
        let path = match Self::store_path(name) {
            Ok(p) => p,
            Err(why) => return text(StatusCode::BAD_REQUEST, why),
        };
        let (leaves, size) = match self.view() {
            Ok((v, size)) => (v.index.entries_for_output(&path), size),
            Err(e) => return internal(e),
        };
        let Some(&leaf) = leaves.last() else {
            return not_found(format!("{path} is not in this builder's log\n"));
        };
        let entry = match read_entry(&self.ctx.log_dir, leaf, size) {
            Ok(e) => e,
            Err(e) => return internal(e),
        };
        let Some(out) = entry.entry().outputs.iter().find(|o| o.store_path == path) else {
            return internal(format!("leaf {leaf} does not name {path}"));
        };
        let refs = out.references.iter().cloned().collect();
        let fp = match fingerprint(&path, &out.nar_hash, out.nar_size, &refs) {
            Ok(f) => f,
            Err(e) => return internal(e),
        };
        let sig = nix_key.sign(fp.as_bytes());
        json(&serde_json::json!({
            "store_path": path.as_str(),
            "leaf": leaf,
            "nar_hash": out.nar_hash.to_nix_string(),
            "nar_size": out.nar_size,
            "references": out.references.iter().map(StorePath::as_str).collect::<Vec<_>>(),
            "sig": sig.to_string(),
            "public_key": nix_key.public().to_string(),
        }))
    }

    fn status(&self) -> Response<Body> {
        let mut view = match self.view.lock() {
            Ok(v) => v,
            Err(_) => return internal("the log view is poisoned"),
        };
        match collect(
            &self.ctx.state,
            &self.ctx.spool,
            &self.ctx.log_dir,
            &mut view,
            "derived by the running daemon".into(),
        ) {
            Ok(s) => match serde_json::to_value(&s) {
                Ok(v) => json(&v),
                Err(e) => internal(e),
            },
            Err(e) => internal(e),
        }
    }

    async fn activate(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let limited = match self.limit.lock() {
            Ok(mut l) => l.take(),
            Err(_) => return internal("the rate limit is poisoned"),
        };
        if let Err(secs) = limited {
            let mut r = text(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many activations; try again in {secs} s\n"),
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(RETRY_AFTER, v);
            }
            return r;
        }
        let body = match read_body(req, MAX_CHALLENGE).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let challenge = match CredentialChallenge::from_bytes(&body) {
            Ok(c) => c,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("not a credential challenge: {e}\n"),
                )
            }
        };
        let worker = self.ctx.worker.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let (tx, rx) = sync_channel(1);
            worker
                .send(Msg::Activate(Box::new(challenge), tx))
                .map_err(|_| "the worker has stopped".to_string())?;
            rx.recv_timeout(ACTIVATION_WAIT)
                .map_err(|_| "the worker did not answer in time".to_string())
        })
        .await;
        match answer {
            Ok(Ok(Ok(a))) => {
                tracing::info!("answered a credential challenge from {peer}");
                bytes("application/octet-stream", a.to_bytes(), "no-store")
            }
            Ok(Ok(Err(e))) => text(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the TPM did not activate the credential (not made for this EK and AK?): {e}\n"
                ),
            ),
            Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
            Err(e) => internal(e),
        }
    }
}
