//! Keeping `api/sdk/sri` right: an incremental merge written by
//! compare-and-swap, and the full rebuild from the sealed manifests.
//!
//! The index is derived data and never shrinks: whenever it has to be
//! created (a new store, or an index lost by hand), it is built from *every*
//! sealed manifest, never from the one version at hand (DESIGN.md, "Fail
//! closed"). [`expected_index`] is the one definition of what the index must
//! say; the merge, `reindex` and `verify` all derive from it.
//!
//! The index is read *before* the pointer. A promoter writes the pointer
//! before it writes the index, so whoever reads an index written after a
//! pointer change also sees that change: a stale `version` cannot overwrite
//! a newer one (invariants 3 and 4).

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use semver::Version;

use super::cas::{self, Round};
use super::read::StoredIndex;
use super::signatures::Signing;
use super::{ReleaseError, read_index, read_manifest, read_pointer, sealed_versions};
use crate::layout;
use crate::manifest::{self, SriIndex, VersionManifest};
use crate::store::{Body, PutMode, Store};

/// Manifests read at once while rebuilding (each is one small GET).
const REBUILD_CONCURRENCY: usize = 16;

/// What the index looks like after [`update_index`].
#[derive(Debug, Clone)]
pub struct IndexState {
    /// Its exact bytes in the store.
    pub bytes: Bytes,
    /// Whether this call wrote it.
    pub changed: bool,
}

/// The index that `manifests` (every sealed version) and the manifest
/// `latest/` serves (when its promotion is complete) call for.
pub(crate) fn expected_index<'a>(
    manifests: impl IntoIterator<Item = &'a VersionManifest>,
    latest: Option<&VersionManifest>,
) -> SriIndex {
    let mut index = SriIndex::default();
    for manifest in manifests {
        index.add_version(manifest);
    }
    if let Some(latest) = latest {
        index.set_latest(latest);
    }
    index
}

/// An index rebuilt from the store, and the sealed versions it was built from.
pub(crate) struct Rebuilt {
    /// Every sealed version, oldest first.
    pub(crate) versions: Vec<Version>,
    /// The index they and the pointer call for.
    pub(crate) index: SriIndex,
}

/// The index rebuilt from every sealed manifest and the pointer.
pub(crate) async fn rebuild(store: &dyn Store) -> Result<Rebuilt, ReleaseError> {
    let manifests = sealed_manifests(store).await?;
    let latest = synced_latest(store, None).await?;
    let index = expected_index(&manifests, latest.as_ref());
    Ok(Rebuilt { versions: manifests.into_iter().map(|m| m.version).collect(), index })
}

/// Every sealed manifest, oldest version first.
async fn sealed_manifests(store: &dyn Store) -> Result<Vec<VersionManifest>, ReleaseError> {
    let versions = sealed_versions(store).await?;
    futures::stream::iter(&versions)
        .map(|version| async move {
            read_manifest(store, version).await?.ok_or_else(|| ReleaseError::SealVanished { version: version.clone() })
        })
        .buffered(REBUILD_CONCURRENCY)
        .try_collect()
        .await
}

/// The manifest of the version `latest/` serves, if its promotion is
/// complete (`synced`); `known` saves reading a manifest the caller holds.
async fn synced_latest(
    store: &dyn Store,
    known: Option<&VersionManifest>,
) -> Result<Option<VersionManifest>, ReleaseError> {
    let Some(stored) = read_pointer(store).await? else { return Ok(None) };
    if !stored.pointer.synced {
        return Ok(None);
    }
    let version = stored.pointer.version;
    match known {
        Some(m) if m.version == version => Ok(Some(m.clone())),
        _ => Ok(Some(read_manifest(store, &version).await?.ok_or(ReleaseError::PointerNotSealed { version })?)),
    }
}

/// Writes the index `bytes` (whose `version` is `version`) with `mode`,
/// signed when `signing` holds a key: the content-addressed signature
/// before the index, `sri.minisig` after it (see `signatures`).
/// [`Round::Lost`] when another writer changed the index first.
pub(crate) async fn write_index(
    store: &dyn Store,
    bytes: &Bytes,
    version: Option<&Version>,
    mode: PutMode,
    signing: &Signing,
) -> Result<Round<()>, ReleaseError> {
    let signature = signing.before_index(store, bytes, version).await?;
    let write = store.put(&layout::index(), Body::Bytes(bytes.clone()), &crate::headers::index(), mode).await;
    let round = cas::settle(write, |_| ())?;
    if let Round::Done(()) = round {
        signing.after_index(store, signature).await?;
    }
    Ok(round)
}

/// Adds `add` (a sealed version) and the synced `latest` entries to the
/// index; writes nothing when it already says so. A missing index is
/// rebuilt from every sealed manifest first.
pub async fn update_index(
    store: &dyn Store,
    add: Option<&VersionManifest>,
    signing: &Signing,
) -> Result<IndexState, ReleaseError> {
    update_index_from(store, add, None, signing).await
}

/// [`update_index`], starting from an index the caller read earlier: if the
/// store's etag still matches (one `head`), it is not downloaded and parsed
/// again. The cost that grows with the store is then one parse (earlier),
/// one serialisation and one upload of the index; the merge itself touches
/// only the added version and the `latest/` entries.
pub(crate) async fn update_index_from(
    store: &dyn Store,
    add: Option<&VersionManifest>,
    known: Option<StoredIndex>,
    signing: &Signing,
) -> Result<IndexState, ReleaseError> {
    let mut known = known;
    cas::retry("the SRI index", || {
        let known = known.take();
        async move {
            let current = match known {
                Some(known) => match store.head(&layout::index()).await? {
                    Some(meta) if meta.etag == known.etag => Some(known),
                    _ => read_index(store).await?,
                },
                None => read_index(store).await?,
            };
            let (mut next, stored) = match current {
                Some(StoredIndex { index, bytes, etag }) => (index, Some((bytes, etag))),
                None => {
                    tracing::info!("api/sdk/sri is missing: rebuilding it from every sealed manifest");
                    (expected_index(&sealed_manifests(store).await?, None), None)
                }
            };
            let mut changed = stored.is_none();
            if let Some(manifest) = add {
                changed |= next.add_version(manifest);
            }
            if let Some(latest) = synced_latest(store, add).await? {
                changed |= next.set_latest(&latest);
            }
            let mode = match stored {
                Some((bytes, _)) if !changed => {
                    signing.unchanged_index(store, &bytes, next.version.as_ref()).await?;
                    return Ok(Round::Done(IndexState { bytes, changed: false }));
                }
                Some((_, etag)) => PutMode::Update { etag },
                None => PutMode::Create,
            };
            let bytes = Bytes::from(manifest::to_bytes(&next));
            let round = write_index(store, &bytes, next.version.as_ref(), mode, signing).await?;
            Ok(round.map(|()| IndexState { bytes, changed: true }))
        }
    })
    .await
}
