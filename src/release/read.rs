//! Reading the three bookkeeping objects, validated, with their etags.

use semver::Version;

use super::ReleaseError;
use crate::layout;
use crate::manifest::{self, ChannelPointer, SriIndex, VersionManifest};
use crate::store::Store;

/// The sealed manifest of `version`, if it is sealed.
pub async fn read_manifest(store: &dyn Store, version: &Version) -> Result<Option<VersionManifest>, ReleaseError> {
    let key = layout::manifest(version);
    let Some((bytes, _)) = store.get(&key).await? else { return Ok(None) };
    let parsed: VersionManifest = manifest::parse(&key, "version manifest", &bytes)?;
    parsed.validate(&key, version)?;
    Ok(Some(parsed))
}

/// The `latest` pointer and its etag, if any version was ever promoted.
pub async fn read_pointer(store: &dyn Store) -> Result<Option<(ChannelPointer, String)>, ReleaseError> {
    let key = layout::latest_pointer();
    let Some((bytes, meta)) = store.get(&key).await? else { return Ok(None) };
    Ok(Some((manifest::parse(&key, "channel pointer", &bytes)?, meta.etag)))
}

/// The SRI index, its exact bytes and its etag, if it exists.
pub async fn read_index(store: &dyn Store) -> Result<Option<(SriIndex, bytes::Bytes, String)>, ReleaseError> {
    let key = layout::index();
    let Some((bytes, meta)) = store.get(&key).await? else { return Ok(None) };
    Ok(Some((manifest::parse(&key, "SRI index", &bytes)?, bytes, meta.etag)))
}
