//! `promote`: point `latest` at a sealed version explicitly (including
//! rollbacks and prereleases, behind flags), sync `latest/`, update the index.

use semver::Version;
use serde::Serialize;

use super::channel::{Claim, PromoteRule, claim, converge};
use super::{ReleaseError, Signing, read_manifest, update_index};
use crate::layout;
use crate::manifest::VersionManifest;
use crate::store::Store;

/// Damaged files a refusal names before it says "and N more".
const DAMAGED_LISTED: usize = 5;

/// How to promote.
#[derive(Debug, Clone)]
pub(crate) struct PromoteOptions {
    /// Allow an older version (a rollback).
    pub allow_downgrade: bool,
    /// Allow a prerelease.
    pub allow_prerelease: bool,
    /// `Cache-Control` of `latest/` files.
    pub latest_cache_control: String,
    /// Copies made at once.
    pub concurrency: usize,
    /// How the index is signed.
    pub signing: Signing,
    /// Promote even if `latest/` would lose a signature-based SRI key.
    pub allow_sri_key_change: bool,
}

/// What a promotion did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PromoteReport {
    /// The version promoted.
    pub version: Version,
    /// The version `latest/` served before (`None`: nothing; the version itself when unchanged).
    pub previous: Option<Version>,
    /// Whether the pointer moved (false: it already named the version).
    pub changed: bool,
    /// The version `latest/` serves now (differs only if another promotion won a race).
    pub latest: Option<Version>,
    /// Whether the SRI index was rewritten.
    pub index_updated: bool,
}

/// Promotes `version` to `latest`.
pub(crate) async fn promote(
    store: &dyn Store,
    version: &Version,
    options: &PromoteOptions,
) -> Result<PromoteReport, ReleaseError> {
    options.signing.check(store).await?;
    let Some(next) = read_manifest(store, version).await? else {
        return Err(ReleaseError::NotPublished {
            version: version.to_string(),
            store: store.describe(),
            hint: "publish it first, or run `sdk-cdn list`",
        });
    };
    check_files_present(store, &next).await?;
    let rule =
        PromoteRule::Explicit { allow_downgrade: options.allow_downgrade, allow_prerelease: options.allow_prerelease };
    let (previous, changed) = match claim(store, &next, rule, options.allow_sri_key_change).await? {
        Claim::Moved { previous, .. } => (previous, true),
        // latest/ already served it: that is what it served before, too.
        Claim::AlreadyCurrent => (Some(version.clone()), false),
        // Explicit promotion refuses (Err) rather than skipping.
        Claim::Skipped(reason) => return Err(ReleaseError::Usage(reason)),
    };
    // Promoting the version latest/ already serves re-copies its files: the
    // report's "checked it is complete" is then true of the bytes and headers.
    let latest = converge(store, &options.latest_cache_control, options.concurrency, !changed).await?;
    let index = update_index(store, None, &options.signing).await?;
    Ok(PromoteReport { version: version.clone(), previous, changed, latest, index_updated: index.changed })
}

/// Refuses to promote a version whose files are not all in the store at
/// their sealed sizes (a damaged store): the pointer would move first, and
/// `latest/` be left half copied when the copy of a missing file failed.
/// One listing of the version; nothing is written. (Bytes changed at the
/// same size are `verify`'s to find; the local store's copy refuses them.)
async fn check_files_present(store: &dyn Store, manifest: &VersionManifest) -> Result<(), ReleaseError> {
    let version = &manifest.version;
    let prefix = layout::version_prefix(version);
    let stored: std::collections::HashMap<String, u64> = store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|object| Some((object.key.as_str().strip_prefix(&prefix)?.to_string(), object.size)))
        .collect();
    let damaged: Vec<String> = manifest
        .files
        .iter()
        .filter_map(|(path, entry)| match stored.get(path) {
            None => Some(format!("{path} is missing")),
            Some(&size) if size != entry.size => Some(format!("{path} has {size} bytes, sealed with {}", entry.size)),
            Some(_) => None,
        })
        .collect();
    if damaged.is_empty() {
        return Ok(());
    }
    let listed = super::listed(&damaged, DAMAGED_LISTED);
    Err(ReleaseError::Refused(format!(
        "{version} cannot be promoted: the store does not hold its sealed files ({listed} under {prefix}); nothing \
         was changed. Publish the same build again to restore them (`sdk-cdn publish DIR --version {version}`), \
         and run `sdk-cdn verify {version}` for the full report"
    )))
}
