//! Signatures that let a customer trust what we published without trusting
//! the server that hands it out (issues 15 and 19).
//!
//! Two kinds, both Ed25519, both computed from bytes alone so the publish
//! path can make them once, before anything is written:
//!
//! - **Detached minisign signatures** over the SRI index and the sealed
//!   manifests. Customers check them with `sdk-cdn pin --pubkey` or the stock
//!   `minisign -Vm FILE -P KEY`. The signed *trusted comment* names what was
//!   signed (kind, version, SHA-384 of the bytes, time), so a stale or swapped
//!   signature is refused even though its Ed25519 math is fine: see
//!   [`TrustedComment`] and `docs/SIGNING.md`.
//! - **Signature-based SRI headers** (WICG `signature-based-sri`, an RFC 9421
//!   profile) for every served file, so a page can pin `latest/` by key
//!   (`integrity="ed25519-KEY"`): [`sri_headers`], [`verify_sri_headers`].
//!
//! API for the publish/promote/reindex/verify/serve wiring:
//! - [`SecretKey::load`] (`--sign-key FILE` / `SDK_CDN_SIGN_KEY_FILE`, key text
//!   in `SDK_CDN_SIGN_KEY`, password in `SDK_CDN_SIGN_KEY_PASSWORD`; see
//!   [`KeySource::from_env_or`]), [`PublicKey::parse`] / [`PublicKey::load`];
//! - [`sign_index`]`(key, bytes, version)` and [`sign_manifest`]`(key, bytes,
//!   version)` return the `.minisig` text to store at
//!   [`index_signature_key`] / [`content_addressed_signature_key`] and
//!   `manifests/<v>.json.minisig`;
//! - [`verify_signature`]`(bytes, minisig, pubkey, kind)` checks the Ed25519
//!   signature *and* that the trusted comment names these bytes and this kind;
//! - [`sri_headers`]`(sha512, keys)` → [`SignedHeaders`] (three header values,
//!   one signature per key), [`verify_sri_headers`], [`sri_key_ids`].
//!
//! Keys are minisign key files (from `sdk-cdn keygen` or `minisign -G`); the
//! raw Ed25519 key inside is what the SRI headers use. Crypto comes from kept
//! crates only: `minisign` for the minisign format, `ring` (already
//! built as rustls' crypto provider) for the raw Ed25519 signature the
//! browser checks.

mod comment;
mod error;
mod keygen;
mod keys;
mod minisig;
mod sri_headers;

pub(crate) use comment::NO_VERSION;
pub use comment::{SignedKind, TrustedComment};
pub use error::SigningError;
pub(crate) use keygen::{KeygenArgs, run_keygen};
pub use keys::{KeySource, PublicKey, SecretKey};
pub(crate) use minisig::{SIGNATURE_SUFFIX, index_signature_key, signatures_dir};
pub use minisig::{content_addressed_signature_key, sign_index, sign_manifest, verify_signature};
pub(crate) use sri_headers::MAX_SRI_KEYS;
pub use sri_headers::{SignedHeaders, sha512_of, sri_headers, sri_key_ids, verify_sri_headers};
