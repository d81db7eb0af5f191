//! The HTTP rules the service answers by: entity tags and `If-None-Match`
//! (RFC 9110 §8.8.3, §13.1.2) and `Accept-Encoding` negotiation (§12.5.3).
//!
//! Pure functions over header values, unit-tested without a server.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

/// A content coding the index is available in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    /// Brotli (`br`).
    Brotli,
    /// `gzip`.
    Gzip,
    /// No coding.
    Identity,
}

impl Coding {
    /// The `Content-Encoding` token, `None` for identity.
    pub(super) fn token(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }
}

/// A strong entity tag derived from content: `"<32 hex of SHA-256>"`.
/// Content-derived, so every replica of the service over any backend agrees.
pub(super) fn entity_tag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Our etags are built from hex digits and quotes: always valid header values.
pub(super) fn header_value(etag: &str) -> HeaderValue {
    HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// `304 Not Modified`, empty: the answer when [`not_modified`] holds.
pub(super) fn not_modified_response() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response
}

/// The store's etag as a header value, quoted if the store returned it bare.
pub(super) fn store_etag(raw: &str) -> Option<HeaderValue> {
    let quoted = if raw.starts_with('"') || raw.starts_with("W/\"") { raw.to_string() } else { format!("\"{raw}\"") };
    HeaderValue::from_str(&quoted).ok()
}

/// Whether `If-None-Match` in `headers` matches `etag` (weak comparison, as
/// the RFC requires for this header; `*` matches any current representation).
pub(super) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let ours = etag.strip_prefix("W/").unwrap_or(etag);
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |tag| {
            let tag = tag.trim();
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours
        },
    )
}

/// Whether an `If-Match` in `headers` fails for the representation tagged
/// `etag` (RFC 9110 §13.1.1: strong comparison, so a weak tag never
/// matches; `*` holds for any current representation). No `If-Match`: no
/// condition, it does not fail. The answer to a failed one is 412.
pub(super) fn if_match_fails(headers: &HeaderMap, etag: &str) -> bool {
    let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return false;
    }
    let strong = !etag.starts_with("W/");
    !values.filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|tag| {
        let tag = tag.trim();
        tag == "*" || (strong && tag == etag)
    })
}

/// 412 for a failed `If-Match` on `what`, naming the current tag.
pub(super) fn precondition_failed(what: &str, etag: &str) -> super::error::ApiError {
    super::error::ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        format!("If-Match names no current ETag of {what} (it is {etag}); fetch it again without If-Match"),
    )
}

/// The best coding among those `available` (in our order of preference)
/// that the client's `Accept-Encoding` allows; identity when none is.
pub(super) fn choose_coding(headers: &HeaderMap, available: &[Coding]) -> Coding {
    let mut offers: Vec<(&str, f32)> = Vec::new();
    for value in headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()) {
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim();
            if name.is_empty() {
                continue;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            offers.push((name, q));
        }
    }
    let quality = |token: &str| {
        let exact = offers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(token) || (token == "gzip" && n.eq_ignore_ascii_case("x-gzip")));
        exact.or_else(|| offers.iter().find(|(n, _)| *n == "*")).map_or(0.0, |(_, q)| *q)
    };
    let mut best = (Coding::Identity, 0.0_f32);
    for &coding in available {
        let Some(token) = coding.token() else { continue };
        let q = quality(token);
        if q > best.1 {
            best = (coding, q);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    const ALL: [Coding; 2] = [Coding::Brotli, Coding::Gzip];

    #[test]
    fn brotli_is_preferred_then_gzip_then_identity() {
        let pick = |v: &[&str]| choose_coding(&headers(header::ACCEPT_ENCODING, v), &ALL);
        assert_eq!(pick(&["gzip, deflate, br, zstd"]), Coding::Brotli);
        assert_eq!(pick(&["gzip"]), Coding::Gzip);
        assert_eq!(pick(&["x-gzip"]), Coding::Gzip);
        assert_eq!(pick(&["GZip, X-GZIP;q=0.1"]), Coding::Gzip, "codings are case-insensitive");
        assert_eq!(pick(&["BR"]), Coding::Brotli);
        assert_eq!(pick(&["gzip;q=1.0, br;q=0.5"]), Coding::Gzip);
        assert_eq!(pick(&["br;q=0, gzip"]), Coding::Gzip);
        assert_eq!(pick(&["*"]), Coding::Brotli);
        assert_eq!(pick(&["*;q=0, identity"]), Coding::Identity);
        assert_eq!(pick(&["deflate"]), Coding::Identity);
        assert_eq!(pick(&[]), Coding::Identity);
        assert_eq!(pick(&["deflate", "gzip"]), Coding::Gzip);
        assert_eq!(choose_coding(&headers(header::ACCEPT_ENCODING, &["br"]), &[Coding::Gzip]), Coding::Identity);
    }

    #[test]
    fn if_none_match_uses_weak_comparison_lists_and_star() {
        let check = |v: &[&str]| not_modified(&headers(header::IF_NONE_MATCH, v), "\"abc\"");
        assert!(check(&["\"abc\""]));
        assert!(check(&["W/\"abc\""]));
        assert!(check(&["\"x\", \"abc\""]));
        assert!(check(&["\"x\"", "\"abc\""]));
        assert!(check(&["*"]));
        assert!(!check(&["\"abc-gzip\""]));
        assert!(!check(&[]));
    }

    #[test]
    fn if_match_uses_strong_comparison_lists_and_star() {
        let fails = |v: &[&str]| if_match_fails(&headers(header::IF_MATCH, v), "\"abc\"");
        assert!(!fails(&[]), "no condition");
        assert!(!fails(&["\"abc\""]));
        assert!(!fails(&["\"x\", \"abc\""]));
        assert!(!fails(&["*"]));
        assert!(fails(&["\"nope\""]));
        assert!(fails(&["W/\"abc\""]), "weak tags never match strongly");
        assert!(if_match_fails(&headers(header::IF_MATCH, &["W/\"abc\""]), "W/\"abc\""));
    }

    #[test]
    fn etags_are_quoted_and_content_derived() {
        assert_eq!(entity_tag(b"a"), entity_tag(b"a"));
        assert_ne!(entity_tag(b"a"), entity_tag(b"b"));
        assert_eq!(entity_tag(b"a").len(), 34);
        assert_eq!(store_etag("abc").unwrap(), "\"abc\"");
        assert_eq!(store_etag("\"abc\"").unwrap(), "\"abc\"");
        assert!(store_etag("a\nb").is_none());
    }
}
