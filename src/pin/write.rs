//! Writing the pinned files: all of them or none. Every new file is first
//! written in full (flushed to disk) to a temp file beside the file it
//! replaces; only when all are written are they renamed into place, so a
//! full disk or a file-size limit leaves every file as it was. A rename
//! failing between two others is the one partial outcome left, and it is
//! reported with the files already replaced.
//!
//! A symbolic link is written through: the temp file goes beside the file
//! it points to and replaces that file, and the link stays a link.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::PinError;

/// One file ready to be renamed into place.
struct Staged<'a> {
    /// The path as the user gave it (for messages).
    path: &'a Path,
    /// The file the rename replaces (links resolved).
    target: PathBuf,
    tmp: PathBuf,
}

/// Replaces each `(path, bytes)` whose content differs, all or none (see
/// the module doc); unchanged files are not touched.
pub(crate) fn write_all(files: &[(&Path, &[u8])]) -> Result<(), PinError> {
    let mut staged: Vec<Staged<'_>> = Vec::new();
    for (i, (path, bytes)) in files.iter().enumerate() {
        match stage(path, bytes, i, &staged) {
            Ok(Some(s)) => staged.push(s),
            Ok(None) => {}
            Err(source) => {
                remove_temps(&staged);
                return Err(PinError::Write { path: path.to_path_buf(), source });
            }
        }
    }
    for (i, s) in staged.iter().enumerate() {
        if let Err(source) = std::fs::rename(&s.tmp, &s.target) {
            remove_temps(&staged[i..]);
            return Err(PinError::PartlyWritten {
                path: s.path.to_path_buf(),
                source,
                replaced: staged[..i].iter().map(|s| s.path.to_path_buf()).collect(),
                untouched: staged[i..].iter().map(|s| s.path.to_path_buf()).collect(),
            });
        }
        crate::pause::point_blocking("pin-renamed");
    }
    Ok(())
}

/// Writes `bytes` to a temp file beside `path`'s real file, with its
/// permissions, flushed; `None` when the file holds them already (or an
/// earlier entry is the same file).
fn stage<'a>(path: &'a Path, bytes: &[u8], i: usize, staged: &[Staged<'_>]) -> std::io::Result<Option<Staged<'a>>> {
    let target = std::fs::canonicalize(path)?;
    if staged.iter().any(|s| s.target == target) || std::fs::read(&target)? == bytes {
        return Ok(None);
    }
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.sdk-cdn-pin-{}-{i}", std::process::id()));
    let result = (|| {
        let permissions = std::fs::metadata(&target)?.permissions();
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(permissions)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(Some(Staged { path, target, tmp })),
        Err(e) => {
            // create_new: a temp that could not be created is not ours to remove.
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                let _ = std::fs::remove_file(&tmp);
            }
            Err(e)
        }
    }
}

fn remove_temps(staged: &[Staged<'_>]) {
    for s in staged {
        let _ = std::fs::remove_file(&s.tmp);
    }
}
