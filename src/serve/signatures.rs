//! `GET|HEAD /api/sdk/sri.minisig`, `/api/sdk/sigs/<name>` and
//! `/api/sdk/manifests/<version>.json[.minisig]`: what a customer needs to check the
//! index and the sealed manifests against the publisher's key (issue 15).
//! Small objects, read whole, with the headers they were stored with; only
//! these names are served (never intents, the pointer or a partial upload),
//! and a manifest or its signature only for a sealed version.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;

use super::error::ApiError;
use super::negotiate::{if_match_fails, not_modified, not_modified_response, precondition_failed, store_etag};
use super::state::ServeState;
use crate::layout;
use crate::signing::SIGNATURE_SUFFIX;
use crate::store::Key;

/// `GET|HEAD /api/sdk/sri.minisig`.
pub(super) async fn index_signature(
    State(state): State<Arc<ServeState>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = Key::trusted(crate::signing::index_signature_key(layout::INDEX_KEY));
    object(&state, key, &method, &headers).await
}

/// `GET|HEAD /api/sdk/sigs/<name>`: only `sri-<96 hex>.minisig`.
pub(super) async fn signature_copy(
    State(state): State<Arc<ServeState>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hex = name.strip_prefix("sri-").and_then(|n| n.strip_suffix(SIGNATURE_SUFFIX));
    if !hex.is_some_and(|h| h.len() == 96 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))) {
        return Err(ApiError::not_found(format!("{name} is not a signature name")));
    }
    // The name is checked above: it is the content-addressed name of an index signature.
    let key = Key::trusted(format!("{}{name}", crate::signing::signatures_dir(layout::INDEX_KEY)));
    object(&state, key, &method, &headers).await
}

/// `GET|HEAD /api/sdk/manifests/<version>.json` and `…json.minisig`, sealed
/// versions only (under the API prefix: nothing outside `sdk/` and `api/sdk/`
/// is ever served).
pub(super) async fn manifest(
    State(state): State<Arc<ServeState>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (stem, signature) = match name.strip_suffix(SIGNATURE_SUFFIX) {
        Some(stem) => (stem, true),
        None => (name.as_str(), false),
    };
    let version = stem
        .strip_suffix(".json")
        .and_then(|v| crate::version::parse(v).ok())
        .ok_or_else(|| ApiError::not_found(format!("{name} is not a manifest name")))?;
    if state.sealed_manifest(&version).await?.is_none() {
        return Err(ApiError::not_found(format!("version {version} is not published")));
    }
    let seal = layout::manifest(&version);
    let key = if signature { Key::trusted(format!("{seal}{SIGNATURE_SUFFIX}")) } else { seal };
    object(&state, key, &method, &headers).await
}

async fn object(state: &ServeState, key: Key, method: &Method, headers: &HeaderMap) -> Result<Response, ApiError> {
    let (bytes, meta) =
        state.store.get(&key).await?.ok_or_else(|| ApiError::not_found(format!("{key} is not in the store")))?;
    let tag = store_etag(&meta.etag);
    let tag_text = tag.as_ref().and_then(|t| t.to_str().ok()).unwrap_or(&meta.etag);
    if if_match_fails(headers, tag_text) {
        return Err(precondition_failed(key.as_str(), tag_text));
    }
    let mut response = if not_modified(headers, &meta.etag) {
        not_modified_response()
    } else {
        // HEAD: GET's headers, Content-Length included, without the body.
        let length = HeaderValue::from(bytes.len());
        let body = if *method == Method::HEAD { Body::empty() } else { Body::from(bytes) };
        let mut response = Response::new(body);
        response.headers_mut().insert(header::CONTENT_LENGTH, length);
        response
    };
    let stored = meta.headers.unwrap_or_default();
    let out = response.headers_mut();
    for (name, value) in [(header::CONTENT_TYPE, stored.content_type), (header::CACHE_CONTROL, stored.cache_control)] {
        if let Ok(value) = HeaderValue::from_str(&value)
            && !value.is_empty()
        {
            out.insert(name, value);
        }
    }
    if let Some(etag) = tag {
        out.insert(header::ETAG, etag);
    }
    Ok(response)
}
