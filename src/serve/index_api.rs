//! `/api/sdk/sri` (the whole index) and `/api/sdk/sri/<version|latest>`
//! (one version's entries), answered from memory.
//!
//! The index is sent byte for byte as the store holds it, or its gzip/br
//! form when the client asks (`Vary: Accept-Encoding`, one strong ETag per
//! representation, see snapshot.rs). A version's entries come from its
//! sealed manifest (read once, then cached), never from the index: they
//! are cached for a year, and the index is mutable derived data that a
//! bad write could change. `latest` moves, so it comes from the index and
//! gets the index's short `Cache-Control`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use super::error::ApiError;
use super::negotiate::{
    choose_coding, entity_tag, header_value, if_match_fails, not_modified, not_modified_response, precondition_failed,
};
use super::request_path::{Dir, parse_dir};
use super::snapshot::IndexSnapshot;
use super::state::{Loaded, ServeState};
use crate::headers::{IMMUTABLE_CACHE_CONTROL, JSON_CONTENT_TYPE};
use crate::layout;
use crate::manifest;
use crate::release::VersionEntries;

/// Headers of an index response: type, length, encoding, ETag,
/// Cache-Control and Vary here; CORS, nosniff, CORP and the request id in
/// routes.rs.
const RESPONSE_HEADERS: usize = 12;

/// `GET|HEAD /api/sdk/sri` when the router alone serves it. `App`
/// (routes.rs) answers these before the router; the router keeps the route
/// for `OPTIONS`, other methods' 405 and the test that compares the two.
/// The answer is [`index_response`]'s either way.
pub(super) async fn index(State(state): State<Arc<ServeState>>, request: Request) -> Result<Response, ApiError> {
    index_response(&state, request.method(), request.headers())
}

/// The answer to `GET|HEAD /api/sdk/sri`: the representation the client
/// accepts, or 304 when it has it.
pub(super) fn index_response(state: &ServeState, method: &Method, headers: &HeaderMap) -> Result<Response, ApiError> {
    let snapshot = require_index(state)?;
    let representation = snapshot.representation(choose_coding(headers, snapshot.codings()));
    let mut response = if not_modified(headers, &representation.etag) {
        not_modified_response()
    } else {
        let mut response = body_response(method, representation.bytes.clone(), representation.length_header.clone());
        if let Some(token) = representation.coding.token() {
            response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
        }
        response
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, representation.etag_header.clone());
    out.insert(header::CACHE_CONTROL, state.index_cache_control.clone());
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Ok(response)
}

/// `GET|HEAD /api/sdk/sri/<version|latest>`.
pub(super) async fn version(
    State(state): State<Arc<ServeState>>,
    method: Method,
    headers: HeaderMap,
    Path(dir): Path<String>,
) -> Result<Response, ApiError> {
    let dir = parse_dir(&dir)?;
    let entries = match &dir {
        Dir::Latest => {
            let snapshot = require_index(&state)?;
            let files = snapshot.index.for_version(layout::LATEST);
            match (&snapshot.index.version, files.is_empty()) {
                (Some(v), false) => VersionEntries { version: v.to_string(), files },
                _ => return Err(ApiError::not_found("no version is promoted to latest yet")),
            }
        }
        // The sealed, signed manifest, never the index: the index is mutable
        // derived data, and this answer is cached for a year.
        Dir::Version(v) => {
            let name = v.to_string();
            let Some(sealed) = state.sealed_manifest(v).await? else {
                return Err(ApiError::not_found(format!("version {name} is not published")));
            };
            let files = sealed.files.iter().map(|(path, f)| (layout::index_entry(&name, path), f.integrity)).collect();
            VersionEntries { version: name, files }
        }
    };
    let bytes = bytes::Bytes::from(manifest::to_bytes(&entries));
    let etag = entity_tag(&bytes);
    if if_match_fails(&headers, &etag) {
        return Err(precondition_failed(&format!("the entries of {}", dir.name()), &etag));
    }
    let mut response = if not_modified(&headers, &etag) {
        not_modified_response()
    } else {
        let length = HeaderValue::from(bytes.len());
        body_response(&method, bytes, length)
    };
    let cache_control = match dir {
        Dir::Latest => state.index_cache_control.clone(),
        Dir::Version(_) => HeaderValue::from_static(IMMUTABLE_CACHE_CONTROL),
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, header_value(&etag));
    out.insert(header::CACHE_CONTROL, cache_control);
    Ok(response)
}

/// The index in service, or why there is none.
fn require_index(state: &ServeState) -> Result<Arc<IndexSnapshot>, ApiError> {
    match state.loaded() {
        Loaded::Index(snapshot) => Ok(snapshot),
        Loaded::NoIndex => Err(ApiError::not_found(
            "nothing is published yet: the store has no SRI index (run `sdk-cdn publish DIR --version V`)",
        )),
        Loaded::Missing { .. } => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the SRI index is missing from the store although versions are sealed; see /readyz",
        )),
        Loaded::Nothing => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the SRI index could not be loaded from the store yet; see /healthz",
        )),
    }
}

/// A JSON body (empty for HEAD, with `length`, the length the GET has).
fn body_response(method: &Method, bytes: bytes::Bytes, length: HeaderValue) -> Response {
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(bytes) };
    let mut response = Response::new(body);
    // Room for every header this route and `front` add, allocated once
    // instead of grown (and copied) twice on the busiest route.
    *response.headers_mut() = HeaderMap::with_capacity(RESPONSE_HEADERS);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    response.headers_mut().insert(header::CONTENT_LENGTH, length);
    response
}
