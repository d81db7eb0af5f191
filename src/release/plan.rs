//! Plan a publish: scan and validate the build directory and hash every
//! file, with no store I/O at all. Bad input is refused here, before the
//! first write; `--dry-run` prints the plan and stops.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

use indicatif::ProgressBar;
use semver::Version;
use serde::Serialize;

use super::ReleaseError;
use crate::integrity::Integrity;
use crate::layout;
use crate::manifest::{FileEntry, VersionManifest};
use crate::progress::Progress;
use crate::store::{Headers, Key, Store};

/// One file to publish.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    /// Path relative to the build directory and to `sdk/<version>/`, `/`-separated.
    pub path: String,
    /// Its key in the store, `sdk/<version>/<path>` (validated while planning).
    #[serde(skip)]
    pub key: Key,
    /// Where the bytes are read from.
    #[serde(skip)]
    pub source: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-384 SRI of the bytes.
    pub integrity: Integrity,
    /// The `Content-Type` it will be served with.
    pub content_type: String,
}

/// Everything a publish will do, computed before touching the store.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The version.
    pub version: Version,
    /// The build directory.
    pub dir: PathBuf,
    /// The files, sorted by path.
    pub files: Vec<PlannedFile>,
}

/// A file the walk found, on its way to a hashing worker.
struct Found {
    path: String,
    key: Key,
    source: PathBuf,
}

/// Read buffer of a hashing worker: big enough to amortise syscalls, small
/// enough to stay in the core's cache between the read and the hash.
const HASH_BUF_LEN: usize = 64 * 1024;

impl Plan {
    /// Scans, validates and hashes `dir` for `version`. `max_key_len` is the
    /// store's key budget (S3 allows 1,024 bytes including any prefix).
    pub fn build(dir: &Path, version: &Version, max_key_len: usize, progress: Progress) -> Result<Plan, ReleaseError> {
        let bar = progress.bytes("hash", 0);
        let files = scan_and_hash(dir, version, max_key_len, &bar);
        bar.finish_and_clear();
        let plan = Plan { version: version.clone(), dir: dir.to_path_buf(), files: files? };
        tracing::debug!(files = plan.files.len(), bytes = plan.total_bytes(), "planned: every file hashed");
        Ok(plan)
    }

    /// The manifest this plan seals.
    pub fn manifest(&self) -> VersionManifest {
        let files: BTreeMap<String, FileEntry> = self
            .files
            .iter()
            .map(|f| {
                let entry = FileEntry { integrity: f.integrity, size: f.size, content_type: f.content_type.clone() };
                (f.path.clone(), entry)
            })
            .collect();
        VersionManifest { version: self.version.clone(), files }
    }

    /// Refuses a plan with a key `store` cannot hold (a backend's own
    /// limits beyond S3's, e.g. a local filesystem's 255-byte names): the
    /// manifest that seals the version, then each file, naming it and the
    /// limit. Part of planning: no write has happened yet.
    pub fn check_keys(&self, store: &dyn Store) -> Result<(), ReleaseError> {
        let seal = layout::manifest(&self.version);
        store.check_key(&seal).map_err(|why| {
            ReleaseError::Usage(format!(
                "version {} cannot be published to {}: its manifest {seal} cannot be stored there: {why} (use a \
                 shorter version)",
                self.version,
                store.describe()
            ))
        })?;
        for file in &self.files {
            store
                .check_key(&file.key)
                .map_err(|why| refuse(&file.source, format!("cannot be stored at {}: {why}", store.describe())))?;
        }
        Ok(())
    }

    /// Total bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl PlannedFile {
    /// Headers for the immutable `sdk/<version>/` copy.
    pub fn headers(&self) -> Headers {
        crate::headers::versioned_file(&self.content_type, &self.integrity)
    }
}

fn local(what: &'static str, path: &Path, source: std::io::Error) -> ReleaseError {
    ReleaseError::Local { what, path: path.display().to_string(), source }
}

fn refuse(path: &Path, reason: impl Into<String>) -> ReleaseError {
    ReleaseError::Input { path: path.display().to_string(), reason: reason.into() }
}

/// Walks `dir` on this thread while workers on every core hash what it
/// finds, so the walk overlaps the hashing and both cores stay busy on a
/// tree of many small files. The first problem (in walk order) refuses the
/// whole plan; files come back in walk order.
fn scan_and_hash(
    dir: &Path,
    version: &Version,
    max_key_len: usize,
    progress: &ProgressBar,
) -> Result<Vec<PlannedFile>, ReleaseError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refuse(dir, "is not a directory; pass the build output directory (e.g. dist)")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(dir, "does not exist; pass the build output directory (e.g. dist)"));
        }
        Err(e) => return Err(local("read", dir, e)),
    }
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let (send, receive) = std::sync::mpsc::channel::<(usize, Found)>();
    let receive = Mutex::new(receive);
    let failed = AtomicBool::new(false);
    let (walked, hashed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(|| hash_worker(&receive, &failed, progress))).collect();
        let walked = walk(dir, version, max_key_len, &failed, progress, |i, found| {
            // The workers only stop receiving after a failure, which ends the walk anyway.
            let _ = send.send((i, found));
        });
        drop(send);
        if walked.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        let hashed: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
        (walked, hashed)
    });
    let count = walked?;
    if count == 0 {
        return Err(refuse(dir, "contains no files; build the SDK first"));
    }
    let mut slots: Vec<Option<Result<PlannedFile, ReleaseError>>> = (0..count).map(|_| None).collect();
    for (i, result) in hashed {
        slots[i] = Some(result);
    }
    let mut files = Vec::with_capacity(count);
    for slot in slots {
        match slot {
            Some(Ok(file)) => files.push(file),
            Some(Err(e)) => return Err(e),
            // Skipped after an earlier failure, which the loop has returned already.
            None => {}
        }
    }
    Ok(files)
}

/// Walks `dir` in file-name order, refusing anything that cannot be published
/// safely, and hands each file to `found`; returns how many there were.
/// Costs no `stat` per file (the type comes from the directory entry, the
/// size from the hashing worker's `fstat`) unless a progress bar is drawn,
/// which needs the total.
fn walk(
    dir: &Path,
    version: &Version,
    max_key_len: usize,
    failed: &AtomicBool,
    progress: &ProgressBar,
    mut found: impl FnMut(usize, Found),
) -> Result<usize, ReleaseError> {
    let mut count = 0;
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().min_depth(1) {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            refuse(&path, format!("cannot be read: {e}"))
        })?;
        let path = entry.path();
        let kind = entry.file_type();
        if kind.is_symlink() {
            return Err(refuse(
                path,
                "is a symbolic link; only regular files are published (a link can point outside the build): \
                 replace it with a copy of its target",
            ));
        }
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(refuse(path, "is not a regular file (device, socket or pipe); remove it from the build"));
        }
        let rel = path.strip_prefix(dir).map_err(|_| refuse(path, "is outside the build directory"))?;
        // Walked paths are clean (no `.`, `..` or doubled separators), and the
        // separator is `/`: the relative path is the key's tail as it is.
        let rel = rel
            .to_str()
            .ok_or_else(|| refuse(path, "has a name that is not valid UTF-8; rename it (URLs and S3 keys are UTF-8)"))?
            .to_string();
        let key = layout::version_file(version, &rel)
            .map_err(|e| refuse(path, format!("cannot be published as a URL path: {e}; rename it")))?;
        if key.as_str().len() > max_key_len {
            return Err(refuse(
                path,
                format!(
                    "its key {key} is {} bytes; the store allows {max_key_len}; shorten the path",
                    key.as_str().len()
                ),
            ));
        }
        if !progress.is_hidden() {
            progress.inc_length(entry.metadata().map_or(0, |m| m.len()));
        }
        found(count, Found { path: rel, key, source: entry.into_path() });
        count += 1;
    }
    Ok(count)
}

/// Hashes files from `queue` until it is closed; stops hashing (but keeps
/// draining) once anything failed. Streams through one reused buffer, so
/// memory does not grow with file size or count.
fn hash_worker(
    queue: &Mutex<Receiver<(usize, Found)>>,
    failed: &AtomicBool,
    progress: &ProgressBar,
) -> Vec<(usize, Result<PlannedFile, ReleaseError>)> {
    let mut buf = vec![0u8; HASH_BUF_LEN];
    let mut out = Vec::new();
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => break,
        };
        let Ok((i, found)) = next else { break };
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        let result = hash_one(found, &mut buf);
        match &result {
            Ok(planned) => progress.inc(planned.size),
            // One error refuses the whole plan: stop the walk and the other workers early.
            Err(_) => failed.store(true, Ordering::Relaxed),
        }
        out.push((i, result));
    }
    out
}

fn hash_one(found: Found, buf: &mut [u8]) -> Result<PlannedFile, ReleaseError> {
    let file = std::fs::File::open(&found.source).map_err(|e| local("open", &found.source, e))?;
    let meta = file.metadata().map_err(|e| local("stat", &found.source, e))?;
    // Reading exactly the size `fstat` reported saves the read that would
    // find the end of a small file. A file that changes later is caught
    // where it is stored: the store hashes the bytes it writes and refuses
    // any that differ from this plan (`StoreError::ContentChanged`).
    let (integrity, size) =
        Integrity::of_reader_with(file.take(meta.len()), buf).map_err(|e| local("read", &found.source, e))?;
    Ok(PlannedFile {
        content_type: crate::content_type::for_path(&found.path),
        path: found.path,
        key: found.key,
        source: found.source,
        size,
        integrity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(dir: &Path) -> Result<Plan, ReleaseError> {
        Plan::build(dir, &Version::new(1, 0, 0), 1024, Progress::hidden())
    }

    #[test]
    fn plan_lists_every_file_with_its_integrity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.js"), b"alert(1)").unwrap();
        std::fs::write(dir.path().join("sub/b.css"), b"body{}").unwrap();
        let plan = build(dir.path()).unwrap();
        let paths: Vec<_> = plan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.js", "sub/b.css"]);
        assert_eq!(plan.files[0].integrity, Integrity::of_bytes(b"alert(1)"));
        assert_eq!(plan.files[1].content_type, "text/css; charset=utf-8");
        assert_eq!(plan.total_bytes(), 14);
    }

    #[test]
    fn missing_empty_and_symlinked_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(build(&dir.path().join("nope")).unwrap_err().to_string().contains("does not exist"));
        assert!(build(dir.path()).unwrap_err().to_string().contains("contains no files"));
        std::fs::write(dir.path().join("a.js"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let err = build(dir.path()).unwrap_err().to_string();
        assert!(err.contains("passwd") && err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn names_that_cannot_be_urls_are_refused() {
        for bad in ["back\\slash.js", "new\nline.js"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(bad), b"x").unwrap();
            assert!(matches!(build(dir.path()), Err(ReleaseError::Input { .. })), "{bad:?} was accepted");
        }
    }

    #[test]
    fn versions_too_long_for_the_store_are_refused_before_any_write() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.js"), b"x").unwrap();
        let store = crate::store::LocalStore::new(dir.path().join("store"));
        // `manifests/<version>.json` is one name: 250 bytes of version fit, 251 do not.
        for (len, ok) in [(250, true), (251, false)] {
            let version = Version::parse(&format!("1.0.0-{}", "a".repeat(len - 6))).unwrap();
            let plan = Plan::build(dir.path(), &version, 1024, Progress::hidden()).unwrap();
            let checked = plan.check_keys(&store);
            assert_eq!(checked.is_ok(), ok, "{len}: {checked:?}");
            if let Err(e) = checked {
                assert!(matches!(e, ReleaseError::Usage(_)) && e.to_string().contains("255"), "{e}");
            }
        }
        assert!(!dir.path().join("store").exists(), "planning writes nothing");
    }

    #[test]
    fn keys_over_the_store_budget_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a".repeat(200)), b"x").unwrap();
        let err = Plan::build(dir.path(), &Version::new(1, 0, 0), 100, Progress::hidden()).unwrap_err();
        assert!(err.to_string().contains("shorten the path"), "{err}");
    }
}
