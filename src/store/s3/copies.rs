//! The private copies an upload sends from (see the module doc of
//! [`super`]): where they go, what they are named, and removing those that
//! killed runs left.
//!
//! A copy lives in `TMPDIR` (`/tmp` when it is unset or empty: an empty
//! `TMPDIR` would put copies in the working directory, which may be the
//! build being published) and is named `sdk-cdn-upload-<host>-<pid>-…` by
//! its writer. A copy is removed when its writer's process is gone (the
//! rule of [`crate::store::stale`]) and kept for ever otherwise: an upload
//! over a slow link can take hours, and only the pid tells. `TMPDIR` is
//! shared, so only this user's files are judged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use tempfile::NamedTempFile;

use crate::store::{StaleTemp, StoreError, stale};

/// What every copy's name starts with, before [`stale::writer_tag`].
const PREFIX: &str = "sdk-cdn-upload-";

/// Whether this process has swept `TMPDIR` yet (once per process).
static SWEPT: AtomicBool = AtomicBool::new(false);

/// The directory of the copies, absolute (a relative `TMPDIR` is taken
/// from the working directory once, here, so that messages and the check
/// that it is not inside the build see where copies really go).
pub(crate) fn dir() -> PathBuf {
    let dir = std::env::temp_dir();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from("/tmp") } else { dir };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// A new, empty copy, named by this process. The first one sweeps.
pub(super) fn create() -> Result<NamedTempFile, StoreError> {
    if !SWEPT.swap(true, Ordering::Relaxed) {
        match sweep() {
            Ok(s) if s.files > 0 => {
                tracing::info!(files = s.files, bytes = s.bytes, "removed upload copies of interrupted runs");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not look for stale upload copies"),
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", stale::writer_tag()))
        .tempfile_in(dir())
        .map_err(|e| unusable("create an upload copy in TMPDIR", e))
}

/// For `doctor` and before a publish writes: proves that `TMPDIR` can take
/// a copy, one byte of it (a missing, read-only or full `TMPDIR` would
/// otherwise fail the publish at its first upload, after its intent
/// record; one with less room than a file still fails there, naming it),
/// then sweeps it. A `TMPDIR` that cannot be listed is not swept, which is
/// logged; the publish does not need to list it.
pub(super) fn check_and_sweep() -> Result<Option<StaleTemp>, StoreError> {
    SWEPT.store(true, Ordering::Relaxed);
    let mut copy = create()?;
    std::io::Write::write_all(copy.as_file_mut(), b"\0").map_err(|e| unusable("write an upload copy in TMPDIR", e))?;
    drop(copy);
    match sweep() {
        Ok(removed) => Ok(Some(removed)),
        Err(e) => {
            tracing::warn!(error = %e, "could not look for stale upload copies");
            Ok(None)
        }
    }
}

/// `op` failed in `TMPDIR`, with what to do about it.
fn unusable(op: &'static str, e: std::io::Error) -> StoreError {
    let hint = format!("{e}; point TMPDIR at a writable directory with room for the files in flight");
    StoreError::io(op, &dir(), std::io::Error::new(e.kind(), hint))
}

fn sweep() -> Result<StaleTemp, StoreError> {
    let dir = dir();
    let place = stale::TempDir { dir: &dir, prefix: PREFIX, unknown_writer_kept: None, own_files_only: true };
    stale::sweep(&place).map_err(|e| StoreError::io("list", &dir, e))
}
