//! Bytes staged while a publish plans: each file is copied into a store's
//! staging area while it is hashed, so a publish reads every byte once
//! (issue 16) and what the store links or sends later is, by construction,
//! exactly what was hashed (the sealed hash is the hash of the stored
//! bytes, DESIGN.md "Fail closed").
//!
//! A [`StagedFile`] owns its temp file: the store consumes it by linking it
//! into place (or sending it), and whatever is left (a refused plan, a
//! failed upload, a publish that stopped early) is removed when the last
//! reference drops. A killed process leaves it to the local store's sweep
//! (its temp names carry the writer's pid).

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::integrity::{Digests, Integrity};

/// A file's bytes in a store's staging area, with their integrity and size.
#[derive(Debug)]
pub struct StagedFile {
    path: PathBuf,
    integrity: Integrity,
    size: u64,
    sha512: Option<[u8; 64]>,
    removed: AtomicBool,
}

impl StagedFile {
    /// Only stagers make these: `integrity` must be that of the bytes at `path`.
    pub(crate) fn new(path: PathBuf, (integrity, size, sha512): Digests) -> Self {
        StagedFile { path, integrity, size, sha512, removed: AtomicBool::new(false) }
    }

    /// The SHA-512 of exactly these bytes, when staging was asked for it
    /// (signature-based SRI signs it).
    pub(crate) fn sha512(&self) -> Option<[u8; 64]> {
        self.sha512
    }

    /// Where the bytes are.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The integrity of exactly these bytes.
    pub(crate) fn integrity(&self) -> Integrity {
        self.integrity
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Removes the temp file now (its bytes were linked into place, or are
    /// no longer needed); a second call, or the drop, does nothing.
    pub(crate) fn remove(&self) {
        if !self.removed.swap(true, Ordering::Relaxed) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Where a store lets a publish stage files ([`crate::store::Store::staging`]).
pub trait Staging: Send + Sync + fmt::Debug {
    /// Copies `reader` into a new staging file through `buf`, hashing the
    /// bytes written ([`Integrity::of_copy_with`]). The store's write
    /// flushes it before it names it.
    /// On an error nothing is left behind; the error is the reader's or the
    /// staging area's, as it happened.
    /// With `sha512`, the SHA-512 of the same bytes too.
    fn stage(&self, reader: &mut dyn Read, buf: &mut [u8], sha512: bool) -> io::Result<StagedFile>;

    /// The directory the copies go to, for messages (a full disk is there).
    fn dir(&self) -> PathBuf;
}

/// A source being copied, remembering whether a read failed: a failed copy
/// is then the source's fault (a build file: exit 2), otherwise the
/// destination's (a store or `TMPDIR`: exit 1), and the message names that.
pub(crate) struct SourceRead<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> SourceRead<R> {
    pub(crate) fn new(inner: R) -> Self {
        SourceRead { inner, failed: false }
    }

    /// Whether a read of the source failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }
}

impl<R: Read> Read for SourceRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf);
        self.failed |= read.is_err();
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Staging in the OS's temp directory (no store stages there: S3 reads
    /// the build's own files, so a release never sits in TMPDIR at once).
    #[derive(Debug)]
    struct TempDirStaging;

    impl Staging for TempDirStaging {
        fn stage(&self, reader: &mut dyn Read, buf: &mut [u8], sha512: bool) -> io::Result<StagedFile> {
            let mut file = tempfile::Builder::new().prefix("sdk-cdn-upload-").tempfile()?;
            let digests = Integrity::of_copy_with(reader, file.as_file_mut(), buf, sha512)?;
            // Kept until the StagedFile drops (it removes the file then).
            let path = file.into_temp_path().keep().map_err(|e| e.error)?;
            Ok(StagedFile::new(path, digests))
        }

        fn dir(&self) -> PathBuf {
            std::env::temp_dir()
        }
    }

    #[test]
    fn a_staged_file_holds_the_hashed_bytes_and_is_removed_on_drop() {
        let staged = TempDirStaging.stage(&mut &b"alert(1)"[..], &mut [0u8; 3], false).unwrap();
        assert_eq!(std::fs::read(staged.path()).unwrap(), b"alert(1)");
        assert_eq!((staged.integrity(), staged.size()), (Integrity::of_bytes(b"alert(1)"), 8));
        let path = staged.path().to_path_buf();
        drop(staged);
        assert!(!path.exists(), "the drop removed {}", path.display());
    }
}
