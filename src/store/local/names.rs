//! Every name the local store makes, in one place, and the limits of the
//! data tree.
//!
//! Bookkeeping names never grow with the user's names: a sidecar is named
//! by the SHA-256 of its key (`meta/ab/cdef….json`), a temp file by its
//! writer (`tmp/<host>-<pid>-<n>`), a lock by a stripe number. So any key
//! S3 accepts has a sidecar, a temp and a lock whatever its length, and no
//! key's bookkeeping can collide with another key's (`foo` and
//! `foo.json/bar.js` once did, when sidecars mirrored the data tree).
//!
//! The data tree `<root>/<key>` is the browsable CDN tree and keeps the
//! filesystem's own limits; [`check_key`] states them for planning.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::store::key::RESERVED_PREFIX;
use crate::store::{Key, stale};

/// The longest name of one path component on Linux filesystems (`NAME_MAX`).
pub(super) const MAX_NAME_BYTES: usize = 255;

/// Number of lock files writers are spread over.
const LOCK_STRIPES: u64 = 1024;

/// Directory of the header sidecars.
const META_DIR: &str = "meta";
/// Directory of the writes in flight.
pub(super) const TMP_DIR: &str = "tmp";
/// Directory of the lock files.
const LOCKS_DIR: &str = "locks";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The bookkeeping directory of the store at `root`.
pub(super) fn bookkeeping(root: &Path) -> PathBuf {
    root.join(RESERVED_PREFIX)
}

/// The sidecar of `key`: a fixed-length name derived from the key alone.
pub(super) fn sidecar(root: &Path, key: &Key) -> PathBuf {
    let hex: String = Sha256::digest(key.as_str().as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    bookkeeping(root).join(META_DIR).join(&hex[..2]).join(format!("{}.json", &hex[2..]))
}

/// Where releases before the hashed layout kept the sidecar of `key`;
/// read (never written) so that an existing store keeps its headers.
pub(super) fn legacy_sidecar(root: &Path, key: &Key) -> PathBuf {
    bookkeeping(root).join(META_DIR).join(format!("{key}.json"))
}

/// Lock files are striped by a hash of the key: a bounded set of files,
/// so short-lived keys (probes) leave nothing behind; two keys sharing a
/// stripe merely wait for each other.
pub(super) fn lock(root: &Path, key: &Key) -> PathBuf {
    let stripe =
        key.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    bookkeeping(root).join(LOCKS_DIR).join(format!("{:03x}.lock", stripe % LOCK_STRIPES))
}

/// A fresh temp name, `<host>-<pid>-<n>`: unique among live writers, and
/// telling a sweep ([`crate::store::stale`]) which host and process wrote it.
pub(super) fn tmp(root: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    tmp_dir(root).join(format!("{}-{n}", stale::writer_tag()))
}

/// The directory of the writes in flight (and of files staged for them).
pub(super) fn tmp_dir(root: &Path) -> PathBuf {
    bookkeeping(root).join(TMP_DIR)
}

/// Whether the data tree can hold `key`: each path component must fit the
/// filesystem's name limit.
pub(super) fn check_key(key: &Key) -> Result<(), String> {
    match key.as_str().split('/').find(|c| c.len() > MAX_NAME_BYTES) {
        Some(long) => Err(format!(
            "its path component {:?}… is {} bytes; a local directory store allows {MAX_NAME_BYTES} bytes per \
             name; shorten it",
            long.chars().take(32).collect::<String>(),
            long.len()
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_names_do_not_grow_with_the_key() {
        let root = Path::new("/s");
        let short = sidecar(root, &Key::new("a").unwrap());
        let long = sidecar(root, &Key::new(format!("sdk/1.0.0/{}", "x".repeat(1000))).unwrap());
        assert_eq!(short.as_os_str().len(), long.as_os_str().len());
        assert!(long.file_name().unwrap().len() < 80);
        assert_ne!(sidecar(root, &Key::new("foo").unwrap()), sidecar(root, &Key::new("foo.json/bar.js").unwrap()));
    }

    #[test]
    fn names_over_the_filesystem_limit_are_refused() {
        assert!(check_key(&Key::new(format!("sdk/1.0.0/{}", "x".repeat(255))).unwrap()).is_ok());
        let err = check_key(&Key::new(format!("sdk/1.0.0/{}/a.js", "x".repeat(256))).unwrap()).unwrap_err();
        assert!(err.contains("256 bytes") && err.contains("255"), "{err}");
    }
}
