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
//! member after "sig1=">`. The values depend only on the body's SHA-512 and
//! the keys, so they are computed once when publishing and stored with the
//! object (and in its manifest entry).
//!
//! Several keys sign one body during a key rotation: one member per key
//! (`sig1`, `sig2`, …) in both `Signature-Input` and `Signature`. The browser
//! evaluates every member tagged `ed25519-integrity` and accepts the body if
//! one whose `keyid` is a key the page names verifies (spec, "validate an
//! integrity signature"), so pages pinning the old key and pages pinning the
//! new one both run it.
//!
//! Checking ([`verify_sri_headers`]) parses the values as structured fields
//! (`sfv`) and rebuilds the base from the parsed members, the way a browser
//! does, so a CDN that re-serialises the headers (spaces after `;`) is judged
//! on what it means, not on its spelling.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sfv::{BareItem, Dictionary, FieldType, ListEntry, ListSerializer, Parser};
use sha2::{Digest, Sha512};

use super::{SecretKey, SigningError};

/// `Unencoded-Digest` header name (lower-case, as HTTP/2 sends it).
pub(crate) const UNENCODED_DIGEST: &str = "unencoded-digest";
/// `Signature-Input` header name.
pub(crate) const SIGNATURE_INPUT: &str = "signature-input";
/// `Signature` header name.
pub(crate) const SIGNATURE: &str = "signature";
/// The `tag` parameter the browser requires.
const TAG: &str = "ed25519-integrity";
/// The most keys that sign one body: the old and the new key of a rotation,
/// with room for an emergency key. S3 keeps at most 2 KB of user metadata.
pub(crate) const MAX_SRI_KEYS: usize = 4;
/// A SHA-512 digest.
pub(crate) type Sha512Digest = [u8; 64];

/// The three header values for one body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHeaders {
    /// `Unencoded-Digest`: `sha-512=:…:`.
    #[serde(rename = "unencoded-digest")]
    pub unencoded_digest: String,
    /// `Signature-Input`: `sig1=("unencoded-digest";sf);keyid="…";tag="ed25519-integrity"`, one member per key.
    #[serde(rename = "signature-input")]
    pub signature_input: String,
    /// `Signature`: `sig1=:…:`, one member per key.
    #[serde(rename = "signature")]
    pub signature: String,
}

impl SignedHeaders {
    /// (header name, value) pairs, for a store's metadata or a response.
    pub(crate) fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (UNENCODED_DIGEST, &self.unencoded_digest),
            (SIGNATURE_INPUT, &self.signature_input),
            (SIGNATURE, &self.signature),
        ]
    }

    /// The headers from (name, value) pairs such as a store's metadata;
    /// `None` unless all three are present.
    pub fn from_pairs<'a>(mut get: impl FnMut(&str) -> Option<&'a str>) -> Option<SignedHeaders> {
        Some(SignedHeaders {
            unencoded_digest: get(UNENCODED_DIGEST)?.to_string(),
            signature_input: get(SIGNATURE_INPUT)?.to_string(),
            signature: get(SIGNATURE)?.to_string(),
        })
    }
}

/// The SHA-512 of `body` (planning computes it while streaming instead).
pub fn sha512_of(body: &[u8]) -> Sha512Digest {
    Sha512::digest(body).into()
}

/// The header values that make a body with SHA-512 `digest` verifiable under
/// each of `keys` (in order: `sig1` is the first key's).
pub fn sri_headers(digest: &Sha512Digest, keys: &[SecretKey]) -> Result<SignedHeaders, SigningError> {
    let failed = |detail: String| SigningError::Sign { what: "the response headers".into(), detail };
    if keys.is_empty() || keys.len() > MAX_SRI_KEYS {
        return Err(failed(format!("sign with 1 to {MAX_SRI_KEYS} keys, not {}", keys.len())));
    }
    let unencoded_digest = digest_value(digest);
    let mut inputs = Vec::new();
    let mut signatures = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let public = key.public_key().ed25519();
        let pair = Ed25519KeyPair::from_seed_and_public_key(&key.seed, &public)
            .map_err(|e| failed(format!("the key's Ed25519 halves do not match ({e})")))?;
        let label = format!("sig{}", i + 1);
        let params = signature_params(&public);
        let base = signature_base(&unencoded_digest, &params);
        signatures.push(format!("{label}=:{}:", STANDARD.encode(pair.sign(base.as_bytes()).as_ref())));
        inputs.push(format!("{label}={params}"));
    }
    Ok(SignedHeaders { unencoded_digest, signature_input: inputs.join(", "), signature: signatures.join(", ") })
}

/// The keys (raw Ed25519 public keys) the headers carry signatures of, in
/// member order; only members tagged `ed25519-integrity` count.
pub fn sri_key_ids(headers: &SignedHeaders) -> Result<Vec<[u8; 32]>, SigningError> {
    let inputs = parse_dictionary(SIGNATURE_INPUT, &headers.signature_input)?;
    Ok(tagged_members(&inputs).filter_map(|(_, entry)| key_id(entry)).collect())
}

/// Checks `headers` the way the browser does for `integrity="ed25519-<public>"`
/// and a body whose SHA-512 is `digest`: the `Unencoded-Digest` is the body's,
/// and a member tagged `ed25519-integrity` names `public` and verifies.
pub fn verify_sri_headers(
    digest: &Sha512Digest,
    headers: &SignedHeaders,
    public: &[u8; 32],
) -> Result<(), SigningError> {
    let bad = |detail: String| SigningError::BadSignature { what: "this file (signature-based SRI)".into(), detail };
    let digests = parse_dictionary(UNENCODED_DIGEST, &headers.unencoded_digest)?;
    let ours = digests.get("sha-512").and_then(item_bytes);
    if digests.len() != 1 || ours != Some(&digest[..]) {
        return Err(bad(format!(
            "Unencoded-Digest is {:?}, the body's is {:?}",
            headers.unencoded_digest,
            digest_value(digest)
        )));
    }
    let inputs = parse_dictionary(SIGNATURE_INPUT, &headers.signature_input)?;
    let signatures = parse_dictionary(SIGNATURE, &headers.signature)?;
    let Some((label, input)) = tagged_members(&inputs).find(|(_, entry)| key_id(entry) == Some(*public)) else {
        let named: Vec<String> =
            tagged_members(&inputs).filter_map(|(_, e)| key_id(e)).map(|k| STANDARD.encode(k)).collect();
        return Err(bad(format!(
            "no signature by ed25519-{} (signed by: {})",
            STANDARD.encode(public),
            if named.is_empty() { "no key".to_string() } else { named.join(", ") }
        )));
    };
    if !covers_only_the_digest(input) {
        return Err(bad(format!("Signature-Input member {label} does not cover exactly (\"unencoded-digest\";sf)")));
    }
    let signature = signatures
        .get(label.as_str())
        .and_then(item_bytes)
        .ok_or_else(|| bad(format!("Signature has no byte-sequence member {label}")))?;
    // Both lines as the browser rebuilds them: from the parsed values, re-serialised.
    let digest_line = digests.serialize().unwrap_or_default();
    let mut params = ListSerializer::new();
    params.members([input]);
    let params = params.finish().unwrap_or_default();
    let base = signature_base(&digest_line, &params);
    UnparsedPublicKey::new(&ED25519, public)
        .verify(base.as_bytes(), signature)
        .map_err(|_| bad(format!("signature {label} by this key does not verify over these bytes")))
}

fn parse_dictionary(name: &str, value: &str) -> Result<Dictionary, SigningError> {
    Parser::new(value).parse::<Dictionary>().map_err(|e| SigningError::BadSignature {
        what: "this file (signature-based SRI)".into(),
        detail: format!("{name} {value:?} is not a structured-field dictionary ({e})"),
    })
}

/// The members of `Signature-Input` the SRI profile evaluates.
fn tagged_members(inputs: &Dictionary) -> impl Iterator<Item = (String, &ListEntry)> {
    inputs.iter().filter_map(|(label, entry)| {
        let ListEntry::InnerList(list) = entry else { return None };
        let tag = list.params.get("tag").and_then(BareItem::as_string)?;
        (tag.as_str() == TAG).then(|| (label.as_str().to_string(), entry))
    })
}

/// The raw key a member's `keyid` names (base64, as the spec decodes it).
fn key_id(entry: &ListEntry) -> Option<[u8; 32]> {
    let ListEntry::InnerList(list) = entry else { return None };
    let text = list.params.get("keyid").and_then(BareItem::as_string)?;
    STANDARD.decode(text.as_str()).ok()?.try_into().ok()
}

/// The profile's one covered component: `("unencoded-digest";sf)`.
fn covers_only_the_digest(entry: &ListEntry) -> bool {
    let ListEntry::InnerList(list) = entry else { return false };
    let [item] = list.items.as_slice() else { return false };
    item.bare_item.as_string().is_some_and(|s| s.as_str() == UNENCODED_DIGEST)
        && item.params.len() == 1
        && item.params.get("sf").and_then(BareItem::as_boolean) == Some(true)
}

fn item_bytes(entry: &ListEntry) -> Option<&[u8]> {
    match entry {
        ListEntry::Item(item) => item.bare_item.as_byte_sequence(),
        ListEntry::InnerList(_) => None,
    }
}

/// `sha-512=:<base64>:`, a structured-field dictionary with one byte sequence.
fn digest_value(digest: &Sha512Digest) -> String {
    format!("sha-512=:{}:", STANDARD.encode(digest))
}

/// The inner list and parameters, as they appear after `sigN=`.
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
            digest_value(&sha512_of(b"abc")),
            "sha-512=:3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==:"
        );
    }

    #[test]
    fn our_values_are_canonical_structured_fields() {
        let value = format!("sig1={}, sig2={}", signature_params(&[1; 32]), signature_params(&[2; 32]));
        let parsed = Parser::new(&value).parse::<Dictionary>().unwrap();
        assert_eq!(parsed.serialize().as_deref(), Some(value.as_str()));
        let digest = digest_value(&sha512_of(b""));
        let parsed = Parser::new(&digest).parse::<Dictionary>().unwrap();
        assert_eq!(parsed.serialize().as_deref(), Some(digest.as_str()));
    }
}
