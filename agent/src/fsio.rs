//! File-system helpers: durable writes come from `provenix_io::durable`
//! (shared with the verifier); this module adds the agent's error type.

use std::path::Path;

pub use provenix_io::durable::{create_dirs_durable, sync_dir, write_durable};

use crate::error::AgentError;

/// An I/O error on `path`.
pub fn io(path: &Path, e: std::io::Error) -> AgentError {
    AgentError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

impl From<provenix_io::durable::DurableError> for AgentError {
    fn from(e: provenix_io::durable::DurableError) -> Self {
        io(&e.path, e.source)
    }
}
