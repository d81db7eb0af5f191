//! Content etags: the first 128 bits of the SHA-384 of the bytes, in hex,
//! quoted. Computed while copying into the store or by re-reading a file:
//! the same bytes always get the same etag.

use std::fs::File;
use std::io::{self, Read};

use crate::integrity::Integrity;

/// The content etag of bytes with this integrity.
pub(super) fn etag_of(integrity: &Integrity) -> String {
    format_etag(&integrity.short())
}

/// The content etag of in-memory bytes.
#[cfg(test)]
pub(super) fn content_etag(bytes: &[u8]) -> String {
    etag_of(&Integrity::of_bytes(bytes))
}

/// The integrity of an open file, read with `pread` so that the file's
/// offset is left where it was (a reader may stream it next).
pub(super) fn integrity_of_open(file: &File) -> io::Result<Integrity> {
    struct At<'a>(&'a File, u64);
    impl Read for At<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = std::os::unix::fs::FileExt::read_at(self.0, buf, self.1)?;
            self.1 += n as u64;
            Ok(n)
        }
    }
    Ok(Integrity::of_reader(At(file, 0))?.0)
}

/// A quoted, strong etag: the first 128 bits of the content's SHA-384, in
/// hex. The same bytes get the same etag whichever way it was computed.
fn format_etag(digest: &[u8; 16]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
