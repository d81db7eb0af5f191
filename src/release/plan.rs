//! Plan a publish: scan and validate the build directory and hash every
//! file, with no store I/O at all. Bad input is refused here, before the
//! first write; `--dry-run` prints the plan and stops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use indicatif::ProgressBar;
use semver::Version;
use serde::Serialize;

use super::ReleaseError;
use crate::integrity::Integrity;
use crate::layout;
use crate::manifest::{FileEntry, VersionManifest};
use crate::progress::Progress;
use crate::store::Headers;

/// One file to publish.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    /// Path relative to the build directory and to `sdk/<version>/`, `/`-separated.
    pub path: String,
    /// Where the bytes are read from.
    #[serde(skip)]
    pub source: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-384 SRI of the bytes.
    pub integrity: Integrity,
    /// The `Content-Type` it will be served with.
    pub content_type: String,
    /// Modification time when hashed; a change before upload aborts the publish.
    #[serde(skip)]
    pub modified: Option<SystemTime>,
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

struct Found {
    path: String,
    source: PathBuf,
    size: u64,
}

impl Plan {
    /// Scans, validates and hashes `dir` for `version`. `max_key_len` is the
    /// store's key budget (S3 allows 1,024 bytes including any prefix).
    pub fn build(dir: &Path, version: &Version, max_key_len: usize, progress: Progress) -> Result<Plan, ReleaseError> {
        let found = scan(dir, version, max_key_len)?;
        let bar = progress.bytes("hash", found.iter().map(|f| f.size).sum());
        let files = hash_all(found, &bar);
        bar.finish_and_clear();
        let files = files?;
        Ok(Plan { version: version.clone(), dir: dir.to_path_buf(), files })
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

    /// Total bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl PlannedFile {
    /// Headers for the immutable `sdk/<version>/` copy.
    pub fn headers(&self) -> Headers {
        Headers {
            content_type: self.content_type.clone(),
            cache_control: layout::IMMUTABLE_CACHE_CONTROL.to_string(),
            sri: Some(self.integrity.to_string()),
        }
    }

    /// Fails if the file changed since it was hashed (size or mtime).
    pub fn check_unchanged(&self) -> Result<(), ReleaseError> {
        let meta = std::fs::metadata(&self.source).map_err(|e| local("stat", &self.source, e))?;
        if meta.len() != self.size || meta.modified().ok() != self.modified {
            return Err(ReleaseError::Input {
                path: self.source.display().to_string(),
                reason: "changed while publishing; rerun when the build has finished writing".into(),
            });
        }
        Ok(())
    }
}

fn local(what: &'static str, path: &Path, source: std::io::Error) -> ReleaseError {
    ReleaseError::Local { what, path: path.display().to_string(), source }
}

fn refuse(path: &Path, reason: impl Into<String>) -> ReleaseError {
    ReleaseError::Input { path: path.display().to_string(), reason: reason.into() }
}

/// Walks `dir`, refusing anything that cannot be published safely.
fn scan(dir: &Path, version: &Version, max_key_len: usize) -> Result<Vec<Found>, ReleaseError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refuse(dir, "is not a directory; pass the build output directory (e.g. dist)")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(dir, "does not exist; pass the build output directory (e.g. dist)"));
        }
        Err(e) => return Err(local("read", dir, e)),
    }
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().min_depth(1) {
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
        let mut parts = Vec::new();
        for component in rel.components() {
            let name = component.as_os_str().to_str().ok_or_else(|| {
                refuse(path, "has a name that is not valid UTF-8; rename it (URLs and S3 keys are UTF-8)")
            })?;
            parts.push(name);
        }
        let rel = parts.join("/");
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
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        found.push(Found { path: rel, source: path.to_path_buf(), size });
    }
    if found.is_empty() {
        return Err(refuse(dir, "contains no files; build the SDK first"));
    }
    Ok(found)
}

/// Hashes every file on all cores, streaming (memory does not grow with file size).
fn hash_all(found: Vec<Found>, progress: &ProgressBar) -> Result<Vec<PlannedFile>, ReleaseError> {
    let workers = std::thread::available_parallelism().map_or(2, usize::from).min(found.len()).max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PlannedFile, ReleaseError>>>> =
        Mutex::new((0..found.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = found.get(i) else { break };
                    let result = hash_one(file);
                    if let Ok(planned) = &result {
                        progress.inc(planned.size);
                    }
                    let failed = result.is_err();
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                    if failed {
                        // Stop the other workers early: one error refuses the whole plan.
                        next.store(found.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let slots = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut files = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Some(Ok(file)) => files.push(file),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(files)
}

fn hash_one(found: &Found) -> Result<PlannedFile, ReleaseError> {
    let file = std::fs::File::open(&found.source).map_err(|e| local("open", &found.source, e))?;
    let modified = file.metadata().ok().and_then(|m| m.modified().ok());
    let (integrity, size) = Integrity::of_reader(file).map_err(|e| local("read", &found.source, e))?;
    Ok(PlannedFile {
        content_type: crate::content_type::for_path(&found.path),
        path: found.path.clone(),
        source: found.source.clone(),
        size,
        integrity,
        modified,
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
    fn keys_over_the_store_budget_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a".repeat(200)), b"x").unwrap();
        let err = Plan::build(dir.path(), &Version::new(1, 0, 0), 100, Progress::hidden()).unwrap_err();
        assert!(err.to_string().contains("shorten the path"), "{err}");
    }
}
