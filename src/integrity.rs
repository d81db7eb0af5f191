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
    /// given `out`, writes it there too.
    fn of_stream(
        mut reader: impl Read,
        mut out: Option<&mut dyn std::io::Write>,
        buf: &mut [u8],
        sha512: bool,
    ) -> std::io::Result<Digests> {
        let mut hasher = Sha384::new();
        let mut second = sha512.then(Sha512::new);
        let mut size = 0u64;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if let Some(out) = out.as_deref_mut() {
                out.write_all(&buf[..n])?;
            }
            hasher.update(&buf[..n]);
            if let Some(second) = &mut second {
                second.update(&buf[..n]);
            }
            size += n as u64;
        }
        Ok((Integrity(hasher.finalize().into()), size, second.map(|h| h.finalize().into())))
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
