//! How a write's bytes reach the disk: a temp file filled in the kernel
//! (`copy_file_range`) or from memory and flushed, and parents made on
//! demand.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::etag::{content_etag, copy_hashing, etag_from_sri};
use crate::store::{Body, Headers, StoreError};

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

/// Bytes written to a temp file, flushed, not yet under their key.
pub(super) struct Staged {
    pub(super) etag: String,
    pub(super) size: u64,
    pub(super) ino: u64,
}

/// Writes `body` into `tmp`, flushes it to disk, and returns its etag, size and inode.
pub(super) fn stage(tmp: &Path, body: Body, headers: &Headers) -> Result<Staged, StoreError> {
    let mut out = in_parent(tmp, || File::options().write(true).create_new(true).open(tmp))
        .map_err(|e| StoreError::io("create", tmp, e))?;
    let (etag, size) = match body {
        Body::Bytes(bytes) => {
            out.write_all(&bytes).map_err(|e| StoreError::io("write", tmp, e))?;
            (content_etag(&bytes), bytes.len() as u64)
        }
        Body::File(src) => {
            let mut input = File::open(&src).map_err(|e| StoreError::io("open", &src, e))?;
            match etag_from_sri(headers) {
                // `io::copy` between two files is `copy_file_range`: the bytes never enter this process.
                Some(etag) => (etag, io::copy(&mut input, &mut out).map_err(|e| StoreError::io("copy", &src, e))?),
                None => copy_hashing(input, &mut out).map_err(|e| StoreError::io("copy", &src, e))?,
            }
        }
    };
    out.sync_data().map_err(|e| StoreError::io("sync", tmp, e))?;
    let ino = out.metadata().map_err(|e| StoreError::io("stat", tmp, e))?.ino();
    Ok(Staged { etag, size, ino })
}
