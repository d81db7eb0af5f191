//! The local-directory backend: the embedded default (`./cdn`).
//!
//! Layout on disk: each object's bytes live at `<root>/<key>`, so the
//! directory is itself a browsable CDN tree. Bookkeeping lives under
//! `<root>/.sdk-cdn/` (a name [`Key`] refuses), in names that never grow
//! with the user's (see [`names`]): `meta/ab/cdef….json` header sidecars
//! named by the SHA-256 of the key, `locks/NNN.lock` lock files (striped
//! by key hash) and `tmp/<host>-<pid>-<n>` for writes in flight. So any
//! key S3 can hold has bookkeeping that fits, and no two keys' bookkeeping
//! collide; the data tree keeps the filesystem's own limits (255 bytes per
//! name, a name is a file or a directory), which [`Store::check_key`]
//! reports to planning. Per object: one data inode and one sidecar inode.
//!
//! Invariants:
//! - Bytes never appear half-written under a final name: they are copied
//!   into `tmp/` in full, hashed on the way, then hard-linked (create-only:
//!   the kernel refuses an existing name atomically, across processes) or
//!   renamed into place (flushing to disk: see Durability below).
//! - What is stored is what was promised: a write whose bytes do not hash
//!   to the SRI its caller planned is refused before anything is placed
//!   ([`StoreError::ContentChanged`]), and its temp file removed.
//! - Writers of one key are serialised across processes by an exclusive lock
//!   on its lock file, which makes compare-and-swap atomic.
//! - The etag is derived from the content (the first 128 bits of its SHA-384),
//!   and a sidecar is believed only for the content it names (see
//!   [`sidecar`]): a crash between the sidecar and the data leaves a sidecar
//!   that is ignored, never one that lies, and a store copied with `cp -a`,
//!   `rsync -a` or `tar` keeps its headers.
//! - Temp files of writers that died are removed by the next process's first
//!   write (see [`crate::store::stale`]).
//!
//! Cost (this is the hot path of a publish): each byte is read once, into a
//! 64 KiB buffer that is hashed and written to `tmp/` before the key's lock
//! is taken, so the lock covers only the sidecar and the link; directories
//! are created only when an operation finds them missing. A publish does
//! that copy while it plans ([`Staging`]: the hash planning needs is the
//! copy's), so the build is read once in all, not once to plan and once to
//! write, and the write of a staged file is the lock, the sidecar and the
//! link.
//!
//! Durability: every object's bytes are flushed (`fdatasync`) before its
//! name appears, so after a power loss a name never points at missing or
//! short bytes, and a resumed publish finds each file whole or absent. This
//! costs one flush per file; BENCHMARKS.md measures it and explains why one
//! `syncfs` per publish, measured as the alternative, was not kept.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

mod etag;
mod names;
mod sidecar;
#[cfg(test)]
mod tests;
mod write;

use etag::{etag_of, integrity_of_open};
use sidecar::Sidecar;
use write::{Staged, WriteBehind, in_parent, stage};

use super::{
    Body, Headers, Key, ObjectMeta, ObjectReader, PutMode, StagedFile, Staging, StaleTemp, Store, StoreError,
    key::RESERVED_PREFIX, stale,
};
use crate::integrity::Integrity;

/// How long an untouched temp file of a writer that cannot be checked
/// (another host sharing the directory, an earlier boot) is kept: a live
/// one is written, linked or renamed within seconds.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Whether this process has swept stale temp files yet (once per store).
    swept: Arc<AtomicBool>,
    /// Sidecars this process found to describe data files they were not
    /// bound to and could not rebind (a read-only copy of a store): believed
    /// again for the same inode without hashing every read.
    verified: Arc<Mutex<HashMap<Key, Verified>>>,
}

/// A data file (device, inode, size) and the sidecar found to describe its bytes.
type Verified = (u64, u64, u64, Sidecar);

/// Most bindings [`LocalStore::verified`] keeps before it starts afresh.
const MAX_VERIFIED: usize = 65_536;

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        LocalStore { root, swept: Arc::new(AtomicBool::new(false)), verified: Arc::default() }
    }

    fn data_path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// Takes the exclusive per-key writer lock; released when the file drops.
    fn lock(&self, key: &Key) -> Result<File, StoreError> {
        let path = names::lock(&self.root, key);
        let open = || File::options().create(true).truncate(false).write(true).open(&path);
        let file = in_parent(&path, open).map_err(|e| StoreError::io("open lock", &path, e))?;
        file.lock().map_err(|e| StoreError::io("lock", &path, e))?;
        Ok(file)
    }

    /// Removes the temp files of writers that are gone (see [`stale`]).
    /// Only in the store's own directory: this sweep removes files of any
    /// owner once they are an hour old, so a symbolic link at `.sdk-cdn` or
    /// `.sdk-cdn/tmp` (committed to a repository, say) must not lead it to
    /// other files.
    fn sweep(&self) -> io::Result<StaleTemp> {
        let dir = names::tmp_dir(&self.root);
        let real = match fs::canonicalize(&dir) {
            Ok(real) => real,
            Err(e) if is_absent(&e) => return Ok(StaleTemp::default()),
            Err(e) => return Err(e),
        };
        let own = fs::canonicalize(&self.root)?.join(RESERVED_PREFIX).join(names::TMP_DIR);
        if real != own {
            return Err(io::Error::other(format!(
                "{} leads to {} through a symbolic link; the store's bookkeeping must be its own directories: \
                 remove the link (temp files were not swept)",
                dir.display(),
                real.display()
            )));
        }
        stale::sweep(&stale::TempDir {
            dir: &real,
            prefix: "",
            unknown_writer_kept: Some(STALE_AFTER),
            own_files_only: false,
        })
    }

    /// Removes stale temp files, the first time this process writes here.
    fn sweep_once(&self) {
        if self.swept.swap(true, Ordering::Relaxed) {
            return;
        }
        match self.sweep() {
            Ok(s) if s.files > 0 => {
                tracing::info!(files = s.files, bytes = s.bytes, "removed temp files of interrupted writes");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove stale temp files; `sdk-cdn doctor` reports them"),
        }
    }

    /// Metadata of the object whose data file is `data` (its `stat`). The
    /// sidecar's headers are returned only if it describes these bytes: at
    /// once when it names this inode, else after hashing them. The hash
    /// reads `file`, the open data file itself (not its path, which a
    /// concurrent writer may already have replaced), or the path when no
    /// file is open (listings).
    fn meta_of(&self, key: &Key, data: &fs::Metadata, file: Option<&File>) -> Result<ObjectMeta, StoreError> {
        let found = sidecar::read(&self.root, key);
        if let Some(s) = found.as_ref().filter(|s| s.names_inode(data) || self.verified_before(key, s, data)) {
            return Ok(ObjectMeta {
                key: key.clone(),
                size: data.len(),
                etag: s.etag.clone(),
                headers: Some(s.headers()),
            });
        }
        let path = self.data_path(key);
        #[cfg(test)]
        tests::HASHED.with(|n| n.set(n.get() + 1));
        let integrity = match file {
            Some(file) => integrity_of_open(file),
            None => File::open(&path).and_then(|f| integrity_of_open(&f)),
        }
        .map_err(|e| StoreError::io("read", &path, e))?;
        let headers = match found {
            Some(s) if s.describes(data.len(), &integrity) => {
                if !self.rebind(key, &s, data) {
                    self.remember(key, &s, data);
                }
                Some(s.headers())
            }
            _ => None,
        };
        Ok(ObjectMeta { key: key.clone(), size: data.len(), etag: etag_of(&integrity), headers })
    }

    /// Binds a sidecar found to describe the data (a copied store) to the
    /// data's inode, so it is believed without hashing next time. Best
    /// effort and only under the key's lock, taken without waiting: no
    /// writer is then between its sidecar and its data, and the data and
    /// sidecar are checked to be the ones just compared.
    /// Returns whether the sidecar was rebound.
    fn rebind(&self, key: &Key, found: &Sidecar, data: &fs::Metadata) -> bool {
        let Ok(lock) = File::options().write(true).open(names::lock(&self.root, key)) else { return false };
        if lock.try_lock().is_err() {
            return false;
        }
        let Ok(now) = fs::metadata(self.data_path(key)) else { return false };
        let unchanged = now.ino() == data.ino() && now.dev() == data.dev();
        unchanged
            && sidecar::read(&self.root, key).is_some_and(|s| s.same(found))
            && sidecar::write(&self.root, key, &found.rebound(key, data), true).is_ok()
    }

    /// Remembers that `found` describes the bytes of `data` (same inode
    /// means same bytes: objects are never modified in place).
    fn remember(&self, key: &Key, found: &Sidecar, data: &fs::Metadata) {
        let Ok(mut verified) = self.verified.lock() else { return };
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(key.clone(), (data.dev(), data.ino(), data.len(), found.clone()));
    }

    fn verified_before(&self, key: &Key, found: &Sidecar, data: &fs::Metadata) -> bool {
        let Ok(verified) = self.verified.lock() else { return false };
        verified.get(key).is_some_and(|(dev, ino, size, s)| {
            (*dev, *ino, *size) == (data.dev(), data.ino(), data.len()) && s == found
        })
    }

    /// Like [`LocalStore::open_sync`] without keeping the file: the file is
    /// opened so that metadata and bytes describe one and the same inode.
    fn head_sync(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self.open_sync(key)?.map(|(_, meta)| meta))
    }

    /// [`LocalStore::open_sync`] for a reader outside any write. A writer
    /// replaces an object's sidecar, then its data, both under the key's
    /// lock, so a reader in between finds a sidecar that does not describe
    /// the data it opened (`headers: None`). Such a reader looks again
    /// holding the lock shared (briefly: a writer holds it for the sidecar
    /// and a rename or link, never while copying bytes), so that `None`
    /// from here means the data changed behind the store's back, not a
    /// write in flight (`serve` refuses such bytes). Writers, which hold
    /// the lock already, call `open_sync`.
    fn read_sync(&self, key: &Key) -> Result<Option<(File, ObjectMeta)>, StoreError> {
        let opened = self.open_sync(key)?;
        if opened.as_ref().is_none_or(|(_, meta)| meta.headers.is_some()) {
            return Ok(opened);
        }
        // No lock file (a store never written by this release) or a lock
        // that cannot be taken: the first look is the answer.
        let Ok(lock) = File::open(names::lock(&self.root, key)) else { return Ok(opened) };
        if lock.lock_shared().is_err() {
            return Ok(opened);
        }
        self.open_sync(key)
    }

    fn open_sync(&self, key: &Key) -> Result<Option<(File, ObjectMeta)>, StoreError> {
        let path = self.data_path(key);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(StoreError::io("open", &path, e)),
        };
        let m = file.metadata().map_err(|e| StoreError::io("stat", &path, e))?;
        if !m.is_file() {
            return Ok(None);
        }
        let meta = self.meta_of(key, &m, Some(&file))?;
        Ok(Some((file, meta)))
    }

    fn put_sync(&self, key: &Key, body: Body, headers: &Headers, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        self.sweep_once();
        // Refuse a taken key before copying any bytes; checked again under the lock.
        if mode == PutMode::Create && self.exists(key)? {
            return Err(StoreError::AlreadyExists { key: key.to_string() });
        }
        if let Body::Staged(staged) = &body
            && staged.path().parent() == Some(names::tmp_dir(&self.root).as_path())
        {
            return self.put_staged(key, staged, headers, &mode);
        }
        let tmp = names::tmp(&self.root);
        let result = stage(key, &tmp, body, headers).and_then(|staged| {
            let _lock = self.lock(key)?;
            self.check_mode(key, &mode)?;
            self.commit(key, &tmp, headers, &staged, &mode)
        });
        let _ = fs::remove_file(&tmp);
        result
    }

    /// Writes a file this store staged while it was hashed ([`Staging`]):
    /// its bytes are in `tmp/` already and `staged` holds their integrity,
    /// so the write is a flush, the lock, the sidecar and the link; the
    /// temp name goes once the data is in place.
    fn put_staged(
        &self,
        key: &Key,
        staged: &StagedFile,
        headers: &Headers,
        mode: &PutMode,
    ) -> Result<ObjectMeta, StoreError> {
        let integrity = staged.integrity();
        if let Some(expected) = headers.sri.as_ref().filter(|sri| **sri != integrity.to_string()) {
            return Err(StoreError::ContentChanged {
                key: key.to_string(),
                path: staged.path().display().to_string(),
                expected: expected.clone(),
                actual: integrity.to_string(),
            });
        }
        // A name never points at bytes that are not on disk (Durability).
        let file = File::open(staged.path()).map_err(|e| StoreError::io("open", staged.path(), e))?;
        file.sync_data().map_err(|e| StoreError::io("sync", staged.path(), e))?;
        let m = file.metadata().map_err(|e| StoreError::io("stat", staged.path(), e))?;
        let bytes = Staged { etag: etag_of(&integrity), size: staged.size(), ino: m.ino(), dev: m.dev() };
        let _lock = self.lock(key)?;
        self.check_mode(key, mode)?;
        let meta = self.commit(key, staged.path(), headers, &bytes, mode)?;
        staged.remove();
        Ok(meta)
    }

    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        let path = self.data_path(key);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if is_absent(&e) => Ok(false),
            Err(e) => Err(StoreError::io("stat", &path, e)),
        }
    }

    fn check_mode(&self, key: &Key, mode: &PutMode) -> Result<(), StoreError> {
        if *mode == PutMode::Create {
            return match self.exists(key)? {
                true => Err(StoreError::AlreadyExists { key: key.to_string() }),
                false => Ok(()),
            };
        }
        let current = self.head_sync(key)?;
        match (mode, current) {
            (PutMode::Update { .. }, None) => Err(StoreError::NotFound { key: key.to_string() }),
            (PutMode::Update { etag }, Some(m)) if m.etag != *etag => {
                Err(StoreError::Precondition { key: key.to_string() })
            }
            _ => Ok(()),
        }
    }

    /// Publishes the sidecar, then the data: the data's arrival is the commit.
    fn commit(
        &self,
        key: &Key,
        tmp: &Path,
        headers: &Headers,
        staged: &Staged,
        mode: &PutMode,
    ) -> Result<ObjectMeta, StoreError> {
        // Under the lock, a create-only write knows the data file is absent,
        // and readers consult a sidecar only beside an existing data file: it
        // can be written in place. Anything else replaces it atomically.
        sidecar::write(&self.root, key, &Sidecar::new(key, headers, staged), *mode != PutMode::Create)?;
        let dest = self.data_path(key);
        // A delete of a sibling may remove a freshly emptied parent at any
        // time; `in_parent` (re)creates it when the placement finds it gone.
        let placed = in_parent(&dest, || match mode {
            PutMode::Create => fs::hard_link(tmp, &dest),
            PutMode::Update { .. } | PutMode::Overwrite => fs::rename(tmp, &dest),
        });
        if let Err(e) = placed {
            if *mode == PutMode::Create {
                // Nothing was placed and the lock is held: the sidecar is ours alone.
                let _ = sidecar::remove(&self.root, key);
            }
            return Err(self.placement_error(key, &dest, e));
        }
        Ok(ObjectMeta {
            key: key.clone(),
            size: staged.size,
            etag: staged.etag.clone(),
            headers: Some(headers.clone()),
        })
    }

    /// Why `key` could not be placed: a file/directory clash the data tree
    /// cannot represent (S3 can hold `foo` and `foo/bar.js`), or the OS error.
    fn placement_error(&self, key: &Key, dest: &Path, e: io::Error) -> StoreError {
        if let Some(clash) = self.clash_at(key) {
            return clash;
        }
        match e.kind() {
            io::ErrorKind::AlreadyExists => StoreError::AlreadyExists { key: key.to_string() },
            _ => StoreError::io("place", dest, e),
        }
    }

    /// The file/directory clash that keeps `key` from being placed, if any.
    fn clash_at(&self, key: &Key) -> Option<StoreError> {
        if self.data_path(key).is_dir() {
            return Some(clash(key, format!("{key} is a directory of other objects here")));
        }
        let parts: Vec<&str> = key.as_str().split('/').collect();
        (1..parts.len())
            .map(|n| parts[..n].join("/"))
            .find(|prefix| self.root.join(prefix).is_file())
            .map(|prefix| clash(key, format!("{prefix} is an object (a file) here")))
    }

    fn copy_sync(&self, from: &Key, to: &Key, headers: &Headers) -> Result<(), StoreError> {
        self.sweep_once();
        let _lock = self.lock(to)?;
        let from_path = self.data_path(from);
        let Some((source, meta)) = self.open_sync(from)? else {
            return Err(StoreError::NotFound { key: from.to_string() });
        };
        check_copied_sri(from, to, headers, &meta)?;
        let m = source.metadata().map_err(|e| StoreError::io("stat", &from_path, e))?;
        let staged = Staged { etag: meta.etag, size: meta.size, ino: m.ino(), dev: m.dev() };
        // Objects are never modified in place (every write is a new inode
        // renamed into place), so sharing the source's inode is a safe copy
        // that costs no second write of the bytes. A new name is linked
        // straight into place (the lock keeps other writers out).
        if !self.exists(to)? {
            sidecar::write(&self.root, to, &Sidecar::new(to, headers, &staged), false)?;
            let dest = self.data_path(to);
            match in_parent(&dest, || fs::hard_link(&from_path, &dest)) {
                Ok(()) => return Ok(()),
                Err(e) if dest.is_dir() || e.kind() == io::ErrorKind::NotADirectory => {
                    let _ = sidecar::remove(&self.root, to);
                    return Err(self.placement_error(to, &dest, e));
                }
                // e.g. too many links: copy the bytes instead, below.
                Err(e) => tracing::debug!("linking {from} to {to} failed ({e}); copying"),
            }
        }
        let tmp = names::tmp(&self.root);
        let result = match in_parent(&tmp, || fs::hard_link(&from_path, &tmp)) {
            Ok(()) => Ok(staged),
            Err(_) => fs::copy(&from_path, &tmp)
                .and_then(|_| fs::metadata(&tmp))
                .map(|m| Staged { ino: m.ino(), dev: m.dev(), ..staged })
                .map_err(|e| StoreError::io("copy", &tmp, e)),
        }
        .and_then(|staged| self.commit(to, &tmp, headers, &staged, &PutMode::Overwrite));
        let _ = fs::remove_file(&tmp);
        result.map(drop)
    }

    fn list_sync(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let dir = match prefix.rfind('/') {
            Some(i) => self.root.join(&prefix[..i]),
            None => self.root.clone(),
        };
        let mut out = Vec::new();
        let walker = walkdir::WalkDir::new(&dir).follow_links(false).into_iter().filter_entry(|e| {
            !(e.depth() > 0 && e.path().parent() == Some(self.root.as_path()) && e.file_name() == RESERVED_PREFIX)
        });
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.io_error().is_some_and(is_absent) => continue,
                Err(e) => return Err(StoreError::io("list", &dir, io::Error::other(e))),
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else { continue };
            let Some(rel) = rel.to_str() else { continue };
            if !rel.starts_with(prefix) {
                continue;
            }
            let Ok(key) = Key::new(rel) else { continue };
            // An object deleted since the directory was read is simply not
            // listed, as in a listing taken a moment earlier.
            let m = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.io_error().is_some_and(is_absent) => continue,
                Err(e) => return Err(StoreError::io("stat", entry.path(), io::Error::other(e))),
            };
            let mut meta = match self.meta_of(&key, &m, None) {
                Ok(meta) => meta,
                Err(StoreError::Io { source, .. }) if is_absent(&source) => continue,
                Err(e) => return Err(e),
            };
            meta.headers = None;
            out.push(meta);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete_sync(&self, key: &Key) -> Result<(), StoreError> {
        let _lock = self.lock(key)?;
        let path = self.data_path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(StoreError::io("delete", &path, e)),
        }
        sidecar::remove(&self.root, key)?;
        // Tidy up directories the delete emptied (S3 has no directories to
        // leave behind); a non-empty one stops the walk. Writers recreate
        // parents if this races them (see `in_parent`).
        let mut dir = self.data_path(key);
        while dir.pop() && dir != self.root && fs::remove_dir(&dir).is_ok() {}
        Ok(())
    }
}

/// Staging copies into `tmp/` while hashing, so the write only links.
impl Staging for LocalStore {
    fn stage(&self, reader: &mut dyn Read, buf: &mut [u8], sha512: bool) -> io::Result<StagedFile> {
        self.sweep_once();
        let tmp = names::tmp(&self.root);
        let staged = in_parent(&tmp, || File::options().write(true).create_new(true).open(&tmp)).and_then(|mut out| {
            let mut behind = WriteBehind::new(&mut out);
            let copied = Integrity::of_copy_with(reader, &mut behind, buf, sha512)?;
            behind.finish();
            crate::pause::point_blocking("staged");
            // Flushed by the write (`put_staged`), many at once: two planning
            // workers flushing one file after another were slower. The disk
            // has been writing it since the copy (`WriteBehind`).
            Ok(copied)
        });
        match staged {
            Ok(digests) => Ok(StagedFile::new(tmp, digests)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn dir(&self) -> PathBuf {
        names::tmp_dir(&self.root)
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

fn clash(key: &Key, why: String) -> StoreError {
    StoreError::Backend {
        op: "place",
        key: key.to_string(),
        detail: format!(
            "{why}: a local directory cannot hold both a file and a directory of one name (S3 can); delete the \
             other object or rename the file"
        ),
        source: None,
    }
}

/// A copy keeps the promise of [`Headers::sri`] too: the source's bytes
/// (by their content etag, 128 bits of the SHA-384) must be the ones named.
fn check_copied_sri(from: &Key, to: &Key, headers: &Headers, source: &ObjectMeta) -> Result<(), StoreError> {
    let Some(expected) = &headers.sri else { return Ok(()) };
    if expected.parse::<Integrity>().is_ok_and(|i| etag_of(&i) == source.etag) {
        return Ok(());
    }
    let actual = source.headers.as_ref().and_then(|h| h.sri.clone()).unwrap_or_else(|| source.etag.clone());
    Err(StoreError::ContentChanged { key: to.to_string(), path: from.to_string(), expected: expected.clone(), actual })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Backend {
        op: "local task",
        key: String::new(),
        detail: e.to_string(),
        source: Some(Box::new(e)),
    })?
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    /// Any [`Key`]: a directory has no limit on a whole path that a key can
    /// reach; the per-name limits are [`check_key`](Store::check_key)'s.
    fn max_key_len(&self) -> usize {
        super::key::MAX_KEY_BYTES
    }

    fn check_key(&self, key: &Key) -> Result<(), String> {
        names::check_key(key)
    }

    async fn remove_stale_temp_files(&self) -> Result<Option<StaleTemp>, StoreError> {
        let this = self.clone();
        blocking(move || {
            this.swept.store(true, Ordering::Relaxed);
            let dir = names::bookkeeping(&this.root);
            this.sweep().map(Some).map_err(|e| StoreError::io("sweep temp files in", &dir, e))
        })
        .await
    }

    fn staging(&self) -> Option<Arc<dyn Staging>> {
        Some(Arc::new(self.clone()))
    }

    async fn check_writable(&self, key: &Key) -> Result<(), StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || this.clash_at(&key).map_or(Ok(()), Err)).await
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || Ok(this.read_sync(&key)?.map(|(_, meta)| meta))).await
    }

    async fn get(&self, key: &Key) -> Result<Option<(Bytes, ObjectMeta)>, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || {
            let Some((mut file, meta)) = this.read_sync(&key)? else { return Ok(None) };
            let mut buf = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
            file.read_to_end(&mut buf).map_err(|e| StoreError::io("read", &this.data_path(&key), e))?;
            Ok(Some((Bytes::from(buf), meta)))
        })
        .await
    }

    async fn reader(&self, key: &Key) -> Result<Option<(ObjectReader, ObjectMeta)>, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        let opened = blocking(move || this.read_sync(&key)).await?;
        Ok(opened.map(|(file, meta)| (Box::pin(tokio::fs::File::from_std(file)) as ObjectReader, meta)))
    }

    async fn put(&self, key: &Key, body: Body, headers: &Headers, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        let (this, key, headers) = (self.clone(), key.clone(), headers.clone());
        blocking(move || this.put_sync(&key, body, &headers, mode)).await
    }

    async fn copy(&self, from: &Key, to: &Key, headers: &Headers) -> Result<(), StoreError> {
        let (this, from, to, headers) = (self.clone(), from.clone(), to.clone(), headers.clone());
        blocking(move || this.copy_sync(&from, &to, &headers)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(move || this.list_sync(&prefix)).await
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || this.delete_sync(&key)).await
    }
}
