//! Every key name of the store layout, in one place (the headers each key is
//! stored with are decided in [`crate::headers`]).
//!
//! ```text
//! sdk/<version>/<path>              the build's files; written once, never overwritten
//! sdk/latest/<path>                 copies of the files of the version `latest` points to
//! manifests/<version>.json          per-version manifest, create-only: the seal
//! manifests/pending/<version>.json  intent record of a publish in progress (create-only, then CAS)
//! manifests/channels/latest.json    the channel pointer (compare-and-swap)
//! api/sdk/sri                       the SRI index customers fetch (compare-and-swap)
//! ```

use semver::Version;

use crate::store::{Key, KeyError};

/// Prefix of every SDK file.
pub(crate) const SDK_PREFIX: &str = "sdk/";
/// The one channel, served at `sdk/latest/`.
pub(crate) const LATEST: &str = "latest";
/// Prefix of the per-version manifests.
pub(crate) const MANIFESTS_PREFIX: &str = "manifests/";
/// The SRI index customers fetch.
pub(crate) const INDEX_KEY: &str = "api/sdk/sri";
/// The `latest` channel pointer.
pub(crate) const LATEST_POINTER_KEY: &str = "manifests/channels/latest.json";

/// `sdk/<version>/<path>`.
pub(crate) fn version_file(version: &Version, path: &str) -> Result<Key, KeyError> {
    Key::new(format!("{SDK_PREFIX}{version}/{path}"))
}

/// `sdk/<version>/`: the prefix of one version's files.
pub(crate) fn version_prefix(version: &Version) -> String {
    format!("{SDK_PREFIX}{version}/")
}

/// `sdk/latest/<path>`.
pub(crate) fn latest_file(path: &str) -> Result<Key, KeyError> {
    Key::new(format!("{SDK_PREFIX}{LATEST}/{path}"))
}

/// `sdk/latest/`.
pub(crate) fn latest_prefix() -> String {
    format!("{SDK_PREFIX}{LATEST}/")
}

/// `manifests/<version>.json`.
pub fn manifest(version: &Version) -> Key {
    Key::trusted(format!("{MANIFESTS_PREFIX}{version}.json"))
}

/// The version a `manifests/<version>.json` key names, if it is one.
pub(crate) fn version_of_manifest(key: &Key) -> Option<Version> {
    let name = key.as_str().strip_prefix(MANIFESTS_PREFIX)?.strip_suffix(".json")?;
    if name.contains('/') {
        return None;
    }
    crate::version::parse(name).ok()
}

/// Prefix of the intent records of publishes in progress.
pub(crate) const INTENTS_PREFIX: &str = "manifests/pending/";

/// `manifests/pending/<version>.json`: the intent record of a publish in progress.
pub(crate) fn intent(version: &Version) -> Key {
    Key::trusted(format!("{INTENTS_PREFIX}{version}.json"))
}

/// The SRI index key.
pub fn index() -> Key {
    Key::trusted(INDEX_KEY.to_string())
}

/// The `latest` pointer key.
pub(crate) fn latest_pointer() -> Key {
    Key::trusted(LATEST_POINTER_KEY.to_string())
}

/// The name of a file in the SRI index: `<version>/<path>` or `latest/<path>`.
pub(crate) fn index_entry(dir: &str, path: &str) -> String {
    format!("{dir}/{path}")
}
