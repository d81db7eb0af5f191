//! Read-only questions: which versions exist (`list`), what the index says
//! (`sri`), and the `<script>` tag to pin a version (`snippet`).

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;
use serde::Serialize;

use super::{ReleaseError, read_index, read_manifest, read_pointer, sealed_versions};
use crate::integrity::Integrity;
use crate::layout;
use crate::store::Store;

/// Whether a version is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Sealed: `manifests/<v>.json` exists; served and listed in the index.
    Sealed,
    /// Files uploaded but never sealed (an interrupted or refused publish).
    Partial,
}

/// One version in `list`.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSummary {
    /// The version.
    pub version: Version,
    /// Sealed or partial.
    pub state: VersionState,
    /// Whether `latest/` serves it.
    pub latest: bool,
}

/// The output of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
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
pub async fn list(store: &dyn Store) -> Result<ListReport, ReleaseError> {
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
pub async fn sri_index(store: &dyn Store) -> Result<bytes::Bytes, ReleaseError> {
    match read_index(store).await? {
        Some(stored) => Ok(stored.bytes),
        None => Err(nothing_published(store)),
    }
}

fn nothing_published(store: &dyn Store) -> ReleaseError {
    ReleaseError::Usage(format!(
        "{} has no SRI index yet: nothing is published; run `sdk-cdn publish DIR --version V`",
        store.describe()
    ))
}

/// The index entries of one version (`latest` or a version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionEntries {
    /// The version asked for (`latest` resolves to the version it serves).
    pub version: String,
    /// `<dir>/<path>` → integrity.
    pub files: BTreeMap<String, Integrity>,
}

/// The index entries of `dir` (`latest` or a version string).
pub async fn sri_version(store: &dyn Store, dir: &str) -> Result<VersionEntries, ReleaseError> {
    let Some(index) = read_index(store).await?.map(|stored| stored.index) else { return Err(nothing_published(store)) };
    let files = index.for_version(dir);
    if files.is_empty() {
        return Err(ReleaseError::Usage(format!(
            "{dir} is not in the SRI index of {}; run `sdk-cdn list` to see published versions",
            store.describe()
        )));
    }
    let version =
        if dir == layout::LATEST { index.version.map(|v| v.to_string()).unwrap_or_default() } else { dir.into() };
    Ok(VersionEntries { version, files })
}

/// The integrity of one file of `dir`.
pub async fn sri_file(store: &dyn Store, dir: &str, file: &str) -> Result<Integrity, ReleaseError> {
    let entries = sri_version(store, dir).await?;
    let name = layout::index_entry(dir, file);
    entries.files.get(&name).copied().ok_or_else(|| {
        let names: Vec<_> = entries.files.keys().map(|k| k.strip_prefix(&format!("{dir}/")).unwrap_or(k)).collect();
        ReleaseError::Usage(format!("{dir} has no file {file:?}; it has: {}", names.join(", ")))
    })
}

/// The HTML tag that loads `file` of `version` from `base_url` with SRI.
pub async fn snippet(
    store: &dyn Store,
    version: &Version,
    file: Option<&str>,
    base_url: &str,
) -> Result<String, ReleaseError> {
    let Some(manifest) = read_manifest(store, version).await? else {
        return Err(ReleaseError::Usage(format!(
            "{version} is not published in {}; run `sdk-cdn list` to see published versions",
            store.describe()
        )));
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
        let all: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
        return Err(ReleaseError::Usage(format!("{version} has no file {path:?}; it has: {}", all.join(", "))));
    };
    let url = format!("{}/{}{version}/{path}", base_url.trim_end_matches('/'), layout::SDK_PREFIX);
    Ok(if path.ends_with(".css") {
        format!(r#"<link rel="stylesheet" href="{url}" integrity="{}" crossorigin="anonymous">"#, entry.integrity)
    } else {
        let module = if path.ends_with(".mjs") { r#" type="module""# } else { "" };
        format!(r#"<script{module} src="{url}" integrity="{}" crossorigin="anonymous"></script>"#, entry.integrity)
    })
}
