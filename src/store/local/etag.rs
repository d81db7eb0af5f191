//! Content etags: the first 128 bits of the SHA-384 of the bytes, in hex,
//! quoted. Computed while copying, read from the writer's SRI, or by
//! re-reading the file: the same bytes always get the same etag.

use std::fs::File;
use std::io::{self, Read, Write};

use crate::integrity::Integrity;
use crate::store::Headers;

/// The etag of a file written with the SRI its writer computed from it.
///
/// `publish` hashes each file while planning and checks it is unchanged (size
/// and mtime) right before the write, so hashing it again here would only
/// repeat that work; `verify` re-hashes stored bytes against the manifests.
/// Only streamed files qualify: in-memory bodies (the index, the pointer,
/// which are compare-and-swapped) are always hashed, so their etag follows
/// their bytes whatever metadata comes with them.
pub(super) fn etag_from_sri(headers: &Headers) -> Option<String> {
    let integrity: Integrity = headers.sri.as_deref()?.parse().ok()?;
    Some(format_etag(&integrity.short()))
}

/// Copies `input` into `out` in 64 KiB chunks, hashing on the way, and
/// returns its content etag and size.
pub(super) fn copy_hashing(input: impl Read, out: &mut File) -> io::Result<(String, u64)> {
    struct Tee<'a, R> {
        input: R,
        out: &'a mut File,
    }
    impl<R: Read> Read for Tee<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.input.read(buf)?;
            self.out.write_all(&buf[..n])?;
            Ok(n)
        }
    }
    let (integrity, size) = Integrity::of_reader(Tee { input, out })?;
    Ok((format_etag(&integrity.short()), size))
}

/// The content etag of in-memory bytes.
pub(super) fn content_etag(bytes: &[u8]) -> String {
    format_etag(&Integrity::of_bytes(bytes).short())
}

/// The content etag of an open file, read with `pread` so that the file's
/// offset is left where it was (a reader may stream it next).
pub(super) fn content_etag_of_open(file: &File) -> io::Result<String> {
    struct At<'a>(&'a File, u64);
    impl Read for At<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = std::os::unix::fs::FileExt::read_at(self.0, buf, self.1)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    Ok(format_etag(&Integrity::of_reader(At(file, 0))?.0.short()))
}

/// A quoted, strong etag: the first 128 bits of the content's SHA-384, in
/// hex. The same bytes get the same etag whichever way it was computed
/// (while copying, from the writer's SRI, or by re-reading the file).
pub(super) fn format_etag(digest: &[u8; 16]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
