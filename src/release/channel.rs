//! The `latest` channel: moving the pointer (compare-and-swap) and bringing
//! `sdk/latest/` to exactly the files of the version it names.
//!
//! The pointer carries a `synced` flag. A promotion first swaps the pointer
//! to `{version, synced: false}`, then runs [`converge`]: each pass announces
//! itself by swapping the pointer again (so any other pass in flight fails its
//! final swap and starts over), copies the pointed-to version's files into
//! `latest/`, deletes stale ones, and swaps `synced: true` in only if nobody
//! touched the pointer meanwhile. Concurrent promoters therefore end with
//! `latest/` and the pointer agreeing on one version, and an interrupted
//! promotion leaves `synced: false`, which the next publish or promote repairs.

use std::cell::Cell;

use futures::{StreamExt, TryStreamExt};
use semver::Version;

use super::cas::{self, Round};
use super::sri;
use super::{ReleaseError, read_manifest, read_pointer};
use crate::layout;
use crate::manifest::{self, ChannelPointer, VersionManifest};
use crate::store::{Body, PutMode, Store, StoreError};

/// What kept changing, when promotions race for too long.
const POINTER: &str = "the latest pointer";

/// When a version may take over `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoteRule {
    /// `publish`: only a stable release newer than the current one.
    IfNewer,
    /// `promote`: any sealed version; older ones and prereleases need a flag.
    Explicit {
        /// Allow rolling back to an older version.
        allow_downgrade: bool,
        /// Allow a prerelease.
        allow_prerelease: bool,
    },
}

/// What [`claim`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The pointer now names the version; it named `previous` before.
    Moved {
        /// The version `latest` served before.
        previous: Option<Version>,
    },
    /// The pointer already named the version.
    AlreadyCurrent,
    /// The rule said no (the reason is for the user).
    Skipped(String),
}

/// Swaps the pointer to `next`'s version if `rule` allows it and the
/// handover keeps every signature-based SRI key of `latest/`
/// ([`sri::check_handover`]; `allow_key_change` skips that).
pub(crate) async fn claim(
    store: &dyn Store,
    next: &VersionManifest,
    rule: PromoteRule,
    allow_key_change: bool,
) -> Result<Claim, ReleaseError> {
    let version = &next.version;
    cas::retry(POINTER, || async move {
        let current = read_pointer(store).await?;
        let previous = current.as_ref().map(|c| c.pointer.version.clone());
        if previous.as_ref() == Some(version) {
            return Ok(Round::Done(Claim::AlreadyCurrent));
        }
        if let Some(reason) = refusal(rule, version, previous.as_ref())? {
            return Ok(Round::Done(Claim::Skipped(reason)));
        }
        match sri::check_handover(store, previous.as_ref(), next, allow_key_change).await {
            Ok(()) => {}
            // `publish` checked this before its first write; a key change
            // that raced in since then leaves the version published but not
            // promoted (said in the report), not a sealed version reported
            // as refused.
            Err(dropped @ ReleaseError::SriKeyDropped { .. }) if rule == PromoteRule::IfNewer => {
                return Ok(Round::Done(Claim::Skipped(dropped.to_string())));
            }
            Err(e) => return Err(e),
        }
        let mode = match current {
            Some(c) => PutMode::Update { etag: c.etag },
            None => PutMode::Create,
        };
        cas::settle(write_pointer(store, version, false, mode).await, |_| Claim::Moved { previous })
    })
    .await
}

/// Whether `publish` would move `latest/` from `current` to `version`.
pub(crate) fn publish_promotes(version: &Version, current: Option<&Version>) -> bool {
    matches!(refusal(PromoteRule::IfNewer, version, current), Ok(None))
}

/// `Ok(Some(reason))` to skip quietly, `Err` to refuse, `Ok(None)` to go ahead.
fn refusal(rule: PromoteRule, version: &Version, current: Option<&Version>) -> Result<Option<String>, ReleaseError> {
    let prerelease = crate::version::is_prerelease(version);
    let older = current.is_some_and(|c| version < c);
    let current_text = current.map(ToString::to_string).unwrap_or_default();
    match rule {
        PromoteRule::IfNewer if prerelease => Ok(Some(format!(
            "{version} is a prerelease; prereleases are not promoted automatically (run `sdk-cdn promote {version} \
             --allow-prerelease` to serve it from latest/)"
        ))),
        PromoteRule::IfNewer if older => Ok(Some(format!(
            "latest/ serves {current_text}, which is newer (run `sdk-cdn promote {version} --allow-downgrade` to roll back)"
        ))),
        PromoteRule::Explicit { allow_prerelease: false, .. } if prerelease => Err(ReleaseError::Usage(format!(
            "{version} is a prerelease; pass --allow-prerelease to serve it from latest/"
        ))),
        PromoteRule::Explicit { allow_downgrade: false, .. } if older => Err(ReleaseError::Usage(format!(
            "{version} is older than {current_text}, which latest/ serves; pass --allow-downgrade to roll back"
        ))),
        _ => Ok(None),
    }
}

async fn write_pointer(
    store: &dyn Store,
    version: &Version,
    synced: bool,
    mode: PutMode,
) -> Result<String, StoreError> {
    let body = manifest::to_bytes(&ChannelPointer { version: version.clone(), synced });
    let headers = crate::headers::bookkeeping();
    Ok(store.put(&layout::latest_pointer(), Body::Bytes(body.into()), &headers, mode).await?.etag)
}

/// Brings `sdk/latest/` to the version the pointer names; returns that version.
/// With `resync`, copies every file again even when the pointer says
/// `latest/` is synced (`promote` of the version it already serves: a
/// `latest/` file deleted or altered by hand is put back, headers included).
pub async fn converge(
    store: &dyn Store,
    latest_cache_control: &str,
    concurrency: usize,
    resync: bool,
) -> Result<Option<Version>, ReleaseError> {
    let touched_files = &Cell::new(false);
    cas::retry(POINTER, || async move {
        let Some(stored) = read_pointer(store).await? else { return Ok(Round::Done(None)) };
        let pointer = stored.pointer;
        // After this pass wrote files, a `synced` set by another pass proves
        // nothing about our late writes: sync again.
        if pointer.synced && !touched_files.get() && !resync {
            return Ok(Round::Done(Some(pointer.version)));
        }
        let announce = write_pointer(store, &pointer.version, false, PutMode::Update { etag: stored.etag }).await;
        let Round::Done(announced) = cas::settle(announce, |etag| etag)? else { return Ok(Round::Lost) };
        let manifest = read_manifest(store, &pointer.version)
            .await?
            .ok_or_else(|| ReleaseError::PointerNotSealed { version: pointer.version.clone() })?;
        touched_files.set(true);
        sync_files(store, &manifest, latest_cache_control, concurrency).await?;
        let settle = write_pointer(store, &pointer.version, true, PutMode::Update { etag: announced }).await;
        cas::settle(settle, |_| Some(pointer.version))
    })
    .await
}

/// Copies every file of `manifest` into `latest/` and deletes the others.
///
/// A stale file may stand where a new file's directory must be: the old
/// version's `latest/foo` and the new one's `latest/foo/bar.js` (or the
/// reverse) cannot both exist on a local directory store, so a copy fails.
/// Then the stale files are deleted first and the copies run once more (a
/// stale file is gone once the promotion completes either way); the usual
/// order keeps the window in which `latest/` lacks a file as short as it was.
async fn sync_files(
    store: &dyn Store,
    manifest: &VersionManifest,
    cache_control: &str,
    concurrency: usize,
) -> Result<(), ReleaseError> {
    if let Err(e) = copy_files(store, manifest, cache_control, concurrency).await {
        tracing::debug!(error = %e, "copying into latest/ failed; deleting stale files first, then copying again");
        delete_stale(store, manifest).await?;
        copy_files(store, manifest, cache_control, concurrency).await?;
    }
    delete_stale(store, manifest).await
}

async fn copy_files(
    store: &dyn Store,
    manifest: &VersionManifest,
    cache_control: &str,
    concurrency: usize,
) -> Result<(), ReleaseError> {
    futures::stream::iter(&manifest.files)
        .map(|(path, entry)| async move {
            let key_error = |source| ReleaseError::ManifestKey {
                version: manifest.version.to_string(),
                path: path.clone(),
                source,
            };
            let from = layout::version_file(&manifest.version, path).map_err(key_error)?;
            let to = layout::latest_file(path).map_err(key_error)?;
            let headers = crate::headers::latest_file(entry, cache_control);
            store.copy(&from, &to, &headers).await.map_err(ReleaseError::from)
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

/// Deletes the files of `latest/` that `manifest` does not have.
async fn delete_stale(store: &dyn Store, manifest: &VersionManifest) -> Result<(), ReleaseError> {
    let prefix = layout::latest_prefix();
    for stale in store.list(&prefix).await? {
        let path = stale.key.as_str().strip_prefix(&prefix).unwrap_or_default();
        if !manifest.files.contains_key(path) {
            store.delete(&stale.key).await?;
        }
    }
    Ok(())
}
