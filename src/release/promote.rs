//! `promote`: point `latest` at a sealed version explicitly (including
//! rollbacks and prereleases, behind flags), sync `latest/`, update the index.

use semver::Version;
use serde::Serialize;

use super::channel::{Claim, PromoteRule, claim, converge};
use super::{ReleaseError, Signing, read_manifest, update_index};
use crate::store::Store;

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
