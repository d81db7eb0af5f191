//! Plan a publish: scan and validate the build directory and hash every
//! file, with no store I/O at all. Bad input is refused here, before the
//! first write; `--dry-run` prints the plan and stops. What of the build is
//! published at all is decided by [`super::select`] (hidden paths, patterns)
//! and [`super::outputs`] (the tool's own outputs); the plan lists exactly
//! the published files, and apart from them what was left out and why.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use semver::Version;
use serde::Serialize;

use super::ReleaseError;
use super::build_file::{BuildDir, OpenError};
use super::outputs::BuildRoots;
use super::select::{Filter, LeftOut, Verdict};
use crate::integrity::Integrity;
use crate::layout;
use crate::manifest::{FileEntry, VersionManifest};
use crate::progress::Progress;
use crate::signing::{self, SecretKey, SignedHeaders};
use crate::store::{Body, Headers, Key, SourceRead, StagedFile, Staging, Store, StoreError};

/// One file to publish.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlannedFile {
    /// Path relative to the build directory and to `sdk/<version>/`, `/`-separated.
    pub(crate) path: String,
    /// Its key in the store, `sdk/<version>/<path>` (validated while planning).
    #[serde(skip)]
    pub(crate) key: Key,
    /// Where the bytes are read from.
    #[serde(skip)]
    pub(crate) source: PathBuf,
    /// The bytes as the store's staging area holds them (copied there while
    /// they were hashed, see [`PlanOptions::staging`]), if they were staged.
    #[serde(skip)]
    pub(crate) staged: Option<Arc<StagedFile>>,
    /// Size in bytes.
    pub(crate) size: u64,
    /// SHA-384 SRI of the bytes.
    pub(crate) integrity: Integrity,
    /// The `Content-Type` it will be served with.
    pub(crate) content_type: String,
    /// Its signature-based SRI headers, with `--sri-key` (computed from the
    /// same read as `integrity`, so they describe the same bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) signed: Option<SignedHeaders>,
}

/// Everything a publish will do, computed before touching the store.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The version.
    pub(crate) version: Version,
    /// The build directory.
    pub(crate) dir: PathBuf,
    /// The files, sorted by path.
    pub(crate) files: Vec<PlannedFile>,
    /// What the build directory holds that is not published, in walk order.
    pub(crate) left_out: Vec<LeftOutPath>,
}

/// A path of the build directory that is not published.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LeftOutPath {
    /// Relative to the build directory; a directory (left out with all it
    /// holds) ends in `/`.
    pub(crate) path: String,
    /// Why.
    #[serde(flatten)]
    pub(crate) reason: LeftOut,
}

/// What decides the plan besides the directory and the version.
#[derive(Debug)]
pub struct PlanOptions {
    /// The store's key budget (S3 allows 1,024 bytes including any prefix).
    pub(crate) max_key_len: usize,
    /// Which paths are published (hidden paths, `--exclude`, `--include`).
    pub(crate) filter: Filter,
    /// The local store's directory: a build that is, holds or is inside it is refused.
    pub(crate) store_root: Option<PathBuf>,
    /// The local `--manifests-dir`: never part of the build.
    pub(crate) manifests_dir: Option<PathBuf>,
    /// Where the store copies files before it sends them ([`Store::upload_copies_dir`]):
    /// a build that holds it is refused.
    pub(crate) upload_copies_dir: Option<PathBuf>,
    /// Keys that sign every file for signature-based SRI (`--sri-key`); empty: none.
    pub(crate) sri_keys: Vec<SecretKey>,
    /// Where to copy each file while it is hashed, so that the publish
    /// reads every byte once ([`Store::staging`]); `None`: hash only (a
    /// dry run, a store that stages nothing, a version already sealed).
    pub(crate) staging: Option<Arc<dyn Staging>>,
}

impl PlanOptions {
    /// The default filter (hidden paths refused, no patterns), no local store or manifests dir.
    pub fn new(max_key_len: usize) -> Self {
        let filter = Filter::new(&super::select::FilterOptions::default()).expect("no patterns always compile");
        PlanOptions {
            max_key_len,
            filter,
            store_root: None,
            manifests_dir: None,
            upload_copies_dir: None,
            sri_keys: Vec::new(),
            staging: None,
        }
    }
}

/// Hidden paths named in the refusal; the rest are counted.
const HIDDEN_LISTED: usize = 10;

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
    /// Scans, validates and hashes `dir` for `version`.
    pub fn build(
        dir: &Path,
        version: &Version,
        options: &PlanOptions,
        progress: Progress,
    ) -> Result<Plan, ReleaseError> {
        let bar = progress.bytes("hash", 0);
        let scanned = scan_and_hash(dir, version, options, &bar);
        bar.finish_and_clear();
        let (files, left_out) = scanned?;
        let plan = Plan { version: version.clone(), dir: dir.to_path_buf(), files, left_out };
        tracing::debug!(files = plan.files.len(), bytes = plan.total_bytes(), "planned: every file hashed");
        Ok(plan)
    }

    /// The manifest this plan seals.
    pub(crate) fn manifest(&self) -> VersionManifest {
        let files: BTreeMap<String, FileEntry> = self.files.iter().map(|f| (f.path.clone(), f.entry())).collect();
        VersionManifest { version: self.version.clone(), files }
    }

    /// Refuses a plan with a key `store` cannot hold (a backend's own
    /// limits beyond S3's, e.g. a local filesystem's 255-byte names): the
    /// manifest that seals the version, then each file under its version and
    /// under `latest/`, naming it and the limit. Part of planning: no write
    /// has happened yet.
    pub(crate) fn check_keys(&self, store: &dyn Store) -> Result<(), ReleaseError> {
        // The seal, its signature and the intent record are named after the version.
        for key in [
            layout::manifest(&self.version),
            super::signatures::manifest_signature(&self.version),
            layout::intent(&self.version),
        ] {
            store.check_key(&key).map_err(|why| {
                ReleaseError::Usage(format!(
                    "version {} cannot be published to {}: {key} cannot be stored there: {why} (use a shorter \
                     version)",
                    self.version,
                    store.describe()
                ))
            })?;
        }
        for file in &self.files {
            // The walk made both keys, so the latest one is valid but for the store's limits.
            let latest = layout::latest_file(&file.path).ok();
            for key in std::iter::once(&file.key).chain(latest.as_ref()) {
                store
                    .check_key(key)
                    .map_err(|why| refuse(&file.source, format!("cannot be stored at {}: {why}", store.describe())))?;
            }
        }
        Ok(())
    }

    /// Total bytes.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl PlannedFile {
    /// Its entry in the manifest.
    pub(crate) fn entry(&self) -> FileEntry {
        FileEntry {
            integrity: self.integrity,
            size: self.size,
            content_type: self.content_type.clone(),
            signed: self.signed.clone(),
        }
    }

    /// Headers for the immutable `sdk/<version>/` copy.
    pub(crate) fn headers(&self) -> Headers {
        crate::headers::versioned_file(&self.entry())
    }

    /// What the store writes: the staged bytes, or the source file.
    pub(crate) fn body(&self) -> Body {
        match &self.staged {
            Some(staged) => Body::Staged(Arc::clone(staged)),
            None => Body::File(self.source.clone()),
        }
    }
}

/// A build file or directory that cannot be read is a problem of the input
/// (exit 2), whatever the OS says about it.
fn unreadable(path: &Path, e: &dyn std::fmt::Display) -> ReleaseError {
    refuse(
        path,
        format!("cannot be read ({e}); make it readable (e.g. chmod a+r) or leave it out with --exclude PATTERN"),
    )
}

/// Why a symbolic link in the build is refused, and what to do.
const SYMLINK: &str = "is a symbolic link; only regular files are published (a link can point outside the build): \
                       replace it with a copy of its target";

/// Why a device, socket or pipe in the build is refused, and what to do.
const NOT_REGULAR: &str = "is not a regular file (device, socket or pipe); remove it from the build";

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
    options: &PlanOptions,
    progress: &ProgressBar,
) -> Result<(Vec<PlannedFile>, Vec<LeftOutPath>), ReleaseError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refuse(dir, "is not a directory; pass the build output directory (e.g. dist)")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(dir, "does not exist; pass the build output directory (e.g. dist)"));
        }
        Err(e) => return Err(unreadable(dir, &e)),
    }
    let roots = BuildRoots::new(dir, options.store_root.as_deref(), options.manifests_dir.as_deref())?;
    if let Some(copies) = &options.upload_copies_dir {
        roots.refuse_holding_upload_copies(dir, copies)?;
    }
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let (send, receive) = std::sync::mpsc::channel::<(usize, Found)>();
    let receive = Mutex::new(receive);
    let failed = AtomicBool::new(false);
    let staging = options.staging.as_deref();
    let build = BuildDir::open(dir);
    let (walked, hashed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| hash_worker(&receive, &failed, &build, staging, &options.sri_keys, progress)))
            .collect();
        let walked = walk(dir, version, options, &roots, &failed, progress, |i, found| {
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
    let Walked { count, left_out } = walked?;
    refuse_hidden(dir, &left_out)?;
    if count == 0 {
        let reason = if left_out.is_empty() {
            "contains no files; build the SDK first".to_string()
        } else {
            format!("contains no files to publish ({} paths left out; see --dry-run)", left_out.len())
        };
        return Err(refuse(dir, reason));
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
    Ok((files, left_out))
}

/// Refuses the plan if any hidden path was neither excluded nor asked for.
fn refuse_hidden(dir: &Path, left_out: &[LeftOutPath]) -> Result<(), ReleaseError> {
    let hidden: Vec<&str> = left_out.iter().filter(|l| l.reason == LeftOut::Hidden).map(|l| l.path.as_str()).collect();
    if hidden.is_empty() {
        return Ok(());
    }
    let listed = super::listed(&hidden, HIDDEN_LISTED);
    Err(refuse(
        dir,
        format!(
            "contains {} hidden path(s) that would be published at public, immutable URLs: {listed}; remove \
             them from the build, leave them out with --exclude PATTERN (e.g. --exclude .DS_Store), or publish \
             them with --include PATTERN or --include-hidden",
            hidden.len()
        ),
    ))
}

/// What the walk found: how many files it handed on, and what it left out.
struct Walked {
    count: usize,
    left_out: Vec<LeftOutPath>,
}

/// Walks `dir` in file-name order, refusing anything that cannot be published
/// safely, and hands each file to `found`; returns how many there were and
/// what was left out. Left-out directories are not walked into (unless an
/// `--include` could bring back part of one). After the first hidden path
/// the walk only collects the others, for the refusal, and hands on nothing.
/// Costs no `stat` per file (the type comes from the directory entry, the
/// size from the hashing worker's `fstat`) unless a progress bar is drawn,
/// which needs the total.
fn walk(
    dir: &Path,
    version: &Version,
    options: &PlanOptions,
    roots: &BuildRoots,
    failed: &AtomicBool,
    progress: &ProgressBar,
    mut found: impl FnMut(usize, Found),
) -> Result<Walked, ReleaseError> {
    let max_key_len = options.max_key_len;
    let (mut count, mut left_out, mut refusing) = (0, Vec::new(), false);
    let mut entries = walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().min_depth(1).into_iter();
    while let Some(entry) = entries.next() {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let entry = entry.map_err(|e| unreadable(e.path().unwrap_or(dir), &e))?;
        let path = entry.path();
        let kind = entry.file_type();
        let rel_path = path.strip_prefix(dir).map_err(|_| refuse(path, "is outside the build directory"))?;
        let verdict = if roots.manifests_in_build.as_deref() == Some(rel_path) {
            Verdict::LeaveOut(LeftOut::ManifestsDir)
        } else {
            options.filter.verdict(rel_path, kind.is_dir())
        };
        if let Verdict::LeaveOut(reason) = verdict {
            let whole_dir = kind.is_dir() && (reason == LeftOut::ManifestsDir || !options.filter.may_readmit());
            if whole_dir {
                entries.skip_current_dir();
            }
            if whole_dir || !kind.is_dir() {
                refusing |= reason == LeftOut::Hidden;
                let slash = if kind.is_dir() { "/" } else { "" };
                left_out.push(LeftOutPath { path: format!("{}{slash}", rel_path.to_string_lossy()), reason });
            }
            continue;
        }
        if kind.is_symlink() {
            return Err(refuse(path, SYMLINK));
        }
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(refuse(path, NOT_REGULAR));
        }
        // Walked paths are clean (no `.`, `..` or doubled separators), and the
        // separator is `/`: the relative path is the key's tail as it is.
        let rel = rel_path
            .to_str()
            .ok_or_else(|| refuse(path, "has a name that is not valid UTF-8; rename it (URLs and S3 keys are UTF-8)"))?
            .to_string();
        let key = layout::version_file(version, &rel)
            .map_err(|e| refuse(path, format!("cannot be published as a URL path: {e}; rename it")))?;
        // Promotion copies the file to `sdk/latest/<path>`, one byte longer
        // than `sdk/<x.y.z>/<path>`: a version that could be sealed but never
        // promoted is refused now, before its seal makes it permanent.
        let latest = layout::latest_file(&rel)
            .map_err(|e| refuse(path, format!("cannot be published as a URL path: {e}; rename it")))?;
        if let Some(long) = [&key, &latest].into_iter().find(|k| k.as_str().len() > max_key_len) {
            return Err(refuse(
                path,
                format!(
                    "its key {long} is {} bytes; the store allows {max_key_len}; shorten the path",
                    long.as_str().len()
                ),
            ));
        }
        if refusing {
            continue;
        }
        if !progress.is_hidden() {
            progress.inc_length(entry.metadata().map_or(0, |m| m.len()));
        }
        found(count, Found { path: rel, key, source: entry.into_path() });
        count += 1;
    }
    Ok(Walked { count, left_out })
}

/// Hashes files from `queue` until it is closed; stops hashing (but keeps
/// draining) once anything failed. Streams through one reused buffer, so
/// memory does not grow with file size or count.
fn hash_worker(
    queue: &Mutex<Receiver<(usize, Found)>>,
    failed: &AtomicBool,
    build: &BuildDir,
    staging: Option<&dyn Staging>,
    sri_keys: &[SecretKey],
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
        let result = hash_one(found, build, staging, sri_keys, &mut buf);
        match &result {
            Ok(planned) => progress.inc(planned.size),
            // One error refuses the whole plan: stop the walk and the other workers early.
            Err(_) => failed.store(true, Ordering::Relaxed),
        }
        out.push((i, result));
    }
    out
}

/// Hashes one file; with `staging`, copies it into the store's staging area
/// on the way (the same read, see [`Staging`]); with `sri_keys`, also takes
/// its SHA-512 in that read and signs it (signature-based SRI).
fn hash_one(
    found: Found,
    build: &BuildDir,
    staging: Option<&dyn Staging>,
    sri_keys: &[SecretKey],
    buf: &mut [u8],
) -> Result<PlannedFile, ReleaseError> {
    crate::pause::point_blocking("hash");
    let (file, meta) = build.open_file(&found.path, &found.source).map_err(|e| match e {
        OpenError::Link => refuse(
            &found.source,
            format!("{SYMLINK} (it became one, or a directory on its path did, while the build was being read)"),
        ),
        OpenError::NotRegular => {
            refuse(&found.source, format!("{NOT_REGULAR} (it became one while the build was being read)"))
        }
        OpenError::Io(e) => unreadable(&found.source, &e),
    })?;
    // Reading exactly the size `fstat` reported saves the read that would
    // find the end of a small file. A file that changes later is caught
    // where it is stored: the store hashes the bytes it writes and refuses
    // any that differ from this plan (`StoreError::ContentChanged`); staged
    // bytes are the hashed ones by construction.
    let sign = !sri_keys.is_empty();
    let mut input = SourceRead::new(file.take(meta.len()));
    let (integrity, size, sha512, staged) = match staging {
        None => {
            let (integrity, size, sha512) =
                Integrity::of_reader_with(&mut input, buf, sign).map_err(|e| unreadable(&found.source, &e))?;
            (integrity, size, sha512, None)
        }
        Some(staging) => match staging.stage(&mut input, buf, sign) {
            Ok(staged) => (staged.integrity(), staged.size(), staged.sha512(), Some(Arc::new(staged))),
            Err(e) if input.failed() => return Err(unreadable(&found.source, &e)),
            Err(e) => {
                let op = format!("stage a copy of {} in", found.source.display());
                return Err(StoreError::io(op, &staging.dir(), e).into());
            }
        },
    };
    let signed = match sha512 {
        Some(digest) => Some(signing::sri_headers(&digest, sri_keys)?),
        None => None,
    };
    Ok(PlannedFile {
        signed,
        content_type: crate::content_type::for_path(&found.path),
        path: found.path,
        key: found.key,
        source: found.source,
        staged,
        size,
        integrity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(dir: &Path) -> Result<Plan, ReleaseError> {
        build_with(dir, PlanOptions::new(1024))
    }

    fn build_with(dir: &Path, options: PlanOptions) -> Result<Plan, ReleaseError> {
        Plan::build(dir, &Version::new(1, 0, 0), &options, Progress::hidden())
    }

    fn filtered(include_hidden: bool, exclude: &[&str], include: &[&str]) -> PlanOptions {
        let strings = |v: &[&str]| v.iter().map(ToString::to_string).collect();
        let filter = super::super::select::FilterOptions {
            include_hidden,
            exclude: strings(exclude),
            include: strings(include),
        };
        PlanOptions { filter: Filter::new(&filter).unwrap(), ..PlanOptions::new(1024) }
    }

    fn build_dir(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file.as_bytes()).unwrap();
        }
        dir
    }

    fn paths(plan: &Plan) -> Vec<&str> {
        plan.files.iter().map(|f| f.path.as_str()).collect()
    }

    fn left_out(plan: &Plan) -> Vec<(&str, &LeftOut)> {
        plan.left_out.iter().map(|l| (l.path.as_str(), &l.reason)).collect()
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
        // `manifests/<version>.json.minisig` (the seal's signature) is one name:
        // 242 bytes of version fit, 243 do not.
        for (len, ok) in [(242, true), (243, false)] {
            let version = Version::parse(&format!("1.0.0-{}", "a".repeat(len - 6))).unwrap();
            let plan = Plan::build(dir.path(), &version, &PlanOptions::new(1024), Progress::hidden()).unwrap();
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
        let err = build_with(dir.path(), PlanOptions::new(100)).unwrap_err();
        assert!(err.to_string().contains("shorten the path"), "{err}");
    }

    #[test]
    fn hidden_paths_refuse_the_plan_and_are_all_named() {
        let dir = build_dir(&["a.js", ".env", ".git/config", ".git/HEAD", "sub/.DS_Store"]);
        let err = build(dir.path()).unwrap_err();
        assert!(matches!(err, ReleaseError::Input { .. }), "{err}");
        let err = err.to_string();
        for named in ["3 hidden", ".env", ".git/", "sub/.DS_Store", "--include-hidden", "--exclude"] {
            assert!(err.contains(named), "{named}: {err}");
        }
        assert!(!err.contains("config"), "a hidden directory is named once, not walked: {err}");
        let plan = build_with(dir.path(), filtered(true, &[], &[])).unwrap();
        assert_eq!(paths(&plan), [".env", ".git/HEAD", ".git/config", "a.js", "sub/.DS_Store"]);
        assert!(plan.left_out.is_empty());
    }

    #[test]
    fn many_hidden_paths_are_listed_up_to_a_bound_and_counted() {
        let names: Vec<String> = (0..HIDDEN_LISTED + 5).map(|i| format!(".h{i:02}")).collect();
        let mut files: Vec<&str> = names.iter().map(String::as_str).collect();
        files.push("a.js");
        let err = build(build_dir(&files).path()).unwrap_err().to_string();
        assert!(err.contains(".h00") && err.contains(".h09") && !err.contains(".h10"), "{err}");
        assert!(err.contains("and 5 more"), "{err}");
    }

    #[test]
    fn excluded_and_included_paths_shape_the_plan_and_the_manifest() {
        let dir = build_dir(&["a.js", "a.js.map", ".DS_Store", "docs/x.html", ".well-known/security.txt"]);
        let options = filtered(false, &["*.map", ".DS_Store", "docs/"], &[".well-known/"]);
        let plan = build_with(dir.path(), options).unwrap();
        assert_eq!(paths(&plan), [".well-known/security.txt", "a.js"]);
        let manifest = plan.manifest();
        assert_eq!(manifest.files.keys().collect::<Vec<_>>(), [".well-known/security.txt", "a.js"]);
        let excluded = |pattern: &str| LeftOut::Excluded { pattern: pattern.into() };
        assert_eq!(
            left_out(&plan),
            [
                (".DS_Store", &excluded(".DS_Store")),
                ("a.js.map", &excluded("*.map")),
                ("docs/x.html", &excluded("docs/"))
            ],
            "with an --include the walk looks inside left-out directories"
        );
        let plan = build_with(dir.path(), filtered(true, &["docs/"], &[])).unwrap();
        assert_eq!(left_out(&plan), [("docs/", &excluded("docs/"))], "without, a directory is left out whole");
    }

    #[test]
    fn the_manifests_dir_inside_the_build_is_left_out() {
        let dir = build_dir(&["a.js", "manifests/1.0.0.json", "manifests/sri.json"]);
        let options =
            PlanOptions { manifests_dir: Some(dir.path().join("manifests")), ..filtered(false, &[], &["*.json"]) };
        let plan = build_with(dir.path(), options).unwrap();
        assert_eq!(paths(&plan), ["a.js"], "not even an --include brings it back");
        assert_eq!(left_out(&plan), [("manifests/", &LeftOut::ManifestsDir)]);
        let plan = build(dir.path()).unwrap();
        assert_eq!(paths(&plan), ["a.js", "manifests/1.0.0.json", "manifests/sri.json"], "elsewhere it is a name");
    }

    #[test]
    fn a_build_with_everything_left_out_says_so() {
        let dir = build_dir(&["a.map"]);
        let err = build_with(dir.path(), filtered(false, &["*.map"], &[])).unwrap_err().to_string();
        assert!(err.contains("no files to publish") && err.contains("1 paths left out"), "{err}");
    }

    #[test]
    fn a_build_overlapping_the_local_store_is_refused() {
        let dir = build_dir(&["a.js"]);
        let options = PlanOptions { store_root: Some(dir.path().join("cdn")), ..PlanOptions::new(1024) };
        let err = build_with(dir.path(), options).unwrap_err();
        assert!(matches!(err, ReleaseError::Input { .. }) && err.to_string().contains("contains the local store"));
    }
}
