//! What the service knows: the index held in memory, the sealed manifests
//! it has looked up, and how the last revalidation went.
//!
//! Revalidation ([`ServeState::refresh`]) is cheap when nothing changed: one
//! `head` of `api/sdk/sri` and an etag compare. Only a changed etag costs a
//! `get`, a parse and the compression of the new body. A failed check (store
//! unreachable, an index that does not parse, an index that vanished) never
//! replaces a good index: the last good one stays in service and the
//! failure is recorded for `/healthz` and `/readyz`.
//!
//! Loading is bounded in memory and time: an index larger than
//! `max_index_bytes` is refused from its `head` size before any byte is
//! read (and the read itself stops one byte past the bound, in case the
//! object changed in between), and at most one parse runs at a time. A
//! parse on its thread cannot be cancelled, so a revalidation that
//! times out leaves it running; the next one then reports "busy" instead of
//! starting a second copy. With the size bounded, a parse is short anyway.
//! Every parse runs on one dedicated thread (prepare.rs), never on tokio's
//! blocking pool, so that memory stays flat while releases land.
//!
//! A store with no index is either empty (nothing published yet) or has
//! lost it while versions are sealed; one listing of `manifests/` per
//! revalidation tells them apart, only while the index is absent.
//!
//! Between two refreshes a just-sealed version is still served: a miss for
//! a version that is not in the index looks up `manifests/<v>.json` (sealed
//! manifests are immutable, so hits are cached forever; misses are cached
//! for [`MISS_TTL`] so unknown versions cannot turn every request into a
//! store call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use axum::http::HeaderValue;
use semver::Version;

use super::ServeOptions;
use super::error::{ApiError, ServeError};
use super::health::Health;
use super::metrics::{self, Metrics};
use super::prepare::{PrepareError, Preparer};
use super::snapshot::IndexSnapshot;
use crate::layout;
use crate::manifest::{self, SriIndex, VersionManifest};
use crate::release::{self, ReleaseError};
use crate::store::Store;

/// How long one revalidation may take before it counts as failed.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// Sealed manifests read at once after a new index is loaded.
const MANIFEST_READS: usize = 8;
/// How long a "not sealed" answer for a version is trusted.
pub(super) const MISS_TTL: Duration = Duration::from_secs(1);
/// Distinct unsealed versions remembered at once; beyond that, unknown
/// versions are answered 404 without asking the store until entries expire.
const MAX_MISSES: usize = 4096;

/// What the service has loaded.
#[derive(Debug, Clone)]
pub(super) enum Loaded {
    /// No revalidation has succeeded yet.
    Nothing,
    /// The store has no index and no sealed version: nothing is published.
    NoIndex,
    /// The store has no index although versions are sealed: it was lost
    /// (`sdk-cdn reindex` rebuilds it). Not healthy, not ready.
    Missing {
        /// How many `manifests/<version>.json` the store holds.
        sealed: usize,
    },
    /// The index in service.
    Index(Arc<IndexSnapshot>),
}

/// What a successful revalidation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// Same etag as the index in service.
    Unchanged,
    /// A new index is in service; it names this `latest` version.
    Updated(Option<Version>),
    /// The store has no index yet.
    NoIndex,
    /// The store has no index although this many versions are sealed.
    Missing(usize),
}

/// Why a revalidation failed (the last good index stays in service).
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The store failed, or the stored index does not parse.
    #[error(transparent)]
    Read(#[from] ReleaseError),
    /// The index was there and is gone: a store misconfiguration or outage,
    /// never a normal state (publishing only ever replaces it).
    #[error("api/sdk/sri disappeared from the store")]
    Vanished,
    /// The store did not answer in time.
    #[error("the store did not answer within {}s", REFRESH_TIMEOUT.as_secs())]
    TimedOut,
    /// The stored index is larger than this service will load.
    #[error(
        "api/sdk/sri is {size} bytes, over the {max}-byte limit of this service; \
         raise `serve --max-index-bytes` if an index this large is expected"
    )]
    TooLarge {
        /// Its size (at least this much, when the read was cut off).
        size: u64,
        /// `--max-index-bytes`.
        max: u64,
    },
    /// The previous index is still being parsed (a revalidation timed out
    /// during the parse, which cannot be cancelled); not started twice.
    #[error("the previous SRI index is still being prepared; not loading another one at the same time")]
    Busy,
    /// Reading the index's bytes failed part-way (after the store answered).
    #[error("reading api/sdk/sri failed: {source}")]
    ReadFailed {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The index's thread did not prepare it: it could not start, or the parse panicked.
    #[error("preparing the index failed: {source}")]
    PrepareFailed {
        /// Why.
        #[source]
        source: PrepareError,
    },
}

impl RefreshError {
    /// Whether waiting will not help: the stored index itself is refused.
    pub(super) fn is_refusal(&self) -> bool {
        matches!(self, RefreshError::TooLarge { .. })
    }

    fn is_store_error(&self) -> bool {
        matches!(self, RefreshError::Read(ReleaseError::Store(_)) | RefreshError::TimedOut)
    }
}

/// The shared state of the service.
#[derive(Debug)]
pub struct ServeState {
    pub(super) store: Arc<dyn Store>,
    pub(super) index_cache_control: HeaderValue,
    pub(super) refresh_every: Duration,
    pub(super) request_timeout: Duration,
    pub(super) body_idle_timeout: Duration,
    pub(super) ready_max_age: Duration,
    pub(super) metrics: Metrics,
    /// `/metrics` is a route of the main app (no `--metrics-addr`).
    pub(super) metrics_on_main: bool,
    /// The base URL the versions page writes into its tags (`None`: the request's host).
    pub(super) public_base_url: Option<String>,
    max_index_bytes: u64,
    /// One permit: at most one index parse at a time (see the module docs).
    preparing: Arc<Semaphore>,
    /// The thread every parse runs on (prepare.rs says why not the blocking pool).
    preparer: Preparer,
    loaded: RwLock<Loaded>,
    health: Mutex<Health>,
    sealed: Mutex<HashMap<Version, Arc<VersionManifest>>>,
    misses: Mutex<HashMap<Version, Instant>>,
}

impl ServeState {
    /// State for serving `store`; nothing is loaded until [`ServeState::refresh`].
    pub fn new(store: Arc<dyn Store>, options: &ServeOptions) -> Result<Arc<Self>, ServeError> {
        let index_cache_control = HeaderValue::from_str(&options.index_cache_control).map_err(|_| {
            ServeError::Options(format!("{:?} is not a valid Cache-Control value", options.index_cache_control))
        })?;
        if options.refresh.is_zero() {
            return Err(ServeError::Options("the refresh interval must be positive".into()));
        }
        if options.max_index_bytes == 0 {
            return Err(ServeError::Options("the index size limit must be positive".into()));
        }
        Ok(Arc::new(ServeState {
            store,
            index_cache_control,
            refresh_every: options.refresh,
            request_timeout: options.limits.request_timeout,
            body_idle_timeout: options.limits.body_idle_timeout,
            ready_max_age: options.ready_max_age,
            metrics: Metrics::new(),
            metrics_on_main: options.metrics_addr.is_none(),
            public_base_url: options.public_base_url.clone(),
            max_index_bytes: options.max_index_bytes,
            preparing: Arc::new(Semaphore::new(1)),
            preparer: Preparer::default(),
            loaded: RwLock::new(Loaded::Nothing),
            health: Mutex::new(Health::default()),
            sealed: Mutex::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
        }))
    }

    /// Revalidates the in-memory index against the store once.
    pub async fn refresh(&self) -> Result<Refreshed, RefreshError> {
        let result = tokio::time::timeout(REFRESH_TIMEOUT, self.check()).await.unwrap_or(Err(RefreshError::TimedOut));
        if let Ok(Refreshed::Updated(_)) = result {
            self.read_sealed_manifests().await;
        }
        self.metrics.refreshed(result.is_ok());
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(outcome) => {
                if health.consecutive_failures > 0 {
                    tracing::warn!("the store answers again; the index is fresh");
                }
                if let Refreshed::Updated(latest) = outcome {
                    let latest = latest.as_ref().map_or("nothing".to_string(), ToString::to_string);
                    tracing::info!("serving a new SRI index (latest: {latest})");
                }
                if let Refreshed::Missing(sealed) = outcome
                    && health.consecutive_failures == 0
                    && health.missing.is_none()
                {
                    tracing::error!("{}", missing_index(*sealed));
                }
                health.succeeded();
                health.missing = match outcome {
                    Refreshed::Missing(sealed) => Some(missing_index(*sealed)),
                    Refreshed::Unchanged | Refreshed::Updated(_) | Refreshed::NoIndex => None,
                };
            }
            Err(e) => {
                if e.is_store_error() {
                    metrics::store_error();
                }
                tracing::warn!("revalidating the SRI index failed; still serving the last good one: {e}");
                health.failed(e.to_string(), e.is_refusal());
            }
        }
        result
    }

    /// Revalidates every `refresh` interval until the task is aborted.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(state.refresh_every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate; the caller loaded already
            loop {
                ticks.tick().await;
                let _ = state.refresh().await;
            }
        })
    }

    async fn check(&self) -> Result<Refreshed, RefreshError> {
        let current = self.loaded();
        let head = self.store.head(&layout::index()).await.map_err(ReleaseError::from)?;
        let max = self.max_index_bytes;
        match (head, &current) {
            (None, Loaded::Index(_)) => return Err(RefreshError::Vanished),
            (None, _) => return self.no_index().await,
            (Some(meta), Loaded::Index(snapshot)) if meta.etag == snapshot.store_etag => {
                return Ok(Refreshed::Unchanged);
            }
            (Some(meta), _) if meta.size > max => return Err(RefreshError::TooLarge { size: meta.size, max }),
            (Some(_), _) => {}
        }
        let permit = Arc::clone(&self.preparing).try_acquire_owned().map_err(|_| RefreshError::Busy)?;
        let key = layout::index();
        let Some((reader, meta)) = self.store.reader(&key).await.map_err(ReleaseError::from)? else {
            return match current {
                Loaded::Index(_) => Err(RefreshError::Vanished),
                _ => self.no_index().await,
            };
        };
        let mut bytes = Vec::with_capacity(usize::try_from(meta.size.min(max)).unwrap_or(0));
        reader
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|source| RefreshError::ReadFailed { source })?;
        // It grew between the `head` and this read: refused all the same.
        if bytes.len() as u64 > max {
            return Err(RefreshError::TooLarge { size: meta.size.max(bytes.len() as u64), max });
        }
        let etag = meta.etag;
        let snapshot = self
            .preparer
            .run(move || {
                let _one_at_a_time = permit;
                let bytes = bytes::Bytes::from(bytes);
                let index: SriIndex = manifest::parse(&key, "SRI index", &bytes)?;
                Ok::<_, ReleaseError>(IndexSnapshot::build(index, bytes, etag))
            })
            .await
            .map_err(|source| RefreshError::PrepareFailed { source })??;
        let latest = snapshot.index.version.clone();
        self.set_loaded(Loaded::Index(Arc::new(snapshot)));
        self.misses.lock().unwrap_or_else(PoisonError::into_inner).clear();
        Ok(Refreshed::Updated(latest))
    }

    /// Reads the sealed manifests of the versions a new index lists that are
    /// not cached yet (a few at a time, within [`REFRESH_TIMEOUT`]): a
    /// version's files and `/api/sdk/sri/<version>` are checked against its
    /// manifest, and must still be answered from memory while the store is
    /// down. Best effort: a manifest not read now is read on first use.
    async fn read_sealed_manifests(&self) {
        let Loaded::Index(snapshot) = self.loaded() else { return };
        let missing: Vec<Version> = super::versions::versions(&snapshot.index)
            .into_iter()
            .filter(|v| !self.sealed.lock().unwrap_or_else(PoisonError::into_inner).contains_key(v))
            .collect();
        let all = async {
            for batch in missing.chunks(MANIFEST_READS) {
                let reads: Vec<_> = batch.iter().map(|v| self.sealed_manifest(v)).collect();
                futures::future::join_all(reads).await;
            }
        };
        if tokio::time::timeout(REFRESH_TIMEOUT, all).await.is_err() {
            tracing::warn!("reading the sealed manifests of a new index timed out; the rest are read on first use");
        }
    }

    /// The store has no index: empty, or the index was lost while versions are sealed.
    async fn no_index(&self) -> Result<Refreshed, RefreshError> {
        let listed = self.store.list(layout::MANIFESTS_PREFIX).await.map_err(ReleaseError::from)?;
        let sealed = listed.iter().filter(|meta| layout::version_of_manifest(&meta.key).is_some()).count();
        if sealed == 0 {
            self.set_loaded(Loaded::NoIndex);
            Ok(Refreshed::NoIndex)
        } else {
            self.set_loaded(Loaded::Missing { sealed });
            Ok(Refreshed::Missing(sealed))
        }
    }

    pub(super) fn loaded(&self) -> Loaded {
        self.loaded.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_loaded(&self, loaded: Loaded) {
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = loaded;
    }

    pub(super) fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The sealed manifest of `version`, from the cache or the store.
    pub(super) async fn sealed_manifest(&self, version: &Version) -> Result<Option<Arc<VersionManifest>>, ApiError> {
        if let Some(manifest) = self.sealed.lock().unwrap_or_else(PoisonError::into_inner).get(version) {
            return Ok(Some(Arc::clone(manifest)));
        }
        {
            let mut misses = self.misses.lock().unwrap_or_else(PoisonError::into_inner);
            if misses.get(version).is_some_and(|at| at.elapsed() < MISS_TTL) {
                return Ok(None);
            }
            if misses.len() >= MAX_MISSES {
                misses.retain(|_, at| at.elapsed() < MISS_TTL);
                if misses.len() >= MAX_MISSES {
                    return Ok(None);
                }
            }
        }
        match release::read_manifest(self.store.as_ref(), version).await {
            Ok(Some(manifest)) => {
                let manifest = Arc::new(manifest);
                self.sealed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(version.clone(), Arc::clone(&manifest));
                Ok(Some(manifest))
            }
            Ok(None) => {
                self.misses.lock().unwrap_or_else(PoisonError::into_inner).insert(version.clone(), Instant::now());
                Ok(None)
            }
            Err(e) => Err(ApiError::store(&e)),
        }
    }
}

/// Why a store without an index but with sealed versions is not healthy, and the fix.
pub(super) fn missing_index(sealed: usize) -> String {
    let versions = if sealed == 1 { "version is" } else { "versions are" };
    format!(
        "api/sdk/sri is missing from the store although {sealed} {versions} sealed under manifests/; \
         run `sdk-cdn reindex` to rebuild it from the sealed manifests"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Body, Headers, LocalStore, PutMode};

    async fn put_index(store: &dyn Store, bytes: &'static [u8]) {
        put_index_bytes(store, bytes::Bytes::from_static(bytes)).await;
    }

    async fn put_index_bytes(store: &dyn Store, bytes: bytes::Bytes) {
        let headers = Headers { content_type: crate::headers::JSON_CONTENT_TYPE.into(), ..Headers::default() };
        store.put(&layout::index(), Body::Bytes(bytes), &headers, PutMode::Overwrite).await.unwrap();
    }

    #[tokio::test]
    async fn a_parse_still_running_is_not_started_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().to_path_buf()));
        put_index(store.as_ref(), br#"{"version":null,"files":{}}"#).await;
        let state = ServeState::new(Arc::clone(&store), &ServeOptions::default()).unwrap();
        // As if a timed-out revalidation left its (uncancellable) parse running.
        let running = Arc::clone(&state.preparing).try_acquire_owned().unwrap();
        assert!(matches!(state.refresh().await, Err(RefreshError::Busy)));
        assert!(matches!(state.loaded(), Loaded::Nothing));
        drop(running);
        assert_eq!(state.refresh().await.unwrap(), Refreshed::Updated(None));
    }

    /// Issue 18.5: each reload used to run on whichever blocking-pool thread
    /// was idle, leaving its stack pages and freed buffers on one more
    /// thread per release. A pool whose idle threads retire at once (as
    /// busy ones do not, under load) puts every blocking task on a new
    /// thread, so this test fails unless reloads have a thread of their own.
    #[test]
    fn every_new_index_is_prepared_on_one_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_keep_alive(Duration::ZERO)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().to_path_buf()));
            let state = ServeState::new(Arc::clone(&store), &ServeOptions::default()).unwrap();
            let mut threads = std::collections::HashSet::new();
            for n in 0..8 {
                let sri = crate::integrity::Integrity::of_bytes(&[n as u8]);
                let body = format!(r#"{{"version":"1.{n}.0","files":{{"1.{n}.0/a.js":"{sri}"}}}}"#);
                put_index_bytes(store.as_ref(), body.into()).await;
                let latest = Version::new(1, n, 0);
                assert_eq!(state.refresh().await.unwrap(), Refreshed::Updated(Some(latest)));
                let Loaded::Index(snapshot) = state.loaded() else { panic!("no index after reload {n}") };
                threads.insert(snapshot.built_on);
            }
            assert_eq!(threads.len(), 1, "8 reloads ran on {} threads", threads.len());
        });
    }

    #[test]
    fn a_failed_read_or_preparation_keeps_its_cause() {
        use std::error::Error as _;
        let read = RefreshError::ReadFailed { source: std::io::Error::other("connection reset") };
        assert_eq!(read.to_string(), "reading api/sdk/sri failed: connection reset");
        assert_eq!(read.source().map(ToString::to_string).as_deref(), Some("connection reset"));
        let prepare = RefreshError::PrepareFailed { source: PrepareError::Panicked };
        assert_eq!(prepare.to_string(), format!("preparing the index failed: {}", PrepareError::Panicked));
        assert!(matches!(prepare.source().and_then(|e| e.downcast_ref()), Some(PrepareError::Panicked)));
    }

    #[tokio::test]
    async fn an_index_over_the_cap_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().to_path_buf()));
        let body = br#"{"version":null,"files":{"0.1.0/a.js":"sha384-x"}}"#;
        put_index(store.as_ref(), body).await;
        let options = ServeOptions { max_index_bytes: body.len() as u64 - 1, ..ServeOptions::default() };
        let state = ServeState::new(Arc::clone(&store), &options).unwrap();
        let refused = state.refresh().await.unwrap_err();
        assert!(matches!(refused, RefreshError::TooLarge { size, .. } if size == body.len() as u64));
        assert!(refused.is_refusal());
        assert!(refused.to_string().contains("--max-index-bytes"), "{refused}");
    }
}
