//! The HTML side of `pin`: find the tags that load the SDK and give them a
//! pinned URL, `integrity` and `crossorigin="anonymous"`, with `lol_html`
//! (a streaming rewriter: tags it does not touch are copied byte for byte).
//!
//! Pure: HTML and index in, new HTML or a list of problems out, no I/O.

use std::cell::{Cell, RefCell};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lol_html::html_content::Element;
use lol_html::{HandlerResult, RewriteStrSettings, element, rewrite_str};

use super::charref;
use super::target::{Base, SdkTarget, Target, plain};
use crate::layout::LATEST;
use crate::manifest::SriIndex;

const INTEGRITY: &str = "integrity";
const CROSSORIGIN: &str = "crossorigin";
const ANONYMOUS: &str = "anonymous";
const ED25519_PREFIX: &str = "ed25519-";
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";
const HTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";
/// `rel` values whose `<link>` fetches its `href` for the page to use, so
/// an unchecked fetch is as bad as an unchecked tag: a `modulepreload`
/// fills the module map, and a later `<script type=module integrity>` of
/// the same URL then runs the preloaded module without its check.
const FETCHING_RELS: [&str; 3] = ["stylesheet", "modulepreload", "preload"];
/// The encoding labels of UTF-8 (the WHATWG Encoding standard), the one
/// encoding `pin` reads a page in.
const UTF8_LABELS: [&str; 6] =
    ["unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"];

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

/// What `pin_html` checks tags against, beside the index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// Pin or check.
    pub(crate) mode: Mode<'a>,
    /// The publisher's signature-based SRI keys (`--sri-pubkey`): every
    /// `ed25519-` token a tag names must be one of them.
    pub(crate) sri_keys: &'a [[u8; 32]],
}

/// The hash tokens and the publisher-key (`ed25519-…`) tokens of an
/// `integrity` value.
fn split_integrity(value: &str) -> (Vec<&str>, Vec<&str>) {
    value.split_ascii_whitespace().partition(|token| !token.starts_with(ED25519_PREFIX))
}

/// Why a browser blocks whatever this `integrity` names, by its key tokens
/// alone: a token that is no key, or a key that is not the publisher's.
fn key_problem(keys: &[&str], sri_keys: &[[u8; 32]]) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    let wanted: Vec<String> = sri_keys.iter().map(|k| format!("{ED25519_PREFIX}{}", STANDARD.encode(k))).collect();
    for token in keys {
        let Ok(key) = crate::signing::PublicKey::sri_from_arg(token) else {
            return Some(format!(
                "integrity token {token:?} is not an Ed25519 public key, so browsers block the file; \
                 use the publisher's key (`sdk-cdn snippet latest --signed` prints it) or remove the token"
            ));
        };
        if wanted.is_empty() {
            return Some(format!(
                "integrity names the key {token}, which cannot be checked without the publisher's SRI key; \
                 pass --sri-pubkey (the ed25519-… key from the install guide)"
            ));
        }
        if !sri_keys.contains(&key) {
            return Some(format!(
                "integrity names the key {token}, which is not the publisher's SRI key (--sri-pubkey), so \
                 browsers block the file; use {}",
                wanted.join(" ")
            ));
        }
    }
    None
}

/// An attribute's value as the browser reads it (character references decoded).
fn attribute(el: &Element<'_, '_>, name: &str) -> Result<Option<String>, String> {
    el.get_attribute(name).map(|raw| charref::decode(&raw).map(|v| v.into_owned())).transpose()
}

/// Whether a `crossorigin` value makes the request carry credentials, which a
/// CDN answering `Access-Control-Allow-Origin: *` refuses.
fn credentialed(crossorigin: Option<&str>) -> bool {
    crossorigin.is_some_and(|v| v.eq_ignore_ascii_case("use-credentials"))
}

/// Rewrites (or checks) the SDK tags of `html` against `index`.
/// `Err` lists every tag that cannot be pinned; nothing is then usable.
pub(crate) fn pin_html(html: &str, index: &SriIndex, rules: Rules<'_>) -> Result<Rewritten, Vec<String>> {
    pin_document(html, index, rules, Base::default())
}

/// [`pin_html`] for a document whose base URL, before any `<base href>`, is `start`.
fn pin_document(html: &str, index: &SriIndex, rules: Rules<'_>, start: Base) -> Result<Rewritten, Vec<String>> {
    let walk = Walk {
        html,
        index,
        rules,
        base: RefCell::new((start, false)),
        template_seen: Cell::new(false),
        found: RefCell::default(),
    };
    let settings = RewriteStrSettings::new()
        .append_element_content_handler(element!("template", |_| {
            walk.template_seen.set(true);
            Ok(())
        }))
        .append_element_content_handler(element!("meta", |el| {
            walk.meta(el);
            Ok(())
        }))
        .append_element_content_handler(element!("base[href]", |el| {
            walk.base_tag(el);
            Ok(())
        }))
        .append_element_content_handler(element!("script", |el| walk.script(el)))
        .append_element_content_handler(element!("iframe[srcdoc]", |el| {
            walk.srcdoc(el);
            Ok(())
        }))
        .append_element_content_handler(element!("link[href][rel]", |el| walk.link(el)));
    let output = rewrite_str(html, settings).map_err(|e| vec![format!("the HTML could not be rewritten: {e}")])?;
    let check = walk.check();
    let Found { tags, problems, mismatches } = walk.found.into_inner();
    if !problems.is_empty() {
        return Err(problems);
    }
    let html = if check { html.to_string() } else { output };
    Ok(Rewritten { html, tags, mismatches })
}

/// What a walk over one document found.
#[derive(Default)]
struct Found {
    tags: Vec<PinnedTag>,
    /// Tags `pin` cannot pin (nothing is written).
    problems: Vec<String>,
    /// Under `--check`: tags that differ from the index or that browsers block.
    mismatches: Vec<String>,
}

/// One pass of `lol_html` over a document: the handlers' shared state.
struct Walk<'a> {
    html: &'a str,
    index: &'a SriIndex,
    rules: Rules<'a>,
    /// The document base, and whether a `<base href>` was seen.
    base: RefCell<(Base, bool)>,
    /// Whether a `<template>` started: a `<base>` after one may be inside it.
    template_seen: Cell<bool>,
    found: RefCell<Found>,
}

/// An SDK tag's attributes, as the browser reads them.
struct SdkTag {
    /// The URL attribute as written.
    url: String,
    sdk: SdkTarget,
    integrity: String,
    crossorigin: Option<String>,
}

impl Walk<'_> {
    fn check(&self) -> bool {
        matches!(self.rules.mode, Mode::Check(_))
    }

    fn base(&self) -> Base {
        self.base.borrow().0.clone()
    }

    /// A tag that cannot be pinned: a problem for `pin` (nothing written), a mismatch for `--check`.
    fn refuse(&self, el: &Element<'_, '_>, why: String) {
        let found = &mut *self.found.borrow_mut();
        let text = format!("{}: {why}", describe(self.html, el));
        if self.check() { found.mismatches.push(text) } else { found.problems.push(text) }
    }

    fn push(&self, tag: PinnedTag) {
        self.found.borrow_mut().tags.push(tag);
    }

    /// Only the first `<base href>` counts, as in browsers. Browsers ignore
    /// one inside `<template>` content or in SVG or MathML, which this walk
    /// cannot always tell from one that counts: such a `<base>` is refused.
    fn base_tag(&self, el: &Element<'_, '_>) {
        if el.namespace_uri() != HTML_NAMESPACE || self.template_seen.get() {
            self.refuse(
                el,
                "browsers ignore a <base> inside <template>, <svg> or <math>, and sdk-cdn cannot tell whether this \
                 one is: which base URL the page's other URLs use is ambiguous; put the page's one <base> in \
                 <head>, before any <template>"
                    .into(),
            );
            return;
        }
        let (current, seen) = &mut *self.base.borrow_mut();
        if std::mem::replace(seen, true) {
            return;
        }
        match current.with_href(&el.get_attribute("href").unwrap_or_default()) {
            Ok(base) => *current = base,
            Err(why) => self.refuse(el, format!("the base URL {why}; every relative URL after it is ambiguous")),
        }
    }

    fn script(&self, el: &mut Element<'_, '_>) -> HandlerResult {
        if el.namespace_uri() != SVG_NAMESPACE {
            return self.visit(el, "src");
        }
        // An SVG <script> loads `href` (or `xlink:href`); Chromium runs it
        // with no integrity and blocks it with one (measured).
        for attr in ["href", "xlink:href"] {
            let Some(url) = el.get_attribute(attr) else { continue };
            match self.base().resolve(&url) {
                Ok(Target::Other) => {}
                Ok(Target::Sdk(_)) => self.refuse(
                    el,
                    "an SVG <script> loads the SDK, and cannot load it pinned (Chromium runs it without \
                     integrity and blocks it with one); load the SDK with an HTML <script src> outside the <svg>"
                        .into(),
                ),
                Err(why) => self.refuse(el, format!("the URL {why}")),
            }
        }
        Ok(())
    }

    /// A page declaring another encoding than UTF-8 is read by the browser
    /// as that encoding, where bytes `pin` reads as markup may be text (or
    /// the reverse): refused.
    fn meta(&self, el: &Element<'_, '_>) {
        let declared = match (attribute(el, "charset"), attribute(el, "http-equiv"), attribute(el, "content")) {
            (Ok(Some(charset)), _, _) => Some(charset),
            (_, Ok(Some(equiv)), Ok(Some(content))) if equiv.trim().eq_ignore_ascii_case("content-type") => {
                let lower = content.to_ascii_lowercase();
                lower.split_once("charset=").map(|(_, rest)| rest.trim_matches(['"', '\'', ' ']).to_string())
            }
            _ => None,
        };
        if let Some(label) = declared
            && !UTF8_LABELS.contains(&label.trim().to_ascii_lowercase().as_str())
        {
            self.refuse(
                el,
                format!(
                    "the page declares the encoding {label:?}; browsers then read its bytes as that encoding, \
                     and sdk-cdn reads pages as UTF-8 only: convert the page to UTF-8 (and declare utf-8)"
                ),
            );
        }
    }

    fn link(&self, el: &mut Element<'_, '_>) -> HandlerResult {
        match attribute(el, "rel") {
            Ok(rel)
                if rel.as_deref().is_some_and(|r| {
                    r.split_ascii_whitespace().any(|t| FETCHING_RELS.iter().any(|f| t.eq_ignore_ascii_case(f)))
                }) =>
            {
                self.visit(el, "href")
            }
            Ok(_) => Ok(()),
            Err(reference) => {
                self.refuse(el, format!("rel contains {reference}, which sdk-cdn does not decode; write it plainly"));
                Ok(())
            }
        }
    }

    /// A document inside an attribute, with this document's base: checked
    /// as a page of its own, never rewritten.
    fn srcdoc(&self, el: &Element<'_, '_>) {
        let doc = match attribute(el, "srcdoc") {
            Ok(doc) => doc.unwrap_or_default(),
            Err(reference) => {
                self.refuse(
                    el,
                    format!("srcdoc contains {reference}, which sdk-cdn does not decode; write it plainly"),
                );
                return;
            }
        };
        let wanted = match self.rules.mode {
            Mode::Pin(version) => Some(version),
            Mode::Check(wanted) => wanted,
        };
        let nested = Rules { mode: Mode::Check(wanted), sri_keys: self.rules.sri_keys };
        let found = match pin_document(&doc, self.index, nested, self.base()) {
            Ok(r) => r.mismatches,
            Err(problems) => problems,
        };
        if !found.is_empty() {
            self.refuse(
                el,
                format!(
                    "its srcdoc document loads the SDK unpinned, and pin does not rewrite inside an attribute \
                     (pin those tags by hand, or move them out of srcdoc): {}",
                    found.join("; ")
                ),
            );
        }
    }

    /// The tag's `attr` loads a file: pin or check it if it is the SDK's.
    fn visit(&self, el: &mut Element<'_, '_>, attr: &str) -> HandlerResult {
        let Some(tag) = self.read(el, attr) else { return Ok(()) };
        let (hash, keys) = split_integrity(&tag.integrity);
        if let Some(why) = key_problem(&keys, self.rules.sri_keys) {
            self.refuse(el, why);
            return Ok(());
        }
        // `latest/` pinned by the publisher's key (signature-based SRI) is
        // pinned already, on purpose: it follows releases and still refuses
        // bytes the key did not sign. Left as it is, and it passes --check.
        if tag.sdk.version == LATEST && !keys.is_empty() {
            if !hash.is_empty() {
                let hash = hash.join(" ");
                self.refuse(
                    el,
                    format!(
                        "integrity pins latest/ by key and by the hash {hash}, which breaks at the next release; \
                         remove the hash, or pin a version"
                    ),
                );
            } else if self.check() && (tag.crossorigin.is_none() || credentialed(tag.crossorigin.as_deref())) {
                self.refuse(
                    el,
                    "needs crossorigin=\"anonymous\" for its signature to be checked; run `sdk-cdn pin`".into(),
                );
            }
            self.push(PinnedTag {
                url: tag.url.clone(),
                pinned_url: tag.url.clone(),
                integrity: tag.integrity.clone(),
            });
            return Ok(());
        }
        match self.rules.mode {
            Mode::Pin(version) => self.pin_tag(el, attr, &tag, &keys, version),
            Mode::Check(wanted) => {
                self.check_tag(el, &tag, &hash, wanted);
                Ok(())
            }
        }
    }

    /// The tag's URL, `integrity` and `crossorigin`, decoded; `None` if it is
    /// not the SDK's, or when it cannot be read for sure (then refused).
    fn read(&self, el: &Element<'_, '_>, attr: &str) -> Option<SdkTag> {
        let url = el.get_attribute(attr)?;
        let sdk = match self.base().resolve(&url) {
            Ok(Target::Sdk(sdk)) => sdk,
            Ok(Target::Other) => return None,
            Err(why) => {
                self.refuse(el, format!("the URL {why}"));
                return None;
            }
        };
        let read = |name: &str| {
            attribute(el, name).map_err(|reference| {
                self.refuse(
                    el,
                    format!("{name} contains {reference}, which sdk-cdn does not decode; write it plainly"),
                );
            })
        };
        let integrity = read(INTEGRITY).ok()?.unwrap_or_default();
        let crossorigin = read(CROSSORIGIN).ok()?;
        Some(SdkTag { url, sdk, integrity, crossorigin })
    }

    fn pin_tag(
        &self,
        el: &mut Element<'_, '_>,
        attr: &str,
        tag: &SdkTag,
        keys: &[&str],
        version: &str,
    ) -> HandlerResult {
        let key = format!("{version}/{}", tag.sdk.file);
        let Some(hash) = self.index.files.get(&key).map(ToString::to_string).filter(|i| !i.is_empty()) else {
            self.refuse(el, format!("the index has no {key}; check --version and the file name"));
            return Ok(());
        };
        // Publisher keys the tag names stay: the browser then checks the
        // hash *and* the signature.
        let integrity = std::iter::once(hash.as_str()).chain(keys.iter().copied()).collect::<Vec<_>>().join(" ");
        // A URL written plainly keeps its form; any other is written out as
        // the browser resolves it.
        let pinned_url = match plain(&tag.url, &tag.sdk.version, &tag.sdk.file) {
            Some(plain) => plain.with_version(version),
            None => self.base().pinned(&tag.sdk, version),
        };
        if pinned_url != tag.url {
            // lol_html escapes `"` but not `&`, which would start a reference.
            el.set_attribute(attr, &pinned_url.replace('&', "&amp;"))?;
        }
        if el.get_attribute(INTEGRITY).as_deref() != Some(integrity.as_str()) {
            el.set_attribute(INTEGRITY, &integrity)?;
        }
        if el.get_attribute(CROSSORIGIN).as_deref() != Some(ANONYMOUS) {
            el.set_attribute(CROSSORIGIN, ANONYMOUS)?;
        }
        self.push(PinnedTag { url: tag.url.clone(), pinned_url, integrity });
        Ok(())
    }

    fn check_tag(&self, el: &Element<'_, '_>, tag: &SdkTag, hash: &[&str], wanted: Option<&str>) {
        let key = format!("{}/{}", tag.sdk.version, tag.sdk.file);
        let current = &tag.integrity;
        match self.index.files.get(&key).map(ToString::to_string) {
            None => self.refuse(el, format!("the index has no {key}")),
            Some(expected) if hash != [expected.as_str()] => self.refuse(
                el,
                format!("integrity {current:?}, the index says {expected:?}; run `sdk-cdn pin` to update it"),
            ),
            Some(_) => {}
        }
        if let Some(wanted) = wanted.filter(|w| *w != tag.sdk.version) {
            self.refuse(el, format!("loads {}, not the pinned version {wanted}", tag.sdk.version));
        }
        match tag.crossorigin.as_deref() {
            None => self.refuse(el, "no crossorigin attribute; browsers refuse cross-origin SRI without it".into()),
            Some(v) if credentialed(Some(v)) => self.refuse(
                el,
                format!(
                    "crossorigin={v:?} sends credentials, which the CDN's `Access-Control-Allow-Origin: *` \
                     refuses, so browsers block the file; use crossorigin=\"anonymous\" (`sdk-cdn pin` writes it)"
                ),
            ),
            Some(_) => {}
        }
        self.push(PinnedTag { url: tag.url.clone(), pinned_url: tag.url.clone(), integrity: current.clone() });
    }
}

/// Where a tag is, for messages: its line and its start tag.
fn describe(html: &str, el: &Element<'_, '_>) -> String {
    let range = el.source_location().bytes();
    let line = html.get(..range.start).map_or(0, |before| before.matches('\n').count() + 1);
    let tag = html.get(range).unwrap_or_default();
    let tag = match tag.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &tag[..at]),
        None => tag.to_string(),
    };
    format!("line {line}: {tag}")
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

    fn rules(mode: Mode<'_>) -> Rules<'_> {
        Rules { mode, sri_keys: &[] }
    }

    fn sri(key: &str) -> String {
        Integrity::of_bytes(key.as_bytes()).to_string()
    }

    #[test]
    fn tags_get_the_version_integrity_and_crossorigin_and_nothing_else_changes() {
        let html = "<!doctype html>\n<!-- <script src=\"/sdk/latest/app.js\"> -->\n<p class=x>  odd   spacing</p >\n\
                    <script src='/sdk/latest/app.js' integrity=\"sha384-stale\" defer></script>\n\
                    <link rel=\"preload stylesheet\" href=\"/sdk/1.3.0/app.css\">\n<script src=/other.js></script>\n";
        let out = pin_html(html, &index(), rules(Mode::Pin("1.4.0"))).unwrap();
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
        assert_eq!(pin_html(&out.html, &index(), rules(Mode::Pin("1.4.0"))).unwrap().html, out.html);
    }

    /// Probe finding: `pin` dropped the publisher key of `snippet --signed`
    /// tags, and `--check` failed on them.
    #[test]
    fn publisher_keys_are_kept_and_latest_pinned_by_key_is_left_alone() {
        let key = "ed25519-m0OZMnsek5mb/bhK71w1gjwm7NLuSzCcLkiviNMlmmo=";
        let keys = [crate::signing::PublicKey::sri_from_arg(key).unwrap()];
        let rules = |mode| Rules { mode, sri_keys: &keys };
        let by_key =
            format!("<script src=\"/sdk/latest/app.js\" integrity=\"{key}\" crossorigin=\"anonymous\"></script>");
        let out = pin_html(&by_key, &index(), rules(Mode::Pin("1.4.0"))).unwrap();
        assert_eq!(out.html, by_key, "latest/ pinned by key is pinned already");
        assert!(pin_html(&by_key, &index(), rules(Mode::Check(None))).unwrap().mismatches.is_empty());

        let mixed =
            format!("<script src=/sdk/1.3.0/app.js integrity=\"{} {key}\" crossorigin></script>", sri("1.3.0/app.js"));
        let check = pin_html(&mixed, &index(), rules(Mode::Check(None))).unwrap();
        assert!(check.mismatches.is_empty(), "the hash matches; the key is the publisher's: {:?}", check.mismatches);
        let out = pin_html(&mixed, &index(), rules(Mode::Pin("1.4.0"))).unwrap();
        assert!(out.html.contains(&format!("integrity=\"{} {key}\"", sri("1.4.0/app.js"))), "{}", out.html);
        let stale = mixed.replace(&sri("1.3.0/app.js"), &sri("1.4.0/app.js"));
        let check = pin_html(&stale, &index(), rules(Mode::Check(None))).unwrap();
        assert_eq!(check.mismatches.len(), 1, "a wrong hash beside a key still fails");
    }

    #[test]
    fn a_file_missing_from_the_index_is_refused() {
        let problems =
            pin_html("<script src=/sdk/latest/gone.js></script>", &index(), rules(Mode::Pin("1.4.0"))).unwrap_err();
        assert!(problems[0].contains("1.4.0/gone.js"), "{problems:?}");
    }

    #[test]
    fn escaped_file_names_are_looked_up_unescaped() {
        let out = pin_html("<script src=/sdk/latest/a%20b.js></script>", &index(), rules(Mode::Pin("1.4.0"))).unwrap();
        assert_eq!(out.tags[0].integrity, sri("1.4.0/a b.js"));
        assert!(out.html.contains("/sdk/1.4.0/a%20b.js"), "{}", out.html);
    }

    #[test]
    fn check_reports_stale_missing_and_unpinned_tags_and_changes_nothing() {
        let good = format!("<script src=/sdk/1.3.0/app.js integrity=\"{}\" crossorigin></script>", sri("1.3.0/app.js"));
        let out = pin_html(&good, &index(), rules(Mode::Check(None))).unwrap();
        assert_eq!((out.html.as_str(), out.mismatches.len()), (good.as_str(), 0));
        assert_eq!(pin_html(&good, &index(), rules(Mode::Check(Some("1.4.0")))).unwrap().mismatches.len(), 1);
        let stale = good.replace(&sri("1.3.0/app.js"), &sri("1.4.0/app.js"));
        assert_eq!(pin_html(&stale, &index(), rules(Mode::Check(None))).unwrap().mismatches.len(), 1);
        let bare = "<script src=/sdk/1.3.0/app.js></script>";
        assert_eq!(pin_html(bare, &index(), rules(Mode::Check(None))).unwrap().mismatches.len(), 2);
    }

    /// Probe finding: tags the browser resolves to the SDK were not seen.
    #[test]
    fn urls_the_browser_resolves_to_the_sdk_are_pinned_or_refused() {
        for (tag, pinned) in [
            ("<script src=\"http://cdn.example/sdk/l&#97;test/app.js\">", "http://cdn.example/sdk/1.4.0/app.js"),
            ("<script src=\"http://cdn.example/sdk/lat&#9;est/app.js\">", "http://cdn.example/sdk/1.4.0/app.js"),
            ("<script src=\"http://cdn.example/sdk/%6catest/app.js\">", "http://cdn.example/sdk/1.4.0/app.js"),
            ("<script src=\"http:\\\\cdn.example\\sdk\\latest\\app.js\">", "http://cdn.example/sdk/1.4.0/app.js"),
            (
                "<base href=\"http://cdn.example/sdk/latest/\"><script src=\"app.js\">",
                "http://cdn.example/sdk/1.4.0/app.js",
            ),
            ("<link rel=\"style&#115;heet\" href=\"/sdk/l&#97;test/app.css\">", "/sdk/1.4.0/app.css"),
        ] {
            let out = pin_html(tag, &index(), rules(Mode::Pin("1.4.0"))).unwrap();
            assert_eq!(out.tags.len(), 1, "{tag}");
            assert_eq!(out.tags[0].pinned_url, pinned, "{tag}");
            assert!(out.html.contains("integrity=\"sha384-"), "{}", out.html);
            let check = pin_html(tag, &index(), rules(Mode::Check(None))).unwrap();
            assert!(!check.mismatches.is_empty(), "{tag} passed --check unpinned");
        }
        // Could be the SDK, cannot be told: refused, naming the line and the tag.
        for tag in [
            "\n<script src=\"/sdk/&lscr;atest/app.js\"></script>",
            "\n<svg><script href=\"/sdk/latest/app.js\"></script></svg>",
            "\n<svg><script xlink:href=\"/sdk/1.4.0/app.js\"></script></svg>",
        ] {
            let problems = pin_html(tag, &index(), rules(Mode::Pin("1.4.0"))).unwrap_err();
            assert!(problems[0].starts_with("line 2: <"), "{problems:?}");
            assert_eq!(pin_html(tag, &index(), rules(Mode::Check(None))).unwrap().mismatches.len(), 1, "{tag}");
        }
    }

    /// Re-probe findings: a `<base>` the browser ignores was followed, an
    /// unchecked `modulepreload` let a pinned module script run unchecked
    /// bytes, and a page in another encoding was read as UTF-8.
    #[test]
    fn ignored_bases_preloads_and_other_encodings_fail_closed() {
        let script = "<script src=\"latest/app.js\"></script>";
        for ignored in [
            "<template><base href=\"http://cdn.example/other/\"></template>",
            "<div><template shadowrootmode=open><base href=\"http://cdn.example/other/\"></template></div>",
            "<svg><base href=\"http://cdn.example/other/\"></base></svg>",
            "<math><base href=\"http://cdn.example/other/\"></base></math>",
        ] {
            let page = format!("{ignored}<base href=\"http://cdn.example/sdk/\">{script}");
            assert!(pin_html(&page, &index(), rules(Mode::Pin("1.4.0"))).is_err(), "{page}");
            assert!(!pin_html(&page, &index(), rules(Mode::Check(None))).unwrap().mismatches.is_empty(), "{page}");
        }
        let js = sri("1.4.0/app.js");
        for preload in ["modulepreload", "preload"] {
            let page = format!(
                "<link rel={preload} as=script href=/sdk/1.4.0/app.js>\
                 <script type=module src=/sdk/1.4.0/app.js integrity=\"{js}\" crossorigin=anonymous></script>"
            );
            let check = pin_html(&page, &index(), rules(Mode::Check(None))).unwrap();
            // No integrity, no crossorigin: both reported, for the preload only.
            assert_eq!(check.mismatches.len(), 2, "{page}: {:?}", check.mismatches);
            assert!(check.mismatches.iter().all(|m| m.contains(&format!("<link rel={preload}"))), "{check:?}");
            let pinned = pin_html(&page, &index(), rules(Mode::Pin("1.4.0"))).unwrap();
            assert_eq!(pinned.tags.len(), 2, "{}", pinned.html);
            assert!(pin_html(&pinned.html, &index(), rules(Mode::Check(None))).unwrap().mismatches.is_empty());
        }
        for declared in [
            "<meta charset=\"iso-2022-jp\">",
            "<meta http-equiv=Content-Type content=\"text/html; charset=shift_jis\">",
        ] {
            let page = format!("{declared}<script src=/sdk/1.4.0/app.js></script>");
            assert!(pin_html(&page, &index(), rules(Mode::Pin("1.4.0"))).is_err(), "{page}");
            assert!(!pin_html(&page, &index(), rules(Mode::Check(None))).unwrap().mismatches.is_empty(), "{page}");
        }
        for utf8 in [
            "<meta charset=UTF-8>",
            "<meta charset=\"utf8\">",
            "<meta http-equiv=content-type content=\"text/html; charset=utf-8\">",
        ] {
            let page = format!("{utf8}<script src=/sdk/1.4.0/app.js></script>");
            assert!(pin_html(&page, &index(), rules(Mode::Pin("1.4.0"))).is_ok(), "{page}");
        }
    }

    /// Probe finding: --check passed tags that Chromium always blocks.
    #[test]
    fn integrity_a_browser_blocks_fails_check() {
        let good_key = "ed25519-m0OZMnsek5mb/bhK71w1gjwm7NLuSzCcLkiviNMlmmo=";
        let keys = [crate::signing::PublicKey::sri_from_arg(good_key).unwrap()];
        let with_keys = |mode| Rules { mode, sri_keys: &keys };
        let other = "ed25519-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let hash = sri("1.3.0/app.js");
        for (integrity, crossorigin, why) in [
            ("ed25519-garbage".to_string(), "anonymous", "not an Ed25519 public key"),
            (other.to_string(), "anonymous", "not the publisher's SRI key"),
            (format!("ed25519-garbage {hash}"), "anonymous", "not an Ed25519 public key"),
            (hash.clone(), "use-credentials", "sends credentials"),
            (hash.clone(), "USE-CREDENTIALS", "sends credentials"),
        ] {
            for src in ["/sdk/latest/app.js", "/sdk/1.3.0/app.js"] {
                if integrity == hash && src.contains("latest") {
                    continue;
                }
                let tag =
                    format!("<script src={src} integrity=\"{integrity}\" crossorigin=\"{crossorigin}\"></script>");
                let check = pin_html(&tag, &index(), with_keys(Mode::Check(None))).unwrap();
                assert!(check.mismatches.iter().any(|m| m.contains(why)), "{tag}: {:?}", check.mismatches);
                if !why.contains("credentials") {
                    let problems = pin_html(&tag, &index(), with_keys(Mode::Pin("1.4.0"))).unwrap_err();
                    assert!(problems[0].contains(why), "{problems:?}");
                }
            }
        }
        // A key pin cannot be proven without the publisher's key.
        let tag = format!("<script src=/sdk/latest/app.js integrity=\"{good_key}\" crossorigin></script>");
        let check = pin_html(&tag, &index(), rules(Mode::Check(None))).unwrap();
        assert!(check.mismatches[0].contains("--sri-pubkey"), "{:?}", check.mismatches);
        assert!(pin_html(&tag, &index(), with_keys(Mode::Check(None))).unwrap().mismatches.is_empty());
    }

    /// Probe follow-up: a document inside `srcdoc` loads with this page's base.
    #[test]
    fn an_unpinned_sdk_tag_inside_srcdoc_is_refused() {
        let unpinned = "<iframe srcdoc=\"<script src=&quot;/sdk/latest/app.js&quot;></script>\"></iframe>";
        let problems = pin_html(unpinned, &index(), rules(Mode::Pin("1.4.0"))).unwrap_err();
        assert!(problems[0].contains("srcdoc"), "{problems:?}");
        assert_eq!(pin_html(unpinned, &index(), rules(Mode::Check(None))).unwrap().mismatches.len(), 1);
        let based = "<base href=\"https://cdn.example/sdk/latest/\"><iframe srcdoc=\"<script src=app.js></script>\">";
        assert!(pin_html(based, &index(), rules(Mode::Pin("1.4.0"))).is_err(), "the srcdoc inherits the base");
        let pinned = format!(
            "<iframe srcdoc=\"<script src=/sdk/1.4.0/app.js integrity={} crossorigin></script>\"></iframe>",
            sri("1.4.0/app.js")
        );
        let out = pin_html(&pinned, &index(), rules(Mode::Pin("1.4.0"))).unwrap();
        assert_eq!(out.html, pinned, "a pinned srcdoc is left as it is");
    }

    #[test]
    fn a_written_url_escapes_its_ampersands() {
        let out = pin_html(
            "<script src=\"/sdk/l&#97;test/app.js?a=1&amp;not/\"></script>",
            &index(),
            rules(Mode::Pin("1.4.0")),
        )
        .unwrap();
        assert!(out.html.contains("src=\"/sdk/1.4.0/app.js?a=1&amp;not/\""), "{}", out.html);
    }
}
