//! The header policy: the `Content-Type` and `Cache-Control` each class of
//! object is stored with, and `serve` and `verify` expect. Decided here and
//! nowhere else, so a change is one edit and no two copies can drift.
//!
//! | object | `Cache-Control` | `Content-Type` |
//! | --- | --- | --- |
//! Files signed for signature-based SRI also carry `Unencoded-Digest`,
//! `Signature-Input` and `Signature`, the same for a version's file and its
//! `latest/` copy ([`crate::signing::SignedHeaders`]).
//!
//! | `sdk/<version>/…` | `public, max-age=31536000, immutable` | by extension ([`crate::content_type`]) |
//! | `sdk/latest/…` | short, configurable (default `public, max-age=300`), never `immutable` | same as the versioned file |
//! | `api/sdk/sri` | `public, max-age=60` (configurable in `serve`), never `immutable` | `application/json` |
//! | manifests, the pointer, intents | `no-cache` | `application/json` |
//!
//! Why: versioned URLs never change, so browsers and CDNs may keep them for a
//! year; `latest/` and the index change on every promotion, and an
//! `immutable` there would pin clients to a stale build or stale hashes.

use crate::manifest::FileEntry;
use crate::store::Headers;

/// `Cache-Control` of versioned files: they never change.
pub(crate) const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Default `Cache-Control` of `latest/` files: they change on every promotion.
pub(crate) const DEFAULT_LATEST_CACHE_CONTROL: &str = "public, max-age=300";
/// `Cache-Control` of the SRI index.
pub(crate) const INDEX_CACHE_CONTROL: &str = "public, max-age=60";
/// `Cache-Control` of internal bookkeeping objects (manifests, pointer, intents).
pub(crate) const INTERNAL_CACHE_CONTROL: &str = "no-cache";
/// `Content-Type` of JSON objects.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json";

/// Headers of a file under `sdk/<version>/`.
pub(crate) fn versioned_file(entry: &FileEntry) -> Headers {
    file(entry, IMMUTABLE_CACHE_CONTROL)
}

/// Headers of a file under `sdk/latest/`, with the configured `cache_control`:
/// the versioned file's, signature headers included (they depend on the
/// bytes only), with a `Cache-Control` that lets it change.
pub(crate) fn latest_file(entry: &FileEntry, cache_control: &str) -> Headers {
    file(entry, cache_control)
}

fn file(entry: &FileEntry, cache_control: &str) -> Headers {
    Headers {
        content_type: entry.content_type.clone(),
        cache_control: cache_control.to_string(),
        sri: Some(entry.integrity.to_string()),
        signed: entry.signed.clone(),
    }
}

/// Headers of `api/sdk/sri`.
pub(crate) fn index() -> Headers {
    json(INDEX_CACHE_CONTROL)
}

/// Headers of bookkeeping objects: manifests, the channel pointer, intents.
pub(crate) fn bookkeeping() -> Headers {
    json(INTERNAL_CACHE_CONTROL)
}

fn json(cache_control: &str) -> Headers {
    Headers { content_type: JSON_CONTENT_TYPE.into(), cache_control: cache_control.into(), ..Headers::default() }
}

/// Headers of a detached signature (`.minisig`): content-addressed copies
/// never change; the others change with what they sign.
pub(crate) fn signature(immutable: bool) -> Headers {
    Headers {
        content_type: SIGNATURE_CONTENT_TYPE.into(),
        cache_control: if immutable { IMMUTABLE_CACHE_CONTROL } else { INDEX_CACHE_CONTROL }.into(),
        ..Headers::default()
    }
}

/// `Content-Type` of minisign signatures (text lines).
pub(crate) const SIGNATURE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The `Cache-Control` a file is served with when the store kept none.
pub(crate) fn default_file_cache_control(latest: bool) -> &'static str {
    if latest { DEFAULT_LATEST_CACHE_CONTROL } else { IMMUTABLE_CACHE_CONTROL }
}

/// Whether a `Cache-Control` value carries the `immutable` directive
/// (directives are case-insensitive, RFC 9111 §5.2).
pub(crate) fn is_immutable(cache_control: &str) -> bool {
    cache_control.split(',').any(|directive| directive.trim().eq_ignore_ascii_case("immutable"))
}

/// Checks a `Cache-Control` value for something that changes (`latest/`, the
/// index): never `immutable`, non-empty, printable ASCII (a header value).
/// `what` names the object and why, for the message.
pub(crate) fn check_mutable_cache_control(value: &str, what: &str) -> Result<(), String> {
    if is_immutable(value) {
        return Err(format!("{what}; `immutable` would pin clients to a stale copy"));
    }
    if value.trim().is_empty() || value.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err("give a printable ASCII Cache-Control value such as \"public, max-age=300\"".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_is_a_case_insensitive_directive() {
        assert!(is_immutable(IMMUTABLE_CACHE_CONTROL));
        assert!(is_immutable("public, Immutable"));
        assert!(is_immutable("IMMUTABLE"));
        assert!(!is_immutable(DEFAULT_LATEST_CACHE_CONTROL));
        assert!(!is_immutable("public, x-not-immutable-really=1"));
    }

    #[test]
    fn mutable_objects_refuse_immutable_and_non_ascii() {
        assert!(check_mutable_cache_control("public, max-age=31536000, IMMUTABLE", "latest/").is_err());
        assert!(check_mutable_cache_control("public, max-age=60", "latest/").is_ok());
        assert!(check_mutable_cache_control("max-age=60, é", "latest/").is_err());
        assert!(check_mutable_cache_control("  ", "latest/").is_err());
    }

    #[test]
    fn each_class_gets_its_policy() {
        let integrity = crate::integrity::Integrity::of_bytes(b"x");
        let signed = crate::signing::SignedHeaders {
            unencoded_digest: "d".into(),
            signature_input: "i".into(),
            signature: "s".into(),
        };
        let entry =
            FileEntry { integrity, size: 1, content_type: "text/css; charset=utf-8".into(), signed: Some(signed) };
        let versioned = versioned_file(&entry);
        assert_eq!(versioned.cache_control, IMMUTABLE_CACHE_CONTROL);
        assert_eq!(versioned.sri, Some(integrity.to_string()));
        let latest = latest_file(&entry, "max-age=5");
        assert_eq!(latest.cache_control, "max-age=5");
        // Signature headers depend on the bytes only: the same on both copies.
        assert_eq!((&latest.signed, &latest.content_type), (&versioned.signed, &versioned.content_type));
        assert_eq!(
            (index().content_type.as_str(), index().cache_control.as_str()),
            (JSON_CONTENT_TYPE, "public, max-age=60")
        );
        assert_eq!(bookkeeping().cache_control, INTERNAL_CACHE_CONTROL);
        assert_eq!(bookkeeping().sri, None);
    }
}
