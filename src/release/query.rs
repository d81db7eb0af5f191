//! Read-only questions: which versions exist (`list`), what the index says
//! (`sri`), and the `<script>` tag to pin a version (`snippet`).

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::Serialize;

use super::cdn_url::BaseUrl;
use super::{ReleaseError, read_index, read_manifest, read_pointer, sealed_versions};
use crate::integrity::Integrity;
use crate::layout;
use crate::store::Store;

/// Whether a version is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum VersionState {
    /// Sealed: `manifests/<v>.json` exists; served and listed in the index.
    Sealed,
    /// Files uploaded but never sealed (an interrupted or refused publish).
    Partial,
}

/// One version in `list`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VersionSummary {
    /// The version.
    pub version: Version,
    /// Sealed or partial.
    pub state: VersionState,
    /// Whether `latest/` serves it.
    pub latest: bool,
}

/// The output of `list`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ListReport {
    /// The store listed.
    pub store: String,
    /// The version `latest/` serves.
    pub latest: Option<Version>,
    /// Whether `latest/` is fully synced to it (false: a promotion is in flight or was interrupted).
    pub latest_synced: bool,
    /// Every version, newest first.
    pub versions: Vec<VersionSummary>,
}

/// Lists sealed and partial versions.
pub(crate) async fn list(store: &dyn Store) -> Result<ListReport, ReleaseError> {
    let sealed: BTreeSet<Version> = sealed_versions(store).await?.into_iter().collect();
    let mut uploaded = BTreeSet::new();
    for object in store.list(layout::SDK_PREFIX).await? {
        let rest = object.key.as_str().strip_prefix(layout::SDK_PREFIX).unwrap_or_default();
        if let Some((dir, _)) = rest.split_once('/')
            && let Ok(version) = crate::version::parse(dir)
        {
            uploaded.insert(version);
        }
    }
    let pointer = read_pointer(store).await?.map(|stored| stored.pointer);
    let latest = pointer.as_ref().map(|p| p.version.clone());
    let mut versions: Vec<VersionSummary> = sealed
        .iter()
        .map(|v| (v, VersionState::Sealed))
        .chain(uploaded.difference(&sealed).map(|v| (v, VersionState::Partial)))
        .map(|(v, state)| VersionSummary { version: v.clone(), state, latest: latest.as_ref() == Some(v) })
        .collect();
    versions.sort_by(|a, b| b.version.cmp(&a.version));
    Ok(ListReport { store: store.describe(), latest, latest_synced: pointer.is_some_and(|p| p.synced), versions })
}

/// The index bytes exactly as customers get them.
pub(crate) async fn sri_index(store: &dyn Store) -> Result<bytes::Bytes, ReleaseError> {
    match read_index(store).await? {
        Some(stored) => Ok(stored.bytes),
        None => Err(nothing_published(store)),
    }
}

fn nothing_published(store: &dyn Store) -> ReleaseError {
    ReleaseError::NoIndex { store: store.describe() }
}

/// The index entries of one version (`latest` or a version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct VersionEntries {
    /// The version asked for (`latest` resolves to the version it serves).
    pub version: String,
    /// `<dir>/<path>` → integrity.
    pub files: BTreeMap<String, Integrity>,
}

/// The index entries of `dir` (`latest` or a version string).
pub(crate) async fn sri_version(store: &dyn Store, dir: &str) -> Result<VersionEntries, ReleaseError> {
    let Some(index) = read_index(store).await?.map(|stored| stored.index) else { return Err(nothing_published(store)) };
    let files = index.for_version(dir);
    if files.is_empty() {
        return Err(ReleaseError::NotInIndex { dir: dir.into(), store: store.describe() });
    }
    let version =
        if dir == layout::LATEST { index.version.map(|v| v.to_string()).unwrap_or_default() } else { dir.into() };
    Ok(VersionEntries { version, files })
}

/// The integrity of one file of `dir`.
pub(crate) async fn sri_file(store: &dyn Store, dir: &str, file: &str) -> Result<Integrity, ReleaseError> {
    let entries = sri_version(store, dir).await?;
    let name = layout::index_entry(dir, file);
    entries.files.get(&name).copied().ok_or_else(|| {
        let available =
            entries.files.keys().map(|k| k.strip_prefix(&format!("{dir}/")).unwrap_or(k).to_string()).collect();
        ReleaseError::NoSuchFile { dir: dir.into(), file: file.into(), available }
    })
}

/// The HTML tag that loads `file` of `version` from `base_url` with SRI:
/// `<script>` for `.js` (`type="module"` for `.mjs`), `<link rel=stylesheet>`
/// for `.css`; any other file is refused, since no tag would load it. The URL
/// is percent-encoded per path segment and every attribute HTML-escaped, so
/// no file name or base URL can break out of the tag.
pub(crate) async fn snippet(
    store: &dyn Store,
    dir: &str,
    file: Option<&str>,
    base_url: &str,
    signed: bool,
) -> Result<String, ReleaseError> {
    let base = BaseUrl::parse(base_url)?;
    let version = match dir {
        layout::LATEST if !signed => {
            return Err(ReleaseError::Usage(
                "a hash pin on latest/ breaks at the next release; pin a version (`sdk-cdn snippet 1.4.0`), or pin \
                 latest/ by the publisher's key with `sdk-cdn snippet latest --signed`"
                    .into(),
            ));
        }
        layout::LATEST => match read_pointer(store).await? {
            Some(stored) => stored.pointer.version,
            None => return Err(ReleaseError::Usage(format!("nothing is promoted to latest/ in {}", store.describe()))),
        },
        version => crate::version::parse(version)?,
    };
    let version = &version;
    let Some(manifest) = read_manifest(store, version).await? else {
        return Err(ReleaseError::NotPublished {
            version: version.to_string(),
            store: store.describe(),
            hint: "run `sdk-cdn list` to see published versions",
        });
    };
    let path = match file {
        Some(f) => f.to_string(),
        None => {
            let scripts: Vec<&String> = manifest
                .files
                .keys()
                .filter(|p| !p.contains('/') && (p.ends_with(".js") || p.ends_with(".mjs")))
                .collect();
            match scripts.as_slice() {
                [one] => (*one).clone(),
                _ => {
                    let all: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
                    return Err(ReleaseError::Usage(format!(
                        "{version} has several files; choose one with --file (one of: {})",
                        all.join(", ")
                    )));
                }
            }
        }
    };
    let Some(entry) = manifest.files.get(&path) else {
        let available = manifest.files.keys().cloned().collect();
        return Err(ReleaseError::NoSuchFile { dir: version.to_string(), file: path, available });
    };
    let kind = TagKind::of(&path)?;
    let mut integrity = Vec::new();
    if dir != layout::LATEST {
        integrity.push(entry.integrity.to_string());
    }
    if signed {
        let keys = super::sri::keys_of(&manifest)?;
        if keys.is_empty() {
            return Err(ReleaseError::Usage(format!(
                "{version} is not signed for signature-based SRI (published without --sri-key), so there is no key \
                 to pin; publish a new version with --sri-key KEY, or drop --signed"
            )));
        }
        integrity.extend(keys);
    }
    Ok(kind.tag(&base.file(dir, &path), &integrity.join(" ")))
}

/// The tag that loads `path` of `dir` (a version or `latest`) from
/// `base_url` with `integrity`, or `None` for a file no tag loads (a source
/// map, an image): what `snippet` prints, for pages that list many files.
pub(crate) fn tag_for(
    base_url: &str,
    dir: &str,
    path: &str,
    integrity: &Integrity,
) -> Result<Option<String>, ReleaseError> {
    let base = BaseUrl::parse(base_url)?;
    Ok(TagKind::of(path).ok().map(|kind| kind.tag(&base.file(dir, path), &integrity.to_string())))
}

/// `value` escaped for HTML text or a double-quoted attribute.
pub(crate) fn escape_html(value: &str) -> String {
    html_attribute(value)
}

/// The HTML element that loads a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Script,
    Module,
    Stylesheet,
}

impl TagKind {
    fn of(path: &str) -> Result<Self, ReleaseError> {
        let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match extension.as_deref() {
            Some("js") => Ok(TagKind::Script),
            Some("mjs") => Ok(TagKind::Module),
            Some("css") => Ok(TagKind::Stylesheet),
            _ => Err(ReleaseError::Usage(format!(
                "{path:?} is neither a script (.js, .mjs) nor a stylesheet (.css), so no HTML tag loads it; \
                 choose one of those with --file (`sdk-cdn sri VERSION --file {path}` prints its integrity)"
            ))),
        }
    }

    fn tag(self, url: &str, integrity: &str) -> String {
        let (url, integrity) = (html_attribute(url), html_attribute(integrity));
        match self {
            TagKind::Script => {
                format!(r#"<script src="{url}" integrity="{integrity}" crossorigin="anonymous"></script>"#)
            }
            TagKind::Module => {
                format!(
                    r#"<script type="module" src="{url}" integrity="{integrity}" crossorigin="anonymous"></script>"#
                )
            }
            TagKind::Stylesheet => {
                format!(r#"<link rel="stylesheet" href="{url}" integrity="{integrity}" crossorigin="anonymous">"#)
            }
        }
    }
}

/// `value` escaped for a double-quoted HTML attribute.
fn html_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod snippet_tests {
    use super::*;

    #[test]
    fn tags_follow_the_file_type_and_other_files_are_refused() {
        assert_eq!(TagKind::of("a.js").unwrap(), TagKind::Script);
        assert_eq!(TagKind::of("dir/A.MJS").unwrap(), TagKind::Module);
        assert_eq!(TagKind::of("a.css").unwrap(), TagKind::Stylesheet);
        for refused in ["a.js.map", "a.map", "README", "a.wasm"] {
            let message = TagKind::of(refused).unwrap_err().to_string();
            assert!(message.contains("--file"), "{refused}: {message}");
        }
    }

    #[test]
    fn attributes_are_html_escaped() {
        let tag = TagKind::Script.tag(r#"https://c.example/"><img src=x onerror=alert(1)>"#, "sha384-a'b&c");
        assert_eq!(
            tag,
            r#"<script src="https://c.example/&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" integrity="sha384-a&#39;b&amp;c" crossorigin="anonymous"></script>"#
        );
    }
}
