//! The HTTP(S) client: ureq over rustls with the ring provider, roots from
//! an explicit PEM file or the system's bundle (never a bundled root list).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::{read_certificates, Result};

/// Where Debian (and most Linux distributions) keep the system's roots.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A client whose requests time out after `timeout` in all, trusting the
/// roots in `ca_file` (PEM), else `$SSL_CERT_FILE`, else [`SYSTEM_ROOTS`]
/// (when it exists; plain HTTP needs no roots). HTTP status codes are
/// returned as responses, not errors.
pub fn client(ca_file: Option<&Path>, timeout: Duration) -> Result<ureq::Agent> {
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let roots = match ca_file.map(Path::to_path_buf).or(env) {
        Some(f) => read_certificates(&f)?,
        None if Path::new(SYSTEM_ROOTS).exists() => read_certificates(Path::new(SYSTEM_ROOTS))?,
        None => Vec::new(),
    };
    let roots: Vec<Certificate<'static>> = roots
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build();
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into())
}
