//! The public JSON formats: the per-version manifest, the channel pointer
//! and the SRI index, with their merge rules.
//!
//! These bytes are contracts: customers script against the index and CI jobs
//! keep the manifests. Maps are `BTreeMap`s so keys are always sorted and the
//! same content always serialises to the same bytes.

use std::collections::BTreeMap;

use semver::Version;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::integrity::Integrity;
use crate::layout::{LATEST, index_entry};
use crate::signing::SignedHeaders;
use crate::store::Key;

/// `manifests/<version>.json`: what a sealed version contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionManifest {
    /// The version.
    pub version: Version,
    /// Every file, by path relative to `sdk/<version>/`.
    pub files: BTreeMap<String, FileEntry>,
}

/// One file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// SHA-384 SRI of the bytes.
    pub integrity: Integrity,
    /// Size in bytes.
    pub size: u64,
    /// The `Content-Type` it is served with.
    pub content_type: String,
    /// Signature-based SRI headers it is served with (absent: not signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedHeaders>,
}

/// `manifests/channels/latest.json`: which version `latest/` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPointer {
    /// The version the channel names.
    pub(crate) version: Version,
    /// Whether `sdk/latest/` has been brought to exactly that version's files;
    /// `false` while a promotion is in flight (or was interrupted).
    pub(crate) synced: bool,
}

/// `manifests/pending/<version>.json`: one publish's plan for a version, written
/// create-only before its first file, so that no two builds ever mix in one
/// version (DESIGN.md, "One intent per version"). Its state moves by
/// compare-and-swap: `uploading` → `sealing` (the publisher, right before the
/// seal) or → `discarding` (`discard`), never both, so a discard and a
/// publisher of the same version can never both win.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Intent {
    /// Where the version stands.
    pub state: IntentState,
    /// The manifest the publisher will seal (`None` when `discard` made the record).
    pub manifest: Option<VersionManifest>,
}

/// The state of an [`Intent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IntentState {
    /// Files are being uploaded; more publishers with the same plan may help.
    Uploading,
    /// Every file is in place; the seal is being written.
    Sealing,
    /// `discard` is deleting the version's files; publishers must stop.
    Discarding,
}

/// `api/sdk/sri`: what customers fetch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SriIndex {
    /// The version `latest/` serves (`null` before the first promotion).
    pub(crate) version: Option<Version>,
    /// `<version>/<path>` and `latest/<path>` → integrity.
    pub(crate) files: BTreeMap<String, Integrity>,
}

/// How the differences between two file sets read to a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    /// Same path, different bytes.
    pub(crate) differing: Vec<String>,
    /// In the build, not in what is published.
    pub(crate) added: Vec<String>,
    /// Published, not in the build.
    pub(crate) missing: Vec<String>,
    /// Same bytes, other signature-based SRI headers (other `--sri-key` keys):
    /// a version's headers are as immutable as its bytes.
    pub(crate) signed_differently: Vec<String>,
}

impl FileDiff {
    /// Whether the two sets are identical.
    pub(crate) fn is_empty(&self) -> bool {
        self.differing.is_empty()
            && self.added.is_empty()
            && self.missing.is_empty()
            && self.signed_differently.is_empty()
    }
}

impl std::fmt::Display for FileDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (label, list) in [
            ("differ", &self.differing),
            ("only in the build", &self.added),
            ("only in the store", &self.missing),
            ("signed with other --sri-key keys (a re-run needs the same keys)", &self.signed_differently),
        ] {
            if !list.is_empty() {
                parts.push(format!("{label}: {}", list.join(", ")));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// A stored JSON object that does not parse as the format it should have.
#[derive(Debug, thiserror::Error)]
#[error("{key} in the store is not a valid {what}: {detail}")]
pub struct FormatError {
    /// The object.
    pub(crate) key: String,
    /// Which format was expected.
    pub(crate) what: &'static str,
    /// The parser's complaint.
    pub(crate) detail: String,
}

/// Parses a stored JSON object, naming the key on failure.
pub fn parse<T: DeserializeOwned>(key: &Key, what: &'static str, bytes: &[u8]) -> Result<T, FormatError> {
    serde_json::from_slice(bytes).map_err(|e| FormatError { key: key.to_string(), what, detail: e.to_string() })
}

/// The canonical bytes of any of the formats: pretty JSON, sorted keys, trailing newline.
pub fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs to a Vec cannot fail.
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

impl VersionManifest {
    /// Checks what serde cannot: the version matches the key, paths are valid keys.
    pub fn validate(&self, key: &Key, expected: &Version) -> Result<(), FormatError> {
        let fail = |detail: String| FormatError { key: key.to_string(), what: "version manifest", detail };
        if self.version != *expected {
            return Err(fail(format!("it names version {} instead of {expected}", self.version)));
        }
        if self.files.is_empty() {
            return Err(fail("it lists no files".into()));
        }
        for path in self.files.keys() {
            crate::layout::version_file(expected, path).map_err(|e| fail(format!("bad file path: {e}")))?;
        }
        Ok(())
    }

    /// The differences from `published` to `self` (the build).
    pub(crate) fn diff_against(&self, published: &VersionManifest) -> FileDiff {
        let mut diff = FileDiff::default();
        for (path, entry) in &self.files {
            match published.files.get(path) {
                None => diff.added.push(path.clone()),
                Some(p) if p.integrity != entry.integrity => diff.differing.push(path.clone()),
                Some(p) if p.signed != entry.signed => diff.signed_differently.push(path.clone()),
                Some(_) => {}
            }
        }
        diff.missing = published.files.keys().filter(|p| !self.files.contains_key(*p)).cloned().collect();
        diff
    }
}

impl SriIndex {
    /// Adds every file of a sealed version (`<version>/<path>` entries);
    /// returns whether that changed the index. Touches only this version's
    /// entries: the cost does not grow with the number of versions.
    pub fn add_version(&mut self, manifest: &VersionManifest) -> bool {
        let dir = manifest.version.to_string();
        let mut changed = false;
        for (path, entry) in &manifest.files {
            changed |= self.files.insert(index_entry(&dir, path), entry.integrity) != Some(entry.integrity);
        }
        changed
    }

    /// Makes the `latest/` entries and `version` describe `manifest`;
    /// returns whether that changed the index.
    pub fn set_latest(&mut self, manifest: &VersionManifest) -> bool {
        let prefix = format!("{LATEST}/");
        // The `latest/` entries sort together: visit only that range.
        let stale: Vec<String> = self
            .files
            .range::<str, _>((std::ops::Bound::Included(prefix.as_str()), std::ops::Bound::Unbounded))
            .map(|(name, _)| name)
            .take_while(|name| name.starts_with(&prefix))
            .filter(|name| !manifest.files.contains_key(&name[prefix.len()..]))
            .cloned()
            .collect();
        let mut changed = !stale.is_empty();
        for name in stale {
            self.files.remove(&name);
        }
        for (path, entry) in &manifest.files {
            changed |= self.files.insert(index_entry(LATEST, path), entry.integrity) != Some(entry.integrity);
        }
        changed |= self.version.as_ref() != Some(&manifest.version);
        self.version = Some(manifest.version.clone());
        changed
    }

    /// The entries of one version, as `GET /api/sdk/sri/<version>` returns them.
    pub(crate) fn for_version(&self, dir: &str) -> BTreeMap<String, Integrity> {
        let prefix = format!("{dir}/");
        self.files.iter().filter(|(name, _)| name.starts_with(&prefix)).map(|(n, i)| (n.clone(), *i)).collect()
    }

    /// Whether the index lists `manifest`'s files exactly as the manifest does.
    pub fn contains_version(&self, manifest: &VersionManifest) -> bool {
        let dir = manifest.version.to_string();
        manifest.files.iter().all(|(path, entry)| self.files.get(&index_entry(&dir, path)) == Some(&entry.integrity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(version: &str, files: &[(&str, &[u8])]) -> VersionManifest {
        VersionManifest {
            version: version.parse().unwrap(),
            files: files
                .iter()
                .map(|(p, b)| {
                    let entry = FileEntry {
                        integrity: Integrity::of_bytes(b),
                        size: b.len() as u64,
                        content_type: crate::content_type::for_path(p),
                        signed: None,
                    };
                    (p.to_string(), entry)
                })
                .collect(),
        }
    }

    #[test]
    fn index_bytes_have_the_shape_customers_script_against() {
        let mut index = SriIndex::default();
        let v7 = manifest("0.7.0", &[("haloagents.umd.js", b"seven")]);
        let v8 = manifest("0.8.0", &[("haloagents.umd.js", b"eight")]);
        index.add_version(&v8);
        index.add_version(&v7);
        index.set_latest(&v8);
        let text = String::from_utf8(to_bytes(&index)).unwrap();
        let expected = format!(
            "{{\n  \"version\": \"0.8.0\",\n  \"files\": {{\n    \"0.7.0/haloagents.umd.js\": \"{}\",\n    \
             \"0.8.0/haloagents.umd.js\": \"{}\",\n    \"latest/haloagents.umd.js\": \"{}\"\n  }}\n}}\n",
            Integrity::of_bytes(b"seven"),
            Integrity::of_bytes(b"eight"),
            Integrity::of_bytes(b"eight"),
        );
        assert_eq!(text, expected);
        let parsed: SriIndex = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, index);
    }

    #[test]
    fn set_latest_replaces_stale_latest_entries() {
        let mut index = SriIndex::default();
        index.set_latest(&manifest("1.0.0", &[("a.js", b"a"), ("old.css", b"c")]));
        index.set_latest(&manifest("1.1.0", &[("a.js", b"a2")]));
        assert_eq!(index.for_version("latest").keys().collect::<Vec<_>>(), ["latest/a.js"]);
        assert_eq!(index.version, Some(Version::new(1, 1, 0)));
    }

    #[test]
    fn merging_reports_whether_anything_changed() {
        let mut index = SriIndex::default();
        let v1 = manifest("1.0.0", &[("a.js", b"a"), ("old.css", b"c")]);
        let v2 = manifest("1.1.0", &[("a.js", b"a2")]);
        assert!(index.add_version(&v1));
        assert!(!index.add_version(&v1), "the same version again changes nothing");
        assert!(index.set_latest(&v1));
        assert!(!index.set_latest(&v1));
        assert!(index.add_version(&v2));
        let before = index.clone();
        assert!(index.set_latest(&v2), "a stale latest/ entry is removed and the version moves");
        assert_ne!(index, before);
        assert!(!index.set_latest(&v2));
        // Neighbours of the latest/ range ("lat…" and "latest0…" sort around "latest/") are untouched.
        let mut edge = index.clone();
        edge.files.insert("lates/x.js".into(), Integrity::of_bytes(b"x"));
        edge.files.insert("latest0/x.js".into(), Integrity::of_bytes(b"y"));
        assert!(!edge.set_latest(&v2));
        assert_eq!(edge.files.len(), index.files.len() + 2);
    }

    #[test]
    fn diff_names_differing_added_and_missing_files() {
        let published = manifest("1.0.0", &[("a.js", b"a"), ("b.js", b"b")]);
        let build = manifest("1.0.0", &[("a.js", b"A"), ("c.js", b"c")]);
        let diff = build.diff_against(&published);
        assert_eq!(diff.differing, ["a.js"]);
        assert_eq!(diff.added, ["c.js"]);
        assert_eq!(diff.missing, ["b.js"]);
        assert!(build.diff_against(&build).is_empty());
    }

    #[test]
    fn malformed_manifests_are_refused_with_the_key() {
        let key = crate::layout::manifest(&Version::new(1, 0, 0));
        let bad: [&[u8]; 4] = [
            b"{\"version\":\"1.0.0\",\"files\":{",
            b"{\"version\":\"1.0.0\",\"files\":{\"a.js\":{\"integrity\":\"sha256-x\",\"size\":1,\"content_type\":\"t\"}}}",
            b"[]",
            b"{\"version\":\"1.0.0\",\"files\":{},\"extra\":1}",
        ];
        for bytes in bad {
            let err = parse::<VersionManifest>(&key, "version manifest", bytes).unwrap_err();
            assert!(err.to_string().contains("manifests/1.0.0.json"), "{err}");
        }
        let escaping = manifest("1.0.0", &[("../x.js", b"x")]);
        assert!(escaping.validate(&key, &Version::new(1, 0, 0)).is_err());
        let other = manifest("1.0.1", &[("x.js", b"x")]);
        assert!(other.validate(&key, &Version::new(1, 0, 0)).is_err());
    }
}
