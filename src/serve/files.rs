//! `GET|HEAD /sdk/<version|latest>/<path>`: published files, streamed from
//! the store with the headers they were stored with.
//!
//! A file is served only if the index in service lists `<dir>/<path>`, or
//! (for a version sealed since the last refresh) its sealed manifest does:
//! files of a partial upload are never visible. Bodies are streamed in
//! [`CHUNK`]-sized reads, so memory does not grow with file size; a store
//! that stalls for `body_idle_timeout` aborts the response.
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

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use super::error::ApiError;
use super::negotiate::{not_modified, not_modified_response, store_etag};
use super::request_path::{Dir, FileTarget, file_target};
use super::state::{Loaded, ServeState};
use crate::signing::SignedHeaders;
use crate::store::{ObjectMeta, ObjectReader};

/// Bytes read from the store per body chunk.
const CHUNK: usize = 64 * 1024;

/// `GET|HEAD /sdk/{*path}`.
pub(super) async fn file(
    State(state): State<Arc<ServeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = file_target(uri.path())?;
    if !is_published(&state, &target).await? {
        return Err(ApiError::not_found(format!("{} is not a published file", target.entry())));
    }
    let gone = || ApiError::not_found(format!("{} is not in the store", target.entry()));
    // HEAD and revalidations need only the metadata: no body is opened.
    if method == Method::HEAD || headers.contains_key(header::IF_NONE_MATCH) {
        let meta = state.store.head(&target.key).await?.ok_or_else(gone)?;
        if not_modified(&headers, &meta.etag) {
            return Ok(with_file_headers(not_modified_response(), &target, &meta));
        }
        if method == Method::HEAD {
            return Ok(with_file_headers(Response::new(Body::empty()), &target, &meta));
        }
    }
    let (reader, meta) = state.store.reader(&target.key).await?.ok_or_else(gone)?;
    let body = stream(reader, state.body_idle_timeout);
    Ok(with_file_headers(Response::new(body), &target, &meta))
}

async fn is_published(state: &ServeState, target: &FileTarget) -> Result<bool, ApiError> {
    if let Loaded::Index(snapshot) = state.loaded()
        && snapshot.index.files.contains_key(&target.entry())
    {
        return Ok(true);
    }
    match &target.dir {
        Dir::Latest => Ok(false),
        Dir::Version(v) => Ok(state.sealed_manifest(v).await?.is_some_and(|m| m.files.contains_key(&target.path))),
    }
}

/// The stored `Content-Type` and `Cache-Control` (or the defaults a publish
/// would have written), the store's ETag and the length.
fn with_file_headers(mut response: Response, target: &FileTarget, meta: &ObjectMeta) -> Response {
    let stored = meta.headers.clone().unwrap_or_default();
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

/// The object as a body of at most [`CHUNK`]-byte frames.
fn stream(reader: ObjectReader, idle: Duration) -> Body {
    let chunks = futures::stream::try_unfold(reader, move |mut reader| async move {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let read = tokio::time::timeout(idle, reader.read_buf(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the store stalled while sending a file"))??;
        Ok::<_, io::Error>((read > 0).then(|| (buf.freeze(), reader)))
    });
    Body::from_stream(chunks)
}
