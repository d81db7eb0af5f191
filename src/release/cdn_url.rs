//! URLs of published files on the CDN, built one way for every command that
//! names them: `verify --base-url` fetches them, `snippet` prints them into
//! HTML. Path segments are percent-encoded (a file `a b.js` or `x#y.js` is
//! otherwise a different URL), and only `http(s)` base URLs are accepted (a
//! `javascript:` base URL in a customer's page is script injection).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::ReleaseError;
use crate::layout;

/// Characters left as they are in URL path segments (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// An `http(s)` CDN origin, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl(String);

impl BaseUrl {
    /// Checks `base_url`: `http` or `https`, a host, no query or fragment.
    pub(crate) fn parse(base_url: &str) -> Result<Self, ReleaseError> {
        let base = base_url.trim_end_matches('/');
        let valid = !base.contains('#')
            && base.parse::<hyper::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() && u.query().is_none()
            });
        if !valid {
            return Err(ReleaseError::Usage(format!(
                "--base-url {base_url:?} is not an http(s) URL such as https://cdn.example.com"
            )));
        }
        Ok(BaseUrl(base.to_string()))
    }

    /// The URL of one of the tool's own keys (`api/sdk/sri`, its signatures): ASCII, no encoding needed.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}/{key}", self.0)
    }

    /// The URL of `path` (relative, `/`-separated) under `sdk/<dir>/`, each segment percent-encoded.
    pub(crate) fn file(&self, dir: &str, path: &str) -> String {
        let encoded: Vec<String> = path.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect();
        format!("{}/{}{}/{}", self.0, layout::SDK_PREFIX, utf8_percent_encode(dir, SEGMENT), encoded.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_base_urls_are_accepted() {
        for bad in [
            "javascript:alert(1)",
            "ftp://cdn.example.com",
            "cdn.example.com",
            "https://c.example/?q=1",
            "https://c.example/#x",
            "",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            BaseUrl::parse("https://cdn.example.com/").unwrap().file("1.0.0", "a.js"),
            "https://cdn.example.com/sdk/1.0.0/a.js"
        );
        assert_eq!(
            BaseUrl::parse("http://127.0.0.1:8080/cdn").unwrap().file("latest", "a.js"),
            "http://127.0.0.1:8080/cdn/sdk/latest/a.js"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        let base = BaseUrl::parse("https://c.example").unwrap();
        assert_eq!(base.file("1.0.0", "a b.js"), "https://c.example/sdk/1.0.0/a%20b.js");
        assert_eq!(base.file("1.0.0", "x#y.js"), "https://c.example/sdk/1.0.0/x%23y.js");
        assert_eq!(base.file("1.0.0", "Q?.js"), "https://c.example/sdk/1.0.0/Q%3F.js");
        assert_eq!(base.file("1.0.0-rc.1", "dir/a%20b.js"), "https://c.example/sdk/1.0.0-rc.1/dir/a%2520b.js");
        assert_eq!(base.file("latest", "a\"><img>.js"), "https://c.example/sdk/latest/a%22%3E%3Cimg%3E.js");
    }
}
