//! The HTML side of `pin`: find the tags that load the SDK and give them a
//! pinned URL, `integrity` and `crossorigin="anonymous"`, with `lol_html`
//! (a streaming rewriter: tags it does not touch are copied byte for byte).
//!
//! Pure: HTML and index in, new HTML or a list of problems out, no I/O.

use std::cell::RefCell;

use lol_html::{RewriteStrSettings, element, rewrite_str};
use percent_encoding::percent_decode_str;

use crate::layout::LATEST;
use crate::manifest::SriIndex;

/// The path segment before the version.
const SDK_SEGMENT: &str = "sdk/";
const INTEGRITY: &str = "integrity";
const CROSSORIGIN: &str = "crossorigin";
const ANONYMOUS: &str = "anonymous";

/// One tag that loads a file of the SDK.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PinnedTag {
    /// The URL before.
    pub(crate) url: String,
    /// The URL after (the same under `--check`).
    pub(crate) pinned_url: String,
    /// The integrity it carries now (after a rewrite: the index's).
    pub(crate) integrity: String,
}

/// What to do with the tags found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode<'a> {
    /// Rewrite every tag to this version.
    Pin(&'a str),
    /// Change nothing; report tags whose integrity differs from the index
    /// (for their own version, which must be this one when given).
    Check(Option<&'a str>),
}

/// The outcome for one HTML document.
#[derive(Debug)]
pub(crate) struct Rewritten {
    /// The new HTML (the input itself under `--check`).
    pub(crate) html: String,
    /// The SDK tags, in document order.
    pub(crate) tags: Vec<PinnedTag>,
    /// Under `--check`: what differs from the index.
    pub(crate) mismatches: Vec<String>,
}

/// A URL `…/sdk/<version|latest>/<file>[?…][#…]`, split.
#[derive(Debug, PartialEq, Eq)]
struct SdkUrl<'u> {
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

    fn with_version(&self, version: &str) -> String {
        format!("{}{version}/{}{}", self.prefix, self.file, self.suffix)
    }

    /// The index key of this file under `version`: `<version>/<path>`, unescaped.
    fn index_key(&self, version: &str) -> String {
        format!("{version}/{}", percent_decode_str(self.file).decode_utf8_lossy())
    }
}

/// The hash tokens and the publisher-key (`ed25519-…`) tokens of an
/// `integrity` value.
fn split_integrity(value: &str) -> (Vec<&str>, Vec<&str>) {
    value.split_ascii_whitespace().partition(|token| !token.starts_with("ed25519-"))
}

/// Rewrites (or checks) the SDK tags of `html` against `index`.
/// `Err` lists every tag that cannot be pinned; nothing is then usable.
pub(crate) fn pin_html(html: &str, index: &SriIndex, mode: Mode<'_>) -> Result<Rewritten, Vec<String>> {
    let state = RefCell::new((Vec::new(), Vec::new(), Vec::new())); // tags, problems, mismatches
    let visit = |el: &mut lol_html::html_content::Element<'_, '_>, attr: &str| {
        let Some(url) = el.get_attribute(attr) else { return Ok(()) };
        let Some(sdk) = SdkUrl::parse(&url) else { return Ok(()) };
        let current = el.get_attribute(INTEGRITY).unwrap_or_default();
        let (tags, problems, mismatches) = &mut *state.borrow_mut();
        let (hash, keys) = split_integrity(&current);
        // `latest/` pinned by the publisher's key (signature-based SRI) is
        // pinned already, on purpose: it follows releases and still refuses
        // bytes the key did not sign. Left as it is, and it passes --check.
        if sdk.version == LATEST && !keys.is_empty() {
            tags.push(PinnedTag { url: url.clone(), pinned_url: url.clone(), integrity: current.clone() });
            return Ok(());
        }
        match mode {
            Mode::Pin(version) => {
                let key = sdk.index_key(version);
                let Some(hash) = index.files.get(&key).map(ToString::to_string).filter(|i| !i.is_empty()) else {
                    problems.push(format!("{url}: the index has no {key}; check --version and the file name"));
                    return Ok(());
                };
                // Publisher keys the tag names stay: the browser then checks
                // the hash *and* the signature.
                let integrity =
                    std::iter::once(hash.as_str()).chain(keys.iter().copied()).collect::<Vec<_>>().join(" ");
                let pinned_url = sdk.with_version(version);
                if pinned_url != url {
                    el.set_attribute(attr, &pinned_url)?;
                }
                if current != integrity {
                    el.set_attribute(INTEGRITY, &integrity)?;
                }
                if el.get_attribute(CROSSORIGIN).as_deref() != Some(ANONYMOUS) {
                    el.set_attribute(CROSSORIGIN, ANONYMOUS)?;
                }
                tags.push(PinnedTag { url: url.clone(), pinned_url, integrity });
            }
            Mode::Check(wanted) => {
                let key = sdk.index_key(sdk.version);
                match index.files.get(&key).map(ToString::to_string) {
                    None => mismatches.push(format!("{url}: the index has no {key}")),
                    Some(expected) if hash != [expected.as_str()] => mismatches.push(format!(
                        "{url}: integrity {current:?}, the index says {expected:?}; run `sdk-cdn pin` to update it"
                    )),
                    Some(_) => {}
                }
                if let Some(wanted) = wanted.filter(|w| *w != sdk.version) {
                    mismatches.push(format!("{url}: loads {}, not the pinned version {wanted}", sdk.version));
                }
                if el.get_attribute(CROSSORIGIN).is_none() {
                    mismatches
                        .push(format!("{url}: no crossorigin attribute; browsers refuse cross-origin SRI without it"));
                }
                tags.push(PinnedTag { url: url.clone(), pinned_url: url.clone(), integrity: current });
            }
        }
        Ok(())
    };
    let settings = RewriteStrSettings::new()
        .append_element_content_handler(element!("script[src]", |el| visit(el, "src")))
        .append_element_content_handler(element!("link[href][rel]", |el| {
            let stylesheet = el
                .get_attribute("rel")
                .is_some_and(|rel| rel.split_ascii_whitespace().any(|t| t.eq_ignore_ascii_case("stylesheet")));
            if stylesheet { visit(el, "href") } else { Ok(()) }
        }));
    let output = rewrite_str(html, settings).map_err(|e| vec![format!("the HTML could not be rewritten: {e}")])?;
    let (tags, problems, mismatches) = state.into_inner();
    if !problems.is_empty() {
        return Err(problems);
    }
    let html = if matches!(mode, Mode::Check(_)) { html.to_string() } else { output };
    Ok(Rewritten { html, tags, mismatches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::Integrity;

    fn index() -> SriIndex {
        let mut index = SriIndex { version: Some(semver::Version::new(1, 4, 0)), ..SriIndex::default() };
        for key in ["1.4.0/app.js", "1.4.0/app.css", "1.3.0/app.js", "latest/app.js", "1.4.0/a b.js"] {
            index.files.insert(key.into(), Integrity::of_bytes(key.as_bytes()));
        }
        index
    }

    fn sri(key: &str) -> String {
        Integrity::of_bytes(key.as_bytes()).to_string()
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
    fn tags_get_the_version_integrity_and_crossorigin_and_nothing_else_changes() {
        let html = "<!doctype html>\n<!-- <script src=\"/sdk/latest/app.js\"> -->\n<p class=x>  odd   spacing</p >\n\
                    <script src='/sdk/latest/app.js' integrity=\"sha384-stale\" defer></script>\n\
                    <link rel=\"preload stylesheet\" href=\"/sdk/1.3.0/app.css\">\n<script src=/other.js></script>\n";
        let out = pin_html(html, &index(), Mode::Pin("1.4.0")).unwrap();
        let js = sri("1.4.0/app.js");
        let css = sri("1.4.0/app.css");
        let expected = format!(
            "<!doctype html>\n<!-- <script src=\"/sdk/latest/app.js\"> -->\n<p class=x>  odd   spacing</p >\n\
             <script src=\"/sdk/1.4.0/app.js\" integrity=\"{js}\" defer crossorigin=\"anonymous\"></script>\n\
             <link rel=\"preload stylesheet\" href=\"/sdk/1.4.0/app.css\" integrity=\"{css}\" crossorigin=\"anonymous\">\n\
             <script src=/other.js></script>\n"
        );
        assert_eq!(out.html, expected);
        assert_eq!(out.tags.len(), 2);
        // Pinning again changes nothing.
        assert_eq!(pin_html(&out.html, &index(), Mode::Pin("1.4.0")).unwrap().html, out.html);
    }

    /// Probe finding: `pin` dropped the publisher key of `snippet --signed`
    /// tags, and `--check` failed on them.
    #[test]
    fn publisher_keys_are_kept_and_latest_pinned_by_key_is_left_alone() {
        let key = "ed25519-m0OZMnsek5mb/bhK71w1gjwm7NLuSzCcLkiviNMlmmo=";
        let by_key =
            format!("<script src=\"/sdk/latest/app.js\" integrity=\"{key}\" crossorigin=\"anonymous\"></script>");
        let out = pin_html(&by_key, &index(), Mode::Pin("1.4.0")).unwrap();
        assert_eq!(out.html, by_key, "latest/ pinned by key is pinned already");
        assert!(pin_html(&by_key, &index(), Mode::Check(None)).unwrap().mismatches.is_empty());

        let mixed =
            format!("<script src=/sdk/1.3.0/app.js integrity=\"{} {key}\" crossorigin></script>", sri("1.3.0/app.js"));
        let check = pin_html(&mixed, &index(), Mode::Check(None)).unwrap();
        assert!(check.mismatches.is_empty(), "the hash matches; the key is the publisher's: {:?}", check.mismatches);
        let out = pin_html(&mixed, &index(), Mode::Pin("1.4.0")).unwrap();
        assert!(out.html.contains(&format!("integrity=\"{} {key}\"", sri("1.4.0/app.js"))), "{}", out.html);
        let stale = mixed.replace(&sri("1.3.0/app.js"), &sri("1.4.0/app.js"));
        let check = pin_html(&stale, &index(), Mode::Check(None)).unwrap();
        assert_eq!(check.mismatches.len(), 1, "a wrong hash beside a key still fails");
    }

    #[test]
    fn a_file_missing_from_the_index_is_refused() {
        let problems = pin_html("<script src=/sdk/latest/gone.js></script>", &index(), Mode::Pin("1.4.0")).unwrap_err();
        assert!(problems[0].contains("1.4.0/gone.js"), "{problems:?}");
    }

    #[test]
    fn escaped_file_names_are_looked_up_unescaped() {
        let out = pin_html("<script src=/sdk/latest/a%20b.js></script>", &index(), Mode::Pin("1.4.0")).unwrap();
        assert_eq!(out.tags[0].integrity, sri("1.4.0/a b.js"));
        assert!(out.html.contains("/sdk/1.4.0/a%20b.js"), "{}", out.html);
    }

    #[test]
    fn check_reports_stale_missing_and_unpinned_tags_and_changes_nothing() {
        let good = format!("<script src=/sdk/1.3.0/app.js integrity=\"{}\" crossorigin></script>", sri("1.3.0/app.js"));
        let out = pin_html(&good, &index(), Mode::Check(None)).unwrap();
        assert_eq!((out.html.as_str(), out.mismatches.len()), (good.as_str(), 0));
        assert_eq!(pin_html(&good, &index(), Mode::Check(Some("1.4.0"))).unwrap().mismatches.len(), 1);
        let stale = good.replace(&sri("1.3.0/app.js"), &sri("1.4.0/app.js"));
        assert_eq!(pin_html(&stale, &index(), Mode::Check(None)).unwrap().mismatches.len(), 1);
        let bare = "<script src=/sdk/1.3.0/app.js></script>";
        assert_eq!(pin_html(bare, &index(), Mode::Check(None)).unwrap().mismatches.len(), 2);
    }
}
