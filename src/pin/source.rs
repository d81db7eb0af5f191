//! Where `pin` gets the index and its signature: an `http(s)://` URL or a
//! local path, each with `.minisig` appended for the signature. Every fetch
//! has a deadline (`--timeout`, connecting `--connect-timeout`) and a size
//! bound; anything but a 200 with a body is a failure, never an empty index.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};

/// Larger than any index or signature we write; bounds memory on a hostile server.
const MAX_BODY: usize = 64 * 1024 * 1024;

type HttpsClient = crate::https::HttpsClient<Empty<Bytes>>;

/// An index location: a URL or a file.
pub(crate) enum Source {
    Http {
        client: Box<HttpsClient>,
        /// Give up on one fetch (connect, headers and body) after this long.
        timeout: Duration,
    },
    File,
}

/// What a fetch found.
pub(crate) enum Fetched {
    /// The bytes.
    Found(Vec<u8>),
    /// A clean "not there": HTTP 404/410 or no such file.
    Missing,
}

impl Source {
    /// Picks the transport for `location`; builds the HTTPS client (system
    /// roots) if needed, with the deadlines of `--timeout` and `--connect-timeout`.
    pub(crate) fn for_location(location: &str, timeout: Duration, connect: Duration) -> Result<Source, String> {
        if !is_url(location) {
            return Ok(Source::File);
        }
        let client =
            crate::https::client(Some(connect)).map_err(|e| format!("no TLS trust roots on this machine: {e}"))?;
        Ok(Source::Http { client: Box::new(client), timeout })
    }

    /// Fetches `location`; `Err` for anything that is neither the bytes nor a clean miss.
    pub(crate) async fn fetch(&self, location: &str) -> Result<Fetched, String> {
        match self {
            Source::File => match std::fs::read(Path::new(location)) {
                Ok(bytes) => Ok(Fetched::Found(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Fetched::Missing),
                Err(e) => Err(e.to_string()),
            },
            Source::Http { client, timeout } => match tokio::time::timeout(*timeout, get(client, location)).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "no complete response within {}s (--timeout); check that the server answers, or raise --timeout",
                    timeout.as_secs_f64()
                )),
            },
        }
    }
}

async fn get(client: &HttpsClient, url: &str) -> Result<Fetched, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a valid URL: {e}"))?;
    let request = hyper::Request::get(uri).body(Empty::new()).map_err(|e| format!("bad request: {e}"))?;
    let response =
        client.request(request).await.map_err(|e| format!("request failed: {}", crate::https::error_chain(&e)))?;
    let status = response.status().as_u16();
    if matches!(status, 404 | 410) {
        return Ok(Fetched::Missing);
    }
    if status != 200 {
        return Err(format!("HTTP {status} (expected 200)"));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the body failed: {e}"))?;
    Ok(Fetched::Found(body.to_bytes().to_vec()))
}

/// Whether `location` is fetched over HTTP rather than read from disk.
pub(crate) fn is_url(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}
