//! From a request path to a store key, refusing anything that could name a
//! key outside `sdk/<version|latest>/`.
//!
//! Two gates, in order:
//! 1. [`check_raw`], for every request before routing: the raw path may not
//!    carry an encoded `/`, `\` or NUL (`%2f`, `%5c`, `%00`), a literal
//!    backslash, invalid UTF-8 or control characters once decoded. Encoded
//!    separators are refused *before* decoding, so no layer can disagree
//!    about where a segment ends.
//! 2. [`file_target`]: the decoded path must be `<version|latest>/<path>`
//!    with a strict SemVer version, and `sdk/<dir>/<path>` must pass
//!    [`Key::new`](crate::store::Key::new) (no `.`/`..`/empty segments).

use percent_encoding::percent_decode_str;
use semver::Version;

use super::error::ApiError;
use crate::layout;
use crate::store::Key;

/// Every file path starts with this.
pub(super) const FILES_PREFIX: &str = "/sdk/";

/// Percent-encodings that would change how a path splits into segments.
const FORBIDDEN_ENCODINGS: [&str; 3] = ["%2f", "%5c", "%00"];

/// `latest` or a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dir {
    /// The `latest` channel.
    Latest,
    /// A strict SemVer version.
    Version(Version),
}

impl Dir {
    /// The directory name as it appears in keys and index entries.
    pub(super) fn name(&self) -> String {
        match self {
            Dir::Latest => layout::LATEST.to_string(),
            Dir::Version(v) => v.to_string(),
        }
    }
}

/// A requested file.
#[derive(Debug, Clone)]
pub(super) struct FileTarget {
    /// `latest` or the version.
    pub(super) dir: Dir,
    /// The path inside the version, `/`-separated.
    pub(super) path: String,
    /// `sdk/<dir>/<path>`.
    pub(super) key: Key,
}

impl FileTarget {
    /// The name of the file in the SRI index: `<dir>/<path>`.
    pub(super) fn entry(&self) -> String {
        layout::index_entry(&self.dir.name(), &self.path)
    }
}

/// Gate 1: refuses raw paths that smuggle separators or control characters.
pub(super) fn check_raw(raw: &str) -> Result<(), ApiError> {
    if !raw.contains('%') {
        // Nothing is encoded (every request for the index): the path is its
        // own decoding, and none of the forbidden encodings can be in it.
        return plain_path(raw);
    }
    let lower = raw.to_ascii_lowercase();
    if FORBIDDEN_ENCODINGS.iter().any(|e| lower.contains(e)) {
        return Err(ApiError::bad_request("encoded '/', '\\' and NUL are not allowed in request paths"));
    }
    plain_path(&decode(raw)?)
}

/// No backslash and no control character (in a path with nothing encoded,
/// or once decoded: a raw backslash stays one, `%5c` was refused above).
fn plain_path(path: &str) -> Result<(), ApiError> {
    if path.contains('\\') {
        return Err(ApiError::bad_request("backslashes are not allowed in request paths"));
    }
    if path.chars().any(char::is_control) {
        return Err(ApiError::bad_request("control characters are not allowed in request paths"));
    }
    Ok(())
}

/// `latest` or a strict version, with the version parser's explanation on failure.
pub(super) fn parse_dir(s: &str) -> Result<Dir, ApiError> {
    if s == layout::LATEST {
        return Ok(Dir::Latest);
    }
    crate::version::parse(s).map(Dir::Version).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Gate 2: `/sdk/<dir>/<path>` → the file it names.
pub(super) fn file_target(raw: &str) -> Result<FileTarget, ApiError> {
    let Some(rest) = raw.strip_prefix(FILES_PREFIX) else {
        return Err(ApiError::not_found("no such route"));
    };
    let decoded = decode(rest)?;
    let Some((dir, path)) = decoded.split_once('/') else {
        return Err(ApiError::not_found("name a file: /sdk/<version>/<path> or /sdk/latest/<path>"));
    };
    let dir = parse_dir(dir)?;
    let key = match &dir {
        Dir::Latest => layout::latest_file(path),
        Dir::Version(v) => layout::version_file(v, path),
    }
    .map_err(|e| ApiError::bad_request(format!("invalid file path: {e}")))?;
    Ok(FileTarget { dir, path: path.to_string(), key })
}

fn decode(raw: &str) -> Result<String, ApiError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request("the request path is not valid UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_and_latest_files_map_to_their_keys() {
        let t = file_target("/sdk/0.1.0/chunks/a%20b.js").unwrap();
        assert_eq!(t.key.as_str(), "sdk/0.1.0/chunks/a b.js");
        assert_eq!(t.entry(), "0.1.0/chunks/a b.js");
        let t = file_target("/sdk/latest/haloagents.umd.js").unwrap();
        assert_eq!((t.dir, t.key.as_str()), (Dir::Latest, "sdk/latest/haloagents.umd.js"));
    }

    #[test]
    fn escaping_paths_are_refused() {
        for raw in [
            "/sdk/0.1.0/../../manifests/0.1.0.json",
            "/sdk/0.1.0/%2e%2e/%2e%2e/api/sdk/sri",
            "/sdk/0.1.0/./a.js",
            "/sdk/0.1.0//etc/passwd",
            "/sdk/0.1.0/",
            "/sdk//etc/passwd",
            "/sdk/../api/sdk/sri",
            "/sdk/v0.1.0/a.js",
            "/sdk/0.1.0+b/a.js",
        ] {
            let status = file_target(raw).map(|t| t.key.to_string()).unwrap_err().status;
            assert_eq!(status, 400, "{raw}");
        }
        assert_eq!(file_target("/sdk/0.1.0").unwrap_err().status, 404);
    }

    #[test]
    fn smuggled_separators_and_controls_are_refused_before_decoding() {
        // With and without anything percent-encoded (the two paths through `check_raw`).
        for raw in [
            "/sdk/0.1.0%2fa.js",
            "/sdk/0.1.0/a%2F..%2Fb",
            "/sdk/0.1.0/a%5cb",
            "/sdk/a\\b",
            "/sdk/a\\b%20",
            "/sdk/a%00",
            "/x%0a",
            "/x\tb",
            "/x\u{7f}%20",
        ] {
            assert_eq!(check_raw(raw).unwrap_err().status, 400, "{raw}");
        }
        assert_eq!(check_raw("/sdk/0.1.0/%ff").unwrap_err().status, 400);
        check_raw("/sdk/0.1.0/a%20b.js").unwrap();
        check_raw("/api/sdk/sri").unwrap();
    }
}
