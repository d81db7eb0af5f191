//! The local-directory backend: the embedded default (`./cdn`).
//!
//! Layout on disk: each object's bytes live at `<root>/<key>`, so the
//! directory is itself a browsable CDN tree. Bookkeeping lives under
//! `<root>/.sdk-cdn/` (a name [`Key`] refuses): `meta/<key>.json` sidecars
//! with the headers, `locks/NNN.lock` lock files (striped by key hash) and `tmp/` for
//! writes in flight.
//!
//! Invariants:
//! - Bytes never appear half-written under a final name: they are written to
//!   `tmp/` in full, then hard-linked (create-only: the kernel refuses an
//!   existing name atomically, across processes) or renamed into place
//!   (flushing to disk: see Durability below).
//! - Writers of one key are serialised across processes by an exclusive lock
//!   on its lock file, which makes compare-and-swap atomic.
//! - The etag is derived from the content (the first 128 bits of its SHA-384,
//!   see [`content_etag`]), and a sidecar is trusted only if it names the
//!   inode and size of the data file beside it; a crash between the sidecar
//!   rename and the data rename therefore leaves a sidecar that is ignored,
//!   never one that lies.
//!
//! Cost (this is the hot path of a publish): the bytes are copied into
//! `tmp/` in the kernel (`copy_file_range`) before the key's lock is taken,
//! so the lock covers only the sidecar and the link; directories are
//! created only when an operation finds them missing; a file written with
//! the SRI its writer computed gets its etag from that SRI instead of being
//! hashed a second time.
//!
//! Durability: every object's bytes are flushed (`fdatasync`) before its
//! name appears, so after a power loss a name never points at missing or
//! short bytes, and a resumed publish finds each file whole or absent. This
//! costs one flush per file; BENCHMARKS.md measures it and explains why one
//! `syncfs` per publish, measured as the alternative, was not kept.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

mod etag;
#[cfg(test)]
mod tests;
mod write;

use etag::content_etag_of_open;
use write::{Staged, in_parent, stage};

use super::{Body, Headers, Key, ObjectMeta, ObjectReader, PutMode, Store, StoreError, key::RESERVED_PREFIX};

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

/// The sidecar kept beside each object.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    content_type: String,
    cache_control: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sri: Option<String>,
    etag: String,
    size: u64,
    ino: u64,
}

/// Number of lock files writers are spread over.
const LOCK_STRIPES: u64 = 1024;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        LocalStore { root }
    }

    fn data_path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn sidecar_path(&self, key: &Key) -> PathBuf {
        self.root.join(RESERVED_PREFIX).join("meta").join(format!("{key}.json"))
    }

    /// Lock files are striped by a hash of the key: a bounded set of files,
    /// so short-lived keys (probes) leave nothing behind; two keys sharing a
    /// stripe merely wait for each other.
    fn lock_path(&self, key: &Key) -> PathBuf {
        let stripe = key
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        self.root.join(RESERVED_PREFIX).join("locks").join(format!("{:03x}.lock", stripe % LOCK_STRIPES))
    }

    fn tmp_path(&self) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        self.root.join(RESERVED_PREFIX).join("tmp").join(format!("{}-{n}-{nanos}", pid()))
    }

    /// Takes the exclusive per-key writer lock; released when the file drops.
    fn lock(&self, key: &Key) -> Result<File, StoreError> {
        let path = self.lock_path(key);
        let open = || File::options().create(true).truncate(false).write(true).open(&path);
        let file = in_parent(&path, open).map_err(|e| StoreError::io("open lock", &path, e))?;
        file.lock().map_err(|e| StoreError::io("lock", &path, e))?;
        Ok(file)
    }

    /// Metadata of the object whose data file is `data` (its `stat`),
    /// trusting the sidecar only if it describes exactly this inode. Without
    /// one, the etag is computed from `file`, the open data file itself (not
    /// its path, which a concurrent writer may already have replaced), or
    /// from the path when no file is open (listings).
    fn meta_of(&self, key: &Key, data: &fs::Metadata, file: Option<&File>) -> Result<ObjectMeta, StoreError> {
        let sidecar = read_sidecar(&self.sidecar_path(key)).filter(|s| s.ino == data.ino() && s.size == data.len());
        let (etag, headers) = match sidecar {
            Some(s) => {
                (s.etag, Some(Headers { content_type: s.content_type, cache_control: s.cache_control, sri: s.sri }))
            }
            None => {
                let path = self.data_path(key);
                let etag = match file {
                    Some(file) => content_etag_of_open(file),
                    None => File::open(&path).and_then(|f| content_etag_of_open(&f)),
                };
                (etag.map_err(|e| StoreError::io("read", &path, e))?, None)
            }
        };
        Ok(ObjectMeta { key: key.clone(), size: data.len(), etag, headers })
    }

    /// Like [`LocalStore::open_sync`] without keeping the file: the file is
    /// opened so that metadata and bytes describe one and the same inode.
    fn head_sync(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self.open_sync(key)?.map(|(_, meta)| meta))
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
        // Refuse a taken key before copying any bytes; checked again under the lock.
        if mode == PutMode::Create && self.exists(key)? {
            return Err(StoreError::AlreadyExists { key: key.to_string() });
        }
        let tmp = self.tmp_path();
        let result = stage(&tmp, body, headers).and_then(|staged| {
            let _lock = self.lock(key)?;
            self.check_mode(key, &mode)?;
            self.commit(key, &tmp, headers, &staged, &mode)
        });
        let _ = fs::remove_file(&tmp);
        result
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
        let sidecar = staged_sidecar(headers, staged);
        // Under the lock, a create-only write knows the data file is absent,
        // and readers consult a sidecar only beside an existing data file: it
        // can be written in place. Anything else replaces it atomically.
        self.write_sidecar(key, &sidecar, *mode != PutMode::Create)?;
        let dest = self.data_path(key);
        // A delete of a sibling may remove a freshly emptied parent at any
        // time; `in_parent` (re)creates it when the placement finds it gone.
        let placed = in_parent(&dest, || match mode {
            PutMode::Create => fs::hard_link(tmp, &dest),
            PutMode::Update { .. } | PutMode::Overwrite => fs::rename(tmp, &dest),
        });
        placed.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => StoreError::AlreadyExists { key: key.to_string() },
            _ => StoreError::io("place", &dest, e),
        })?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: staged.size,
            etag: staged.etag.clone(),
            headers: Some(headers.clone()),
        })
    }

    fn write_sidecar(&self, key: &Key, sidecar: &Sidecar, replace: bool) -> Result<(), StoreError> {
        let path = self.sidecar_path(key);
        let json = serde_json::to_vec(sidecar).map_err(|e| StoreError::io("encode", &path, io::Error::other(e)))?;
        if !replace {
            return in_parent(&path, || fs::write(&path, &json)).map_err(|e| StoreError::io("write", &path, e));
        }
        // Beside its final name, so the rename stays within one directory
        // (cross-directory renames serialise on a filesystem-wide lock).
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".{}-{n}.tmp", pid()));
        let tmp = PathBuf::from(tmp);
        let result = in_parent(&tmp, || fs::write(&tmp, &json))
            .map_err(|e| StoreError::io("write", &tmp, e))
            .and_then(|()| fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename", &path, e)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn copy_sync(&self, from: &Key, to: &Key, headers: &Headers) -> Result<(), StoreError> {
        let _lock = self.lock(to)?;
        let from_path = self.data_path(from);
        let Some((source, meta)) = self.open_sync(from)? else {
            return Err(StoreError::NotFound { key: from.to_string() });
        };
        let ino = source.metadata().map_err(|e| StoreError::io("stat", &from_path, e))?.ino();
        let staged = Staged { etag: meta.etag, size: meta.size, ino };
        // Objects are never modified in place (every write is a new inode
        // renamed into place), so sharing the source's inode is a safe copy
        // that costs no second write of the bytes. A new name is linked
        // straight into place (the lock keeps other writers out).
        if !self.exists(to)? {
            self.write_sidecar(to, &staged_sidecar(headers, &staged), false)?;
            let dest = self.data_path(to);
            match in_parent(&dest, || fs::hard_link(&from_path, &dest)) {
                Ok(()) => return Ok(()),
                // e.g. too many links: copy the bytes instead, below.
                Err(e) => tracing::debug!("linking {from} to {to} failed ({e}); copying"),
            }
        }
        let tmp = self.tmp_path();
        let result = match in_parent(&tmp, || fs::hard_link(&from_path, &tmp)) {
            Ok(()) => Ok(staged),
            Err(_) => fs::copy(&from_path, &tmp)
                .and_then(|_| fs::metadata(&tmp))
                .map(|m| Staged { ino: m.ino(), ..staged })
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
        for path in [self.data_path(key), self.sidecar_path(key)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(StoreError::io("delete", &path, e)),
            }
        }
        // Tidy up directories the delete emptied (S3 has no directories to
        // leave behind); a non-empty one stops the walk. Writers recreate
        // parents if this races them (see `in_parent`).
        let mut dir = self.data_path(key);
        while dir.pop() && dir != self.root && fs::remove_dir(&dir).is_ok() {}
        Ok(())
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

fn read_sidecar(path: &Path) -> Option<Sidecar> {
    // Sidecars are a few hundred bytes: no `stat` for a size hint.
    let mut json = Vec::with_capacity(1024);
    File::open(path).ok()?.read_to_end(&mut json).ok()?;
    serde_json::from_slice(&json).ok()
}

fn staged_sidecar(headers: &Headers, staged: &Staged) -> Sidecar {
    Sidecar {
        content_type: headers.content_type.clone(),
        cache_control: headers.cache_control.clone(),
        sri: headers.sri.clone(),
        etag: staged.etag.clone(),
        size: staged.size,
        ino: staged.ino,
    }
}

/// This process's id, for temp names (`getpid` is a system call each time).
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Backend {
        op: "local task",
        key: String::new(),
        detail: e.to_string(),
    })?
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || this.head_sync(&key)).await
    }

    async fn get(&self, key: &Key) -> Result<Option<(Bytes, ObjectMeta)>, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || {
            let Some((mut file, meta)) = this.open_sync(&key)? else { return Ok(None) };
            let mut buf = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
            file.read_to_end(&mut buf).map_err(|e| StoreError::io("read", &this.data_path(&key), e))?;
            Ok(Some((Bytes::from(buf), meta)))
        })
        .await
    }

    async fn reader(&self, key: &Key) -> Result<Option<(ObjectReader, ObjectMeta)>, StoreError> {
        let (this, key) = (self.clone(), key.clone());
        let opened = blocking(move || this.open_sync(&key)).await?;
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
