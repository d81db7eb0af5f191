//! Opening a build file as the walk saw it: a regular file inside the build
//! directory, reached without following a symbolic link.
//!
//! The walk refuses links and special files, but it reads directory entries
//! before the hashing workers open the files, and a build may change in
//! between (a build tool still writing, a hostile checkout). Opening by path
//! would then follow a link swapped in after the walk, and publish and seal
//! whatever it points at, outside the build; opening a pipe swapped in would
//! wait for a writer for ever. So each file is opened:
//! - relative to the build directory opened once at the start, with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: no component of the
//!   path may be a link, a directory swapped for a link included;
//! - where the kernel lacks `openat2` (before Linux 5.6, or a seccomp filter
//!   that refuses it), by path with `O_NOFOLLOW`: the file itself may not be
//!   a link (its directories are not checked then);
//! - with `O_NONBLOCK`, so a pipe opens at once instead of blocking, and then
//!   the opened file must be a regular file (`fstat`).

use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a build file could not be opened as the walk saw it.
#[derive(Debug)]
pub(super) enum OpenError {
    /// The file, or a directory on its path, is (now) a symbolic link.
    Link,
    /// The file is (now) a device, socket, pipe or directory.
    NotRegular,
    /// Anything else the OS said.
    Io(io::Error),
}

/// The build directory, opened once; files are opened beneath it.
pub(super) struct BuildDir {
    /// `None` when the directory could not be opened: files are then opened
    /// by path (and the error, if it persists, names the file).
    dir: Option<OwnedFd>,
    /// Set once `openat2` turned out to be unavailable: don't ask again.
    no_openat2: AtomicBool,
}

impl BuildDir {
    /// Opens `dir` (following a link given as the build directory itself:
    /// that one is the user's choice).
    pub(super) fn open(dir: &Path) -> BuildDir {
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map(OwnedFd::from);
        BuildDir { dir: opened.ok(), no_openat2: AtomicBool::new(false) }
    }

    /// Opens the build file `rel` (relative, `/`-separated; `source` is the
    /// same file by path) for reading, as a regular file inside the build,
    /// with its metadata (the one `fstat` the check needs serves the caller too).
    pub(super) fn open_file(&self, rel: &str, source: &Path) -> Result<(File, Metadata), OpenError> {
        let file = match self.beneath(rel) {
            Some(opened) => opened,
            None => std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(source),
        }
        .map_err(|e| match e.raw_os_error() {
            // ELOOP: a link where none may be; EXDEV: a path that leaves the build.
            Some(libc::ELOOP) | Some(libc::EXDEV) => OpenError::Link,
            _ => OpenError::Io(e),
        })?;
        let meta = file.metadata().map_err(OpenError::Io)?;
        if !meta.is_file() {
            return Err(OpenError::NotRegular);
        }
        Ok((file, meta))
    }

    /// `openat2` beneath the build directory; `None` when it cannot be used.
    fn beneath(&self, rel: &str) -> Option<io::Result<File>> {
        let dir = self.dir.as_ref()?;
        if self.no_openat2.load(Ordering::Relaxed) {
            return None;
        }
        let Ok(path) = std::ffi::CString::new(rel) else {
            return Some(Err(io::Error::from(io::ErrorKind::InvalidInput)));
        };
        // SAFETY: `open_how` is plain data; all-zero is its documented default.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: the pointers are valid for the call, and the size is `how`'s.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // ENOSYS: an older kernel; EPERM: a seccomp filter that refuses it.
            if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
                self.no_openat2.store(true, Ordering::Relaxed);
                return None;
            }
            return Some(Err(e));
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        Some(Ok(unsafe { File::from_raw_fd(fd as i32) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.js"), b"a").unwrap();
        dir
    }

    fn open(dir: &Path, rel: &str) -> Result<File, OpenError> {
        BuildDir::open(dir).open_file(rel, &dir.join(rel)).map(|(file, _)| file)
    }

    #[test]
    fn a_regular_file_opens() {
        let dir = build();
        let mut text = String::new();
        io::Read::read_to_string(&mut open(dir.path(), "sub/a.js").unwrap(), &mut text).unwrap();
        assert_eq!(text, "a");
    }

    #[test]
    fn a_link_in_place_of_the_file_or_of_a_directory_is_refused() {
        let dir = build();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("a.js"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("a.js"), dir.path().join("link.js")).unwrap();
        assert!(matches!(open(dir.path(), "link.js"), Err(OpenError::Link)));
        // A directory swapped for a link after the walk.
        std::fs::remove_dir_all(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).unwrap();
        assert!(matches!(open(dir.path(), "sub/a.js"), Err(OpenError::Link)));
    }

    #[test]
    fn a_pipe_is_refused_at_once_instead_of_waiting_for_a_writer() {
        let dir = build();
        let fifo = std::ffi::CString::new(dir.path().join("p.js").to_str().unwrap()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        assert!(matches!(open(dir.path(), "p.js"), Err(OpenError::NotRegular)));
    }
}
