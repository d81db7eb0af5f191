//! Signature-based SRI (WICG `signature-based-sri`, a profile of RFC 9421
//! HTTP Message Signatures): the three response headers that let a browser
//! run `<script integrity="ed25519-KEY">` only if the bytes were signed by KEY.
//!
//! ```text
//! Unencoded-Digest: sha-512=:<base64 SHA-512 of the body>:
//! Signature-Input: sig1=("unencoded-digest";sf);keyid="<base64 raw key>";tag="ed25519-integrity"
//! Signature: sig1=:<base64 Ed25519 signature of the signature base>:
//! ```
//! The signature base (RFC 9421 §2.5) is two lines joined by one `\n`, with
//! no newline at the end: the component line `"unencoded-digest";sf: <the
//! Unencoded-Digest value>` and `"@signature-params": <the Signature-Input
//! value after "sig1=">`. The values depend only on the body and the key, so
//! they are computed once when publishing and stored with the object.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha512};

use super::{SecretKey, SigningError};

/// `Unencoded-Digest` header name (lower-case, as HTTP/2 sends it).
pub const UNENCODED_DIGEST: &str = "unencoded-digest";
/// `Signature-Input` header name.
pub const SIGNATURE_INPUT: &str = "signature-input";
/// `Signature` header name.
pub const SIGNATURE: &str = "signature";
/// The signature's label in `Signature-Input` and `Signature`.
const LABEL: &str = "sig1";
/// The `tag` parameter the browser requires.
const TAG: &str = "ed25519-integrity";

/// The three header values for one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Unencoded-Digest`: `sha-512=:…:`.
    pub unencoded_digest: String,
    /// `Signature-Input`: `sig1=("unencoded-digest";sf);keyid="…";tag="ed25519-integrity"`.
    pub signature_input: String,
    /// `Signature`: `sig1=:…:`.
    pub signature: String,
}

impl SignedHeaders {
    /// (header name, value) pairs, for a store's metadata or a response.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (UNENCODED_DIGEST, &self.unencoded_digest),
            (SIGNATURE_INPUT, &self.signature_input),
            (SIGNATURE, &self.signature),
        ]
    }
}

/// The header values that make `body` verifiable under `key`'s Ed25519 key.
pub fn sri_headers(body: &[u8], key: &SecretKey) -> Result<SignedHeaders, SigningError> {
    let public = key.public_key().ed25519();
    let pair = Ed25519KeyPair::from_seed_and_public_key(&key.seed, &public).map_err(|e| SigningError::Sign {
        what: "the response headers".into(),
        detail: format!("the key's Ed25519 halves do not match ({e})"),
    })?;
    let unencoded_digest = digest_value(body);
    let params = signature_params(&public);
    let base = signature_base(&unencoded_digest, &params);
    let signature = STANDARD.encode(pair.sign(base.as_bytes()).as_ref());
    Ok(SignedHeaders {
        unencoded_digest,
        signature_input: format!("{LABEL}={params}"),
        signature: format!("{LABEL}=:{signature}:"),
    })
}

/// Checks `headers` the way the browser does for `integrity="ed25519-<public>"`:
/// the digest is the body's, the input names `public`, the signature verifies.
pub fn verify_sri_headers(body: &[u8], headers: &SignedHeaders, public: &[u8; 32]) -> Result<(), SigningError> {
    let bad = |detail: String| SigningError::BadSignature { what: "the response headers".into(), detail };
    let digest = digest_value(body);
    if headers.unencoded_digest != digest {
        return Err(bad(format!("Unencoded-Digest is {:?}, the body's is {digest:?}", headers.unencoded_digest)));
    }
    let params = signature_params(public);
    if headers.signature_input != format!("{LABEL}={params}") {
        return Err(bad(format!("Signature-Input {:?} does not name this key and profile", headers.signature_input)));
    }
    let signature = headers
        .signature
        .strip_prefix(&format!("{LABEL}=:"))
        .and_then(|s| s.strip_suffix(':'))
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| bad(format!("Signature {:?} is not {LABEL}=:<base64>:", headers.signature)))?;
    let base = signature_base(&digest, &params);
    UnparsedPublicKey::new(&ED25519, public)
        .verify(base.as_bytes(), &signature)
        .map_err(|_| bad("the Ed25519 signature does not verify under this key".into()))
}

/// `sha-512=:<base64>:`, a structured-field dictionary with one byte sequence.
fn digest_value(body: &[u8]) -> String {
    format!("sha-512=:{}:", STANDARD.encode(Sha512::digest(body)))
}

/// The inner list and parameters, as they appear after `sig1=`.
fn signature_params(public: &[u8; 32]) -> String {
    format!("(\"{UNENCODED_DIGEST}\";sf);keyid=\"{}\";tag=\"{TAG}\"", STANDARD.encode(public))
}

/// RFC 9421 §2.5: one line per covered component, then `@signature-params`;
/// `\n` between lines, none at the end.
fn signature_base(digest_value: &str, params: &str) -> String {
    format!("\"{UNENCODED_DIGEST}\";sf: {digest_value}\n\"@signature-params\": {params}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the WICG spec (index.bs, "Examples"), with the
    /// RFC 9421 B.2 test key: our base must produce its exact signature.
    #[test]
    fn the_signature_base_matches_the_spec_example() {
        let seed = STANDARD.decode("n4Ni+HpISpVObnQMW0wOhCKROaIKqKtW/2ZYb2p9KcU=").unwrap();
        let public = STANDARD.decode("JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=").unwrap();
        let pair = Ed25519KeyPair::from_seed_and_public_key(&seed, &public).unwrap();
        let params = signature_params(&public.try_into().unwrap());
        assert_eq!(
            params,
            "(\"unencoded-digest\";sf);keyid=\"JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\";tag=\"ed25519-integrity\""
        );
        let base = signature_base("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", &params);
        let signature = STANDARD.encode(pair.sign(base.as_bytes()).as_ref());
        assert_eq!(
            signature,
            "SbCdPUyjc0IBJjFbVRWs81ucEUcFz87b37nQ63d6kDW+/JvDmET6O5cSdwlddePvlwemLdaWFuY6pQGO+hrkAg=="
        );
    }

    #[test]
    fn the_digest_is_sha512_of_the_body() {
        // `printf abc | openssl dgst -sha512 -binary | base64`
        assert_eq!(
            digest_value(b"abc"),
            "sha-512=:3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==:"
        );
    }
}
