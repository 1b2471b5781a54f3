//! Where a builder's log is read from: a directory (a copy, or the
//! builder's own `log_dir`) or the builder's log service over HTTP(S).
//! Both serve the same C2SP tlog-tiles paths (`checkpoint`,
//! `tile/entries/...`); nothing read is trusted until appraised.

use std::path::PathBuf;

/// Largest file fetched (an entry bundle holds at most 256 leaves of at
/// most 64 KiB each).
pub const MAX_FETCH: u64 = 256 * (65_535 + 2);

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {path}: {reason}")]
pub struct FetchError {
    /// The log source.
    pub source_name: String,
    /// The path within it.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// A log to read.
pub enum LogSource {
    /// A directory laid out as tlog-tiles.
    Dir(PathBuf),
    /// A log service's base URL, and the client to fetch with.
    Http(String, ureq::Agent),
}

impl LogSource {
    /// A source from a command-line argument: `http://` or `https://` URLs
    /// are services (with `client`), anything else a directory.
    pub fn from_arg(arg: &str, client: &ureq::Agent) -> Self {
        if arg.starts_with("http://") || arg.starts_with("https://") {
            Self::Http(arg.trim_end_matches('/').to_owned(), client.clone())
        } else {
            Self::Dir(PathBuf::from(arg))
        }
    }

    /// How to name the source in messages.
    pub fn name(&self) -> String {
        match self {
            Self::Dir(d) => d.display().to_string(),
            Self::Http(u, _) => u.clone(),
        }
    }

    /// Fetch `path` (relative, e.g. `checkpoint`).
    pub fn fetch(&self, path: &str) -> Result<Vec<u8>, FetchError> {
        let err = |reason: String| FetchError {
            source_name: self.name(),
            path: path.to_owned(),
            reason,
        };
        match self {
            Self::Dir(d) => {
                provenix_io::read_bounded(&d.join(path), MAX_FETCH).map_err(|e| err(e.to_string()))
            }
            Self::Http(base, client) => {
                let mut r = client
                    .get(&format!("{base}/{path}"))
                    .call()
                    .map_err(|e| err(e.to_string()))?;
                let status = r.status().as_u16();
                if status != 200 {
                    return Err(err(format!("HTTP {status}")));
                }
                r.body_mut()
                    .with_config()
                    .limit(MAX_FETCH)
                    .read_to_vec()
                    .map_err(|e| err(e.to_string()))
            }
        }
    }
}
