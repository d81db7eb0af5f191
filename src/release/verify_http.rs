//! `verify --base-url`: fetch every file through the CDN (or `serve`) the way
//! a browser loading `<script integrity crossorigin="anonymous">` does, with
//! an `Origin` header, and check what comes back: status, the bytes against
//! the manifest, `Access-Control-Allow-Origin` (without it SRI fails
//! cross-origin), `Content-Type` and `Cache-Control`; then the SRI index
//! as the CDN serves it (what customers' pipelines pin from): every hash it
//! gives for a sealed version must be the seal's, and with `--pubkey` its
//! signature must prove it. An index older than the store's is not a finding
//! (the CDN may cache it for its `max-age`), one that lies is.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use semver::Version;
use sha2::{Digest, Sha384, Sha512};

use super::cdn_url::BaseUrl;
use super::verify::{CacheRule, Finding, Problem};
use super::{ReleaseError, read_manifest};
use crate::integrity::Integrity;
use crate::layout;
use crate::manifest::{FileEntry, SriIndex, VersionManifest};
use crate::signing::{PublicKey, SignedHeaders, SignedKind};
use crate::store::Store;

/// The origin a customer page would send.
const ORIGIN: &str = "https://sdk-cdn-verify.example";
/// The largest index or signature read through the CDN.
const MAX_INDEX_BYTES: usize = 64 << 20;

type HttpsClient = crate::https::HttpsClient<Empty<Bytes>>;

/// An HTTP(S) client aimed at one CDN base URL.
pub(super) struct CdnCheck {
    client: HttpsClient,
    base: BaseUrl,
    /// Give up on one request (to its last byte) after this long.
    timeout: Duration,
}

impl CdnCheck {
    /// Checks `base_url` and builds the client (system trust roots).
    /// `timeouts`: one request's, and its connection's.
    pub(super) fn new(base_url: &str, timeouts: (Duration, Duration)) -> Result<Self, ReleaseError> {
        let base = BaseUrl::parse(base_url)?;
        let client = crate::https::client(Some(timeouts.1)).map_err(|source| ReleaseError::TlsRoots { source })?;
        Ok(CdnCheck { client, base, timeout: timeouts.0 })
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
            match tokio::time::timeout(self.timeout, self.fetch(&url, entry.signed.is_some())).await {
                Ok(Ok(response)) => response,
                Ok(Err(detail)) => return finding(detail),
                Err(_) => return finding(self.too_slow()),
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

    fn too_slow(&self) -> String {
        format!("no complete response within {}s (--timeout)", self.timeout.as_secs_f64())
    }

    /// Fetches `api/sdk/sri` through the CDN and records where it contradicts
    /// the store: an entry of a version that is not sealed, a hash that is not
    /// its seal's (`expected`, the index the verified versions make), and,
    /// with `pubkey`, a signature (`api/sdk/sri.minisig`, or the
    /// content-addressed copy a cached index still matches) that does not prove it.
    pub(super) async fn check_index(
        &self,
        store: &dyn Store,
        sealed: &[Version],
        expected: &SriIndex,
        pubkey: Option<&PublicKey>,
        findings: &mut Vec<Finding>,
    ) {
        let url = self.base.key(layout::INDEX_KEY);
        let mut push = |problem: Problem, detail: String| findings.push(Finding { key: url.clone(), problem, detail });
        let bytes = match self.fetch_bytes(&url).await {
            Ok(bytes) => bytes,
            Err(detail) => return push(Problem::Http, detail),
        };
        let served: SriIndex = match serde_json::from_slice(&bytes) {
            Ok(index) => index,
            Err(e) => {
                return push(Problem::Http, format!("the CDN serves an index that is not a valid SRI index: {e}"));
            }
        };
        let mut lies = Vec::new();
        // An index of another promotion (cached from before, or a lie): its
        // latest/ entries must be the files of the version it names.
        let other_latest = match &served.version {
            Some(v) if served.version != expected.version && !sealed.contains(v) => {
                lies.push(format!("latest is {v}, which is not published"));
                None
            }
            Some(v) if served.version != expected.version => read_manifest(store, v).await.ok().flatten(),
            _ => None,
        };
        for (name, integrity) in &served.files {
            let (dir, _) = name.split_once('/').unwrap_or((name, ""));
            let is_latest = dir == layout::LATEST;
            if !is_latest && !Version::parse(dir).is_ok_and(|v| sealed.contains(&v)) {
                lies.push(format!("{name} (version {dir} is not published)"));
                continue;
            }
            if is_latest && served.version.is_none() {
                lies.push(format!("{name} (the index says nothing is promoted)"));
                continue;
            }
            if let (true, Some(serving)) = (is_latest, &other_latest) {
                let path = &name[dir.len() + 1..];
                match serving.files.get(path) {
                    Some(entry) if entry.integrity != *integrity => lies.push(format!(
                        "{name} is {integrity}; {} (which the index says latest/ serves) seals {}",
                        serving.version, entry.integrity
                    )),
                    None => lies.push(format!("{name} (not a file of {})", serving.version)),
                    Some(_) => {}
                }
                continue;
            }
            // Otherwise latest/ entries are judged when the CDN's index is of the store's promotion.
            let judged = !is_latest || served.version == expected.version;
            match expected.files.get(name) {
                Some(sealed) if judged && sealed != integrity => {
                    lies.push(format!("{name} is {integrity}; its seal says {sealed}"))
                }
                None if judged && expected.files.keys().any(|k| k.starts_with(&format!("{dir}/"))) => {
                    lies.push(format!("{name} (not a file of {dir})"))
                }
                _ => {}
            }
        }
        if !lies.is_empty() {
            push(
                Problem::Http,
                format!(
                    "the CDN's index contradicts the sealed manifests: {}; find what rewrites it between the \
                     store and the CDN, then purge /{} at the CDN",
                    lies.join(", "),
                    layout::INDEX_KEY
                ),
            );
        }
        if let Some(pubkey) = pubkey {
            let mut problems = Vec::new();
            for key in [super::signatures::index_signature(), super::signatures::index_signature_copy(&bytes)] {
                let url = self.base.key(key.as_str());
                match self.fetch_bytes(&url).await {
                    Err(detail) => problems.push(format!("{url}: {detail}")),
                    Ok(text) => {
                        let text = String::from_utf8_lossy(&text);
                        match crate::signing::verify_signature(&bytes, &text, pubkey, SignedKind::Index) {
                            Ok(_) => return,
                            Err(e) => problems.push(format!("{url}: {e}")),
                        }
                    }
                }
            }
            push(
                Problem::Signature,
                format!("no signature served by the CDN proves the index it serves: {}", problems.join("; ")),
            );
        }
    }

    /// GETs `url` whole (up to [`MAX_INDEX_BYTES`]); anything but a 200 is an error.
    async fn fetch_bytes(&self, url: &str) -> Result<Bytes, String> {
        let get = async {
            let response = self.get(url).await?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(format!("HTTP {status} (expected 200)"));
            }
            let limited = http_body_util::Limited::new(response.into_body(), MAX_INDEX_BYTES);
            let body = limited.collect().await.map_err(|e| format!("reading the body failed: {e}"))?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(self.timeout, get).await.unwrap_or_else(|_| Err(self.too_slow()))
    }

    /// Sends a GET of `url` with the page's `Origin`, as a browser would.
    async fn get(&self, url: &str) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let request = hyper::Request::get(url)
            .header(hyper::header::ORIGIN, ORIGIN)
            .body(Empty::new())
            .map_err(|e| format!("bad request URL: {e}"))?;
        self.client.request(request).await.map_err(|e| format!("request failed: {}", crate::https::error_chain(&e)))
    }

    /// GETs `url`, hashing the body as it streams in.
    async fn fetch(
        &self,
        url: &str,
        sha512: bool,
    ) -> Result<(u16, hyper::HeaderMap, Integrity, Option<[u8; 64]>), String> {
        let (parts, mut body) = self.get(url).await?.into_parts();
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
        let timeouts = (Duration::from_secs(60), Duration::from_secs(5));
        assert!(CdnCheck::new("https://cdn.example.com/", timeouts).is_ok());
        for bad in ["cdn.example.com", "ftp://x", "https://", "http://x/?a=1"] {
            assert!(CdnCheck::new(bad, timeouts).is_err(), "{bad}");
        }
    }
}
