//! Repair commands: `reindex` rebuilds the SRI index from the sealed
//! manifests, `discard` removes a partial upload that was never sealed.

use semver::Version;
use serde::Serialize;

use super::verify::sealed_versions;
use super::{ReleaseError, converge, read_manifest, read_pointer};
use crate::layout;
use crate::manifest::{self, SriIndex};
use crate::store::{Body, Headers, PutMode, Store, StoreError};

/// Rounds of compare-and-swap before giving up.
const MAX_ROUNDS: usize = 50;

/// What `reindex` did.
#[derive(Debug, Clone, Serialize)]
pub struct ReindexReport {
    /// Versions in the rebuilt index.
    pub versions: Vec<Version>,
    /// The version `latest/` serves.
    pub latest: Option<Version>,
    /// Whether the stored index differed and was rewritten.
    pub changed: bool,
}

/// Rebuilds `api/sdk/sri` from the sealed manifests and the channel pointer.
/// A damaged or missing index is replaced; an equal one is left alone.
pub async fn reindex(
    store: &dyn Store,
    latest_cache_control: &str,
    concurrency: usize,
) -> Result<ReindexReport, ReleaseError> {
    // The latest/ entries describe latest/: finish an interrupted promotion first.
    converge(store, latest_cache_control, concurrency).await?;
    let key = layout::index();
    let headers = Headers {
        content_type: layout::JSON_CONTENT_TYPE.into(),
        cache_control: layout::INDEX_CACHE_CONTROL.into(),
        sri: None,
    };
    for _ in 0..MAX_ROUNDS {
        // Read the current object raw: it may be the damaged thing we replace.
        let current = store.get(&key).await?;
        let versions = sealed_versions(store).await?;
        let mut index = SriIndex::default();
        for version in &versions {
            let manifest = read_manifest(store, version).await?.ok_or_else(|| {
                ReleaseError::StoreUnusable(format!("manifests/{version}.json disappeared while reindexing; rerun"))
            })?;
            index.add_version(&manifest);
        }
        let pointer = read_pointer(store).await?.map(|(p, _)| p);
        if let Some(pointer) = pointer.as_ref().filter(|p| p.synced) {
            let manifest = read_manifest(store, &pointer.version).await?.ok_or_else(|| {
                ReleaseError::StoreUnusable(format!("latest names {}, which is not sealed", pointer.version))
            })?;
            index.set_latest(&manifest);
        }
        let bytes = manifest::to_bytes(&index);
        let latest = index.version.clone();
        if current.as_ref().is_some_and(|(stored, _)| stored[..] == bytes[..]) {
            return Ok(ReindexReport { versions, latest, changed: false });
        }
        let mode = match &current {
            Some((_, meta)) => PutMode::Update { etag: meta.etag.clone() },
            None => PutMode::Create,
        };
        match store.put(&key, Body::Bytes(bytes.into()), &headers, mode).await {
            Ok(_) => return Ok(ReindexReport { versions, latest, changed: true }),
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ReleaseError::StoreUnusable(format!("the SRI index kept changing for {MAX_ROUNDS} rounds; rerun reindex")))
}

/// What `discard` did.
#[derive(Debug, Clone, Serialize)]
pub struct DiscardReport {
    /// The version.
    pub version: Version,
    /// Objects deleted.
    pub deleted: Vec<String>,
}

/// Deletes the files of a partial (never sealed) upload of `version`.
/// Refuses a sealed version without writing anything.
pub async fn discard(store: &dyn Store, version: &Version) -> Result<DiscardReport, ReleaseError> {
    let refuse = || {
        ReleaseError::Refused(format!(
            "{version} is published (sealed by manifests/{version}.json); published versions are immutable and are \
             never discarded. Promote another version with `sdk-cdn promote` if it must stop being latest."
        ))
    };
    if read_manifest(store, version).await?.is_some() {
        return Err(refuse());
    }
    let mut deleted = Vec::new();
    for object in store.list(&layout::version_prefix(version)).await? {
        store.delete(&object.key).await?;
        deleted.push(object.key.to_string());
    }
    if read_manifest(store, version).await?.is_some() {
        // A publish sealed it while we deleted: say so loudly; a rerun of
        // that publish restores the missing files.
        return Err(ReleaseError::StoreUnusable(format!(
            "a publish sealed {version} while discard was deleting its files; rerun that publish to restore them, \
             then `sdk-cdn verify {version}`"
        )));
    }
    Ok(DiscardReport { version: version.clone(), deleted })
}
