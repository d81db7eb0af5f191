//! One loaded SRI index: the parsed value (to decide what may be served) and
//! its ready-to-send representations.
//!
//! The stored bytes are served exactly as the store holds them; the gzip and
//! brotli forms are computed once per index change, not per request. Each
//! representation has its own strong ETag (`"<hash>"`, `"<hash>-gzip"`,
//! `"<hash>-br"`), because a strong ETag promises byte-identical bodies and
//! the compressed bodies differ from the identity one (RFC 9110 §8.8.3).

use std::io::Write;

use axum::http::HeaderValue;
use bytes::Bytes;

use super::negotiate::{Coding, entity_tag};
use crate::manifest::SriIndex;

/// Brotli quality: 9 compresses JSON almost as well as 11 at a fraction of the CPU.
const BROTLI_QUALITY: u32 = 9;
/// Brotli window (log2 bytes).
const BROTLI_WINDOW: u32 = 22;

/// One encoding of the index body.
#[derive(Debug, Clone)]
pub(super) struct Representation {
    /// The body.
    pub(super) bytes: Bytes,
    /// Its strong ETag, quoted.
    pub(super) etag: String,
    /// The same, ready to send (built once per index, not per request).
    pub(super) etag_header: HeaderValue,
    /// Its `Content-Length`, likewise (formatting a length allocates).
    pub(super) length_header: HeaderValue,
    /// How it is encoded.
    pub(super) coding: Coding,
}

impl Representation {
    fn new(bytes: Bytes, etag: String, coding: Coding) -> Self {
        // Our etags are quotes around hex digits and a coding token: valid header values.
        let etag_header = HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        let length_header = HeaderValue::from(bytes.len());
        Representation { bytes, etag, etag_header, length_header, coding }
    }
}

/// The index as loaded from the store.
#[derive(Debug)]
pub(super) struct IndexSnapshot {
    /// The parsed index.
    pub(super) index: SriIndex,
    /// The store's etag of `api/sdk/sri` when it was read (for the cheap `head` check).
    pub(super) store_etag: String,
    /// Identity first, then the compressed forms that are smaller.
    representations: Vec<Representation>,
    /// The codings of `representations` besides identity, in order of preference.
    codings: Vec<Coding>,
    /// The thread that built it (tests check that every index is built on one thread).
    #[cfg(test)]
    pub(super) built_on: std::thread::ThreadId,
}

impl IndexSnapshot {
    /// Builds every representation of `bytes` (CPU work: call it off the async threads).
    pub(super) fn build(index: SriIndex, bytes: Bytes, store_etag: String) -> Self {
        let etag = entity_tag(&bytes);
        let base = etag.trim_end_matches('"').to_string();
        let mut representations = vec![Representation::new(bytes.clone(), etag, Coding::Identity)];
        for (coding, compressed) in [(Coding::Brotli, brotli(&bytes)), (Coding::Gzip, gzip(&bytes))] {
            let Some(token) = coding.token() else { continue };
            if let Some(compressed) = compressed.filter(|c| c.len() < bytes.len()) {
                let etag = format!("{base}-{token}\"");
                representations.push(Representation::new(Bytes::from(compressed), etag, coding));
            }
        }
        let codings = representations.iter().map(|r| r.coding).filter(|c| *c != Coding::Identity).collect();
        IndexSnapshot {
            index,
            store_etag,
            representations,
            codings,
            #[cfg(test)]
            built_on: std::thread::current().id(),
        }
    }

    /// The stored bytes, unencoded.
    pub(super) fn identity(&self) -> &Representation {
        &self.representations[0]
    }

    /// The codings available besides identity, in order of preference.
    pub(super) fn codings(&self) -> &[Coding] {
        &self.codings
    }

    /// The representation in `coding` (identity if that one is not available).
    pub(super) fn representation(&self, coding: Coding) -> &Representation {
        self.representations.iter().find(|r| r.coding == coding).unwrap_or_else(|| self.identity())
    }
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

fn brotli(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, BROTLI_QUALITY, BROTLI_WINDOW);
        writer.write_all(bytes).ok()?;
        writer.flush().ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn compressed_forms_decode_to_the_stored_bytes_and_have_their_own_etags() {
        let body = Bytes::from(format!("{{\"version\":null,\"files\":{{{}}}}}", "\"a\":\"b\",".repeat(200)));
        let snapshot = IndexSnapshot::build(SriIndex::default(), body.clone(), "\"s\"".into());
        assert_eq!(snapshot.codings(), [Coding::Brotli, Coding::Gzip]);
        let identity = snapshot.identity();
        assert_eq!(identity.bytes, body);

        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&snapshot.representation(Coding::Gzip).bytes[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, body);
        let mut unbrotli = Vec::new();
        brotli::Decompressor::new(&snapshot.representation(Coding::Brotli).bytes[..], 4096)
            .read_to_end(&mut unbrotli)
            .unwrap();
        assert_eq!(unbrotli, body);

        let gz = &snapshot.representation(Coding::Gzip).etag;
        let br = &snapshot.representation(Coding::Brotli).etag;
        assert_eq!(gz, &format!("{}-gzip\"", identity.etag.trim_end_matches('"')));
        assert!(br.ends_with("-br\"") && br != gz && *br != identity.etag);
    }

    #[test]
    fn tiny_bodies_are_not_compressed() {
        let snapshot = IndexSnapshot::build(SriIndex::default(), Bytes::from_static(b"{}"), "\"s\"".into());
        assert!(snapshot.codings().is_empty());
        assert_eq!(snapshot.representation(Coding::Brotli).coding, Coding::Identity);
    }
}
