//! Signature-based SRI across promotions: pages that pin `latest/` by key
//! (`integrity="ed25519-KEY"`) keep working only while every `latest/` file
//! is signed by KEY. So a promotion may add keys but never drop one that the
//! version `latest/` serves now is signed by, unless told to
//! (`--allow-sri-key-change`), which is the last step of a key rotation
//! (docs/SIGNING.md).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use semver::Version;

use super::{ReleaseError, read_manifest};
use crate::manifest::VersionManifest;
use crate::signing;
use crate::store::Store;

/// The keys that sign *every* file of `manifest` (a key that signs only
/// some cannot be pinned for the version), as `ed25519-…` tokens.
pub(crate) fn keys_of(manifest: &VersionManifest) -> Result<BTreeSet<String>, ReleaseError> {
    let mut common: Option<BTreeSet<String>> = None;
    for entry in manifest.files.values() {
        let keys: BTreeSet<String> = match &entry.signed {
            Some(signed) => {
                signing::sri_key_ids(signed)?.iter().map(|k| format!("ed25519-{}", STANDARD.encode(k))).collect()
            }
            None => BTreeSet::new(),
        };
        common = Some(match common {
            None => keys,
            Some(common) => common.intersection(&keys).cloned().collect(),
        });
    }
    Ok(common.unwrap_or_default())
}

/// Refuses to move `latest/` from `current` to `next` if that drops a key
/// `current` is signed by, unless `allow`.
pub(crate) async fn check_handover(
    store: &dyn Store,
    current: Option<&Version>,
    next: &VersionManifest,
    allow: bool,
) -> Result<(), ReleaseError> {
    let Some(current) = current.filter(|c| !allow && **c != next.version) else { return Ok(()) };
    // A pointer naming an unsealed version is repaired elsewhere; it pins no key.
    match read_manifest(store, current).await? {
        Some(serving) => check_keys_kept(&serving, next),
        None => Ok(()),
    }
}

/// Refuses `next` taking over `latest/` from `serving` if that drops a key
/// every file of `serving` is signed by.
pub(crate) fn check_keys_kept(serving: &VersionManifest, next: &VersionManifest) -> Result<(), ReleaseError> {
    let kept = keys_of(next)?;
    let dropped: Vec<String> = keys_of(serving)?.difference(&kept).cloned().collect();
    if dropped.is_empty() {
        return Ok(());
    }
    Err(ReleaseError::SriKeyDropped {
        current: serving.version.to_string(),
        next: next.version.to_string(),
        it: if dropped.len() == 1 { "that key" } else { "those keys" },
        dropped: dropped.join(", "),
    })
}
