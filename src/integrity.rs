//! SHA-384 Subresource Integrity values: compute (streaming), format, parse.
//!
//! An integrity value is `sha384-` followed by the standard base64 (with
//! padding) of the raw 48-byte digest, the same bytes as
//! `openssl dgst -sha384 -binary F | openssl base64 -A`.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncReadExt};

const PREFIX: &str = "sha384-";
const DIGEST_LEN: usize = 48;
/// Base64 characters of a digest: 48 bytes, 384 bits, 64 six-bit characters, no padding.
const B64_LEN: usize = 64;
/// Read buffer: big enough to amortise syscalls, small enough to keep memory flat.
const BUF_LEN: usize = 64 * 1024;

/// A SHA-384 SRI value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Integrity([u8; DIGEST_LEN]);

/// Why a string is not a SHA-384 SRI value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-384 integrity value (expected \"sha384-\" + 64 base64 characters)")]
pub struct IntegrityError(pub(crate) String);

impl Integrity {
    /// The integrity of a SHA-384 digest computed elsewhere (e.g. while streaming).
    pub(crate) fn of_digest(digest: [u8; DIGEST_LEN]) -> Self {
        Integrity(digest)
    }

    /// The integrity of an in-memory byte slice.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Integrity(Sha384::digest(bytes).into())
    }

    /// The integrity of a reader, streamed in 64 KiB chunks; also returns the byte count.
    pub(crate) fn of_reader(reader: impl Read) -> std::io::Result<(Self, u64)> {
        let (integrity, size, _) = Self::of_reader_with(reader, &mut vec![0u8; BUF_LEN], false)?;
        Ok((integrity, size))
    }

    /// Like [`Integrity::of_reader`], streaming through the caller's `buf`, so
    /// that hashing many small files allocates nothing per file; with
    /// `sha512`, also the SHA-512 of the same bytes (signature-based SRI
    /// signs it), from the same read.
    pub(crate) fn of_reader_with(reader: impl Read, buf: &mut [u8], sha512: bool) -> std::io::Result<Digests> {
        Self::of_stream(reader, None, buf, sha512)
    }

    /// Copies `reader` into `out` through one 64 KiB buffer, hashing the
    /// bytes on the way: the integrity returned is that of exactly the bytes
    /// written, however the source changes meanwhile.
    pub(crate) fn of_copy(reader: impl Read, out: &mut impl std::io::Write) -> std::io::Result<(Self, u64)> {
        let (integrity, size, _) = Self::of_stream(reader, Some(out), &mut vec![0u8; BUF_LEN], false)?;
        Ok((integrity, size))
    }

    /// Like [`Integrity::of_copy`], through the caller's `buf`, and with
    /// `sha512` also the SHA-512 of the bytes written.
    pub(crate) fn of_copy_with(
        reader: impl Read,
        out: &mut impl std::io::Write,
        buf: &mut [u8],
        sha512: bool,
    ) -> std::io::Result<Digests> {
        Self::of_stream(reader, Some(out), buf, sha512)
    }

    /// The one loop that hashes a file's bytes (planning, staging and the
    /// stores' own checks all come here): reads `reader` through `buf`,
    /// hashes every chunk (with `sha512`, into a second digest too) and,
    /// given `out`, writes it there too. A copy that grows past
    /// [`OVERLAP_AFTER`] goes on in [`overlapped`].
    fn of_stream(
        mut reader: impl Read,
        mut out: Option<&mut dyn std::io::Write>,
        buf: &mut [u8],
        sha512: bool,
    ) -> std::io::Result<Digests> {
        let mut hashers = Hashers { sha384: Sha384::new(), sha512: sha512.then(Sha512::new) };
        let mut size = 0u64;
        loop {
            if let Some(out) = out.as_deref_mut()
                && size >= OVERLAP_AFTER
            {
                let (hashers, rest) = overlapped(&mut reader, out, hashers)?;
                return Ok(hashers.finish(size + rest));
            }
            let n = match read_some(&mut reader, buf)? {
                0 => break,
                n => n,
            };
            if let Some(out) = out.as_deref_mut() {
                out.write_all(&buf[..n])?;
            }
            hashers.update(&buf[..n]);
            size += n as u64;
        }
        Ok(hashers.finish(size))
    }

    /// The first 16 bytes of the digest: enough to tell contents apart for an etag.
    pub(crate) fn short(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.0[..16]);
        out
    }

    /// The integrity of an async reader (an object downloaded from a store), streamed.
    pub async fn of_async_reader(reader: impl AsyncRead + Unpin) -> std::io::Result<(Self, u64)> {
        let (integrity, size, _) = Self::of_async_reader_with(reader, false).await?;
        Ok((integrity, size))
    }

    /// Like [`Integrity::of_async_reader`]; with `sha512`, also the SHA-512
    /// of the same bytes (to check signature-based SRI headers).
    pub(crate) async fn of_async_reader_with(
        mut reader: impl AsyncRead + Unpin,
        sha512: bool,
    ) -> std::io::Result<Digests> {
        let mut hasher = Sha384::new();
        let mut second = sha512.then(Sha512::new);
        let mut buf = vec![0u8; BUF_LEN];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Some(second) = &mut second {
                second.update(&buf[..n]);
            }
            size += n as u64;
        }
        Ok((Integrity(hasher.finalize().into()), size, second.map(|h| h.finalize().into())))
    }
}

/// A copy longer than this hashes on a thread of its own from here on
/// ([`overlapped`]); shorter ones (nearly every file of an SDK) are not
/// worth a thread.
const OVERLAP_AFTER: u64 = 8 << 20;
/// Chunk size of an overlapped copy: few hand-overs between the threads.
const OVERLAP_CHUNK: usize = 1 << 20;
/// Chunks of an overlapped copy in flight at once: the hasher's, the one
/// being read and written, and one ready for the hasher. Memory per copy:
/// this many chunks, whatever the file's size.
const OVERLAP_CHUNKS: usize = 3;

/// The digests a stream is fed to.
struct Hashers {
    sha384: Sha384,
    sha512: Option<Sha512>,
}

impl Hashers {
    fn update(&mut self, bytes: &[u8]) {
        self.sha384.update(bytes);
        if let Some(sha512) = &mut self.sha512 {
            sha512.update(bytes);
        }
    }

    fn finish(self, size: u64) -> Digests {
        (Integrity(self.sha384.finalize().into()), size, self.sha512.map(|h| h.finalize().into()))
    }
}

/// One `read`, retried when interrupted.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Copies the rest of `reader` into `out` while another thread hashes it:
/// SHA-384 is the slowest step of a large copy (about 1.5 s for 512 MiB
/// on our machines), and reading and writing the same bytes meanwhile
/// costs no extra time. This thread reads each chunk and writes it, then
/// hands that very buffer to the hasher, which returns it when hashed:
/// the hashed bytes are the written ones, in order, and no buffer is
/// refilled before it is hashed. Returns the hashers and the bytes copied.
fn overlapped(
    reader: &mut impl Read,
    out: &mut dyn std::io::Write,
    hashers: Hashers,
) -> std::io::Result<(Hashers, u64)> {
    use std::sync::mpsc::sync_channel;
    let stopped = || std::io::Error::other("the hashing thread stopped");
    std::thread::scope(|scope| {
        // A chunk and how many of its bytes were read.
        let (to_hash, hash_queue) = sync_channel::<(Vec<u8>, usize)>(OVERLAP_CHUNKS);
        // Chunks ready to be filled: all of them at first, then each one the hasher is done with.
        let (to_fill, free) = sync_channel::<Vec<u8>>(OVERLAP_CHUNKS);
        for _ in 0..OVERLAP_CHUNKS {
            to_fill.send(vec![0u8; OVERLAP_CHUNK]).map_err(|_| stopped())?;
        }
        // A thread the system cannot give is an error like a failed read, not a panic.
        let hasher = std::thread::Builder::new().name("sdk-cdn-hash".into()).spawn_scoped(scope, move || {
            let mut hashers = hashers;
            for (chunk, n) in hash_queue {
                hashers.update(&chunk[..n]);
                // The copy may have stopped (an error): then nobody needs it back.
                let _ = to_fill.send(chunk);
            }
            hashers
        })?;
        let copied = (|| -> std::io::Result<u64> {
            let mut size = 0u64;
            loop {
                let mut chunk = free.recv().map_err(|_| stopped())?;
                let n = read_some(reader, &mut chunk)?;
                if n == 0 {
                    return Ok(size);
                }
                out.write_all(&chunk[..n])?;
                size += n as u64;
                to_hash.send((chunk, n)).map_err(|_| stopped())?;
            }
        })();
        // Closing the queue ends the hasher once it has hashed what was sent.
        drop(to_hash);
        let hashers = hasher.join().map_err(|_| std::io::Error::other("the hashing thread panicked"))?;
        Ok((hashers, copied?))
    })
}

/// What one read of a file yields: its integrity, its size and, when asked
/// for, its SHA-512.
pub(crate) type Digests = (Integrity, u64, Option<[u8; 64]>);

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Encoded on the stack: an index prints tens of thousands of these.
        let mut b64 = [0u8; B64_LEN];
        let n = STANDARD.encode_slice(self.0, &mut b64).map_err(|_| fmt::Error)?;
        f.write_str(PREFIX)?;
        f.write_str(std::str::from_utf8(&b64[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Integrity {
    type Err = IntegrityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IntegrityError(s.to_string());
        let b64 = s.strip_prefix(PREFIX).ok_or_else(bad)?;
        // Only the canonical encoding is accepted, so equal values are equal
        // strings. 48 bytes are exactly 64 base64 characters with no padding
        // and no spare bits, and the decoder refuses non-zero trailing bits:
        // whatever decodes from 64 characters to 48 bytes is canonical.
        if b64.len() != B64_LEN {
            return Err(bad());
        }
        let mut digest = [0u8; DIGEST_LEN];
        match STANDARD.decode_slice(b64, &mut digest) {
            Ok(DIGEST_LEN) => Ok(Integrity(digest)),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Integrity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Integrity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Parses borrowed strings without copying them first.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Integrity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SHA-384 integrity value (\"sha384-\" + 64 base64 characters)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Integrity, E> {
                s.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_known_sha384_of_abc() {
        // FIPS 180-2 test vector for "abc", base64-encoded.
        let expected = "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn";
        assert_eq!(Integrity::of_bytes(b"abc").to_string(), expected);
    }

    #[test]
    fn streaming_equals_one_shot_across_buffer_boundaries() {
        let data: Vec<u8> = (0..(BUF_LEN * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let (streamed, size) = Integrity::of_reader(&data[..]).unwrap();
        assert_eq!(streamed, Integrity::of_bytes(&data));
        assert_eq!(size, data.len() as u64);
    }

    /// Reads in uneven pieces, like a pipe or a file being appended to,
    /// and fails after `fail_after` bytes if asked to.
    struct Uneven<'a> {
        data: &'a [u8],
        at: usize,
        fail_after: Option<usize>,
    }

    impl Read for Uneven<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.fail_after.is_some_and(|limit| self.at >= limit) {
                return Err(std::io::Error::other("the disk went away"));
            }
            // 1 to 300,000 bytes, never a whole chunk's worth twice in a row.
            let want = 1 + (self.at * 7919) % 300_000;
            let n = want.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// A copy past `OVERLAP_AFTER` hashes on a second thread: what it
    /// writes, the digests and the size must still be exactly the input's.
    #[test]
    fn an_overlapped_copy_writes_and_hashes_exactly_the_input() {
        let len = OVERLAP_AFTER as usize + 3 * OVERLAP_CHUNK + 12_345;
        let data: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut out = Vec::new();
        let (integrity, size, sha512) =
            Integrity::of_copy_with(Uneven { data: &data, at: 0, fail_after: None }, &mut out, &mut [0u8; 4096], true)
                .unwrap();
        assert_eq!(size, len as u64);
        assert!(out == data, "the bytes written are not the input");
        assert_eq!(integrity, Integrity::of_bytes(&data));
        assert_eq!(sha512, Some(<[u8; 64]>::from(Sha512::digest(&data))));
    }

    /// A read that fails during the overlapped part is reported, not hung on.
    #[test]
    fn an_overlapped_copy_reports_a_failed_read() {
        let data = vec![7u8; OVERLAP_AFTER as usize + 4 * OVERLAP_CHUNK];
        let reader = Uneven { data: &data, at: 0, fail_after: Some(OVERLAP_AFTER as usize + 2 * OVERLAP_CHUNK) };
        let error = Integrity::of_copy(reader, &mut std::io::sink()).unwrap_err();
        assert_eq!(error.to_string(), "the disk went away");
    }

    #[test]
    fn parse_round_trips_and_refuses_other_forms() {
        let value = Integrity::of_bytes(b"x");
        assert_eq!(value.to_string().parse::<Integrity>().unwrap(), value);
        let b64 = value.to_string()["sha384-".len()..].to_string();
        for bad in [
            b64.clone(),
            format!("sha256-{b64}"),
            format!("sha384-{}", &b64[..40]),
            format!("SHA384-{b64}"),
            format!("sha384-{b64}="),
            format!("sha384-{b64} "),
            "sha384-".to_string(),
        ] {
            assert!(bad.parse::<Integrity>().is_err(), "{bad} was accepted");
        }
    }
}
