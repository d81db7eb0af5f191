//! `GET|HEAD /sdk/<version|latest>/<path>`: published files, streamed from
//! the store with the headers they were stored with.
//!
//! A version's file is served only if its sealed manifest lists it, a
//! `latest/` file only if the index in service lists it: files of a partial
//! upload are never visible. Fail closed on the bytes too (nothing is
//! served that does not hash to its published SRI):
//! - before the head is sent, what the store records about the object must
//!   agree with the publication ([`vouched`]); otherwise 502, `no-store`;
//! - the body is hashed while it streams and its last chunk is held back
//!   until the digest is the published one (checked.rs); otherwise the
//!   response is aborted short of its `Content-Length`.
//!
//! Bodies are streamed in 64 KiB reads, so memory does not grow with file
//! size; a store that stalls for `body_idle_timeout` aborts the response.
//!
//! Cross-origin use with `integrity` + `crossorigin="anonymous"` needs
//! `Access-Control-Allow-Origin` (added to every response in routes.rs);
//! `Cross-Origin-Resource-Policy: cross-origin` lets pages with COEP embed them.
//!
//! Files published with `--sri-key` carry `Unencoded-Digest`,
//! `Signature-Input` and `Signature` (signature-based SRI), sent on every
//! GET, HEAD and 304 exactly as stored; they do not depend on the request,
//! so a browser's `Accept-Signature` changes nothing and needs no `Vary`.
//! Every file response says `Accept-Ranges: none`: a partial body could not
//! be checked against them.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;

use super::checked::{self, Expected};
use super::error::ApiError;
use super::metrics;
use super::negotiate::{if_match_fails, not_modified, not_modified_response, precondition_failed, store_etag};
use super::request_path::{Dir, FileTarget, file_target};
use super::state::{Loaded, ServeState};
use crate::integrity::Integrity;
use crate::signing::SignedHeaders;
use crate::store::{Headers, ObjectMeta};

/// `GET|HEAD /sdk/{*path}`.
pub(super) async fn file(
    State(state): State<Arc<ServeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = file_target(uri.path())?;
    let Some(mut published) = published(&state, &target).await? else {
        return Err(ApiError::not_found(format!("{} is not a published file", target.entry())));
    };
    let gone = || ApiError::not_found(format!("{} is not in the store", target.entry()));
    // HEAD and revalidations need only the metadata: no body is opened.
    let conditional = headers.contains_key(header::IF_NONE_MATCH) || headers.contains_key(header::IF_MATCH);
    if method == Method::HEAD || conditional {
        let meta = state.store.head(&target.key).await?.ok_or_else(gone)?;
        published.widen_for_promotion(&state, &target, &meta).await?;
        let stored = vouched(&target, &published, &meta)?;
        stored.prove_unrecorded(&state, &target).await?;
        check_if_match(&headers, &target, &meta)?;
        if not_modified(&headers, &meta.etag) {
            return Ok(with_file_headers(not_modified_response(), &target, &meta, stored));
        }
        if method == Method::HEAD {
            return Ok(with_file_headers(Response::new(Body::empty()), &target, &meta, stored));
        }
    }
    let (reader, meta) = state.store.reader(&target.key).await?.ok_or_else(gone)?;
    published.widen_for_promotion(&state, &target, &meta).await?;
    let stored = vouched(&target, &published, &meta)?;
    stored.prove_unrecorded(&state, &target).await?;
    check_if_match(&headers, &target, &meta)?;
    let expected = Expected { key: target.key.to_string(), integrity: stored.integrity, size: meta.size };
    let body = checked::body(reader, expected, state.body_idle_timeout);
    Ok(with_file_headers(Response::new(body), &target, &meta, stored))
}

/// `If-Match` is evaluated first (RFC 9110 §13.2.2): 412 when it names no
/// current tag of the file.
fn check_if_match(headers: &HeaderMap, target: &FileTarget, meta: &ObjectMeta) -> Result<(), ApiError> {
    let etag = store_etag(&meta.etag);
    let etag = etag.as_ref().and_then(|e| e.to_str().ok()).unwrap_or(&meta.etag);
    if if_match_fails(headers, etag) {
        return Err(precondition_failed(&target.entry(), etag));
    }
    Ok(())
}

/// What publishing says a file is: the sealed manifest's entry for a
/// version's file; for `latest/`, the entries the sealed manifests give the
/// path in the versions `latest/` may hold now (see [`Published::Latest`]).
enum Published {
    Sealed {
        integrity: Integrity,
        size: u64,
    },
    /// The sealed integrity of the path in the version the index in service
    /// names (first), and, during a promotion, in the version the pointer
    /// names: the promotion copies the new files into `latest/` after the
    /// pointer moves and before the index names them. Never what the index
    /// or a record beside the bytes says on their own: both are writable.
    Latest {
        accepted: Vec<Integrity>,
        pointer_read: bool,
    },
}

/// `Some` only for a file of a sealed version, or of `latest/` as the index
/// in service lists it: files of a partial upload are never visible.
async fn published(state: &ServeState, target: &FileTarget) -> Result<Option<Published>, ApiError> {
    match &target.dir {
        Dir::Latest => {
            let Loaded::Index(snapshot) = state.loaded() else { return Ok(None) };
            let (Some(_), Some(version)) = (snapshot.index.files.get(&target.entry()), &snapshot.index.version) else {
                return Ok(None);
            };
            let mut accepted = Vec::new();
            if let Some(entry) = state.sealed_manifest(version).await?.and_then(|m| m.files.get(&target.path).cloned())
            {
                accepted.push(entry.integrity);
            }
            Ok(Some(Published::Latest { accepted, pointer_read: false }))
        }
        Dir::Version(v) => Ok(state.sealed_manifest(v).await?.and_then(|m| {
            m.files.get(&target.path).map(|f| Published::Sealed { integrity: f.integrity, size: f.size })
        })),
    }
}

impl Published {
    /// A `latest/` file whose recorded integrity is not the index version's
    /// may be a promotion's copy landing before the index names it: then the
    /// version the pointer names (read now, sealed) is accepted too. Anything
    /// else is refused by [`vouched`].
    async fn widen_for_promotion(
        &mut self,
        state: &ServeState,
        target: &FileTarget,
        meta: &ObjectMeta,
    ) -> Result<(), ApiError> {
        let Published::Latest { accepted, pointer_read } = self else { return Ok(()) };
        let recorded = meta.headers.as_ref().and_then(|h| h.sri.as_deref()).and_then(|s| s.parse::<Integrity>().ok());
        if *pointer_read || recorded.is_some_and(|r| accepted.contains(&r)) {
            return Ok(());
        }
        *pointer_read = true;
        let pointer = crate::release::read_pointer(state.store.as_ref()).await.map_err(|e| ApiError::store(&e))?;
        if let Some(stored) = pointer
            && let Some(manifest) = state.sealed_manifest(&stored.pointer.version).await?
            && let Some(entry) = manifest.files.get(&target.path)
            && !accepted.contains(&entry.integrity)
        {
            tracing::debug!(key = %target.key, version = %stored.pointer.version, "latest/ is being promoted");
            accepted.push(entry.integrity);
        }
        Ok(())
    }

    /// The integrity bytes without a record of the store must hash to: the
    /// sealed manifest's, for `latest/` the index version's (hashed before the head).
    fn unrecorded(&self, target: &FileTarget) -> Result<Integrity, ApiError> {
        match self {
            Published::Sealed { integrity, .. } => Ok(*integrity),
            Published::Latest { accepted, .. } => accepted
                .first()
                .copied()
                .ok_or_else(|| not_vouched(target, "no sealed version that latest/ serves lists it")),
        }
    }
}

/// The stored headers of a file whose record agrees with its publication,
/// and the integrity its body must hash to.
struct Vouched<'a> {
    /// As stored, or the defaults when the store has none it can vouch for.
    headers: Cow<'a, Headers>,
    integrity: Integrity,
    size: u64,
    /// Whether the store vouches for the bytes with its own record; if not,
    /// they are hashed before anything is sent ([`Vouched::prove_unrecorded`]).
    recorded: bool,
}

/// What the store records about the object must agree with what was
/// published, or the answer is 502 (`no-store`), logged and counted: no
/// head that promises a year of caching, a strong ETag or a signature is
/// sent for bytes nobody vouches for.
///
/// A version's file must have the sealed manifest's size and (when the
/// store records one) its integrity. A `latest/` file must carry one of the
/// integrities [`Published::Latest`] accepts (or, without a record, be the
/// index version's bytes): the sealed entry of the version the index names,
/// or of the version the pointer names while a promotion copies.
///
/// A store that keeps no record it can vouch for (the local store's
/// sidecar describes other bytes: changed behind its back, or replaced a
/// moment before the data during a promotion) gets the publication's
/// integrity and default headers, and the bytes are proved first.
fn vouched<'a>(target: &FileTarget, published: &Published, meta: &'a ObjectMeta) -> Result<Vouched<'a>, ApiError> {
    let key = &target.key;
    if let Published::Sealed { size, .. } = *published
        && meta.size != size
    {
        return Err(not_vouched(target, &format!("{key} is {} bytes, the sealed manifest says {size}", meta.size)));
    }
    let Some(headers) = &meta.headers else {
        let integrity = published.unrecorded(target)?;
        return Ok(Vouched { headers: Cow::Owned(Headers::default()), integrity, size: meta.size, recorded: false });
    };
    let recorded = match headers.sri.as_deref().map(str::parse::<Integrity>) {
        None => None,
        Some(Ok(recorded)) => Some(recorded),
        Some(Err(_)) => return Err(not_vouched(target, "the integrity recorded with it does not parse")),
    };
    let integrity = match published {
        Published::Sealed { integrity, .. } if recorded.is_some_and(|r| r != *integrity) => {
            return Err(not_vouched(target, "the integrity recorded with it is not the sealed manifest's"));
        }
        Published::Sealed { integrity, .. } => *integrity,
        Published::Latest { accepted, .. } => match recorded {
            Some(r) if accepted.contains(&r) => r,
            Some(_) => {
                return Err(not_vouched(
                    target,
                    "the integrity recorded with it is not the sealed manifest's of the version latest/ serves",
                ));
            }
            None => published.unrecorded(target)?,
        },
    };
    Ok(Vouched { headers: Cow::Borrowed(headers), integrity, size: meta.size, recorded: true })
}

impl Vouched<'_> {
    /// Hashes the whole object before a head is sent when the store keeps no
    /// record of it to vouch for it; 502 unless it is the published bytes.
    async fn prove_unrecorded(&self, state: &ServeState, target: &FileTarget) -> Result<(), ApiError> {
        if self.recorded {
            return Ok(());
        }
        let gone = || ApiError::not_found(format!("{} is not in the store", target.entry()));
        let (reader, _) = state.store.reader(&target.key).await?.ok_or_else(gone)?;
        let (actual, size) = Integrity::of_async_reader(reader).await.map_err(|e| ApiError::store(&e))?;
        if (actual, size) != (self.integrity, self.size) {
            return Err(not_vouched(target, &format!("its {size} bytes hash to {actual}, not {}", self.integrity)));
        }
        tracing::debug!(key = %target.key, "no record of the store vouches for it; its bytes were hashed and are the published ones");
        Ok(())
    }
}

fn not_vouched(target: &FileTarget, why: &str) -> ApiError {
    metrics::integrity_failure();
    let key = &target.key;
    tracing::error!(
        key = %key,
        "{key} was refused (502): {why}; it changed after it was published. Run `sdk-cdn verify --all` and \
         restore it from the build"
    );
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!(
            "{} does not match its published integrity in the store, so it is not served; the operator must \
             restore it (`sdk-cdn verify --all` names what changed)",
            target.entry()
        ),
    )
}

/// The stored `Content-Type` (or the one a publish would have written),
/// `Cache-Control`, the store's ETag, the signature headers and the length.
fn with_file_headers(mut response: Response, target: &FileTarget, meta: &ObjectMeta, stored: Vouched<'_>) -> Response {
    let stored = &*stored.headers;
    let content_type = match stored.content_type.as_str() {
        "" => crate::content_type::for_path(&target.path),
        stored => stored.to_string(),
    };
    let cache_control = match stored.cache_control.as_str() {
        "" => crate::headers::default_file_cache_control(matches!(target.dir, Dir::Latest)).to_string(),
        stored => stored.to_string(),
    };
    let has_body = response.status() != StatusCode::NOT_MODIFIED;
    let out = response.headers_mut();
    for (name, value) in [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache_control)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            out.insert(name, value);
        }
    }
    if let Some(etag) = store_etag(&meta.etag) {
        out.insert(header::ETAG, etag);
    }
    // Signature-based SRI: the browser checks these against the whole body,
    // so ranges are never offered (this server sends whole bodies anyway).
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    for (name, value) in stored.signed.iter().flat_map(SignedHeaders::pairs) {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), value);
        }
    }
    if has_body {
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    }
    response
}
