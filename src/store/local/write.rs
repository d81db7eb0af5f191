//! How a write's bytes reach the disk: copied into a temp file while they
//! are hashed, checked against the integrity the caller planned, flushed,
//! and only then given a name; parents made on demand.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::etag::etag_of;
use crate::integrity::Integrity;
use crate::store::{Body, Headers, Key, StoreError};

/// Runs `op`, which creates something at `path`; if the parent directory is
/// missing, creates it and runs `op` again. Directories are made only when
/// needed: most writes land in directories that exist. A concurrent delete
/// may remove a freshly made, still empty parent before `op` uses it, so
/// this tries a few times.
pub(super) fn in_parent<T>(path: &Path, op: impl Fn() -> io::Result<T>) -> io::Result<T> {
    let mut attempts = 0;
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < PARENT_ATTEMPTS => {
                attempts += 1;
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
            }
            other => return other,
        }
    }
}

/// How often [`in_parent`] recreates a vanished parent directory.
const PARENT_ATTEMPTS: u32 = 4;

/// A file being written, whose bytes the kernel starts writing to disk every
/// [`WRITE_BEHIND`] bytes (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which
/// does not wait). The flush before the file is named (Durability, in the
/// module docs of [`super`]) then waits only for what is still in flight:
/// the disk works while the rest is read and hashed, instead of after.
/// Measured on a 512 MiB file: that flush took 0.34 s after a plain copy.
/// Only a hint: the flush that follows reports any error, so the hint's own
/// result is ignored (and on other systems it is not given).
pub(super) struct WriteBehind<'a> {
    file: &'a mut File,
    written: u64,
    started: u64,
}

/// How many written bytes [`WriteBehind`] lets gather before it starts them.
pub(super) const WRITE_BEHIND: u64 = 8 << 20;

impl<'a> WriteBehind<'a> {
    pub(super) fn new(file: &'a mut File) -> Self {
        WriteBehind { file, written: 0, started: 0 }
    }

    /// Starts the last bytes too (a small file: all of them).
    pub(super) fn finish(mut self) {
        self.start();
    }

    fn start(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(offset), Ok(len)) = (i64::try_from(self.started), i64::try_from(self.written - self.started))
            else {
                return;
            };
            // SAFETY: sync_file_range takes integers only; the descriptor is
            // open for as long as `self.file` is borrowed.
            let _ = unsafe { libc::sync_file_range(self.file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        }
        self.started = self.written;
    }
}

impl Write for WriteBehind<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITE_BEHIND {
            self.start();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Bytes written to a temp file, flushed, not yet under their key.
pub(super) struct Staged {
    pub(super) etag: String,
    pub(super) size: u64,
    pub(super) ino: u64,
    pub(super) dev: u64,
}

/// What a source is called in messages when it is not a file.
const MEMORY: &str = "<memory>";

/// Writes `body` into `tmp`, hashing exactly the bytes written, refuses
/// with [`StoreError::ContentChanged`] if they are not the bytes
/// `headers.sri` promises, and flushes them to disk.
///
/// The caller removes `tmp` whatever the outcome: on a refusal nothing has
/// a name yet, so nothing under `key` describes the wrong bytes.
pub(super) fn stage(key: &Key, tmp: &Path, body: Body, headers: &Headers) -> Result<Staged, StoreError> {
    let mut out = in_parent(tmp, || File::options().write(true).create_new(true).open(tmp))
        .map_err(|e| StoreError::io("create", tmp, e))?;
    let (integrity, size, source) = match body {
        Body::Bytes(bytes) => {
            out.write_all(&bytes).map_err(|e| StoreError::io("write", tmp, e))?;
            (Integrity::of_bytes(&bytes), bytes.len() as u64, MEMORY.to_string())
        }
        // Another store's staged file (this store links its own, see
        // `LocalStore::put_staged`): read like any file.
        Body::File(_) | Body::Staged(_) => {
            let src = match body {
                Body::Staged(staged) => staged.path().to_path_buf(),
                Body::File(src) => src,
                Body::Bytes(_) => unreachable!("matched above"),
            };
            let input = File::open(&src).map_err(|e| StoreError::io("open", &src, e))?;
            let mut behind = WriteBehind::new(&mut out);
            let (integrity, size) =
                Integrity::of_copy(input, &mut behind).map_err(|e| StoreError::io("copy", &src, e))?;
            behind.finish();
            // A test can stop (and kill) a writer whose bytes are staged.
            crate::pause::point_blocking("staged");
            (integrity, size, src.display().to_string())
        }
    };
    if let Some(expected) = &headers.sri {
        let actual = integrity.to_string();
        if *expected != actual {
            return Err(StoreError::ContentChanged {
                key: key.to_string(),
                path: source,
                expected: expected.clone(),
                actual,
            });
        }
    }
    out.sync_data().map_err(|e| StoreError::io("sync", tmp, e))?;
    let m = out.metadata().map_err(|e| StoreError::io("stat", tmp, e))?;
    Ok(Staged { etag: etag_of(&integrity), size, ino: m.ino(), dev: m.dev() })
}
