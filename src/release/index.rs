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
pub(crate) struct IndexState {
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
pub(crate) async fn sealed_manifests(store: &dyn Store) -> Result<Vec<VersionManifest>, ReleaseError> {
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
pub(crate) async fn update_index(
    store: &dyn Store,
    add: Option<&VersionManifest>,
    signing: &Signing,
) -> Result<IndexState, ReleaseError> {
    update_index_from(store, add, None, Latest::Read, signing).await
}

/// What the caller of [`update_index_from`] already knows about the index.
pub(crate) enum KnownIndex {
    /// The index as this run read it.
    Read(StoredIndex),
    /// The index was absent when this run looked, and these are every
    /// manifest sealed at that time, read meanwhile (the index never shrinks:
    /// it is created from all of them).
    Absent(Vec<VersionManifest>),
}

/// What `latest/` serves, for the index's `latest/` entries.
#[derive(Clone, Copy)]
pub(crate) enum Latest<'a> {
    /// Read the pointer (after the index, see the module docs).
    Read,
    /// `latest/` serves this manifest's files (`None`: nothing, or its
    /// promotion is incomplete), as the caller learnt *after* the index it
    /// passes was read: from a later read or from its own writes.
    Known(Option<&'a VersionManifest>),
    /// The same, learnt by a read that ran at the same time as the index's:
    /// it proves an index that needs no change right, but a change reads the
    /// index and then the pointer again, in order.
    Seen(Option<&'a VersionManifest>),
}

/// [`update_index`], starting from what the caller knows: its first round
/// neither downloads the index nor reads the pointer again; if the index
/// changed meanwhile, the conditional write fails and the next round reads
/// both. The cost that grows with the store is then one parse (earlier),
/// one serialisation and one upload of the index; the merge itself touches
/// only the added version and the `latest/` entries.
pub(crate) async fn update_index_from(
    store: &dyn Store,
    add: Option<&VersionManifest>,
    known: Option<KnownIndex>,
    latest: Latest<'_>,
    signing: &Signing,
) -> Result<IndexState, ReleaseError> {
    let mut first = known.map(|known| (known, latest));
    cas::retry("the SRI index", || {
        let first = first.take();
        async move {
            match first {
                Some((known, latest)) => index_round(store, add, known, latest, signing).await,
                None => {
                    let known = match read_index(store).await? {
                        Some(index) => KnownIndex::Read(index),
                        None => {
                            tracing::info!("api/sdk/sri is missing: rebuilding it from every sealed manifest");
                            KnownIndex::Absent(sealed_manifests(store).await?)
                        }
                    };
                    index_round(store, add, known, Latest::Read, signing).await
                }
            }
        }
    })
    .await
}

/// One round of the index update from `current`: [`Round::Lost`] when the
/// index changed since it was read (or, with [`Latest::Seen`], when it needs
/// a change: the next round reads index and pointer in order).
pub(crate) async fn index_round(
    store: &dyn Store,
    add: Option<&VersionManifest>,
    current: KnownIndex,
    latest: Latest<'_>,
    signing: &Signing,
) -> Result<Round<IndexState>, ReleaseError> {
    let (mut next, stored) = match current {
        KnownIndex::Read(StoredIndex { index, bytes, etag }) => (index, Some((bytes, etag))),
        KnownIndex::Absent(sealed) => (expected_index(&sealed, None), None),
    };
    let mut changed = stored.is_none();
    if let Some(manifest) = add {
        changed |= next.add_version(manifest);
    }
    let latest_manifest = match latest {
        Latest::Read => synced_latest(store, add).await?,
        Latest::Known(manifest) | Latest::Seen(manifest) => manifest.cloned(),
    };
    if let Some(latest) = &latest_manifest {
        changed |= next.set_latest(latest);
    }
    let mode = match stored {
        Some((bytes, _)) if !changed => {
            signing.unchanged_index(store, &bytes, next.version.as_ref()).await?;
            return Ok(Round::Done(IndexState { bytes, changed: false }));
        }
        _ if matches!(latest, Latest::Seen(_)) => return Ok(Round::Lost),
        Some((_, etag)) => PutMode::Update { etag },
        None => PutMode::Create,
    };
    let bytes = Bytes::from(manifest::to_bytes(&next));
    let round = write_index(store, &bytes, next.version.as_ref(), mode, signing).await?;
    Ok(round.map(|()| IndexState { bytes, changed: true }))
}
