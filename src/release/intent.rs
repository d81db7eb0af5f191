//! One intent per version: the record that keeps two builds from mixing in
//! one version, and a discard from racing a publisher.
//!
//! Before the first file of a new version is written, the publisher writes
//! `manifests/pending/<version>.json` create-only, holding the manifest it
//! plans to seal. A second publisher with the same plan continues (it resumes
//! or helps); one with a different plan is refused at once, before it
//! writes anything, naming the files that differ. The seal is preceded by a
//! compare-and-swap of the record to `sealing`, and `discard` swaps it to
//! `discarding` before it deletes anything: whichever swap lands first wins,
//! and the other side stops without writing (DESIGN.md, "Fail closed").
//!
//! The record is deleted once the seal exists (the seal supersedes it), and
//! by a publisher whose input changed under it, so that a rerun with the
//! rebuilt files is not refused as a different plan.

use semver::Version;

use super::cas::{self, Round};
use super::{ReleaseError, read_manifest};
use crate::layout;
use crate::manifest::{self, FileDiff, Intent, IntentState, VersionManifest};
use crate::store::{Body, PutMode, Store};

/// What kept changing, when intent swaps race for too long.
const RECORD: &str = "the intent record";

/// An intent record as stored, with its etag.
struct StoredIntent {
    intent: Intent,
    etag: String,
}

async fn read(store: &dyn Store, version: &Version) -> Result<Option<StoredIntent>, ReleaseError> {
    let key = layout::intent(version);
    let Some((bytes, meta)) = store.get(&key).await? else { return Ok(None) };
    let intent: Intent = manifest::parse(&key, "intent record", &bytes)?;
    Ok(Some(StoredIntent { intent, etag: meta.etag }))
}

/// Writes the record; [`Round::Done`] holds its new etag.
async fn write(
    store: &dyn Store,
    version: &Version,
    intent: &Intent,
    mode: PutMode,
) -> Result<Round<String>, ReleaseError> {
    let body = Body::Bytes(manifest::to_bytes(intent).into());
    let written = store.put(&layout::intent(version), body, &crate::headers::bookkeeping(), mode).await;
    cas::settle(written, |meta| meta.etag)
}

/// Refuses unless `intent` may be joined by a publisher of `plan`.
fn join(intent: &Intent, plan: &VersionManifest) -> Result<(), ReleaseError> {
    let version = &plan.version;
    match (&intent.state, &intent.manifest) {
        (IntentState::Discarding, _) => Err(ReleaseError::Refused(format!(
            "{version} is being discarded (manifests/pending/{version}.json says so); rerun the publish once \
             `sdk-cdn discard {version}` has finished"
        ))),
        (_, Some(planned)) => {
            let diff = plan.diff_against(planned);
            if diff.is_empty() { Ok(()) } else { Err(other_plan(version, diff)) }
        }
        (_, None) => Err(ReleaseError::Refused(format!(
            "manifests/pending/{version}.json names no plan; remove the partial upload with `sdk-cdn discard {version}`"
        ))),
    }
}

fn other_plan(version: &Version, diff: FileDiff) -> ReleaseError {
    ReleaseError::Conflict {
        version: version.to_string(),
        state: "being published by another run",
        diff: Box::new(diff),
        hint: ", or, if that run was interrupted and its build cannot be reproduced, remove its partial upload \
               with `sdk-cdn discard VERSION`",
    }
}

/// Read-only: refuses if another run's intent for this version holds a
/// different plan (so a refused publish writes nothing, not even a probe).
pub(crate) async fn check(store: &dyn Store, plan: &VersionManifest) -> Result<(), ReleaseError> {
    match read(store, &plan.version).await? {
        Some(stored) => join(&stored.intent, plan),
        None => Ok(()),
    }
}

/// Before the first file of a new version: makes sure the store holds an
/// intent for exactly `plan` (creating it, or joining an identical one).
///
/// A winner deletes its record once its seal exists, so a record created
/// here may follow a seal this run has not seen: the seal is checked after
/// the create (a seal written later than our create is impossible, since its
/// writer's record would have made our create fail). Returns the etag of the
/// record when this run created it ([`begin_seal`] then swaps it without
/// reading it first), `None` when it joined another run's.
pub(crate) async fn claim(store: &dyn Store, plan: &VersionManifest) -> Result<Option<String>, ReleaseError> {
    let version = &plan.version;
    cas::retry(RECORD, || async move {
        // Create first: `preflight` has just read the record (`check`), so in
        // the common case there is none, and a read here would be wasted.
        let intent = Intent { state: IntentState::Uploading, manifest: Some(plan.clone()) };
        let Round::Done(etag) = write(store, version, &intent, PutMode::Create).await? else {
            // Another run's record: join it if it holds this plan; if it is
            // gone again, start over.
            return match read(store, version).await? {
                Some(stored) => join(&stored.intent, plan).map(|()| Round::Done(None)),
                None => Ok(Round::Lost),
            };
        };
        if let Some(sealed) = read_manifest(store, version).await? {
            release(store, plan).await;
            let diff = plan.diff_against(&sealed);
            if !diff.is_empty() {
                return Err(ReleaseError::Conflict {
                    version: version.to_string(),
                    state: "published",
                    diff: Box::new(diff),
                    hint: "",
                });
            }
        }
        Ok(Round::Done(Some(etag)))
    })
    .await
}

/// Right before the seal: swaps the intent to `sealing`, so that a discard
/// that has not started yet can no longer start, and one that has makes this
/// publisher stop. A missing record is fine only if the version is already
/// sealed with `plan` (another runner with the same plan finished first).
///
/// `created` is the etag [`claim`] returned: the record this run created is
/// swapped without reading it first (one round trip, not two); a lost swap
/// (a helper with the same plan swapped first, or a discard began) reads it.
pub(crate) async fn begin_seal(
    store: &dyn Store,
    plan: &VersionManifest,
    created: Option<String>,
) -> Result<(), ReleaseError> {
    let version = &plan.version;
    if let Some(etag) = created {
        let sealing = Intent { state: IntentState::Sealing, manifest: Some(plan.clone()) };
        if let Round::Done(_) = write(store, version, &sealing, PutMode::Update { etag }).await? {
            return Ok(());
        }
    }
    cas::retry(RECORD, || async move {
        let Some(stored) = read(store, version).await? else {
            return match read_manifest(store, version).await? {
                Some(sealed) if sealed.diff_against(plan).is_empty() => Ok(Round::Done(())),
                _ => Err(ReleaseError::Refused(format!(
                    "the intent record of {version} (manifests/pending/{version}.json) was removed while this \
                     publish was uploading (by `sdk-cdn discard`?); nothing was sealed: rerun the publish"
                ))),
            };
        };
        join(&stored.intent, plan)?;
        if stored.intent.state == IntentState::Sealing {
            return Ok(Round::Done(()));
        }
        let sealing = Intent { state: IntentState::Sealing, ..stored.intent };
        Ok(write(store, version, &sealing, PutMode::Update { etag: stored.etag }).await?.map(|_| ()))
    })
    .await
}

/// After the seal, or when this run stops before sealing because its input
/// changed: removes the record if it still holds `plan`. Best effort: a
/// record left behind is superseded by the seal, or refused with a clear
/// message naming `discard`.
pub(crate) async fn release(store: &dyn Store, plan: &VersionManifest) {
    let key = layout::intent(&plan.version);
    let ours = matches!(read(store, &plan.version).await, Ok(Some(stored)) if join(&stored.intent, plan).is_ok());
    if ours && let Err(e) = store.delete(&key).await {
        tracing::warn!(%key, "could not remove the intent record: {e}");
    }
}

/// Right after this run's seal: removes the record without reading it
/// first. Whatever record the version has now is superseded by the seal: it
/// is this plan's (this run's, or a helper's with the same plan), or that of
/// a run with another plan that will be refused at its own seal check, or a
/// forced discard's, which deletes it anyway. Best effort, like [`release`].
pub(crate) async fn remove_after_seal(store: &dyn Store, version: &Version) {
    let key = layout::intent(version);
    if let Err(e) = store.delete(&key).await {
        tracing::warn!(%key, "could not remove the intent record: {e}");
    }
}

/// Before `discard` deletes anything: swaps the intent to `discarding` (or
/// creates it so), so that no publisher of `version` can seal any more.
/// Refuses while a publisher is sealing, unless `force` (for a publisher
/// that was killed while sealing and whose build is gone).
pub(crate) async fn begin_discard(store: &dyn Store, version: &Version, force: bool) -> Result<(), ReleaseError> {
    cas::retry(RECORD, || async move {
        let Some(stored) = read(store, version).await? else {
            let intent = Intent { state: IntentState::Discarding, manifest: None };
            return Ok(write(store, version, &intent, PutMode::Create).await?.map(|_| ()));
        };
        match stored.intent.state {
            IntentState::Discarding => Ok(Round::Done(())),
            IntentState::Sealing if !force => Err(ReleaseError::Refused(format!(
                "a publish of {version} has uploaded every file and is sealing it (or was killed while sealing); \
                 rerun that publish to complete it. If it was killed and its build cannot be reproduced, run \
                 `sdk-cdn discard {version} --force`"
            ))),
            IntentState::Uploading | IntentState::Sealing => {
                let discarding = Intent { state: IntentState::Discarding, ..stored.intent };
                Ok(write(store, version, &discarding, PutMode::Update { etag: stored.etag }).await?.map(|_| ()))
            }
        }
    })
    .await
}

/// After `discard` deleted the files: removes the record.
pub(crate) async fn end_discard(store: &dyn Store, version: &Version) -> Result<(), ReleaseError> {
    Ok(store.delete(&layout::intent(version)).await?)
}
