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

use super::channel::{Claim, PromoteRule, claim, converge, publish_promotes};
use super::index::update_index_from;
use super::intent;
use super::signatures::Signing;
use super::{Plan, PlannedFile, ReleaseError, StoredIndex, read_index, read_manifest, read_pointer};
use crate::integrity::Integrity;
use crate::layout;
use crate::manifest::{self, FileDiff, VersionManifest};
use crate::progress::Progress;
use crate::signing::SignedHeaders;
use crate::store::{Body, Key, ObjectMeta, PutMode, Store, StoreError, Verdict, probe_conditional_writes};

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
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
pub enum PublishOutcome {
    /// Uploaded and sealed now.
    Published,
    /// Already sealed with the same files; repaired what was left undone, if anything.
    AlreadyPublished,
}

/// The result of a publish, printed as text or `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
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
pub async fn publish(
    store: &dyn Store,
    plan: &Plan,
    options: &PublishOptions,
    progress: Progress,
) -> Result<PublishReport, ReleaseError> {
    let manifest = plan.manifest();
    // Whether the store insists on signatures is asked alongside the seal: no extra round trip.
    let (sealed, may_write) = tokio::join!(read_manifest(store, &plan.version), options.signing.check(store));
    may_write?;
    let (outcome, uploaded, already_present, known_index) = match sealed? {
        Some(sealed) => {
            refuse_if_different(&manifest, &sealed, "published")?;
            let restored = restore_missing(store, plan, options.concurrency, progress).await?;
            options.signing.repair_manifest(store, &plan.version).await?;
            (PublishOutcome::AlreadyPublished, restored, plan.files.len() - restored, None)
        }
        None => {
            let (present, known_index) = preflight(store, plan, &manifest, options).await?;
            intent::claim(store, &manifest).await?;
            let (uploaded, present) = upload_and_seal(store, plan, &manifest, &present, options, progress).await?;
            (PublishOutcome::Published, uploaded, present, known_index)
        }
    };
    tracing::debug!(version = %plan.version, uploaded, "files in place and sealed");

    let (promoted, not_promoted_reason) = if options.no_promote {
        (false, Some("--no-promote was given".to_string()))
    } else {
        match claim(store, &manifest, PromoteRule::IfNewer, options.allow_sri_key_change).await? {
            Claim::Moved { .. } => (true, None),
            Claim::AlreadyCurrent => (false, None),
            Claim::Skipped(reason) => (false, Some(reason)),
        }
    };
    // Also finishes a promotion that an earlier run left half-done.
    let latest = converge(store, &options.latest_cache_control, options.concurrency, false).await?;
    tracing::debug!(latest = ?latest.as_ref().map(ToString::to_string), "latest/ converged");
    let index = update_index_from(store, Some(&manifest), known_index, &options.signing).await?;
    tracing::debug!(changed = index.changed, bytes = index.bytes.len(), "SRI index up to date");

    let mut local_copies = Vec::new();
    if let Some(dir) = &options.manifests_dir {
        local_copies.push(write_local(dir, &format!("{}.json", plan.version), &manifest::to_bytes(&manifest))?);
        local_copies.push(write_local(dir, "sri.json", &index.bytes)?);
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

/// The checks before the first write of a new version.
///
/// - The pointer and the index are read again later; reading them now
///   refuses a corrupt store before the first file is written. The index is
///   returned: if nobody changes it meanwhile, the final update starts from
///   it instead of downloading and parsing it again. A pointer naming a
///   version that is not sealed is refused now, not after the seal. Its
///   manifest is read (instead of only checked for) because a publish that
///   would take over `latest/` must keep every signature-based SRI key
///   `latest/` is signed by (`sri::check_keys_kept`): a sealed version can
///   never gain signatures, so the refusal must come before the first write.
/// - Another run's intent for this version must hold the same plan.
/// - A partial upload from an interrupted run (or a racing publisher) must
///   be ours, byte for byte; returns the paths already in place.
/// - The store must honour conditional writes.
///
/// The reads are independent, so they run at once (on a store a network
/// round trip away that saves round trips), and problems are reported in
/// that order. The probe writes (its own key, and a lock file on a local
/// store), so it runs only once the reads found nothing to refuse: a refused
/// publish writes nothing.
async fn preflight(
    store: &dyn Store,
    plan: &Plan,
    manifest: &VersionManifest,
    options: &PublishOptions,
) -> Result<(BTreeSet<String>, Option<StoredIndex>), ReleaseError> {
    let concurrency = options.concurrency;
    let prefix = layout::version_prefix(&plan.version);
    let (pointer, index, existing, claimed) =
        tokio::join!(read_pointer(store), read_index(store), store.list(&prefix), intent::check(store, manifest));
    if let Some(pointer) = pointer?.map(|stored| stored.pointer).filter(|p| p.version != plan.version) {
        let Some(serving) = read_manifest(store, &pointer.version).await? else {
            return Err(ReleaseError::PointerNotSealed { version: pointer.version });
        };
        if !options.no_promote
            && !options.allow_sri_key_change
            && publish_promotes(&plan.version, Some(&pointer.version))
        {
            super::sri::check_keys_kept(&serving, manifest)?;
        }
    }
    let known_index = index?;
    claimed?;
    // Every bookkeeping object this publish will write can be written (a
    // local store cannot put a file where a directory is): refused now, not
    // after the seal.
    for key in
        [layout::index(), layout::latest_pointer(), layout::manifest(&plan.version), layout::intent(&plan.version)]
    {
        store.check_writable(&key).await?;
    }
    let present = match already_uploaded(store, plan, &prefix, existing?, concurrency).await {
        // The listing may have seen a racing publisher's first files before
        // the intent read saw its record: name its whole plan's differences.
        Err(conflict @ ReleaseError::Conflict { .. }) => {
            intent::check(store, manifest).await?;
            return Err(conflict);
        }
        present => present?,
    };
    let probe = probe_conditional_writes(store).await;
    if let Some(failed) = probe.failure() {
        return Err(match probe.verdict {
            Verdict::IgnoresConditionalWrites => ReleaseError::UnsafeStore(format!(
                "refusing to publish to {}: {} check failed: {}",
                probe.store, failed.name, failed.detail
            )),
            _ => ReleaseError::ProbeFailed {
                store: probe.store.clone(),
                check: failed.name,
                detail: failed.detail.clone(),
            },
        });
    }
    Ok((present, known_index))
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
async fn upload_and_seal(
    store: &dyn Store,
    plan: &Plan,
    manifest: &VersionManifest,
    present: &BTreeSet<String>,
    options: &PublishOptions,
    progress: Progress,
) -> Result<(usize, usize), ReleaseError> {
    let (version, concurrency) = (&plan.version, options.concurrency);
    let todo: Vec<&PlannedFile> = plan.files.iter().filter(|f| !present.contains(&f.path)).collect();
    let uploaded = match upload_all(store, version, todo, concurrency, progress).await {
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
    intent::begin_seal(store, manifest).await?;
    let sealed = Bytes::from(manifest::to_bytes(manifest));
    options.signing.manifest(store, &sealed, version).await?;
    seal(store, manifest, sealed).await?;
    intent::release(store, manifest).await;
    Ok((uploaded, plan.files.len() - uploaded))
}

/// Re-uploads files of a sealed version that are missing from the store
/// (deleted by hand, or by a `discard` that raced the seal). The bytes are
/// the sealed ones (the plan equals the manifest), so this restores, never
/// changes, what was published. Costs one listing, not a request per file.
async fn restore_missing(
    store: &dyn Store,
    plan: &Plan,
    concurrency: usize,
    progress: Progress,
) -> Result<usize, ReleaseError> {
    let prefix = layout::version_prefix(&plan.version);
    let present: std::collections::HashSet<String> = store
        .list(&prefix)
        .await?
        .into_iter()
        .map(|m| m.key.as_str().strip_prefix(&prefix).unwrap_or_default().to_string())
        .collect();
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
    match store.put(key, Body::File(file.source.clone()), &file.headers(), PutMode::Create).await {
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
                    let body = Body::File(file.source.clone());
                    match store.put(key, body, &file.headers(), PutMode::Overwrite).await {
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
    std::fs::write(&tmp, bytes).map_err(|e| local("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| local("rename", &path, e))?;
    Ok(path)
}
