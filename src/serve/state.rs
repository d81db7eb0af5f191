//! What the service knows: the index held in memory, the sealed manifests
//! it has looked up, and how the last revalidation went.
//!
//! Revalidation ([`ServeState::refresh`]) is cheap when nothing changed: one
//! `head` of `api/sdk/sri` and an etag compare. Only a changed etag costs a
//! `get`, a parse and the compression of the new body. A failed check (store
//! unreachable, an index that does not parse, an index that vanished) never
//! replaces a good index: the last good one stays in service and the
//! failure is recorded for `/healthz`.
//!
//! Between two refreshes a just-sealed version is still served: a miss for
//! a version that is not in the index looks up `manifests/<v>.json` (sealed
//! manifests are immutable, so hits are cached forever; misses are cached
//! for [`MISS_TTL`] so unknown versions cannot turn every request into a
//! store call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use semver::Version;

use super::ServeOptions;
use super::error::{ApiError, ServeError};
use super::health::Health;
use super::snapshot::IndexSnapshot;
use crate::layout;
use crate::manifest::VersionManifest;
use crate::release::{self, ReleaseError};
use crate::store::Store;

/// How long one revalidation may take before it counts as failed.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// The store has no index: nothing is published.
    NoIndex,
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
}

/// The shared state of the service.
#[derive(Debug)]
pub struct ServeState {
    pub(super) store: Arc<dyn Store>,
    pub(super) index_cache_control: HeaderValue,
    pub(super) refresh_every: Duration,
    pub(super) request_timeout: Duration,
    pub(super) body_idle_timeout: Duration,
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
        Ok(Arc::new(ServeState {
            store,
            index_cache_control,
            refresh_every: options.refresh,
            request_timeout: options.limits.request_timeout,
            body_idle_timeout: options.limits.body_idle_timeout,
            loaded: RwLock::new(Loaded::Nothing),
            health: Mutex::new(Health::default()),
            sealed: Mutex::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
        }))
    }

    /// Revalidates the in-memory index against the store once.
    pub async fn refresh(&self) -> Result<Refreshed, RefreshError> {
        let result = tokio::time::timeout(REFRESH_TIMEOUT, self.check()).await.unwrap_or(Err(RefreshError::TimedOut));
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
                health.succeeded();
            }
            Err(e) => {
                tracing::warn!("revalidating the SRI index failed; still serving the last good one: {e}");
                health.failed(e.to_string());
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
        match (head, &current) {
            (None, Loaded::Index(_)) => return Err(RefreshError::Vanished),
            (None, _) => {
                self.set_loaded(Loaded::NoIndex);
                return Ok(Refreshed::NoIndex);
            }
            (Some(meta), Loaded::Index(snapshot)) if meta.etag == snapshot.store_etag => {
                return Ok(Refreshed::Unchanged);
            }
            (Some(_), _) => {}
        }
        let Some(release::StoredIndex { index, bytes, etag }) = release::read_index(self.store.as_ref()).await? else {
            return match current {
                Loaded::Index(_) => Err(RefreshError::Vanished),
                _ => Ok(Refreshed::NoIndex),
            };
        };
        let latest = index.version.clone();
        let snapshot = tokio::task::spawn_blocking(move || IndexSnapshot::build(index, bytes, etag))
            .await
            .map_err(|e| ReleaseError::StoreUnusable(format!("preparing the index failed: {e}")))?;
        self.set_loaded(Loaded::Index(Arc::new(snapshot)));
        self.misses.lock().unwrap_or_else(PoisonError::into_inner).clear();
        Ok(Refreshed::Updated(latest))
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
