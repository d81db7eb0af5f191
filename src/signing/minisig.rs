//! Detached minisign signatures over the index and the manifests: make them,
//! check them, and name where they live.
//!
//! A signature is checked in two steps, both required: minisign's own check
//! (key id, Ed25519 over the BLAKE2b prehash of the bytes, Ed25519 over the
//! trusted comment), then the comment against the bytes in hand
//! ([`super::TrustedComment`]). The output is plain minisign, so the stock
//! `minisign -Vm FILE -P KEY` accepts it.

use std::io::Cursor;
use std::time::{SystemTime, UNIX_EPOCH};

use semver::Version;
use sha2::{Digest, Sha384};

use super::comment::NO_VERSION;
use super::keys::key_id_hex;
use super::{PublicKey, SecretKey, SignedKind, SigningError, TrustedComment};
use crate::integrity::Integrity;

/// What a detached signature's name adds to the signed object's name.
pub(crate) const SIGNATURE_SUFFIX: &str = ".minisig";
/// Folder (beside the index) of the content-addressed, immutable copies.
const SIGNATURES_DIR: &str = "sigs";

/// Where the signature of the object at `key` lives: `api/sdk/sri.minisig`.
pub(crate) fn index_signature_key(key: &str) -> String {
    format!("{key}{SIGNATURE_SUFFIX}")
}

/// The immutable, content-addressed copy of the signature of `bytes` stored
/// at `key` (a store key or a URL): `api/sdk/sigs/sri-<sha384 hex>.minisig`.
/// Write it *before* the object, create-only; a reader whose cached
/// signature belongs to another version of the object fetches this one
/// (docs/SIGNING.md, "Caches of different ages").
pub fn content_addressed_signature_key(key: &str, bytes: &[u8]) -> String {
    let hex: String = Sha384::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    let name = key.rsplit_once('/').map_or(key, |(_, name)| name);
    format!("{}{name}-{hex}{SIGNATURE_SUFFIX}", signatures_dir(key))
}

/// The folder of the content-addressed signatures of the object at `key`:
/// `api/sdk/sigs/` for `api/sdk/sri`.
pub(crate) fn signatures_dir(key: &str) -> String {
    match key.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{SIGNATURES_DIR}/"),
        None => format!("{SIGNATURES_DIR}/"),
    }
}

/// Signs `bytes` with `comment` as the trusted comment; returns the `.minisig` text.
pub(crate) fn sign(key: &SecretKey, bytes: &[u8], comment: &TrustedComment) -> Result<String, SigningError> {
    let untrusted = format!("signature from sdk-cdn key {}", key.public.key_id());
    let signature = minisign::sign(
        Some(&key.public.inner),
        &key.inner,
        Cursor::new(bytes),
        Some(&comment.to_string()),
        Some(&untrusted),
    )
    .map_err(|e| SigningError::Sign { what: what(comment.kind).into(), detail: e.to_string() })?;
    Ok(signature.into_string())
}

/// The signature of the SRI index `bytes`, whose `version` is `version`.
pub fn sign_index(key: &SecretKey, bytes: &[u8], version: Option<&Version>) -> Result<String, SigningError> {
    let version = version.map_or_else(|| NO_VERSION.to_string(), Version::to_string);
    sign(key, bytes, &comment_for(SignedKind::Index, bytes, version))
}

/// The signature of the sealed manifest `bytes` of `version`.
pub fn sign_manifest(key: &SecretKey, bytes: &[u8], version: &Version) -> Result<String, SigningError> {
    sign(key, bytes, &comment_for(SignedKind::Manifest, bytes, version.to_string()))
}

fn comment_for(kind: SignedKind, bytes: &[u8], version: String) -> TrustedComment {
    // A clock before 1970 is not worth failing a release over; 0 still says "unknown".
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    TrustedComment { kind, version, sha384: Integrity::of_bytes(bytes), time }
}

fn what(kind: SignedKind) -> &'static str {
    match kind {
        SignedKind::Index => "the SRI index",
        SignedKind::Manifest => "the manifest",
    }
}

/// Checks that `minisig` is `pubkey`'s signature of exactly `bytes` as
/// `expected`; returns the trusted comment (its `version` is for the caller
/// to compare with what the bytes say).
pub fn verify_signature(
    bytes: &[u8],
    minisig: &str,
    pubkey: &PublicKey,
    expected: SignedKind,
) -> Result<TrustedComment, SigningError> {
    let what = what(expected).to_string();
    let bad = |detail: String| SigningError::BadSignature { what: what.clone(), detail };
    let signature =
        minisign::SignatureBox::from_string(minisig).map_err(|e| bad(format!("not a minisign signature ({e})")))?;
    let (signed_by, trusted) = (signature.keynum(), pubkey.inner.keynum());
    if signed_by != trusted {
        return Err(SigningError::KeyIdMismatch {
            what,
            signature_key_id: key_id_hex(signed_by),
            public_key_id: key_id_hex(trusted),
        });
    }
    // No legacy (non-prehashed) signatures: we never write them.
    minisign::verify(&pubkey.inner, &signature, Cursor::new(bytes), true, false, false)
        .map_err(|e| bad(e.to_string()))?;
    let comment_text = signature.trusted_comment().map_err(|e| bad(e.to_string()))?;
    let comment: TrustedComment = comment_text.parse().map_err(|e: String| bad(e))?;
    let wrong = |detail: String| SigningError::WrongContent { what: what.clone(), detail };
    if comment.kind != expected {
        return Err(wrong(format!("its trusted comment says kind={:?}", comment.kind)));
    }
    let actual = Integrity::of_bytes(bytes);
    if comment.sha384 != actual {
        return Err(wrong(format!("it names {} but these bytes are {actual}", comment.sha384)));
    }
    Ok(comment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let text = pair.sk.to_box(None).unwrap().into_string();
        SecretKey::load(&super::super::KeySource::Text { env: "TEST", text }, None).unwrap()
    }

    #[test]
    fn a_signature_verifies_and_names_the_bytes() {
        let key = key();
        let v = Version::new(1, 4, 0);
        let sig = sign_manifest(&key, b"{}", &v).unwrap();
        let comment = verify_signature(b"{}", &sig, key.public_key(), SignedKind::Manifest).unwrap();
        assert_eq!((comment.version.as_str(), comment.sha384), ("1.4.0", Integrity::of_bytes(b"{}")));
    }

    #[test]
    fn changed_bytes_another_kind_or_another_key_are_refused() {
        let key = key();
        let sig = sign_index(&key, b"{\"a\":1}", None).unwrap();
        let err = verify_signature(b"{\"a\":2}", &sig, key.public_key(), SignedKind::Index).unwrap_err();
        assert!(matches!(err, SigningError::BadSignature { .. }), "{err}");
        let err = verify_signature(b"{\"a\":1}", &sig, key.public_key(), SignedKind::Manifest).unwrap_err();
        assert!(matches!(err, SigningError::WrongContent { .. }), "{err}");
        let other = self::key();
        let err = verify_signature(b"{\"a\":1}", &sig, other.public_key(), SignedKind::Index).unwrap_err();
        assert!(matches!(err, SigningError::KeyIdMismatch { .. }), "{err}");
        assert_eq!(err.exit_code(), 3);
    }

    #[test]
    fn a_genuine_signature_with_another_hash_in_its_comment_is_refused() {
        // What a replayed signature looks like once the prehash matches: the
        // comment check alone must catch it.
        let key = key();
        let comment = TrustedComment {
            kind: SignedKind::Index,
            version: "1.0.0".into(),
            sha384: Integrity::of_bytes(b"old index"),
            time: 1,
        };
        let sig = sign(&key, b"new index", &comment).unwrap();
        let err = verify_signature(b"new index", &sig, key.public_key(), SignedKind::Index).unwrap_err();
        assert!(matches!(err, SigningError::WrongContent { .. }), "{err}");
    }

    #[test]
    fn content_addressed_names_sit_beside_the_object() {
        let name = content_addressed_signature_key("api/sdk/sri", b"");
        assert!(name.starts_with("api/sdk/sigs/sri-38b060a751ac9638"), "{name}");
        assert!(name.ends_with(".minisig"));
        assert_eq!(index_signature_key("api/sdk/sri"), "api/sdk/sri.minisig");
        let url = content_addressed_signature_key("https://cdn.example/api/sdk/sri", b"");
        assert!(url.starts_with("https://cdn.example/api/sdk/sigs/sri-"), "{url}");
    }
}
