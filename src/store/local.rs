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
//!   `tmp/`, flushed, then hard-linked (create-only: the kernel refuses an
//!   existing name atomically, across processes) or renamed into place.
//! - Writers of one key are serialised across processes by an exclusive lock
//!   on its lock file, which makes compare-and-swap atomic.
//! - The etag is derived from the content, and a sidecar is trusted only if it
//!   names the inode and size of the data file beside it; a crash between the
//!   sidecar rename and the data rename therefore leaves a sidecar that is
//!   ignored, never one that lies.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
        self.root.join(RESERVED_PREFIX).join("tmp").join(format!("{}-{n}-{nanos}", std::process::id()))
    }

    /// Takes the exclusive per-key writer lock; released when the file drops.
    fn lock(&self, key: &Key) -> Result<File, StoreError> {
        let path = self.lock_path(key);
        create_parent(&path)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open lock", &path, e))?;
        file.lock().map_err(|e| StoreError::io("lock", &path, e))?;
        Ok(file)
    }

    /// Metadata of the data file at `path`, trusting the sidecar only if it
    /// describes exactly this inode.
    fn meta_of(&self, key: &Key, data: &fs::Metadata) -> Result<ObjectMeta, StoreError> {
        let sidecar = read_sidecar(&self.sidecar_path(key)).filter(|s| s.ino == data.ino() && s.size == data.len());
        let (etag, headers) = match sidecar {
            Some(s) => {
                (s.etag, Some(Headers { content_type: s.content_type, cache_control: s.cache_control, sri: s.sri }))
            }
            None => (content_etag_of_file(&self.data_path(key))?, None),
        };
        Ok(ObjectMeta { key: key.clone(), size: data.len(), etag, headers })
    }

    fn head_sync(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.data_path(key);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(self.meta_of(key, &m)?)),
            Ok(_) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(StoreError::io("stat", &path, e)),
        }
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
        let meta = self.meta_of(key, &m)?;
        Ok(Some((file, meta)))
    }

    fn put_sync(&self, key: &Key, body: Body, headers: &Headers, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        let _lock = self.lock(key)?;
        self.check_mode(key, &mode)?;
        let tmp = self.tmp_path();
        create_parent(&tmp)?;
        let written = write_tmp(&tmp, body);
        let result = written.and_then(|(etag, size)| self.commit(key, &tmp, headers, &etag, size, &mode));
        let _ = fs::remove_file(&tmp);
        result
    }

    fn check_mode(&self, key: &Key, mode: &PutMode) -> Result<(), StoreError> {
        let current = self.head_sync(key)?;
        match (mode, current) {
            (PutMode::Create, Some(_)) => Err(StoreError::AlreadyExists { key: key.to_string() }),
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
        etag: &str,
        size: u64,
        mode: &PutMode,
    ) -> Result<ObjectMeta, StoreError> {
        let ino = fs::metadata(tmp).map_err(|e| StoreError::io("stat", tmp, e))?.ino();
        let sidecar = Sidecar {
            content_type: headers.content_type.clone(),
            cache_control: headers.cache_control.clone(),
            sri: headers.sri.clone(),
            etag: etag.to_string(),
            size,
            ino,
        };
        self.write_sidecar(key, &sidecar)?;
        let dest = self.data_path(key);
        let place = |dest: &Path| match mode {
            PutMode::Create => fs::hard_link(tmp, dest),
            PutMode::Update { .. } | PutMode::Overwrite => fs::rename(tmp, dest),
        };
        create_parent(&dest)?;
        let mut placed = place(&dest);
        if placed.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            // A delete of a sibling removed the freshly emptied parent: once more.
            create_parent(&dest)?;
            placed = place(&dest);
        }
        placed.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => StoreError::AlreadyExists { key: key.to_string() },
            _ => StoreError::io("place", &dest, e),
        })?;
        Ok(ObjectMeta { key: key.clone(), size, etag: etag.to_string(), headers: Some(headers.clone()) })
    }

    fn write_sidecar(&self, key: &Key, sidecar: &Sidecar) -> Result<(), StoreError> {
        let path = self.sidecar_path(key);
        create_parent(&path)?;
        let tmp = self.tmp_path();
        let json = serde_json::to_vec(sidecar).map_err(|e| StoreError::io("encode", &path, io::Error::other(e)))?;
        let result = fs::write(&tmp, json)
            .map_err(|e| StoreError::io("write", &tmp, e))
            .and_then(|()| fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename", &path, e)));
        let _ = fs::remove_file(&tmp);
        result
    }

    fn copy_sync(&self, from: &Key, to: &Key, headers: &Headers) -> Result<(), StoreError> {
        let _lock = self.lock(to)?;
        let Some(source) = self.head_sync(from)? else {
            return Err(StoreError::NotFound { key: from.to_string() });
        };
        let tmp = self.tmp_path();
        create_parent(&tmp)?;
        // Objects are never modified in place (every write is a new inode
        // renamed into place), so sharing the source's inode is a safe copy
        // that costs no second write of the bytes.
        let result = match fs::hard_link(self.data_path(from), &tmp) {
            Ok(()) => Ok(()),
            Err(_) => fs::copy(self.data_path(from), &tmp).map(drop).map_err(|e| StoreError::io("copy", &tmp, e)),
        }
        .and_then(|()| self.commit(to, &tmp, headers, &source.etag, source.size, &PutMode::Overwrite));
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
            let m = entry.metadata().map_err(|e| StoreError::io("stat", entry.path(), io::Error::other(e)))?;
            let mut meta = self.meta_of(&key, &m)?;
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
        // parents if this races them (see `link_into_place`).
        let mut dir = self.data_path(key);
        while dir.pop() && dir != self.root && fs::remove_dir(&dir).is_ok() {}
        Ok(())
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

fn create_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(|e| StoreError::io("create directory", parent, e)),
        None => Ok(()),
    }
}

fn read_sidecar(path: &Path) -> Option<Sidecar> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Streams `body` into `tmp`, flushes it to disk, and returns (etag, size).
fn write_tmp(tmp: &Path, body: Body) -> Result<(String, u64), StoreError> {
    let mut out = File::create(tmp).map_err(|e| StoreError::io("create", tmp, e))?;
    let (etag, size) = match body {
        Body::Bytes(bytes) => {
            out.write_all(&bytes).map_err(|e| StoreError::io("write", tmp, e))?;
            (content_etag(&bytes), bytes.len() as u64)
        }
        Body::File(src) => {
            let input = File::open(&src).map_err(|e| StoreError::io("open", &src, e))?;
            copy_hashing(input, Some(&mut out)).map_err(|e| StoreError::io("copy", &src, e))?
        }
    };
    out.sync_data().map_err(|e| StoreError::io("sync", tmp, e))?;
    Ok((etag, size))
}

/// Reads `input` to the end in 64 KiB chunks, optionally copying into
/// `out`, and returns its content etag and size.
fn copy_hashing(mut input: impl Read, mut out: Option<&mut File>) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(out) = out.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
        size += n as u64;
    }
    Ok((format_etag(&hasher.finalize()), size))
}

fn content_etag(bytes: &[u8]) -> String {
    format_etag(&Sha256::digest(bytes))
}

fn content_etag_of_file(path: &Path) -> Result<String, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    Ok(copy_hashing(file, None).map_err(|e| StoreError::io("read", path, e))?.0)
}

/// A quoted, strong etag from the first 128 bits of the SHA-256 digest.
fn format_etag(digest: &[u8]) -> String {
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
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
