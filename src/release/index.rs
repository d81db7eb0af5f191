//! Keeping `api/sdk/sri` right: an incremental merge, written by
//! compare-and-swap and retried when another writer got there first.
//!
//! The index is read *before* the pointer. A promoter writes the pointer
//! before it writes the index, so whoever reads an index written after a
//! pointer change also sees that change: a stale `version` cannot overwrite
//! a newer one (invariant 4 and 3).

use bytes::Bytes;

use super::{ReleaseError, read_index, read_manifest, read_pointer};
use crate::layout;
use crate::manifest::{self, SriIndex, VersionManifest};
use crate::store::{Body, Headers, PutMode, Store, StoreError};

/// Rounds of compare-and-swap before giving up.
const MAX_ROUNDS: usize = 100;

/// What the index looks like after [`update_index`].
#[derive(Debug, Clone)]
pub struct IndexState {
    /// The parsed index.
    pub index: SriIndex,
    /// Its exact bytes in the store.
    pub bytes: Bytes,
    /// Whether this call wrote it.
    pub changed: bool,
}

/// Adds `add` (a sealed version) and the synced `latest` entries to the
/// index; writes nothing when it already says so.
pub async fn update_index(store: &dyn Store, add: Option<&VersionManifest>) -> Result<IndexState, ReleaseError> {
    let headers = Headers {
        content_type: layout::JSON_CONTENT_TYPE.into(),
        cache_control: layout::INDEX_CACHE_CONTROL.into(),
        sri: None,
    };
    for _ in 0..MAX_ROUNDS {
        let current = read_index(store).await?;
        let pointer = read_pointer(store).await?;
        let mut next = current.as_ref().map(|(index, _, _)| index.clone()).unwrap_or_default();
        if let Some(manifest) = add {
            next.add_version(manifest);
        }
        if let Some((pointer, _)) = pointer.filter(|(p, _)| p.synced) {
            let latest = match add {
                Some(m) if m.version == pointer.version => m.clone(),
                _ => read_manifest(store, &pointer.version).await?.ok_or_else(|| {
                    ReleaseError::StoreUnusable(format!(
                        "the latest pointer names {}, which is not sealed; run `sdk-cdn promote` with a published version",
                        pointer.version
                    ))
                })?,
            };
            next.set_latest(&latest);
        }
        if let Some((index, bytes, _)) = &current
            && *index == next
        {
            return Ok(IndexState { index: next, bytes: bytes.clone(), changed: false });
        }
        let bytes = Bytes::from(manifest::to_bytes(&next));
        let mode = match &current {
            Some((_, _, etag)) => PutMode::Update { etag: etag.clone() },
            None => PutMode::Create,
        };
        match store.put(&layout::index(), Body::Bytes(bytes.clone()), &headers, mode).await {
            Ok(_) => return Ok(IndexState { index: next, bytes, changed: true }),
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ReleaseError::StoreUnusable(format!(
        "the SRI index kept changing for {MAX_ROUNDS} rounds (concurrent publishers); rerun the command"
    )))
}
