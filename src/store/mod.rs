//! The storage abstraction: one async trait, two backends (a local directory
//! and S3), identical behaviour.
//!
//! Correctness under concurrency comes from two primitives every backend must
//! provide atomically, expressed as data in [`PutMode`]:
//! - [`PutMode::Create`]: write only if the key does not exist (S3
//!   `If-None-Match: *`; locally a hard link that the kernel refuses when the
//!   name is taken);
//! - [`PutMode::Update`]: write only if the object still has the given etag
//!   (S3 `If-Match`; locally a per-key lock and a content etag).
//!
//! Callers never know which backend they hold; they `match` on [`StoreError`]
//! variants, never on message text.

mod config;
mod key;
mod local;
mod probe;
mod s3;
mod staged;
mod stale;
mod url;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

pub(crate) use config::{StoreConfig, Timeouts};
pub use key::{Key, KeyError};
pub use local::LocalStore;
pub use probe::{Check, ProbeReport, Verdict, probe_conditional_writes};
pub(crate) use probe::{check_temp_files, probe_writes_at_once, remove_probe};
pub use s3::S3Store;
pub(crate) use staged::SourceRead;
pub use staged::{StagedFile, Staging};
pub(crate) use url::StoreUrl;
pub use url::StoreUrlError;

/// How a write treats an object that may already exist under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Fail with [`StoreError::AlreadyExists`] if the key exists.
    Create,
    /// Fail with [`StoreError::Precondition`] unless the current etag matches,
    /// or [`StoreError::NotFound`] if the object is gone.
    Update {
        /// The etag read before the write, exactly as the store returned it.
        etag: String,
    },
    /// Replace whatever is there.
    Overwrite,
}

/// Headers stored with an object and served with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    /// `Content-Type`.
    pub content_type: String,
    /// `Cache-Control`.
    pub cache_control: String,
    /// The SRI integrity of the bytes (`sha384-…`), kept as user metadata.
    ///
    /// On [`Store::put`] it is also a promise the backend checks: the bytes
    /// that end up stored hash to exactly this value, or the write fails with
    /// [`StoreError::ContentChanged`] and nothing is stored under the key.
    /// Stored metadata therefore never describes other bytes.
    pub sri: Option<String>,
    /// Signature-based SRI headers (`Unencoded-Digest`, `Signature-Input`,
    /// `Signature`), stored with the object and served with it unchanged.
    /// They are computed from the same read of the bytes as [`Headers::sri`],
    /// which the store checks, so they describe the stored bytes too.
    pub signed: Option<crate::signing::SignedHeaders>,
}

/// What a store knows about an object without reading its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: Key,
    /// Size in bytes.
    pub size: u64,
    /// Opaque version tag; pass it back in [`PutMode::Update`].
    pub etag: String,
    /// Stored headers; `None` where the backend does not return them (listings).
    pub headers: Option<Headers>,
}

/// The bytes to write: small payloads in memory, large ones streamed from a file.
#[derive(Debug, Clone)]
pub enum Body {
    /// An in-memory payload (manifests, the index).
    Bytes(Bytes),
    /// A file streamed from disk; memory does not grow with its size.
    File(PathBuf),
    /// A file staged by this store's [`Store::staging`] while it was hashed:
    /// the store links or sends these very bytes, without reading them
    /// again to check [`Headers::sri`] (the staged integrity is theirs).
    Staged(Arc<StagedFile>),
}

/// Temp files of interrupted writes that a store removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StaleTemp {
    /// How many files.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Stale files that could not be removed (each logged with its error).
    pub stuck: u64,
}

/// A streaming reader over an object's bytes.
pub(crate) type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// Errors from any backend, each naming the condition and the key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create-only write found the key taken.
    #[error("{key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// A compare-and-swap write found the object changed.
    #[error("{key} changed since it was read (etag mismatch)")]
    Precondition {
        /// The key.
        key: String,
    },
    /// The bytes read for a write do not hash to the integrity the caller
    /// planned ([`Headers::sri`]): the source changed after it was hashed.
    /// Nothing was stored under the key.
    #[error(
        "{path} changed while it was being published (planned {expected}, read {actual}); nothing was \
         stored under {key}"
    )]
    ContentChanged {
        /// The key that was to be written.
        key: String,
        /// The source file (or `<memory>`).
        path: String,
        /// The integrity the caller planned.
        expected: String,
        /// The integrity of the bytes actually read.
        actual: String,
    },
    /// A concurrent conditional write to the same key was in flight (S3
    /// 409 `ConditionalRequestConflict`): nothing was written; retry.
    #[error("{key}: another conditional write to it was in flight ({detail}); rerun the command")]
    ConcurrentWrite {
        /// The key.
        key: String,
        /// What the store said.
        detail: String,
    },
    /// The object does not exist.
    #[error("{key} does not exist")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The credentials may not do this.
    #[error("access denied for {op} {key}: {detail}")]
    Denied {
        /// The operation attempted.
        op: &'static str,
        /// The key.
        key: String,
        /// What the store said.
        detail: String,
    },
    /// The store could not be reached or failed.
    #[error("{op} {key} failed: {detail}")]
    Backend {
        /// The operation attempted.
        op: &'static str,
        /// The key.
        key: String,
        /// What went wrong, for a human.
        detail: String,
        /// The error behind it (the SDK's, an I/O or a task error), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A local filesystem error.
    #[error("{op} {path}: {source}{}", io_hint(source))]
    Io {
        /// The operation attempted.
        op: std::borrow::Cow<'static, str>,
        /// The file involved.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(
        op: impl Into<std::borrow::Cow<'static, str>>,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io { op: op.into(), path: path.display().to_string(), source }
    }
}

/// What to do about a local filesystem error whose cause the OS names
/// (the path is in the message); nothing for other errors.
fn io_hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            "; that disk is full: free space there and rerun (a publish resumes where it stopped)"
        }
        ErrorKind::FileTooLarge => "; a file-size limit stopped it (`ulimit -f`, or the filesystem's own): raise it",
        ErrorKind::ReadOnlyFilesystem => "; that filesystem is mounted read-only: write to another directory",
        ErrorKind::PermissionDenied => "; this user may not do that there: check the directory's owner and mode",
        _ => "",
    }
}

/// The storage trait every backend implements with the same behaviour.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// A human-readable location for messages (`./cdn`, `s3://bucket/prefix`).
    fn describe(&self) -> String;

    /// The longest key this store accepts, in bytes. Each backend states
    /// its own (S3: 1,024 including the prefix); no backend may allow more
    /// than a [`Key`] holds.
    fn max_key_len(&self) -> usize;

    /// Whether this store can hold `key` beside the keys S3 allows; `Err`
    /// says why not (a limit of the backend, e.g. a local filesystem's
    /// 255-byte name limit), for planning to refuse before the first write.
    fn check_key(&self, _key: &Key) -> Result<(), String> {
        Ok(())
    }

    /// Removes what interrupted writes of earlier processes left behind
    /// (the local store's temp files) and says what was removed; `None`
    /// for a store that keeps no such files. Writes also do this, once per
    /// process; `doctor` calls it to report it.
    async fn remove_stale_temp_files(&self) -> Result<Option<StaleTemp>, StoreError> {
        Ok(None)
    }

    /// Where this store copies build files outside itself before it sends
    /// them (S3: `TMPDIR`); a build that holds it is refused, or a run's
    /// copies would be published with it. `None`: nowhere outside itself.
    fn upload_copies_dir(&self) -> Option<PathBuf> {
        None
    }

    /// Where a publish may copy each file while it hashes it, so that the
    /// write then reads no byte again ([`Body::Staged`]); `None`: the
    /// store reads [`Body::File`] itself when it writes.
    fn staging(&self) -> Option<Arc<dyn Staging>> {
        None
    }

    /// Whether an object could be written under `key` now, as far as the
    /// backend can tell without writing; `Err` names the obstacle (a local
    /// directory cannot hold a file where a directory of other objects is,
    /// or under a name that is a file). S3 holds any key: `Ok`, no request.
    async fn check_writable(&self, _key: &Key) -> Result<(), StoreError> {
        Ok(())
    }

    /// Metadata of one object, or `None` if it does not exist.
    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError>;

    /// The whole object in memory (for small objects: manifests, the index).
    async fn get(&self, key: &Key) -> Result<Option<(Bytes, ObjectMeta)>, StoreError>;

    /// A streaming reader over the object (for large objects).
    async fn reader(&self, key: &Key) -> Result<Option<(ObjectReader, ObjectMeta)>, StoreError>;

    /// Writes `body` under `key` with `headers`, honouring `mode` atomically.
    ///
    /// With `headers.sri` set, the backend hashes the bytes it actually
    /// stores (or stages for upload) and refuses with
    /// [`StoreError::ContentChanged`] before the object becomes visible if
    /// they differ: the sealed hash is the hash of the stored bytes.
    async fn put(&self, key: &Key, body: Body, headers: &Headers, mode: PutMode) -> Result<ObjectMeta, StoreError>;

    /// Server-side copy of `from` to `to`, replacing the headers (overwrites `to`).
    async fn copy(&self, from: &Key, to: &Key, headers: &Headers) -> Result<(), StoreError>;

    /// Every object whose key starts with `prefix`, sorted by key; `headers` is `None`.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    /// Removes the object; deleting a missing key is not an error.
    async fn delete(&self, key: &Key) -> Result<(), StoreError>;
}

/// Opens the store a URL names; each backend reads its part of `config`.
pub(crate) async fn open(url: &StoreUrl, config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url {
        StoreUrl::Local(path) => Arc::new(LocalStore::new(path.clone())),
        StoreUrl::S3 { bucket, prefix } => Arc::new(S3Store::connect(bucket, prefix, config).await?),
    })
}
