//! Reading the bookkeeping objects, validated, with their etags.

use bytes::Bytes;
use semver::Version;

use super::ReleaseError;
use crate::layout;
use crate::manifest::{self, ChannelPointer, SriIndex, VersionManifest};
use crate::store::Store;

/// The SRI index as stored: parsed, its exact bytes, and its etag.
#[derive(Debug, Clone)]
pub(crate) struct StoredIndex {
    /// The parsed index.
    pub index: SriIndex,
    /// Its exact bytes, as customers get them.
    pub bytes: Bytes,
    /// Its etag, for a compare-and-swap.
    pub etag: String,
}

/// The `latest` channel pointer as stored, with its etag.
#[derive(Debug, Clone)]
pub(crate) struct StoredPointer {
    /// The parsed pointer.
    pub pointer: ChannelPointer,
    /// Its etag, for a compare-and-swap.
    pub etag: String,
}

/// The sealed manifest of `version`, if it is sealed.
pub(crate) async fn read_manifest(
    store: &dyn Store,
    version: &Version,
) -> Result<Option<VersionManifest>, ReleaseError> {
    let key = layout::manifest(version);
    let Some((bytes, _)) = store.get(&key).await? else { return Ok(None) };
    let parsed: VersionManifest = manifest::parse(&key, "version manifest", &bytes)?;
    parsed.validate(&key, version)?;
    Ok(Some(parsed))
}

/// The `latest` pointer and its etag, if any version was ever promoted.
pub(crate) async fn read_pointer(store: &dyn Store) -> Result<Option<StoredPointer>, ReleaseError> {
    let key = layout::latest_pointer();
    let Some((bytes, meta)) = store.get(&key).await? else { return Ok(None) };
    Ok(Some(StoredPointer { pointer: manifest::parse(&key, "channel pointer", &bytes)?, etag: meta.etag }))
}

/// The SRI index, its exact bytes and its etag, if it exists.
pub(crate) async fn read_index(store: &dyn Store) -> Result<Option<StoredIndex>, ReleaseError> {
    let key = layout::index();
    let Some((bytes, meta)) = store.get(&key).await? else { return Ok(None) };
    Ok(Some(StoredIndex { index: manifest::parse(&key, "SRI index", &bytes)?, bytes, etag: meta.etag }))
}

/// Every sealed version (those with a `manifests/<version>.json`), oldest first.
pub(crate) async fn sealed_versions(store: &dyn Store) -> Result<Vec<Version>, ReleaseError> {
    let mut versions: Vec<Version> = store
        .list(layout::MANIFESTS_PREFIX)
        .await?
        .iter()
        .filter_map(|m| layout::version_of_manifest(&m.key))
        .collect();
    versions.sort();
    Ok(versions)
}
