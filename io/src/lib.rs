//! The std plumbing shared by the provenix agent (its log service, state
//! and log files) and the verifier (log sync, witness, substituter, state):
//! durable file writes and HTTP(S).
//!
//! ```text
//! durable: write_durable ─ temp file beside the target, fsync, rename,
//!          fsync the directory
//! server:  ListenOptions ─ check (TLS, or plain HTTP on loopback only)
//!          ─ Server::bind ─ run(handler, shutdown):
//!              accept (≤ max_connections at once) ─ TLS handshake (bounded)
//!              ─ HTTP/1.1 (header timeout) ─ handler(Request) -> Response
//!              shutdown resolves: stop accepting, let requests in flight
//!              finish for up to `grace`, then drop the rest
//! client:  client(ca_file, timeout) ─ ureq agent over rustls (ring), roots
//!          from the given PEM file or the system bundle; HTTP status codes
//!          are answers, not errors
//! ```
//!
//! Everything served by provenix is signed where it matters (checkpoints,
//! entries, quotes), so TLS protects privacy and availability, not the
//! integrity of the evidence; still, plain HTTP is only ever allowed on a
//! loopback address and only when asked for.

#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub mod client;
pub mod durable;
pub mod server;

pub use client::client;
pub use server::{full, handler, text, Body, Handler, Server};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Log lines (tracing) to stderr for the agent's and verifier's
/// long-running commands: level and message, no time stamp (the journal
/// adds one), no colour. `PROVENIX_LOG` filters (e.g. `debug`,
/// `provenix_agent=debug`); the default is `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVENIX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// Errors of the HTTP plumbing.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listening configuration is not acceptable.
    #[error("listen configuration: {0}")]
    Config(String),
    /// Binding the address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate or key file could not be read or used.
    #[error("{}: {what}", path.display())]
    Tls {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
}

/// Result with [`HttpError`].
pub type Result<T> = std::result::Result<T, HttpError>;

/// Certificate chain and private key (PEM files) for HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// The address.
    pub addr: SocketAddr,
    /// HTTPS with these files; `None` means plain HTTP, which needs
    /// `plain_http` and a loopback address.
    pub tls: Option<TlsFiles>,
    /// Serve plain HTTP (loopback only).
    pub plain_http: bool,
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Time allowed for a TLS handshake and for a request's headers.
    pub header_timeout: std::time::Duration,
    /// How long requests in flight may take to finish at shutdown.
    pub grace: std::time::Duration,
}

/// Default connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl ListenOptions {
    /// Options with the defaults for `addr`.
    pub fn new(addr: SocketAddr, tls: Option<TlsFiles>, plain_http: bool) -> Self {
        Self {
            addr,
            tls,
            plain_http,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: std::time::Duration::from_secs(10),
            grace: std::time::Duration::from_secs(5),
        }
    }

    /// Refuse what must not be served: plain HTTP off loopback, plain HTTP
    /// not asked for, TLS and plain HTTP both asked for, no connections.
    pub fn check(&self) -> Result<()> {
        match (&self.tls, self.plain_http) {
            (Some(_), true) => Err(HttpError::Config(
                "both TLS files and plain HTTP are configured: choose one".into(),
            )),
            (None, false) => Err(HttpError::Config(format!(
                "{}: no TLS certificate and key are configured (plain HTTP must be asked for \
                 explicitly, and only on a loopback address)",
                self.addr
            ))),
            (None, true) if !self.addr.ip().is_loopback() => Err(HttpError::Config(format!(
                "{}: plain HTTP is only allowed on a loopback address; configure a TLS \
                 certificate and key to listen there",
                self.addr
            ))),
            _ if self.max_connections == 0 => Err(HttpError::Config(
                "max_connections must be at least 1".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The URL scheme this serves.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

fn tls_error(path: &Path, what: impl std::fmt::Display) -> HttpError {
    HttpError::Tls {
        path: path.to_owned(),
        what: what.to_string(),
    }
}

/// A file's bytes, refused (InvalidData, naming the limit) when it holds
/// more than `max` bytes: for files whose size the reader bounds.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// The certificates in a PEM file (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, e))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_refuse_a_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, [7u8; 10]).unwrap();
        assert_eq!(read_bounded(&f, 10).unwrap(), vec![7u8; 10]);
        let e = read_bounded(&f, 9).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 9 bytes"), "{e}");
        assert_eq!(
            read_bounded(&dir.path().join("none"), 9)
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::NotFound
        );
    }

    fn opts(addr: &str, tls: bool, plain: bool) -> ListenOptions {
        let tls = tls.then(|| TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
        });
        ListenOptions::new(addr.parse().unwrap(), tls, plain)
    }

    #[test]
    fn plain_http_only_on_loopback_and_only_when_asked() {
        assert!(opts("127.0.0.1:0", false, true).check().is_ok());
        assert!(opts("[::1]:0", false, true).check().is_ok());
        assert!(opts("0.0.0.0:80", true, false).check().is_ok());
        for (addr, tls, plain, needle) in [
            ("0.0.0.0:80", false, true, "only allowed on a loopback"),
            ("192.0.2.1:80", false, true, "only allowed on a loopback"),
            ("127.0.0.1:0", false, false, "no TLS certificate"),
            ("127.0.0.1:0", true, true, "choose one"),
        ] {
            let e = opts(addr, tls, plain).check().unwrap_err().to_string();
            assert!(e.contains(needle), "{addr} {tls} {plain}: {e}");
        }
        let mut o = opts("127.0.0.1:0", false, true);
        o.max_connections = 0;
        assert!(o.check().is_err());
    }
}
