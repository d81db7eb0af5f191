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
    update_index_from(store, add, None).await
}

/// The index as read earlier (parsed, its bytes, its etag).
pub(crate) type KnownIndex = (SriIndex, Bytes, String);

/// [`update_index`], starting from an index the caller read earlier: if the
/// store's etag still matches (one `head`), it is not downloaded and parsed
/// again. The cost that grows with the store is then one parse (earlier),
/// one serialisation and one upload of the index; the merge itself touches
/// only the added version and the `latest/` entries.
pub(crate) async fn update_index_from(
    store: &dyn Store,
    add: Option<&VersionManifest>,
    mut known: Option<KnownIndex>,
) -> Result<IndexState, ReleaseError> {
    let headers = Headers {
        content_type: layout::JSON_CONTENT_TYPE.into(),
        cache_control: layout::INDEX_CACHE_CONTROL.into(),
        sri: None,
    };
    for _ in 0..MAX_ROUNDS {
        let current = match known.take() {
            Some(known) => match store.head(&layout::index()).await? {
                Some(meta) if meta.etag == known.2 => Some(known),
                _ => read_index(store).await?,
            },
            None => read_index(store).await?,
        };
        let pointer = read_pointer(store).await?;
        let (mut next, stored) = match current {
            Some((index, bytes, etag)) => (index, Some((bytes, etag))),
            None => (SriIndex::default(), None),
        };
        let mut changed = stored.is_none();
        if let Some(manifest) = add {
            changed |= next.add_version(manifest);
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
            changed |= next.set_latest(&latest);
        }
        let mode = match stored {
            Some((bytes, _)) if !changed => return Ok(IndexState { index: next, bytes, changed: false }),
            Some((_, etag)) => PutMode::Update { etag },
            None => PutMode::Create,
        };
        let bytes = Bytes::from(manifest::to_bytes(&next));
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
