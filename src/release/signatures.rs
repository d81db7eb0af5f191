//! Writing and checking the detached signatures of the SRI index and of the
//! sealed manifests (issue 15, DESIGN.md "Signed index"); the keys and the
//! minisign format are [`crate::signing`]'s.
//!
//! - Index: the signature of each index written goes first to its
//!   content-addressed, immutable name (`api/sdk/sigs/sri-<sha384 hex>.minisig`,
//!   create-only), *then* the index is swapped in, then `api/sdk/sri.minisig`
//!   is overwritten. A reader whose `sri.minisig` belongs to another index
//!   (caches of different ages, or a racing writer) finds the right one under
//!   the content-addressed name, so no valid index is rejected for long, and
//!   a forged index has no valid signature anywhere (docs/SIGNING.md).
//! - Manifests: `manifests/<v>.json.minisig`, written after the intent says
//!   `sealing` and before the seal, so every sealed manifest of a signed
//!   store has its signature (a rerun of the publish writes a missing one).
//! - A store whose index is signed stays signed: a write without a key is
//!   refused unless `--allow-unsigned`, so a forgotten secret in CI cannot
//!   silently strip the protection customers rely on.

use std::sync::Arc;

use bytes::Bytes;
use semver::Version;

use super::ReleaseError;
use crate::layout;
use crate::signing::{self, PublicKey, SecretKey, SignedKind};
use crate::store::{Body, Key, PutMode, Store, StoreError};

/// How a command that writes the index or seals a version signs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signing {
    /// The secret key; `None` writes no signatures.
    pub key: Option<Arc<SecretKey>>,
    /// Write without a key to a store whose index is signed.
    pub allow_unsigned: bool,
}

/// `api/sdk/sri.minisig`.
pub(crate) fn index_signature() -> Key {
    Key::trusted(signing::index_signature_key(layout::INDEX_KEY))
}

/// The content-addressed copy of the signature of the index `bytes`.
pub(crate) fn index_signature_copy(bytes: &[u8]) -> Key {
    Key::trusted(signing::content_addressed_signature_key(layout::INDEX_KEY, bytes))
}

/// `manifests/<version>.json.minisig`.
pub(crate) fn manifest_signature(version: &Version) -> Key {
    Key::trusted(format!("{}{}", layout::manifest(version), signing::SIGNATURE_SUFFIX))
}

async fn put(
    store: &dyn Store,
    key: &Key,
    text: String,
    headers: crate::store::Headers,
    mode: PutMode,
) -> Result<(), ReleaseError> {
    match store.put(key, Body::Bytes(Bytes::from(text)), &headers, mode).await {
        // The same bytes were signed before (same key, maybe another time): that copy is as good.
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Signing {
    /// Before the first write: refuses to write unsigned to a signed store.
    pub(crate) async fn check(&self, store: &dyn Store) -> Result<(), ReleaseError> {
        if self.key.is_some() || self.allow_unsigned {
            return Ok(());
        }
        match store.head(&index_signature()).await? {
            Some(_) => Err(ReleaseError::Unsigned { store: store.describe() }),
            None => Ok(()),
        }
    }

    /// Before the index `bytes` are written: signs them and stores the
    /// content-addressed copy; returns the signature for [`Signing::after_index`].
    pub(crate) async fn before_index(
        &self,
        store: &dyn Store,
        bytes: &[u8],
        version: Option<&Version>,
    ) -> Result<Option<String>, ReleaseError> {
        let Some(key) = &self.key else { return Ok(None) };
        let signature = signing::sign_index(key, bytes, version)?;
        let copy = index_signature_copy(bytes);
        put(store, &copy, signature.clone(), crate::headers::signature(true), PutMode::Create).await?;
        Ok(Some(signature))
    }

    /// After the index was written: points `api/sdk/sri.minisig` at its signature.
    pub(crate) async fn after_index(&self, store: &dyn Store, signature: Option<String>) -> Result<(), ReleaseError> {
        let Some(signature) = signature else { return Ok(()) };
        put(store, &index_signature(), signature, crate::headers::signature(false), PutMode::Overwrite).await
    }

    /// An index that did not change: signs it if this store has no index
    /// signature yet (the first signed run over an unsigned store).
    pub(crate) async fn unchanged_index(
        &self,
        store: &dyn Store,
        bytes: &[u8],
        version: Option<&Version>,
    ) -> Result<(), ReleaseError> {
        if self.key.is_none() || store.head(&index_signature()).await?.is_some() {
            return Ok(());
        }
        let signature = self.before_index(store, bytes, version).await?;
        self.after_index(store, signature).await
    }

    /// Right before the seal (or for a sealed version without one): the
    /// manifest's signature. Written over whatever is there: only the
    /// publisher holding the `sealing` intent, or a repair of the same
    /// sealed bytes, gets here.
    pub(crate) async fn manifest(
        &self,
        store: &dyn Store,
        bytes: &[u8],
        version: &Version,
    ) -> Result<(), ReleaseError> {
        let Some(key) = &self.key else { return Ok(()) };
        let signature = signing::sign_manifest(key, bytes, version)?;
        put(store, &manifest_signature(version), signature, crate::headers::signature(false), PutMode::Overwrite).await
    }

    /// A sealed version whose signature is missing (sealed before the store
    /// was signed, or by a run killed between the two writes) gets one.
    pub(crate) async fn repair_manifest(&self, store: &dyn Store, version: &Version) -> Result<(), ReleaseError> {
        if self.key.is_none() || store.head(&manifest_signature(version)).await?.is_some() {
            return Ok(());
        }
        let Some((bytes, _)) = store.get(&layout::manifest(version)).await? else { return Ok(()) };
        self.manifest(store, &bytes, version).await
    }
}

/// Why a stored signature does not prove what it should, if it does not.
pub(crate) async fn check_index_signature(
    store: &dyn Store,
    bytes: &[u8],
    pubkey: &PublicKey,
) -> Result<Option<String>, ReleaseError> {
    let mut problems = Vec::new();
    for key in [index_signature(), index_signature_copy(bytes)] {
        match store.get(&key).await? {
            None => problems.push(format!("{key} is missing")),
            Some((text, _)) => {
                match signing::verify_signature(bytes, &String::from_utf8_lossy(&text), pubkey, SignedKind::Index) {
                    Ok(_) => return Ok(None),
                    Err(e) => problems.push(format!("{key}: {e}")),
                }
            }
        }
    }
    Ok(Some(problems.join("; ")))
}

/// Why the signature of a sealed manifest does not prove it, if it does not.
pub(crate) async fn check_manifest_signature(
    store: &dyn Store,
    version: &Version,
    pubkey: &PublicKey,
) -> Result<Option<String>, ReleaseError> {
    let key = manifest_signature(version);
    let Some((bytes, _)) = store.get(&layout::manifest(version)).await? else {
        return Err(ReleaseError::SealVanished { version: version.clone() });
    };
    Ok(match store.get(&key).await? {
        None => Some(format!(
            "{key} is missing (sealed before the store was signed? `sdk-cdn reindex --sign-key FILE` signs it)"
        )),
        Some((text, _)) => {
            signing::verify_signature(&bytes, &String::from_utf8_lossy(&text), pubkey, SignedKind::Manifest)
                .err()
                .map(|e| format!("{key}: {e}"))
        }
    })
}
