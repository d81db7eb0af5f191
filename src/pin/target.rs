//! Where a tag's URL points, read as a browser reads it: character
//! references decoded, then WHATWG URL parsing (`url`: tabs and newlines
//! dropped, `\` as `/` for http(s), dot segments) against the document's
//! base (`<base href>`), then the path percent-decoded as `serve` and the
//! CDN do. A URL is the SDK's when its path has a segment `sdk` followed by
//! `latest` or a version and a file.
//!
//! A URL written plainly (`SdkUrl`) is pinned by editing its text, so
//! that it keeps its form.
//!
//! The page's own address is unknown, so relative URLs are resolved against
//! a stand-in deep enough that `..` never reaches its root; a pinned URL
//! that stays relative is written relative again.

use percent_encoding::percent_decode_str;
use url::Url;

use super::charref;
use crate::layout::LATEST;

/// The path segment before the version.
const SDK_SEGMENT: &str = "sdk/";

/// The stand-in for the page's address.
const DOCUMENT: &str = "https://document.invalid/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/page.html";
/// Its directory: a resolved path outside it came from a path-absolute URL.
const DOCUMENT_DIR: &str = "/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/";

/// The base URLs of one document.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// What relative URLs resolve against (the stand-in or `<base href>`).
    url: Url,
}

/// What a URL is, for `pin`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Not a file of the SDK (or nothing a browser would fetch).
    Other,
    /// A file of the SDK.
    Sdk(SdkTarget),
}

/// A URL that loads `<version|latest>/<file>` of the SDK.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SdkTarget {
    /// `latest` or a version, as the server reads it.
    pub(crate) version: String,
    /// The path under the version, percent-decoded (the index key's tail).
    pub(crate) file: String,
    resolved: Url,
    /// Index of the version segment in the decoded path.
    at: usize,
}

impl Default for Base {
    fn default() -> Base {
        Base { url: Url::parse(DOCUMENT).expect("a valid constant URL") }
    }
}

impl Base {
    /// The document base after a `<base href=raw>`; `Err` when its value is ambiguous.
    /// A value a browser would not use leaves the base as it is.
    pub(crate) fn with_href(&self, raw: &str) -> Result<Base, String> {
        let decoded = charref::decode(raw).map_err(ambiguous)?;
        match Url::options().base_url(Some(&self.url)).parse(&decoded) {
            Ok(url) if !url.cannot_be_a_base() && matches!(url.scheme(), "http" | "https") => Ok(Base { url }),
            _ => Ok(self.clone()),
        }
    }

    /// Where the attribute value `raw` points; `Err` when that cannot be told.
    pub(crate) fn resolve(&self, raw: &str) -> Result<Target, String> {
        let decoded = charref::decode(raw).map_err(ambiguous)?;
        let Ok(url) = Url::options().base_url(Some(&self.url)).parse(&decoded) else {
            return Ok(Target::Other); // a browser fetches nothing
        };
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Ok(Target::Other);
        }
        let path = percent_decode_str(url.path()).decode_utf8_lossy().into_owned();
        let segments: Vec<&str> = path.split('/').collect();
        for (i, pair) in segments.windows(2).enumerate() {
            let version = pair[1];
            if pair[0] != "sdk" || !(version == LATEST || crate::version::parse(version).is_ok()) {
                continue;
            }
            let file = segments[i + 2..].join("/");
            if segments.len() > i + 2 && !file.is_empty() {
                return Ok(Target::Sdk(SdkTarget { version: version.into(), file, resolved: url.clone(), at: i + 1 }));
            }
        }
        Ok(Target::Other)
    }

    /// `target` moved to `version`, written for this document: absolute if
    /// it points elsewhere than the page's site, path-absolute if its path
    /// was, else relative to the base.
    pub(crate) fn pinned(&self, target: &SdkTarget, version: &str) -> String {
        let path = percent_decode_str(target.resolved.path()).decode_utf8_lossy().into_owned();
        let mut segments: Vec<String> = path.split('/').map(|s| s.replace('%', "%25")).collect();
        segments[target.at] = version.to_string();
        let mut url = target.resolved.clone();
        url.set_path(&segments.join("/"));
        let document = Url::parse(DOCUMENT).ok();
        if document.as_ref().is_none_or(|d| d.origin() != url.origin()) {
            return url.to_string();
        }
        match url.path().starts_with(DOCUMENT_DIR) {
            true => self.url.make_relative(&url).unwrap_or_else(|| url.to_string()),
            false => url[url::Position::BeforePath..].to_string(),
        }
    }
}

/// A URL `…/sdk/<version|latest>/<file>[?…][#…]`, split.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SdkUrl<'u> {
    prefix: &'u str,
    version: &'u str,
    file: &'u str,
    suffix: &'u str,
}

impl<'u> SdkUrl<'u> {
    /// The first `sdk/` segment (at the start or after `/`) followed by a
    /// version or `latest` and a file; `None` for any other URL.
    fn parse(url: &'u str) -> Option<SdkUrl<'u>> {
        let end = url.find(['?', '#']).unwrap_or(url.len());
        let (path, suffix) = url.split_at(end);
        let mut from = 0;
        while let Some(at) = path[from..].find(SDK_SEGMENT).map(|i| i + from) {
            from = at + SDK_SEGMENT.len();
            if at > 0 && !path[..at].ends_with('/') {
                continue;
            }
            let rest = &path[from..];
            let Some((version, file)) = rest.split_once('/') else { continue };
            let known = version == LATEST || crate::version::parse(version).is_ok();
            if known && !file.is_empty() {
                return Some(SdkUrl { prefix: &path[..from], version, file, suffix });
            }
        }
        None
    }

    pub(crate) fn with_version(&self, version: &str) -> String {
        format!("{}{version}/{}{}", self.prefix, self.file, self.suffix)
    }
}

/// `raw` as a plain `…/sdk/<version>/<file>` URL whose text says what the
/// browser reads (no references, whitespace or `\`), to pin by editing its
/// version segment only.
pub(crate) fn plain<'u>(raw: &'u str, version: &str, file: &str) -> Option<SdkUrl<'u>> {
    let clean = !raw.contains(['&', '\t', '\n', '\r', '\\']) && raw.trim_matches(|c: char| c <= ' ') == raw;
    let sdk = SdkUrl::parse(raw).filter(|_| clean)?;
    (sdk.version == version && percent_decode_str(sdk.file).decode_utf8_lossy() == file).then_some(sdk)
}

fn ambiguous(reference: String) -> String {
    format!(
        "contains the character reference {reference}, which sdk-cdn does not decode, so where it loads from \
         cannot be told; write the URL without it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk(base: &Base, raw: &str) -> (String, String) {
        match base.resolve(raw).unwrap() {
            Target::Sdk(t) => (t.version, t.file),
            Target::Other => panic!("{raw} is not seen as the SDK"),
        }
    }

    #[test]
    fn urls_are_split_at_the_sdk_segment() {
        let url = SdkUrl::parse("https://cdn.example/sdk/latest/x/app.js?v=1#f").unwrap();
        assert_eq!(
            (url.prefix, url.version, url.file, url.suffix),
            ("https://cdn.example/sdk/", "latest", "x/app.js", "?v=1#f")
        );
        assert_eq!(SdkUrl::parse("sdk/1.2.3/a.js").unwrap().version, "1.2.3");
        for other in
            ["https://cdn.example/mysdk/1.0.0/a.js", "/sdk/next/a.js", "/sdk/1.0.0/", "/api/sdk/sri", "/other.js"]
        {
            assert_eq!(SdkUrl::parse(other), None, "{other}");
        }
    }

    #[test]
    fn urls_are_read_as_a_browser_reads_them() {
        let base = Base::default();
        for raw in [
            "http://cdn.example/sdk/l&#97;test/x.js",
            "http://cdn.example/sdk/lat&#9;est/x.js",
            "http://cdn.example/sdk/lat\nest/x.js",
            "http://cdn.example/sdk/%6catest/x.js",
            "http:\\\\cdn.example\\sdk\\latest\\x.js",
            "  /sdk/latest/x.js ",
            "../../sdk/./latest/x.js",
            "//cdn.example/a/../sdk/latest/x.js?v=1#f",
        ] {
            assert_eq!(sdk(&base, raw), ("latest".into(), "x.js".into()), "{raw}");
        }
        for raw in [
            "https://cdn.example/mysdk/1.0.0/a.js",
            "/sdk/next/a.js",
            "/sdk/1.0.0/",
            "/api/sdk/sri",
            "data:sdk/latest/x.js",
        ] {
            assert_eq!(base.resolve(raw).unwrap(), Target::Other, "{raw}");
        }
        assert!(base.resolve("/sdk/&lscr;atest/x.js").unwrap_err().contains("&lscr;"));
    }

    #[test]
    fn base_href_applies_and_pinned_urls_stay_equivalent() {
        let base = Base::default().with_href("http://cdn.example/sdk/latest/").unwrap();
        let Target::Sdk(t) = base.resolve("haloagents.umd.js").unwrap() else { panic!() };
        assert_eq!(base.pinned(&t, "1.1.0"), "http://cdn.example/sdk/1.1.0/haloagents.umd.js");
        let relative = Base::default().with_href("/static/sdk/latest/").unwrap();
        let Target::Sdk(t) = relative.resolve("a%20b.js").unwrap() else { panic!() };
        assert_eq!(t.file, "a b.js");
        let pinned = relative.pinned(&t, "1.1.0");
        assert_eq!(pinned, "/static/sdk/1.1.0/a%20b.js");
        let relative = Base::default().with_href("static/sdk/latest/").unwrap();
        let Target::Sdk(t) = relative.resolve("a%20b.js").unwrap() else { panic!() };
        let pinned = relative.pinned(&t, "1.1.0");
        assert_eq!(pinned, "../1.1.0/a%20b.js");
        let Target::Sdk(again) = relative.resolve(&pinned).unwrap() else { panic!() };
        assert_eq!((again.version.as_str(), again.file.as_str()), ("1.1.0", "a b.js"));
        // A javascript: base is not used by browsers.
        assert_eq!(Base::default().with_href("javascript:x").unwrap().url, Base::default().url);
    }
}
