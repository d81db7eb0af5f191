//! `verify --base-url`: fetch every file through the CDN (or `serve`) the way
//! a browser loading `<script integrity crossorigin="anonymous">` does, with
//! an `Origin` header, and check what comes back: status, the bytes against
//! the manifest, `Access-Control-Allow-Origin` (without it SRI fails
//! cross-origin), `Content-Type` and `Cache-Control`.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use sha2::{Digest, Sha384, Sha512};

use super::ReleaseError;
use super::cdn_url::BaseUrl;
use super::verify::{CacheRule, Finding, Problem};
use crate::integrity::Integrity;
use crate::manifest::{FileEntry, VersionManifest};
use crate::signing::SignedHeaders;

/// The origin a customer page would send.
const ORIGIN: &str = "https://sdk-cdn-verify.example";
/// Give up on one request after this long.
const TIMEOUT: Duration = Duration::from_secs(30);

type HttpsClient = crate::https::HttpsClient<Empty<Bytes>>;

/// An HTTP(S) client aimed at one CDN base URL.
pub(super) struct CdnCheck {
    client: HttpsClient,
    base: BaseUrl,
}

impl CdnCheck {
    /// Checks `base_url` and builds the client (system trust roots).
    pub(super) fn new(base_url: &str) -> Result<Self, ReleaseError> {
        let base = BaseUrl::parse(base_url)?;
        let client = crate::https::client(None).map_err(|source| ReleaseError::TlsRoots { source })?;
        Ok(CdnCheck { client, base })
    }

    /// Fetches every file of `manifest` under `sdk/<dir>/` and records what is wrong.
    pub(super) async fn check_files(
        &self,
        dir: &str,
        manifest: &VersionManifest,
        cache: CacheRule,
        concurrency: usize,
        findings: &mut Vec<Finding>,
    ) {
        let results: Vec<Vec<Finding>> = futures::stream::iter(&manifest.files)
            .map(|(path, entry)| self.check_file(dir, path, entry, cache))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        findings.extend(results.into_iter().flatten());
    }

    async fn check_file(&self, dir: &str, path: &str, entry: &FileEntry, cache: CacheRule) -> Vec<Finding> {
        let url = self.base.file(dir, path);
        let finding = |detail: String| vec![Finding { key: url.clone(), problem: Problem::Http, detail }];
        let (status, headers, fetched, sha512) =
            match tokio::time::timeout(TIMEOUT, self.fetch(&url, entry.signed.is_some())).await {
                Ok(Ok(response)) => response,
                Ok(Err(detail)) => return finding(detail),
                Err(_) => return finding(format!("no complete response within {}s", TIMEOUT.as_secs())),
            };
        if status != 200 {
            return finding(format!("HTTP {status} (expected 200)"));
        }
        let mut wrong = Vec::new();
        if let Some(sha512) = &sha512 {
            let served = SignedHeaders::from_pairs(|name| headers.get(name).and_then(|v| v.to_str().ok()));
            // The CDN must deliver a valid signature by every key the manifest's has.
            let keys = entry.signed.as_ref().and_then(|s| crate::signing::sri_key_ids(s).ok()).unwrap_or_default();
            for problem in super::verify::sri_problems(served.as_ref(), sha512, &keys) {
                wrong.push(format!("signature-based SRI: {problem}"));
            }
        }
        if fetched != entry.integrity {
            wrong.push(format!("the CDN serves bytes hashing to {fetched}; the manifest says {}", entry.integrity));
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let allow_origin = header("access-control-allow-origin");
        if allow_origin != "*" && allow_origin != ORIGIN {
            wrong.push(format!(
                "Access-Control-Allow-Origin {allow_origin:?}: browsers refuse integrity-checked cross-origin \
                 scripts without it; add it at the CDN (e.g. `*`)"
            ));
        }
        let content_type = header("content-type");
        if !same_media_type(&content_type, &entry.content_type) {
            wrong.push(format!("Content-Type {content_type:?} (expected {:?})", entry.content_type));
        }
        wrong.extend(cache.problem(&header("cache-control")));
        if wrong.is_empty() { Vec::new() } else { finding(wrong.join("; ")) }
    }

    /// GETs `url`, hashing the body as it streams in.
    async fn fetch(
        &self,
        url: &str,
        sha512: bool,
    ) -> Result<(u16, hyper::HeaderMap, Integrity, Option<[u8; 64]>), String> {
        let request = hyper::Request::get(url)
            .header(hyper::header::ORIGIN, ORIGIN)
            .body(Empty::new())
            .map_err(|e| format!("bad request URL: {e}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("request failed: {}", crate::https::error_chain(&e)))?;
        let (parts, mut body) = response.into_parts();
        let mut hasher = Sha384::new();
        let mut second = sha512.then(Sha512::new);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading the body failed: {e}"))?;
            if let Some(data) = frame.data_ref() {
                hasher.update(data);
                if let Some(second) = &mut second {
                    second.update(data);
                }
            }
        }
        let digest: [u8; 48] = hasher.finalize().into();
        let integrity = Integrity::of_digest(digest);
        Ok((parts.status.as_u16(), parts.headers, integrity, second.map(|h| h.finalize().into())))
    }
}

/// Compares media types the way HTTP does: case-insensitive, spaces ignored.
fn same_media_type(served: &str, expected: &str) -> bool {
    let normal = |s: &str| s.to_ascii_lowercase().replace(' ', "");
    normal(served) == normal(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_like_http() {
        assert!(same_media_type("text/javascript;charset=UTF-8", "text/javascript; charset=utf-8"));
        assert!(!same_media_type("application/javascript", "text/javascript; charset=utf-8"));
    }

    #[test]
    fn base_urls_must_be_http() {
        assert!(CdnCheck::new("https://cdn.example.com/").is_ok());
        for bad in ["cdn.example.com", "ftp://x", "https://", "http://x/?a=1"] {
            assert!(CdnCheck::new(bad).is_err(), "{bad}");
        }
    }
}
