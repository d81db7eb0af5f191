//! What opening a store needs beyond its URL, built once from the command
//! line (`--endpoint-url`, `--path-style`, `--timeout`, `--connect-timeout`):
//! callers that only know a URL pass it whole, and each backend reads its
//! part (the local store needs none of it; S3 reads all of it). A new
//! backend adds its fields here, not a parameter to [`open`](super::open).

use std::time::Duration;

/// Connection settings for any store; each backend reads what applies to it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreConfig {
    /// Custom endpoint for S3-compatible stores (`--endpoint-url`).
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`--path-style`), needed by most self-hosted stores.
    pub path_style: bool,
    /// How long any request may take.
    pub timeouts: Timeouts,
}

/// Bounds on every store request, so that an endpoint that accepts
/// connections and never answers ends in an error, not a wait without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Establishing a connection.
    pub connect: Duration,
    /// One request, retries included (`--timeout`). File transfers get
    /// this plus the time to send their bytes at [`MIN_TRANSFER_RATE`].
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: DEFAULT_CONNECT_TIMEOUT, operation: DEFAULT_OPERATION_TIMEOUT }
    }
}

/// Default `--connect-timeout`.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `--timeout`: what a CI job waits at most for a store that does not answer.
pub(crate) const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The slowest upload rate a transfer is given time for (1 MiB/s). A body
/// that stalls outright is cut by the SDK's stalled-stream protection.
pub(crate) const MIN_TRANSFER_RATE: u64 = 1024 * 1024;
