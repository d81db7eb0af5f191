//! Parsing the `--store` URL: a local directory or `s3://bucket[/prefix]`.
//!
//! A store writes `sdk/`, `manifests/`, `api/` and `.sdk-cdn/` at its top,
//! so a value that is not plainly a directory of its own is refused here,
//! before anything is written: the filesystem root, a malformed `file:` URL
//! (which would otherwise become a directory literally named `file:`), and
//! (in [`StoreUrl::check_local`], which looks at the disk) a path that is a
//! regular file.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;

use super::Key;

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreUrl {
    /// A local directory (`./cdn`, `/abs/dir`, `file:///abs/dir`).
    Local(PathBuf),
    /// An S3 bucket, optionally under a key prefix (without trailing `/`).
    S3 {
        /// The bucket name.
        bucket: String,
        /// Key prefix inside the bucket, `""` for the bucket root.
        prefix: String,
    },
}

/// Why a store URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store URL {url:?}: {reason}")]
pub struct StoreUrlError {
    /// The URL given.
    pub(crate) url: String,
    /// What is wrong and what to write instead.
    pub(crate) reason: String,
}

impl StoreUrl {
    /// Parses a store URL.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreUrlError> {
        let fail = |reason: String| StoreUrlError { url: url.to_string(), reason };
        if url.is_empty() {
            return Err(fail("it is empty; use a directory such as ./cdn or s3://bucket/prefix".into()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket(bucket).map_err(fail)?;
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty() {
                Key::new(prefix).map_err(|e| fail(format!("the prefix is not a valid key: {e}")))?;
            }
            return Ok(StoreUrl::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() });
        }
        if let Some(path) = url.strip_prefix(FILE_URL_PREFIX) {
            return local(file_url_path(path).map_err(fail)?).map_err(fail);
        }
        if url.get(..FILE_SCHEME.len()).is_some_and(|s| s.eq_ignore_ascii_case(FILE_SCHEME)) {
            return Err(fail(format!(
                "not a valid file URL; write file:///abs/path (three slashes), or the directory itself{}",
                example_dir()
            )));
        }
        if url.get(..S3_SCHEME.len()).is_some_and(|s| s.eq_ignore_ascii_case(S3_SCHEME)) {
            return Err(fail("not a valid S3 URL; write s3://bucket or s3://bucket/prefix (lowercase s3://)".into()));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(fail(format!(
                "unsupported scheme {scheme:?}; use a directory, file:///abs/path or s3://bucket[/prefix] \
                 (S3-compatible stores such as R2 or MinIO use s3:// with --endpoint-url)"
            )));
        }
        local(PathBuf::from(url)).map_err(fail)
    }

    /// The directory of a local store, `None` for S3.
    pub(crate) fn local_root(&self) -> Option<&Path> {
        match self {
            StoreUrl::Local(path) => Some(path),
            StoreUrl::S3 { .. } => None,
        }
    }

    /// Refuses a local store whose path exists but is not a directory, or
    /// that resolves (through `..` or symbolic links) to the filesystem
    /// root. A path that does not exist yet is fine: the first publish
    /// creates it. Looks at the disk but writes nothing.
    pub(crate) fn check_local(&self) -> Result<(), StoreUrlError> {
        let Some(path) = self.local_root() else { return Ok(()) };
        let fail = |reason: String| StoreUrlError { url: path.display().to_string(), reason };
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_dir() => Err(fail(format!(
                "is a file, not a directory; give the store a directory of its own (created on first publish){}",
                example_dir()
            ))),
            Ok(_) if std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/")) => Err(fail(root_reason())),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(fail(format!(
                "a part of the path is a file, not a directory; give the store a directory of its own{}",
                example_dir()
            ))),
            _ => Ok(()),
        }
    }
}

/// `file://` followed by an absolute path.
const FILE_URL_PREFIX: &str = "file://";
/// A URL scheme that must be followed by `//` and an absolute path.
const FILE_SCHEME: &str = "file:";
/// The S3 scheme, which must be followed by `//` and a bucket (checked after `s3://` itself).
const S3_SCHEME: &str = "s3:";

fn example_dir() -> &'static str {
    ", e.g. ./cdn or /srv/cdn"
}

fn root_reason() -> String {
    format!(
        "is the filesystem root; a store writes sdk/, manifests/, api/ and .sdk-cdn/ at its top, so give it a \
         directory of its own{}",
        example_dir()
    )
}

/// The path of a `file://` URL (after the prefix): absolute, without a query
/// or fragment, percent-decoded (`%20` is a space).
fn file_url_path(path: &str) -> Result<PathBuf, String> {
    if !path.starts_with('/') {
        return Err("file:// URLs need an absolute path, e.g. file:///srv/cdn".into());
    }
    if path.contains(['?', '#']) {
        return Err("a file URL cannot have a query or fragment; write '?' as %3F and '#' as %23".into());
    }
    let bytes: Vec<u8> = percent_decode_str(path).collect();
    if bytes.contains(&0) {
        return Err("the path contains %00 (a NUL byte), which no file name can hold".into());
    }
    Ok(PathBuf::from(OsString::from_vec(bytes)))
}

/// A local store at `path`, unless `path` is the filesystem root (by its
/// spelling: `/`, `//`, `/./..`; a symbolic link to it is caught by
/// [`StoreUrl::check_local`]).
fn local(path: PathBuf) -> Result<StoreUrl, String> {
    let is_root = path.has_root()
        && path.components().all(|c| matches!(c, Component::RootDir | Component::CurDir | Component::ParentDir));
    if is_root {
        return Err(root_reason());
    }
    Ok(StoreUrl::Local(path))
}

fn check_bucket(bucket: &str) -> Result<(), String> {
    let ok_chars = bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !(3..=63).contains(&bucket.len()) || !ok_chars || bucket.starts_with(['-', '.']) || bucket.ends_with(['-', '.'])
    {
        return Err(format!(
            "{bucket:?} is not a valid bucket name (3-63 characters: lowercase letters, digits, '-' and '.')"
        ));
    }
    Ok(())
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Local(path) => write!(f, "{}", path.display()),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_s3_urls_parse() {
        assert_eq!(StoreUrl::parse("./cdn").unwrap(), StoreUrl::Local("./cdn".into()));
        assert_eq!(StoreUrl::parse("file:///srv/cdn").unwrap(), StoreUrl::Local("/srv/cdn".into()));
        assert_eq!(
            StoreUrl::parse("s3://my-bucket/cdn/prod/").unwrap(),
            StoreUrl::S3 { bucket: "my-bucket".into(), prefix: "cdn/prod".into() }
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket").unwrap(),
            StoreUrl::S3 { bucket: "my-bucket".into(), prefix: String::new() }
        );
    }

    #[test]
    fn bad_urls_name_the_problem() {
        for bad in [
            "",
            "s3://",
            "s3://My_Bucket",
            "s3://ab",
            "s3://b-ok/../x",
            "gs://bucket",
            "file://rel/path",
            "s3:/bucket",
            "s3:bucket",
            "S3://bucket",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = StoreUrl::parse("https://cdn.example.com").unwrap_err();
        assert!(err.to_string().contains("--endpoint-url"), "{err}");
    }

    #[test]
    fn the_filesystem_root_is_refused_however_it_is_spelled() {
        for root in ["/", "//", "/./", "/..", "/../.", "file:///", "file:////", "file:///.."] {
            let err = StoreUrl::parse(root).unwrap_err();
            assert!(err.reason.contains("filesystem root"), "{root:?}: {err}");
        }
        assert_eq!(StoreUrl::parse("/srv").unwrap(), StoreUrl::Local("/srv".into()));
    }

    #[test]
    fn malformed_file_urls_are_refused() {
        for bad in
            ["file:", "file:cdn", "file:/srv/cdn", "FILE:", "file://", "file:///a?x", "file:///a#b", "file:///a%00"]
        {
            assert!(StoreUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = StoreUrl::parse("file:").unwrap_err();
        assert!(err.reason.contains("file:///abs/path"), "{err}");
    }

    #[test]
    fn file_urls_are_percent_decoded() {
        assert_eq!(StoreUrl::parse("file:///a%20b").unwrap(), StoreUrl::Local("/a b".into()));
        assert_eq!(StoreUrl::parse("file:///srv/c%C3%A9").unwrap(), StoreUrl::Local("/srv/cé".into()));
        // A plain path is a path: `%20` is three characters of a file name.
        assert_eq!(StoreUrl::parse("./a%20b").unwrap(), StoreUrl::Local("./a%20b".into()));
    }

    #[test]
    fn a_regular_file_as_local_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        std::fs::write(&file, b"x").unwrap();
        let err = StoreUrl::Local(file.clone()).check_local().unwrap_err();
        assert!(err.reason.contains("is a file"), "{err}");
        let err = StoreUrl::Local(file.join("cdn")).check_local().unwrap_err();
        assert!(err.reason.contains("is a file"), "{err}");
        // Missing (created on first publish) and existing directories are fine.
        StoreUrl::Local(dir.path().join("new")).check_local().unwrap();
        StoreUrl::Local(dir.path().to_path_buf()).check_local().unwrap();
    }

    #[test]
    fn a_path_that_resolves_to_the_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        let err = StoreUrl::Local(dir.path().join("root")).check_local().unwrap_err();
        assert!(err.reason.contains("filesystem root"), "{err}");
    }
}
