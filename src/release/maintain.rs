//! Repair commands: `reindex` rebuilds the SRI index from the sealed
//! manifests, `discard` removes a partial upload that was never sealed.

use semver::Version;
use serde::Serialize;

use super::cas::{self, Round};
use super::index::{rebuild, write_index};
use super::intent;
use super::signatures::Signing;
use super::{ReleaseError, converge, read_manifest};
use crate::layout;
use crate::manifest;
use crate::store::{PutMode, Store};

/// What `reindex` did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReindexReport {
    /// Versions in the rebuilt index.
    pub versions: Vec<Version>,
    /// The version `latest/` serves.
    pub latest: Option<Version>,
    /// Whether the stored index differed and was rewritten.
    pub changed: bool,
}

/// Rebuilds `api/sdk/sri` from the sealed manifests and the channel pointer.
/// A damaged or missing index is replaced; an equal one is left alone.
pub(crate) async fn reindex(
    store: &dyn Store,
    latest_cache_control: &str,
    concurrency: usize,
    signing: &Signing,
) -> Result<ReindexReport, ReleaseError> {
    signing.check(store).await?;
    // The latest/ entries describe latest/: finish an interrupted promotion first.
    converge(store, latest_cache_control, concurrency, false).await?;
    let key = &layout::index();
    let report = cas::retry("the SRI index", || async move {
        // Read the current object raw: it may be the damaged thing we replace.
        let current = store.get(key).await?;
        let super::index::Rebuilt { versions, index } = rebuild(store).await?;
        let bytes = manifest::to_bytes(&index);
        let latest = index.version;
        if current.as_ref().is_some_and(|(stored, _)| stored[..] == bytes[..]) {
            signing.unchanged_index(store, &bytes, latest.as_ref()).await?;
            return Ok(Round::Done(ReindexReport { versions, latest, changed: false }));
        }
        let mode = match current {
            Some((_, meta)) => PutMode::Update { etag: meta.etag },
            None => PutMode::Create,
        };
        let round = write_index(store, &bytes.into(), latest.as_ref(), mode, signing).await?;
        Ok(round.map(|()| ReindexReport { versions, latest, changed: true }))
    })
    .await?;
    // Manifests sealed before the store was signed get their signatures.
    for version in &report.versions {
        signing.repair_manifest(store, version).await?;
    }
    Ok(report)
}

/// What `discard` did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DiscardReport {
    /// The version.
    pub version: Version,
    /// Objects deleted.
    pub deleted: Vec<String>,
}

/// Why a sealed version is not discarded, and what to do instead.
fn published(version: &Version) -> ReleaseError {
    ReleaseError::Refused(format!(
        "{version} is published (sealed by manifests/{version}.json); published versions are immutable and are \
         never discarded. Promote another version with `sdk-cdn promote` if it must stop being latest."
    ))
}

/// Deletes the files of a partial (never sealed) upload of `version`.
/// Refuses a sealed version, and a version whose publisher is sealing it
/// (unless `force`), without writing anything.
///
/// The intent record is swapped to `discarding` before the first delete, so
/// a live publisher of the version can no longer seal it (its own swap to
/// `sealing` fails), and a publisher that got to `sealing` first makes this
/// discard stop: the two can never both win. Files a dying publisher
/// uploads after the deletes are left as a partial upload that a rerun of
/// `discard` removes.
pub(crate) async fn discard(store: &dyn Store, version: &Version, force: bool) -> Result<DiscardReport, ReleaseError> {
    if read_manifest(store, version).await?.is_some() {
        return Err(published(version));
    }
    let prefix = layout::version_prefix(version);
    let intent_key = layout::intent(version);
    let (listed, pending) = tokio::join!(store.list(&prefix), store.head(&intent_key));
    if listed?.is_empty() && pending?.is_none() {
        // Nothing to discard: write nothing either.
        return Ok(DiscardReport { version: version.clone(), deleted: Vec::new() });
    }
    crate::pause::point("discard-claim").await;
    intent::begin_discard(store, version, force).await?;
    // A publisher may have sealed between the check above and the claim
    // (its seal removes its intent record, so the claim found none and
    // created one). The claim stops any later seal; a seal that landed
    // before it is visible now. Then the version is published: drop the
    // claim, which the seal superseded, and delete nothing.
    if read_manifest(store, version).await?.is_some() {
        intent::end_discard(store, version).await?;
        return Err(published(version));
    }
    crate::pause::point("discard").await;
    let mut deleted = Vec::new();
    for object in store.list(&prefix).await? {
        store.delete(&object.key).await?;
        deleted.push(object.key.to_string());
    }
    intent::end_discard(store, version).await?;
    Ok(DiscardReport { version: version.clone(), deleted })
}
