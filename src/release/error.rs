//! Errors of the release layer; each names what is wrong and what to do.

use crate::manifest::{FileDiff, FormatError};
use crate::store::StoreError;
use crate::version::VersionError;

/// Everything that can stop a release command.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The version argument is not a publishable version.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// A path given (or found in the build) cannot be published.
    #[error("{path}: {reason}")]
    Input {
        /// The offending path.
        path: String,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// The command cannot run as asked (a missing flag, an unknown version).
    #[error("{0}")]
    Usage(String),
    /// The version is already published (sealed or partially uploaded) with other bytes.
    #[error(
        "version {version} is already {state} with different content ({diff}); published versions are \
         immutable: publish this build under a new version{hint}"
    )]
    Conflict {
        /// The version.
        version: String,
        /// `published` or `partially uploaded`.
        state: &'static str,
        /// Which files differ.
        diff: Box<FileDiff>,
        /// What else the user can do.
        hint: &'static str,
    },
    /// The operation would change what is published (e.g. discard a sealed version).
    #[error("{0}")]
    Refused(String),
    /// The store ignores conditional writes and cannot be trusted.
    #[error("{0}")]
    UnsafeStore(String),
    /// An input file changed after it was hashed; the store refused its bytes.
    #[error("{source}; nothing was sealed: rerun the publish once the build has finished writing")]
    InputChanged {
        /// The store's refusal, naming the file and both hashes.
        #[source]
        source: StoreError,
    },
    /// `verify` found nothing to verify: no version is sealed in the store.
    #[error(
        "nothing is published at {store} (no manifests/<version>.json): nothing was verified. Check the --store \
         URL (a typo in a bucket prefix or path looks like an empty store), or pass --allow-empty if an empty \
         store is expected"
    )]
    NothingPublished {
        /// The store.
        store: String,
    },
    /// A write without a signing key to a store whose index is signed.
    #[error(
        "the SRI index of {store} is signed (api/sdk/sri.minisig), and customers may check it: pass --sign-key FILE \
         (or set SDK_CDN_SIGN_KEY_FILE, or SDK_CDN_SIGN_KEY with the key text) to keep it signed, or \
         --allow-unsigned to write an unsigned index on purpose"
    )]
    Unsigned {
        /// The store.
        store: String,
    },
    /// A promotion would serve `latest/` unsigned by a key it is signed by now.
    #[error(
        "latest/ serves {current}, signed for signature-based SRI by {dropped}, and {next} is not signed by {it}: \
         pages that pin latest/ with integrity=\"ed25519-…\" by {it} would block every latest/ file. Sign with \
         {it} too (--sri-key; a version already published cannot gain signatures, so publish a new one; during a \
         key rotation sign with the old and the new key, docs/SIGNING.md), or pass --allow-sri-key-change once no \
         page pins {it}"
    )]
    SriKeyDropped {
        /// The version `latest/` serves.
        current: String,
        /// The version that would take over.
        next: String,
        /// The keys (`ed25519-…`) it would drop.
        dropped: String,
        /// "that key" or "those keys".
        it: &'static str,
    },
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// A shared object kept changing under this writer for too many rounds.
    #[error("{object} kept changing for {rounds} rounds (other publishers or promoters racing); rerun the command")]
    Contention {
        /// What kept changing.
        object: &'static str,
        /// How many rounds were tried.
        rounds: usize,
    },
    /// The `latest` pointer names a version that is not sealed.
    #[error(
        "the latest pointer (manifests/channels/latest.json) names {version}, which is not sealed \
         (manifests/{version}.json is missing); point latest at a published version with `sdk-cdn promote VERSION`"
    )]
    PointerNotSealed {
        /// The version the pointer names.
        version: semver::Version,
    },
    /// A seal that existed a moment ago (listed, or refused a create-only write) could not be read any more.
    #[error(
        "manifests/{version}.json existed a moment ago but has disappeared; seals are never deleted by sdk-cdn: \
         check who deletes objects in this store, then rerun"
    )]
    SealVanished {
        /// The version.
        version: semver::Version,
    },
    /// The version asked for is not sealed in the store.
    #[error("{version} is not published in {store} (no manifests/{version}.json); {hint}")]
    NotPublished {
        /// The version (or channel name) asked for.
        version: String,
        /// The store.
        store: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// The store has no SRI index: nothing is published there yet.
    #[error("{store} has no SRI index yet: nothing is published; run `sdk-cdn publish DIR --version V`")]
    NoIndex {
        /// The store.
        store: String,
    },
    /// The SRI index has no entries for the version or channel asked for.
    #[error("{dir} is not in the SRI index of {store}; run `sdk-cdn list` to see published versions")]
    NotInIndex {
        /// The version or channel (`latest`) asked for.
        dir: String,
        /// The store.
        store: String,
    },
    /// A published version has no file of that name.
    #[error("{dir} has no file {file:?}; it has: {}", available.join(", "))]
    NoSuchFile {
        /// The version or channel.
        dir: String,
        /// The file asked for.
        file: String,
        /// The files it does have.
        available: Vec<String>,
    },
    /// A key named in a sealed manifest cannot be formed: the manifest is damaged.
    #[error(
        "{path:?} of manifests/{version}.json is not a valid key ({source}); run `sdk-cdn verify {version}` to \
         inspect the store"
    )]
    ManifestKey {
        /// The version whose manifest names the file.
        version: String,
        /// The file's path in the manifest.
        path: String,
        /// Why it is not a key.
        #[source]
        source: crate::store::KeyError,
    },
    /// The pre-publish probe of conditional writes could not finish (the
    /// store failed; it did not show that it ignores them).
    #[error("refusing to publish to {store}: {check} check failed: {detail}")]
    ProbeFailed {
        /// The store.
        store: String,
        /// The check that failed.
        check: &'static str,
        /// What the store said.
        detail: String,
    },
    /// Reading an object's bytes failed part-way.
    #[error("reading {key} failed: {source}; rerun {command}")]
    ReadFailed {
        /// The key.
        key: String,
        /// The command to rerun.
        command: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stored SRI index is not JSON.
    #[error("{store}api/sdk/sri is not JSON ({source}); run `sdk-cdn reindex` to rebuild it")]
    IndexNotJson {
        /// The store.
        store: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Background work (hashing) stopped before it finished: it panicked or was cancelled.
    #[error("{what} was interrupted: {source}")]
    Interrupted {
        /// The work.
        what: &'static str,
        /// The task's error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// This machine has no TLS trust roots to check an `https://` CDN with.
    #[error("no TLS trust roots on this machine: {source}")]
    TlsRoots {
        /// The error loading them.
        #[source]
        source: std::io::Error,
    },
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object in the store is corrupt.
    #[error("{0}; run `sdk-cdn verify` to inspect the store (`sdk-cdn reindex` rebuilds a damaged index)")]
    Corrupt(#[from] FormatError),
    /// The release is in the store, live; only its local copies (`--manifests-dir`) failed.
    #[error(
        "{version} is published and live in the store; only the local copies of its manifests failed: {source}. \
         Free space there or choose another --manifests-dir, then rerun the same publish: it changes nothing in \
         the store and writes the copies"
    )]
    LocalCopies {
        /// The version published.
        version: String,
        /// What failed.
        #[source]
        source: Box<ReleaseError>,
    },
    /// A local file could not be read or written.
    #[error("{what} {path}: {source}")]
    Local {
        /// The operation.
        what: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
