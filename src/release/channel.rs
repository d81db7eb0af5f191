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
use super::{ReleaseError, StoredPointer, read_manifest, read_pointer};
use crate::layout;
use crate::manifest::{self, ChannelPointer, VersionManifest};
use crate::store::{Body, ObjectMeta, PutMode, Store, StoreError};

/// What kept changing, when promotions race for too long.
const POINTER: &str = "the latest pointer";

/// When a version may take over `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PromoteRule {
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
        /// The etag of the pointer this claim wrote (`{version, synced: false}`).
        etag: String,
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
    Ok(claim_from(store, next, rule, allow_key_change, None, None).await?.0)
}

/// [`claim`], whose first round decides from `seen` (the pointer as this run
/// read it, `Some(None)`: absent) instead of reading it again: a stale
/// `seen` only costs a lost compare-and-swap and a second round. Besides
/// the claim, returns the pointer it decided on when it did not move it
/// (`seen`, or what a later round read: what the caller reports from).
pub(crate) async fn claim_from(
    store: &dyn Store,
    next: &VersionManifest,
    rule: PromoteRule,
    allow_key_change: bool,
    seen: Option<Option<StoredPointer>>,
    keys_checked_against: Option<&Version>,
) -> Result<(Claim, Option<StoredPointer>), ReleaseError> {
    let version = &next.version;
    let mut seen = seen;
    cas::retry(POINTER, || {
        let seen = seen.take();
        async move {
            let current = seen_or_read(store, seen).await?;
            let previous = current.as_ref().map(|c| c.pointer.version.clone());
            if previous.as_ref() == Some(version) {
                return Ok(Round::Done((Claim::AlreadyCurrent, current)));
            }
            if let Some(reason) = refusal(rule, version, previous.as_ref())? {
                return Ok(Round::Done((Claim::Skipped(reason), current)));
            }
            // `keys_checked_against`: the version `publish` already checked the
            // handover from, before its first write (no read again for it).
            let checked = keys_checked_against.is_some() && keys_checked_against == previous.as_ref();
            match sri::check_handover(store, previous.as_ref(), next, allow_key_change || checked).await {
                Ok(()) => {}
                // `publish` checked this before its first write; a key change
                // that raced in since then leaves the version published but not
                // promoted (said in the report), not a sealed version reported
                // as refused.
                Err(dropped @ ReleaseError::SriKeyDropped { .. }) if rule == PromoteRule::IfNewer => {
                    return Ok(Round::Done((Claim::Skipped(dropped.to_string()), current)));
                }
                Err(e) => return Err(e),
            }
            let mode = match current {
                Some(c) => PutMode::Update { etag: c.etag },
                None => PutMode::Create,
            };
            cas::settle(write_pointer(store, version, false, mode).await, |etag| {
                (Claim::Moved { previous, etag }, None)
            })
        }
    })
    .await
}

/// The pointer as this run already read it (`Some(None)`: absent), or read now.
async fn seen_or_read(
    store: &dyn Store,
    seen: Option<Option<StoredPointer>>,
) -> Result<Option<StoredPointer>, ReleaseError> {
    match seen {
        Some(seen) => Ok(seen),
        None => read_pointer(store).await,
    }
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
pub(crate) async fn converge(
    store: &dyn Store,
    latest_cache_control: &str,
    concurrency: usize,
    resync: bool,
) -> Result<Option<Version>, ReleaseError> {
    // Resyncing is what a pass that already wrote into latest/ does.
    converge_from(store, latest_cache_control, concurrency, None, resync).await
}

/// [`converge`], whose first round starts from `seen` (the pointer as this
/// run read it, `Some(None)`: absent) instead of reading it; `touched`: this
/// run already wrote into `latest/`, so a `synced` pointer proves nothing.
pub(crate) async fn converge_from(
    store: &dyn Store,
    latest_cache_control: &str,
    concurrency: usize,
    seen: Option<Option<StoredPointer>>,
    touched: bool,
) -> Result<Option<Version>, ReleaseError> {
    let touched_files = &Cell::new(touched);
    let mut seen = seen;
    cas::retry(POINTER, || {
        let seen = seen.take();
        async move {
            let current = seen_or_read(store, seen).await?;
            let Some(stored) = current else { return Ok(Round::Done(None)) };
            let pointer = stored.pointer;
            // After this pass wrote files, a `synced` set by another pass proves
            // nothing about our late writes: sync again.
            if pointer.synced && !touched_files.get() {
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
        }
    })
    .await
}

/// Right after [`claim_from`] moved the pointer to `manifest`'s version
/// (`Claim::Moved`, whose write left `etag`): the first pass of
/// [`converge`], without its first two requests. The claim's own write is
/// this pass's announcement (any other pass in flight fails its final swap
/// on it), and the manifest is the caller's, so the copies start at once.
///
/// `beside` runs at the same time as the final swap of `synced`: the
/// caller's index update, which may name the version's files under
/// `latest/` only now that they are in place. Whether the swap or `beside`
/// lands first does not matter to a reader: `latest/` holds the files either
/// way. If another promotion moved the pointer since the claim, its pass
/// converges again from the pointer (this pass wrote files, so even a
/// `synced` pointer is synced again) and the result names the version
/// `latest/` serves then, not `manifest`'s.
pub(crate) async fn converge_claimed<T>(
    store: &dyn Store,
    manifest: &VersionManifest,
    etag: String,
    latest_cache_control: &str,
    concurrency: usize,
    beside: impl std::future::Future<Output = T>,
) -> Result<(Option<Version>, T), ReleaseError> {
    sync_files(store, manifest, latest_cache_control, concurrency).await?;
    let swap = write_pointer(store, &manifest.version, true, PutMode::Update { etag });
    let (swapped, beside) = tokio::join!(swap, beside);
    let latest = match cas::settle(swapped, |_| ())? {
        Round::Done(()) => Some(manifest.version.clone()),
        Round::Lost => converge_from(store, latest_cache_control, concurrency, None, true).await?,
    };
    Ok((latest, beside))
}

/// Copies every file of `manifest` into `latest/` and deletes the others.
///
/// A stale file may stand where a new file's directory must be: the old
/// version's `latest/foo` and the new one's `latest/foo/bar.js` (or the
/// reverse) cannot both exist on a local directory store, so a copy fails.
/// Then the stale files are deleted first and the copies run once more (a
/// stale file is gone once the promotion completes either way); the usual
/// order keeps the window in which `latest/` lacks a file as short as it was.
///
/// `latest/` is listed while the copies run (one round trip, not two): the
/// stale files are those the manifest lacks, whether the listing saw a copy
/// land or not. Stale files are deleted `concurrency` at a time.
async fn sync_files(
    store: &dyn Store,
    manifest: &VersionManifest,
    cache_control: &str,
    concurrency: usize,
) -> Result<(), ReleaseError> {
    let prefix = layout::latest_prefix();
    let (copied, listed) = tokio::join!(copy_files(store, manifest, cache_control, concurrency), store.list(&prefix));
    let Err(e) = copied else { return delete_stale(store, manifest, listed?, concurrency).await };
    tracing::debug!(error = %e, "copying into latest/ failed; deleting stale files first, then copying again");
    delete_stale(store, manifest, store.list(&prefix).await?, concurrency).await?;
    copy_files(store, manifest, cache_control, concurrency).await?;
    delete_stale(store, manifest, store.list(&prefix).await?, concurrency).await
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

/// Deletes the files of `latest/` (as `listed`) that `manifest` does not have.
async fn delete_stale(
    store: &dyn Store,
    manifest: &VersionManifest,
    listed: Vec<ObjectMeta>,
    concurrency: usize,
) -> Result<(), ReleaseError> {
    let prefix = layout::latest_prefix();
    let stale = listed.into_iter().filter(|object| {
        let path = object.key.as_str().strip_prefix(&prefix).unwrap_or_default();
        !manifest.files.contains_key(path)
    });
    futures::stream::iter(stale)
        .map(|object| async move { store.delete(&object.key).await.map_err(ReleaseError::from) })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}
