//! Parsing the `--store` URL: a local directory or `s3://bucket[/prefix]`.

use std::fmt;
use std::path::PathBuf;

use super::Key;

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
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
    pub url: String,
    /// What is wrong and what to write instead.
    pub reason: String,
}

impl StoreUrl {
    /// Parses a store URL.
    pub fn parse(url: &str) -> Result<Self, StoreUrlError> {
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
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(fail("file:// URLs need an absolute path, e.g. file:///srv/cdn".into()));
            }
            return Ok(StoreUrl::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(fail(format!(
                "unsupported scheme {scheme:?}; use a directory, file:///abs/path or s3://bucket[/prefix] \
                 (S3-compatible stores such as R2 or MinIO use s3:// with --endpoint-url)"
            )));
        }
        Ok(StoreUrl::Local(PathBuf::from(url)))
    }
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
        for bad in ["", "s3://", "s3://My_Bucket", "s3://ab", "s3://b-ok/../x", "gs://bucket", "file://rel/path"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = StoreUrl::parse("https://cdn.example.com").unwrap_err();
        assert!(err.to_string().contains("--endpoint-url"), "{err}");
    }
}
