//! A file body that proves itself: streamed from the store in
//! [`CHUNK`]-sized reads, hashed (SHA-384) on the way, with the last chunk
//! held back until the digest of the whole body is known.
//!
//! Why: a response head (status, `Content-Length`, the stored ETag and
//! signature headers, a year of `immutable`) is sent before the body is
//! read, on the strength of what the store records about the object. If the
//! bytes were changed behind the store's back (in place, same size), only
//! reading them shows it. When the digest or the length is not the
//! published one, the stream ends in an error instead of the last chunk:
//! hyper then closes the connection short of `Content-Length`, so no client
//! or cache ever holds a complete response with other bytes (an SRI check
//! in a browser fails on a truncated body too). The failure is logged and
//! counted (`sdk_cdn_integrity_failures_total`).
//!
//! Cost: one SHA-384 pass over every byte served (about 0.6 GB/s per core,
//! DESIGN.md), on the serving thread, 64 KiB at a time; memory stays one
//! chunk per response plus the one held back.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha384};
use tokio::io::AsyncReadExt;

use super::metrics;
use crate::integrity::Integrity;
use crate::store::ObjectReader;

/// Bytes read from the store per body chunk.
pub(super) const CHUNK: usize = 64 * 1024;

/// What a body must be: its key (for the log), its integrity and its length.
#[derive(Debug, Clone)]
pub(super) struct Expected {
    pub(super) key: String,
    pub(super) integrity: Integrity,
    pub(super) size: u64,
}

struct Checked {
    reader: ObjectReader,
    expected: Expected,
    hasher: Sha384,
    read: u64,
    held: Option<Bytes>,
    idle: Duration,
    /// The end was reached and the body proved whole: nothing more to read.
    whole: bool,
}

/// The object as a body of at most [`CHUNK`]-byte frames that fails
/// instead of completing when the bytes are not `expected`.
pub(super) fn body(reader: ObjectReader, expected: Expected, idle: Duration) -> Body {
    let state = Checked { reader, expected, hasher: Sha384::new(), read: 0, held: None, idle, whole: false };
    Body::from_stream(futures::stream::try_unfold(state, next))
}

/// The next chunk to send: the one read before the latest, so the last one
/// is still here when the end of the object shows whether it is whole.
async fn next(mut state: Checked) -> io::Result<Option<(Bytes, Checked)>> {
    if state.whole {
        return Ok(None);
    }
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let read = tokio::time::timeout(state.idle, state.reader.read_buf(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the store stalled while sending a file"))??;
        if read == 0 {
            state.verify_whole()?;
            state.whole = true;
            return Ok(state.held.take().map(|last| (last, state)));
        }
        state.read += read as u64;
        if state.read > state.expected.size {
            return Err(state.fail(format!("it is longer than the published {} bytes", state.expected.size)));
        }
        state.hasher.update(&buf);
        if let Some(previous) = state.held.replace(buf.freeze()) {
            return Ok(Some((previous, state)));
        }
    }
}

impl Checked {
    /// At the end of the object: the length and digest must be the published ones.
    fn verify_whole(&mut self) -> io::Result<()> {
        if self.read != self.expected.size {
            return Err(
                self.fail(format!("it ended after {} of the published {} bytes", self.read, self.expected.size))
            );
        }
        let actual = Integrity::of_digest(std::mem::take(&mut self.hasher).finalize().into());
        if actual != self.expected.integrity {
            return Err(self.fail(format!("its bytes hash to {actual}")));
        }
        Ok(())
    }

    /// Logs and counts a body that is not what was published; the error aborts the response.
    fn fail(&self, why: String) -> io::Error {
        metrics::integrity_failure();
        let Expected { key, integrity, .. } = &self.expected;
        tracing::error!(
            key = %key,
            expected = %integrity,
            "{key} was not served whole: {why}, not the published {integrity}; the response was aborted before \
             its last chunk. The stored object changed after it was published: run `sdk-cdn verify --all` and \
             restore it from the build"
        );
        io::Error::other(format!("{key} does not match its published integrity; response aborted"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(bytes: &'static [u8], expected: Expected) -> (Vec<Bytes>, Option<String>) {
        use futures::StreamExt;
        let reader: ObjectReader = Box::pin(bytes);
        let mut stream = body(reader, expected, Duration::from_secs(5)).into_data_stream();
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => chunks.push(chunk),
                Err(e) => return (chunks, Some(e.to_string())),
            }
        }
        (chunks, None)
    }

    fn expect(bytes: &[u8]) -> Expected {
        Expected { key: "sdk/1.0.0/a.js".into(), integrity: Integrity::of_bytes(bytes), size: bytes.len() as u64 }
    }

    #[tokio::test]
    async fn the_published_bytes_arrive_whole() {
        let (chunks, error) = collect(b"window.A=1;", expect(b"window.A=1;")).await;
        assert_eq!((chunks.concat(), error), (b"window.A=1;".to_vec(), None));
        let (chunks, error) = collect(b"", expect(b"")).await;
        assert!(chunks.is_empty() && error.is_none());
    }

    #[tokio::test]
    async fn other_bytes_never_complete_the_body() {
        // Same length, one byte changed: the only chunk is held back.
        let (chunks, error) = collect(b"window.A=2;", expect(b"window.A=1;")).await;
        assert!(chunks.is_empty(), "nothing of a small changed file is sent");
        assert!(error.unwrap().contains("does not match its published integrity"));
        // Shorter and longer than published.
        for (stored, published) in [(&b"window.A"[..], &b"window.A=1;"[..]), (b"window.A=1;;", b"window.A=1;")] {
            let leaked: &'static [u8] = Box::leak(stored.to_vec().into_boxed_slice());
            let (chunks, error) = collect(leaked, expect(published)).await;
            assert!(chunks.concat().len() < published.len() && error.is_some(), "{stored:?}");
        }
    }
}
