//! `Key`: an object name relative to the store root that cannot escape it.
//!
//! Every key is checked once, here, so no backend has to worry about `..`,
//! absolute paths, backslashes or control characters.

use std::fmt;

/// S3's limit on a key, in UTF-8 bytes (including any store prefix).
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// The directory the local backend keeps its bookkeeping in; never a key.
pub(crate) const RESERVED_PREFIX: &str = ".sdk-cdn";

/// A validated object key: `/`-separated, relative, no `.`/`..`/empty segments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

/// Why a string is not a valid key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty key or empty path segment (`a//b`, leading or trailing `/`).
    #[error("{0:?} has an empty path segment (leading, trailing or doubled '/')")]
    EmptySegment(String),
    /// A `.` or `..` segment.
    #[error("{0:?} contains a '.' or '..' path segment")]
    DotSegment(String),
    /// A backslash, which some tools treat as a separator.
    #[error("{0:?} contains a backslash")]
    Backslash(String),
    /// A control character (including NUL and DEL).
    #[error("{0:?} contains a control character")]
    Control(String),
    /// Longer than S3 allows.
    #[error("{key:?} is {len} bytes long; S3 allows at most {MAX_KEY_BYTES}")]
    TooLong {
        /// The key.
        key: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Inside the reserved bookkeeping directory.
    #[error("{0:?} is inside the reserved {RESERVED_PREFIX}/ directory")]
    Reserved(String),
}

impl Key {
    /// Validates `s` as a key.
    pub fn new(s: impl Into<String>) -> Result<Self, KeyError> {
        let s = s.into();
        if s.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLong { len: s.len(), key: s });
        }
        if s.chars().any(char::is_control) {
            return Err(KeyError::Control(s));
        }
        if s.contains('\\') {
            return Err(KeyError::Backslash(s));
        }
        for segment in s.split('/') {
            match segment {
                "" => return Err(KeyError::EmptySegment(s)),
                "." | ".." => return Err(KeyError::DotSegment(s)),
                _ => {}
            }
        }
        if s.split('/').next() == Some(RESERVED_PREFIX) {
            return Err(KeyError::Reserved(s));
        }
        Ok(Key(s))
    }

    /// A key built by this crate from parts that cannot violate the rules
    /// (constants and SemVer versions); checked in debug builds.
    pub(crate) fn trusted(s: String) -> Self {
        debug_assert!(Key::new(s.as_str()).is_ok(), "{s:?} is not a valid key");
        Key(s)
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_nested_keys_are_accepted() {
        assert_eq!(Key::new("sdk/0.8.0/a.js").unwrap().as_str(), "sdk/0.8.0/a.js");
        assert!(Key::new("api/sdk/sri").is_ok());
        assert!(Key::new(".well-known/x").is_ok());
    }

    #[test]
    fn escaping_or_ambiguous_keys_are_refused() {
        for bad in ["", "/abs", "a/", "a//b", "../x", "a/./b", "a/..", "a\\b", "a\u{0}b", "a\nb", "a\u{7f}"] {
            assert!(Key::new(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(matches!(Key::new(".sdk-cdn/meta/x"), Err(KeyError::Reserved(_))));
    }

    #[test]
    fn keys_longer_than_s3_allows_are_refused() {
        assert!(Key::new("a".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(matches!(Key::new("a".repeat(MAX_KEY_BYTES + 1)), Err(KeyError::TooLong { .. })));
    }
}
