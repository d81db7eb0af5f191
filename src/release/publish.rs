//! `publish`: upload a planned build create-only, seal it, promote it if it
//! is the newest stable release, and update the index.
//!
//! Order (DESIGN.md, "Publish, in order"): the plan is complete before the
//! store is touched; an existing seal with the same files turns the run into
//! a repair (no file requests at all); an intent record naming the plan is
//! claimed before the first file (one build per version, see `intent`);
//! files go up create-only, each checked by the store against its planned
//! SRI, and a 412 is settled by re-hashing the stored bytes; the intent is
//! swapped to `sealing` and the seal is written last.

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use semver::Version;
use serde::Serialize;

use super::cas::Round;
use super::channel::{Claim, PromoteRule, claim_from, converge_claimed, converge_from, publish_promotes};
use super::index::{IndexState, KnownIndex, Latest, index_round, update_index_from};
use super::intent;
use super::signatures::Signing;
use super::{Plan, PlannedFile, ReleaseError, StoredPointer, read_index, read_manifest, read_pointer};
use crate::integrity::Integrity;
use crate::layout;
use crate::manifest::{self, FileDiff, VersionManifest};
use crate::progress::Progress;
use crate::signing::SignedHeaders;
use crate::store::{
    Body, Key, ObjectMeta, ProbeReport, PutMode, Store, StoreError, Verdict, check_temp_files, probe_writes_at_once,
    remove_probe,
};

/// How to publish.
#[derive(Debug, Clone)]
pub(crate) struct PublishOptions {
    /// Skip promotion to `latest/` even for a newer stable release.
    pub no_promote: bool,
    /// Files uploaded at once.
    pub concurrency: usize,
    /// `Cache-Control` of `latest/` files.
    pub latest_cache_control: String,
    /// Where to write local copies of the manifest and index (`None`: don't).
    pub manifests_dir: Option<PathBuf>,
    /// How the manifest and the index are signed.
    pub signing: Signing,
    /// Promote even if `latest/` would lose a signature-based SRI key.
    pub allow_sri_key_change: bool,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PublishOutcome {
    /// Uploaded and sealed now.
    Published,
    /// Already sealed with the same files; repaired what was left undone, if anything.
    AlreadyPublished,
}

/// The result of a publish, printed as text or `--json`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PublishReport {
    /// The version.
    pub version: Version,
    /// What happened.
    pub outcome: PublishOutcome,
    /// Files uploaded by this run.
    pub uploaded: usize,
    /// Files that were already in the store with the same bytes (a resumed upload).
    pub already_present: usize,
    /// Total files in the version.
    pub files: usize,
    /// Total bytes in the version.
    pub bytes: u64,
    /// Whether this run moved `latest` to the version.
    pub promoted: bool,
    /// Why it was not promoted, if it was not.
    pub not_promoted_reason: Option<String>,
    /// The version `latest/` serves now.
    pub latest: Option<Version>,
    /// Whether this run changed the SRI index.
    pub index_updated: bool,
    /// Local copies written.
    pub local_copies: Vec<PathBuf>,
    /// The keys (`ed25519-…`) every file of the version is signed by for
    /// signature-based SRI; empty when it is not signed.
    pub sri_keys: Vec<String>,
}

/// Publishes `plan` to `store`.
///
/// On a store a network round trip away, round trips in sequence decide the
/// time of a small release, so everything independent runs at once. A first
/// publish of a new version makes them in sequence, each waiting for the one
/// before it for the reason given where it is made (nine, within the
/// ten of issue 16):
/// 1. every read the outcome depends on ([`publish`]);
/// 2. and 3. the conditional-write probe and the intent ([`preflight`]);
/// 4. the uploads; 5. the intent swap to `sealing`; 6. the seal
///    ([`upload_and_seal`]);
/// 7. the pointer; 8. the `latest/` copies; 9. the `synced` swap and the
///    index, at once ([`promote_and_index`]).
///
/// A re-publish of a sealed version with every file in place makes the
/// first only (plus one read of the manifest `latest/` serves, when that is
/// another version's), and writes nothing.
pub(crate) async fn publish(
    store: &dyn Store,
    plan: &Plan,
    options: &PublishOptions,
    progress: Progress,
) -> Result<PublishReport, ReleaseError> {
    let manifest = plan.manifest();
    let (prefix, latest_prefix) = (layout::version_prefix(&plan.version), layout::latest_prefix());
    // Round trip 1: nothing is known yet, so everything read now is read at
    // once: the seal (sealed or not decides all that follows), whether the
    // store insists on signatures, the pointer and the index (read again
    // later only if they changed meanwhile), the version's files (to
    // restore, or a partial upload to resume), another run's intent, and
    // `latest/` (to repair it if a synced pointer's files are not all there).
    let (sealed, may_write, pointer, index, listing, claimed, in_latest) = tokio::join!(
        read_manifest(store, &plan.version),
        options.signing.check(store),
        read_pointer(store),
        read_index(store),
        store.list(&prefix),
        intent::check(store, &manifest),
        store.list(&latest_prefix),
    );
    may_write?;
    let sealed = sealed?;
    let (pointer, index) = (pointer?, index?);
    let files = async {
        match sealed {
            Some(sealed) => {
                refuse_if_different(&manifest, &sealed, "published")?;
                let restored = restore_missing(store, plan, listing?, options.concurrency, progress).await?;
                options.signing.repair_manifest(store, &plan.version).await?;
                Ok((PublishOutcome::AlreadyPublished, restored, plan.files.len() - restored))
            }
            None => {
                claimed?;
                let ready = preflight(store, plan, &manifest, pointer.as_ref(), listing?, options).await?;
                let (uploaded, present) = upload_and_seal(store, plan, &manifest, ready, options, progress).await?;
                Ok::<_, ReleaseError>((PublishOutcome::Published, uploaded, present))
            }
        }
    };
    // A missing index is created from every sealed manifest (it never
    // shrinks): they are read while the files go up, not after the seal.
    let known_index = async {
        match index {
            Some(index) => Ok(KnownIndex::Read(index)),
            None => super::index::sealed_manifests(store).await.map(KnownIndex::Absent),
        }
    };
    let (files, known_index) = tokio::join!(files, known_index);
    let (outcome, uploaded, already_present) = files?;
    let known_index = known_index?;
    tracing::debug!(version = %plan.version, uploaded, "files in place and sealed");
    // The intent (of a first publish) is removed while the promotion runs:
    // it guards the version's files, the promotion writes none of them.
    let release = async {
        if outcome == PublishOutcome::Published {
            intent::remove_after_seal(store, &plan.version).await;
        }
    };
    // A first publish checked the signature-key handover from the pointer it read (in preflight).
    let checked = (outcome == PublishOutcome::Published).then(|| pointer.as_ref().map(|p| p.pointer.version.clone()));
    let promote = promote_and_index(store, &manifest, pointer, in_latest?, known_index, options, checked.flatten());
    let (promoted, ()) = tokio::join!(promote, release);
    let Promoted { promoted, not_promoted_reason, latest, index } = promoted?;

    let mut local_copies = Vec::new();
    if let Some(dir) = &options.manifests_dir {
        let copied = write_local(dir, &format!("{}.json", plan.version), &manifest::to_bytes(&manifest))
            .and_then(|manifest| Ok([manifest, write_local(dir, "sri.json", &index.bytes)?]));
        let copied =
            copied.map_err(|e| ReleaseError::LocalCopies { version: plan.version.to_string(), source: Box::new(e) })?;
        local_copies.extend(copied);
    }
    Ok(PublishReport {
        version: plan.version.clone(),
        outcome,
        uploaded,
        already_present,
        files: plan.files.len(),
        bytes: plan.total_bytes(),
        promoted,
        not_promoted_reason,
        latest,
        index_updated: index.changed,
        local_copies,
        sri_keys: super::sri::keys_of(&manifest)?.into_iter().collect(),
    })
}

/// What [`promote_and_index`] did.
struct Promoted {
    promoted: bool,
    not_promoted_reason: Option<String>,
    latest: Option<Version>,
    index: IndexState,
}

/// After the seal: moves `latest` to the version if it is the newest stable
/// release, brings `latest/` to the pointer, and updates the index, starting
/// from the pointer and the index as the first round trip read them.
///
/// - The pointer may only name a sealed version, so it moves only now
///   (round trip 7); a stale `pointer` costs a lost compare-and-swap.
/// - `latest/` is written only after the pointer announces the version
///   (any promotion in flight then fails its final swap): round trip 8.
/// - The index may name the files under `latest/` only once they are in
///   place, so it waits for the copies; it does not wait for the `synced`
///   swap, which changes nothing a reader sees (round trip 9, both at once).
///
/// When the version is not promoted, the pointer as first read decides
/// (no request if it is synced), and so does the index if it needs no
/// change; a change reads the index and the pointer again, in that order.
async fn promote_and_index(
    store: &dyn Store,
    manifest: &VersionManifest,
    pointer: Option<StoredPointer>,
    in_latest: Vec<ObjectMeta>,
    index: KnownIndex,
    options: &PublishOptions,
    keys_checked_against: Option<Version>,
) -> Result<Promoted, ReleaseError> {
    let (cache_control, concurrency) = (&options.latest_cache_control, options.concurrency);
    // `pointer` becomes the one the claim decided on: after a lost race it
    // read the pointer again, and what this run reports comes from that.
    let (claimed, pointer) = if options.no_promote {
        (Claim::Skipped("--no-promote was given".to_string()), pointer)
    } else {
        let allow = options.allow_sri_key_change;
        let checked = keys_checked_against.as_ref();
        claim_from(store, manifest, PromoteRule::IfNewer, allow, Some(pointer), checked).await?
    };
    let (promoted, not_promoted_reason) = match &claimed {
        Claim::Moved { .. } => (true, None),
        Claim::AlreadyCurrent => (false, None),
        Claim::Skipped(reason) => (false, Some(reason.clone())),
    };
    if let Claim::Moved { etag, .. } = claimed {
        let beside = index_round(store, Some(manifest), index, Latest::Known(Some(manifest)), &options.signing);
        let (latest, round) = converge_claimed(store, manifest, etag, cache_control, concurrency, beside).await?;
        let index = match round? {
            // The index names this version under latest/: right, unless
            // another promotion moved the pointer meanwhile.
            Round::Done(index) if latest.as_ref() == Some(&manifest.version) => index,
            _ => update_index_from(store, Some(manifest), None, Latest::Read, &options.signing).await?,
        };
        return Ok(Promoted { promoted, not_promoted_reason, latest, index });
    }
    // Also finishes a promotion that an earlier run left half-done.
    let seen = pointer.clone();
    let latest = converge_from(store, cache_control, concurrency, Some(seen), false).await?;
    tracing::debug!(latest = ?latest.as_ref().map(ToString::to_string), "latest/ converged");
    // The index's latest/ entries as the first reads saw them: the pointer
    // they read, if it is synced and converge left it alone.
    let synced = pointer.map(|p| p.pointer).filter(|p| p.synced && latest.as_ref() == Some(&p.version));
    let serves = match synced {
        Some(p) if p.version == manifest.version => Some(manifest.clone()),
        Some(p) => {
            Some(read_manifest(store, &p.version).await?.ok_or(ReleaseError::PointerNotSealed { version: p.version })?)
        }
        None => None,
    };
    // A synced pointer says `latest/` holds its version's files; the listing
    // made with the first reads says whether it does (a file deleted or
    // replaced by hand, or left by a tool that is not this one). If not,
    // `latest/` is synced again, so that "latest/ serves V" is true when
    // this run says it. (Bytes changed at the same size are `verify`'s to find.)
    let latest = match &serves {
        Some(serving) if !holds_exactly(&in_latest, serving) => {
            tracing::debug!(version = %serving.version, "latest/ differs from its synced version; syncing it again");
            converge_from(store, cache_control, concurrency, None, true).await?
        }
        _ => latest,
    };
    let seen = match (&latest, &serves) {
        (Some(_), None) => Latest::Read,
        (_, serves) => Latest::Seen(serves.as_ref()),
    };
    let index = update_index_from(store, Some(manifest), Some(index), seen, &options.signing).await?;
    tracing::debug!(changed = index.changed, bytes = index.bytes.len(), "SRI index up to date");
    Ok(Promoted { promoted, not_promoted_reason, latest, index })
}

/// Whether `listed` (the objects under `sdk/latest/`) are exactly the files
/// of `manifest`, at their sizes.
fn holds_exactly(listed: &[ObjectMeta], manifest: &VersionManifest) -> bool {
    let prefix = layout::latest_prefix();
    listed.len() == manifest.files.len()
        && listed.iter().all(|object| {
            let path = object.key.as_str().strip_prefix(&prefix).unwrap_or_default();
            manifest.files.get(path).is_some_and(|entry| entry.size == object.size)
        })
}

fn refuse_if_different(
    build: &VersionManifest,
    published: &VersionManifest,
    state: &'static str,
) -> Result<(), ReleaseError> {
    let diff = build.diff_against(published);
    if diff.is_empty() {
        return Ok(());
    }
    Err(conflict(&build.version, state, diff))
}

fn conflict(version: &Version, state: &'static str, diff: FileDiff) -> ReleaseError {
    let hint = if state == "published" {
        ""
    } else {
        ", or remove the partial upload with `sdk-cdn discard VERSION` if its build cannot be reproduced"
    };
    ReleaseError::Conflict { version: version.to_string(), state, diff: Box::new(diff), hint }
}

/// The checks before the first write of a new version, and its intent;
/// returns the paths already in place and the etag of the intent record if
/// this run created it.
///
/// - A pointer naming a version that is not sealed is refused now, not
///   after the seal.
/// - A partial upload from an interrupted run (or a racing publisher) must
///   be ours, byte for byte (its files are re-hashed).
/// - The store must honour conditional writes (the probe).
/// - The intent record names the plan (see `intent`).
///
/// Round trip 2 holds the first two (they depend on round trip 1's reads),
/// the probe's first write and the creation of the intent. Both write, so
/// they wait for round trip 1, whose refusals must leave no write behind;
/// they do not wait for the checks or the probe's verdict (the probe guards
/// the first *file* written, DESIGN.md): when one of those refuses, the
/// intent this run created is removed again. Round trip 3 holds the probe's
/// conditional writes (they need its object) and the read of the seal that
/// must follow the intent's creation (see `intent::claim`); the probe's
/// delete is left for the uploads' round trip.
async fn preflight(
    store: &dyn Store,
    plan: &Plan,
    manifest: &VersionManifest,
    pointer: Option<&StoredPointer>,
    existing: Vec<ObjectMeta>,
    options: &PublishOptions,
) -> Result<Preflight, ReleaseError> {
    let prefix = layout::version_prefix(&plan.version);
    // Every bookkeeping object this publish will write can be written (a
    // local store cannot put a file where a directory is): refused now, not
    // after the seal. No request on S3.
    for key in
        [layout::index(), layout::latest_pointer(), layout::manifest(&plan.version), layout::intent(&plan.version)]
    {
        store.check_writable(&key).await?;
    }
    // The checks and the claim at once: when a check refuses, the intent
    // this run created is removed again.
    let checks_then_claim = async {
        let (sealed_pointer, present, claimed) = tokio::join!(
            pointer_is_sealed(store, pointer, manifest, options),
            already_uploaded(store, plan, &prefix, existing, options.concurrency),
            intent::claim(store, manifest),
        );
        let checked = match (sealed_pointer, present) {
            (Err(e), _) => Err(e),
            // The listing may have seen a racing publisher's first files before
            // the intent read saw its record: name its whole plan's differences.
            (Ok(()), Err(conflict @ ReleaseError::Conflict { .. })) => match intent::check(store, manifest).await {
                Ok(()) => Err(conflict),
                Err(other_plan) => Err(other_plan),
            },
            (Ok(()), present) => present,
        };
        match (checked, claimed) {
            (Ok(present), Ok(created)) => Ok((present, created)),
            (Err(e), Ok(created)) => {
                if created.is_some() {
                    intent::release(store, manifest).await;
                }
                Err(e)
            }
            (Err(e), Err(_)) | (Ok(_), Err(e)) => Err(e),
        }
    };
    // Local, before any write: a store or TMPDIR that cannot take this
    // run's temp files refuses it here, not after its intent record.
    let checked = check_temp_files(store).await;
    probe_verdict(&checked)?;
    let ((probe, probe_key), claimed) = tokio::join!(probe_writes_at_once(store, checked), checks_then_claim);
    if let Err(refused) = probe_verdict(&probe) {
        if let Ok((_, Some(_))) = &claimed {
            intent::release(store, manifest).await;
        }
        if let Some(key) = &probe_key {
            remove_probe(store, key, probe).await;
        }
        return Err(refused);
    }
    match claimed {
        Ok((present, intent_etag)) => Ok(Preflight { present, intent_etag, probe: probe_key.map(|key| (key, probe)) }),
        Err(e) => {
            if let Some(key) = &probe_key {
                remove_probe(store, key, probe).await;
            }
            Err(e)
        }
    }
}

/// What [`preflight`] leaves for the upload.
struct Preflight {
    /// The paths already in place (a resumed upload).
    present: BTreeSet<String>,
    /// The intent record's etag, if this run created it.
    intent_etag: Option<String>,
    /// The probe's scratch key, deleted beside the uploads, with its report.
    probe: Option<(Key, ProbeReport)>,
}

/// The probe's verdict as the error that refuses the publish.
fn probe_verdict(probe: &ProbeReport) -> Result<(), ReleaseError> {
    let Some(failed) = probe.failure() else { return Ok(()) };
    let message = format!("refusing to publish to {}: {} check failed: {}", probe.store, failed.name, failed.detail);
    Err(match probe.verdict {
        Verdict::IgnoresConditionalWrites => ReleaseError::UnsafeStore(message),
        _ => {
            ReleaseError::ProbeFailed { store: probe.store.clone(), check: failed.name, detail: failed.detail.clone() }
        }
    })
}

/// Refuses a pointer that names another version that is not sealed, and a
/// publish that would take over `latest/` without a signature-based SRI key
/// `latest/` is signed by (`sri::check_keys_kept`): a sealed version can
/// never gain signatures, so that refusal must come before the first file.
/// The manifest is read (not only checked for) for the second check.
async fn pointer_is_sealed(
    store: &dyn Store,
    pointer: Option<&StoredPointer>,
    manifest: &VersionManifest,
    options: &PublishOptions,
) -> Result<(), ReleaseError> {
    let version = &manifest.version;
    let Some(other) = pointer.map(|stored| &stored.pointer.version).filter(|v| *v != version) else { return Ok(()) };
    let Some(serving) = read_manifest(store, other).await? else {
        return Err(ReleaseError::PointerNotSealed { version: other.clone() });
    };
    if !options.no_promote && !options.allow_sri_key_change && publish_promotes(version, Some(other)) {
        super::sri::check_keys_kept(&serving, manifest)?;
    }
    Ok(())
}

/// Which of `existing` (the objects under the version's prefix) are files
/// of `plan` with the planned bytes; refuses anything else. Stored bytes are
/// re-hashed (metadata can lie), `concurrency` objects at a time: resuming a
/// large interrupted upload must not cost one round trip after another.
async fn already_uploaded(
    store: &dyn Store,
    plan: &Plan,
    prefix: &str,
    existing: Vec<ObjectMeta>,
    concurrency: usize,
) -> Result<BTreeSet<String>, ReleaseError> {
    let by_path: std::collections::HashMap<&str, &PlannedFile> =
        plan.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut diff = FileDiff::default();
    let mut candidates = Vec::new();
    for object in &existing {
        let path = object.key.as_str().strip_prefix(prefix).unwrap_or_default();
        match by_path.get(path) {
            None => diff.missing.push(path.to_string()),
            Some(file) => candidates.push((path, &object.key, *file)),
        }
    }
    let checked: Vec<(&str, Option<(bool, bool)>)> = futures::stream::iter(candidates)
        .map(|(path, key, planned)| async move {
            // Our bytes with other signature headers (left by an earlier run
            // with other --sri-key keys, whose intent was given back) are
            // ours too: `upload_one` re-stamps them.
            let stored = stored_integrity(store, key).await?;
            Ok::<_, ReleaseError>((path, stored.map(|s| (s.integrity == planned.integrity, s.is(planned)))))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut present = BTreeSet::new();
    for (path, same) in checked {
        match same {
            Some((_, true)) => {
                present.insert(path.to_string());
            }
            // Same bytes, stale headers: uploaded again (not present).
            Some((true, false)) => {}
            Some((false, _)) | None => diff.differing.push(path.to_string()),
        }
    }
    // Listed in key order, whatever order the checks finished in.
    diff.differing.sort();
    if !diff.is_empty() {
        return Err(conflict(&plan.version, "partially uploaded", diff));
    }
    Ok(present)
}

/// Uploads what is not `present` yet, then seals. Returns (uploaded, already present).
///
/// Round trip 4 is the uploads (all at once, up to `--concurrency`; they
/// wait for the probe's verdict and the intent), beside the probe's delete.
/// Round trip 5 swaps the intent to `sealing` (`intent_etag`: the record
/// this run created, swapped without reading it): it must follow every
/// upload, since a discard that has not started may no longer start once it
/// lands. Round trip 6 is the seal, which must follow that swap, or a
/// discard could delete a sealed version's files.
async fn upload_and_seal(
    store: &dyn Store,
    plan: &Plan,
    manifest: &VersionManifest,
    ready: Preflight,
    options: &PublishOptions,
    progress: Progress,
) -> Result<(usize, usize), ReleaseError> {
    let (version, concurrency) = (&plan.version, options.concurrency);
    let Preflight { present, intent_etag, probe } = ready;
    let todo: Vec<&PlannedFile> = plan.files.iter().filter(|f| !present.contains(&f.path)).collect();
    // The probe's delete needs nothing from the uploads: beside them.
    let remove = async {
        match probe {
            Some((key, report)) => probe_verdict(&remove_probe(store, &key, report).await),
            None => Ok(()),
        }
    };
    let (uploaded, removed) = tokio::join!(upload_all(store, version, todo, concurrency, progress), remove);
    let uploaded = match uploaded.and_then(|uploaded| removed.map(|()| uploaded)) {
        Ok(uploaded) => uploaded,
        Err(e @ ReleaseError::InputChanged { .. }) => {
            // Nothing of the changed file was stored: give the version back,
            // so that a rerun with the finished build is not refused as
            // another plan.
            intent::release(store, manifest).await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    crate::pause::point("seal").await;
    intent::begin_seal(store, manifest, intent_etag).await?;
    let sealed = Bytes::from(manifest::to_bytes(manifest));
    options.signing.manifest(store, &sealed, version).await?;
    seal(store, manifest, sealed).await?;
    Ok((uploaded, plan.files.len() - uploaded))
}

/// Re-uploads files of a sealed version that are missing from the store
/// (deleted by hand, or by a `discard` that raced the seal). The bytes are
/// the sealed ones (the plan equals the manifest), so this restores, never
/// changes, what was published. Costs one listing (`listed`, made with the
/// first reads), not a request per file.
async fn restore_missing(
    store: &dyn Store,
    plan: &Plan,
    listed: Vec<ObjectMeta>,
    concurrency: usize,
    progress: Progress,
) -> Result<usize, ReleaseError> {
    let prefix = layout::version_prefix(&plan.version);
    let present: std::collections::HashSet<String> =
        listed.into_iter().map(|m| m.key.as_str().strip_prefix(&prefix).unwrap_or_default().to_string()).collect();
    let missing: Vec<&PlannedFile> = plan.files.iter().filter(|f| !present.contains(&f.path)).collect();
    if missing.is_empty() {
        return Ok(0);
    }
    tracing::warn!(version = %plan.version, count = missing.len(), "restoring files missing from a published version");
    upload_all(store, &plan.version, missing, concurrency, progress).await
}

/// Uploads `files` create-only, `concurrency` at a time; returns how many were new.
async fn upload_all(
    store: &dyn Store,
    version: &Version,
    files: Vec<&PlannedFile>,
    concurrency: usize,
    progress: Progress,
) -> Result<usize, ReleaseError> {
    // Largest first: a big file's transfer then overlaps the many small
    // ones instead of starting last and finishing alone.
    let mut files = files;
    files.sort_by_key(|f| std::cmp::Reverse(f.size));
    crate::pause::point("upload").await;
    let bar = progress.bytes("upload", files.iter().map(|f| f.size).sum());
    let uploaded = futures::stream::iter(files)
        .map(|file| {
            let bar = bar.clone();
            async move {
                let uploaded = upload_one(store, version, file).await?;
                bar.inc(file.size);
                Ok::<_, ReleaseError>(usize::from(uploaded))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_fold(0, |sum, n| async move { Ok(sum + n) })
        .await;
    bar.finish_and_clear();
    uploaded
}

/// Uploads one file create-only; `false` if identical bytes were already there.
async fn upload_one(store: &dyn Store, version: &Version, file: &PlannedFile) -> Result<bool, ReleaseError> {
    let key = &file.key;
    // The store checks the bytes it stores against the planned SRI (a file
    // changed since planning is refused with ContentChanged, nothing stored).
    match store.put(key, file.body(), &file.headers(), PutMode::Create).await {
        Ok(_) => Ok(true),
        Err(source @ StoreError::ContentChanged { .. }) => Err(ReleaseError::InputChanged { source }),
        Err(StoreError::AlreadyExists { .. }) => {
            // Someone (an earlier run, a concurrent publisher) was first:
            // fine if the bytes are ours, a conflict otherwise. Our bytes
            // with other signature headers come from an earlier run of
            // another plan that gave the version back; this run holds the
            // intent, so it stamps its own headers (the version is unsealed:
            // nothing published changes).
            match stored_integrity(store, key).await? {
                Some(stored) if stored.is(file) => Ok(false),
                Some(stored) if stored.integrity == file.integrity => {
                    match store.put(key, file.body(), &file.headers(), PutMode::Overwrite).await {
                        Ok(_) => Ok(true),
                        Err(source @ StoreError::ContentChanged { .. }) => Err(ReleaseError::InputChanged { source }),
                        Err(e) => Err(e.into()),
                    }
                }
                _ => {
                    let diff = FileDiff { differing: vec![file.path.clone()], ..FileDiff::default() };
                    Err(conflict(version, "partially uploaded", diff))
                }
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Re-hashes the stored bytes (metadata can lie).
async fn stored_integrity(store: &dyn Store, key: &Key) -> Result<Option<Stored>, ReleaseError> {
    let Some((reader, meta)) = store.reader(key).await? else { return Ok(None) };
    let (integrity, _) = Integrity::of_async_reader(reader).await.map_err(|source| ReleaseError::ReadFailed {
        key: key.to_string(),
        command: "the publish",
        source,
    })?;
    Ok(Some(Stored { integrity, signed: meta.headers.and_then(|h| h.signed) }))
}

/// What an object already in place holds: its bytes' integrity (re-hashed)
/// and the signature-based SRI headers stored with it.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    integrity: Integrity,
    signed: Option<SignedHeaders>,
}

impl Stored {
    /// Whether this is exactly what `file` would store.
    fn is(&self, file: &PlannedFile) -> bool {
        self.integrity == file.integrity && self.signed == file.signed
    }
}

/// Writes the seal (`bytes`, the serialised `manifest`) create-only; a
/// concurrent identical seal is fine.
async fn seal(store: &dyn Store, manifest: &VersionManifest, bytes: Bytes) -> Result<(), ReleaseError> {
    let key = layout::manifest(&manifest.version);
    let headers = crate::headers::bookkeeping();
    let body = Body::Bytes(bytes);
    match store.put(&key, body, &headers, PutMode::Create).await {
        Ok(_) => Ok(()),
        Err(StoreError::AlreadyExists { .. }) => match read_manifest(store, &manifest.version).await? {
            Some(sealed) => refuse_if_different(manifest, &sealed, "published"),
            None => Err(ReleaseError::SealVanished { version: manifest.version.clone() }),
        },
        Err(e) => Err(e.into()),
    }
}

fn write_local(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ReleaseError> {
    let local =
        |what, path: &std::path::Path, source| ReleaseError::Local { what, path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(|e| local("create directory", dir, e))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = std::fs::write(&tmp, bytes)
        .map_err(|e| local("write", &tmp, e))
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| local("rename", &path, e)));
    if written.is_err() {
        // A half-written copy would look like a manifest to whoever reads the directory.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| path)
}
