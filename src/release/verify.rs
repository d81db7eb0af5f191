//! `verify`: re-read every object of the selected versions and `latest/`,
//! re-hash the bytes (metadata can lie), and check the index against the
//! sealed manifests. Read-only: it reports, `publish`/`promote`/`reindex`
//! repair.

use futures::StreamExt;
use semver::Version;
use serde::Serialize;

use super::index::expected_index;
use super::signatures::{check_index_signature, check_manifest_signature};
use super::verify_http::CdnCheck;
use super::{ReleaseError, read_index, read_manifest, read_pointer, sealed_versions};
use crate::integrity::Integrity;
use crate::layout;
use base64::Engine as _;

use crate::manifest::{FileEntry, SriIndex, VersionManifest};
use crate::signing::{self, PublicKey, SignedHeaders};
use crate::store::{Key, Store};

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Problem {
    /// A file the manifest lists is not in the store.
    Missing,
    /// A file in the store that the manifest does not list.
    Extra,
    /// The stored bytes do not hash to the manifest's integrity.
    Mismatch,
    /// Content-Type, Cache-Control or the stored SRI metadata is wrong.
    Headers,
    /// The SRI index disagrees with the sealed manifests or the channel.
    Index,
    /// The `latest` channel is not in a settled state.
    Channel,
    /// Fetched through the CDN (`--base-url`): wrong status, bytes or headers.
    Http,
    /// A signature is missing or does not prove its object (`--pubkey`).
    Signature,
    /// A version's seal (`manifests/<version>.json`) cannot be read as one.
    Seal,
}

/// One problem found, by key.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    /// The object (or index entry) concerned.
    pub key: String,
    /// The kind of problem.
    pub problem: Problem,
    /// What exactly differs.
    pub detail: String,
}

/// The result of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The store verified.
    pub(crate) store: String,
    /// Versions whose files were re-hashed.
    pub(crate) versions: Vec<Version>,
    /// The version `latest/` serves (its files were re-hashed too).
    pub(crate) latest: Option<Version>,
    /// Objects re-hashed.
    pub(crate) files_checked: usize,
    /// Bytes re-hashed.
    pub(crate) bytes_checked: u64,
    /// Every problem found; empty means the store is sound.
    pub(crate) findings: Vec<Finding>,
}

impl VerifyReport {
    /// Whether nothing was found.
    pub(crate) fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Which versions to verify.
#[derive(Debug, Clone)]
pub(crate) enum Selection {
    /// Every sealed version, `latest/` and the whole index.
    All,
    /// These versions (and `latest/`), and their index entries.
    Versions(Vec<Version>),
}

/// How to verify.
#[derive(Debug, Clone, Default)]
pub(crate) struct VerifyOptions<'a> {
    /// Objects fetched and re-hashed at once.
    pub concurrency: usize,
    /// Also fetch every file, and the index, through this CDN or origin over HTTP.
    pub base_url: Option<&'a str>,
    /// How long one request through the CDN may take (`--timeout`), and its connection (`--connect-timeout`).
    pub http_timeouts: (std::time::Duration, std::time::Duration),
    /// Succeed on a store with nothing published (otherwise that is an error:
    /// nothing verified is not OK).
    pub allow_empty: bool,
    /// Also check the index's and every verified manifest's signature against this key.
    pub pubkey: Option<&'a PublicKey>,
    /// Keys every `latest/` file must carry a valid signature-based SRI
    /// signature by (`--sri-pubkey`: what pages pinning `latest/` by key need).
    pub sri_pubkeys: &'a [[u8; 32]],
}

/// Verifies `selection` in `store`.
///
/// With a base URL, every file is also fetched through the CDN or origin over
/// HTTP (with an `Origin` header) and its bytes, status, CORS, Content-Type
/// and Cache-Control are checked: what browsers will actually get.
pub(crate) async fn verify(
    store: &dyn Store,
    selection: Selection,
    options: &VerifyOptions<'_>,
) -> Result<VerifyReport, ReleaseError> {
    let concurrency = options.concurrency;
    let cdn = options.base_url.map(|url| CdnCheck::new(url, options.http_timeouts)).transpose()?;
    let sealed = sealed_versions(store).await?;
    if sealed.is_empty() && !options.allow_empty {
        return Err(ReleaseError::NothingPublished { store: store.describe() });
    }
    let versions = match &selection {
        Selection::All => sealed.clone(),
        Selection::Versions(list) => {
            if let Some(missing) = list.iter().find(|v| !sealed.contains(v)) {
                return Err(ReleaseError::NotPublished {
                    version: missing.to_string(),
                    store: store.describe(),
                    hint: "run `sdk-cdn list`",
                });
            }
            list.clone()
        }
    };
    let mut report = VerifyReport {
        store: store.describe(),
        versions: versions.clone(),
        latest: None,
        files_checked: 0,
        bytes_checked: 0,
        findings: Vec::new(),
    };
    let mut manifests = Vec::new();
    let mut unreadable = Vec::new();
    for version in &versions {
        let Some(manifest) = readable_seal(store, version, &mut report).await? else {
            unreadable.push(version.clone());
            continue;
        };
        let files =
            Files { prefix: &layout::version_prefix(version), manifest: &manifest, cache: CacheRule::Immutable };
        check_files(store, &files, &[], concurrency, &mut report).await?;
        if let Some(cdn) = &cdn {
            let dir = version.to_string();
            cdn.check_files(&dir, &manifest, CacheRule::Immutable, concurrency, &mut report.findings).await;
        }
        manifests.push(manifest);
    }

    if matches!(selection, Selection::All) {
        check_strays(store, &mut report).await?;
    }
    let pointer = read_pointer(store).await?.map(|stored| stored.pointer);
    let mut latest_manifest = None;
    report.latest = pointer.as_ref().map(|p| p.version.clone());
    let promoted = match &pointer {
        Some(pointer) if !sealed.contains(&pointer.version) => {
            report.findings.push(Finding {
                key: layout::LATEST_POINTER_KEY.into(),
                problem: Problem::Channel,
                detail: format!(
                    "it names {}, which is not sealed (no manifests/{}.json): promote a published version with \
                     `sdk-cdn promote VERSION` (`sdk-cdn list` shows them)",
                    pointer.version, pointer.version
                ),
            });
            None
        }
        // Its seal is unreadable, and reported with the versions.
        Some(pointer) if unreadable.contains(&pointer.version) => None,
        other => other.as_ref(),
    };
    if let Some(pointer) = promoted {
        if !pointer.synced {
            report.findings.push(Finding {
                key: layout::LATEST_POINTER_KEY.into(),
                problem: Problem::Channel,
                detail: format!(
                    "a promotion of {} is incomplete (running now, or interrupted): run `sdk-cdn promote {}`",
                    pointer.version, pointer.version
                ),
            });
        }
        if let Some(manifest) = readable_seal(store, &pointer.version, &mut report).await? {
            let files = Files { prefix: &layout::latest_prefix(), manifest: &manifest, cache: CacheRule::Short };
            check_files(store, &files, options.sri_pubkeys, concurrency, &mut report).await?;
            if let Some(cdn) = &cdn {
                cdn.check_files(layout::LATEST, &manifest, CacheRule::Short, concurrency, &mut report.findings).await;
            }
            latest_manifest = Some(manifest);
        }
    } else if let Some(key) = options.sri_pubkeys.first() {
        report.findings.push(Finding {
            key: layout::latest_prefix(),
            problem: Problem::Signature,
            detail: format!(
                "--sri-pubkey ed25519-{}: nothing is promoted to latest/, so no file is signed by it",
                base64::engine::general_purpose::STANDARD.encode(key)
            ),
        });
    }

    let stored_index = match read_index(store).await {
        Ok(stored) => Some(stored),
        Err(ReleaseError::Corrupt(e)) => {
            report.findings.push(Finding {
                key: layout::INDEX_KEY.into(),
                problem: Problem::Index,
                detail: format!("{e}: run `sdk-cdn reindex` to rebuild it from the sealed manifests"),
            });
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(pubkey) = options.pubkey {
        let index = stored_index.as_ref().and_then(|s| s.as_ref()).map(|s| &s.bytes[..]);
        check_signatures(store, &versions, index, pubkey, &mut report).await?;
    }
    let synced = latest_manifest.as_ref().filter(|_| promoted.is_some_and(|p| p.synced));
    let expected = expected_index(&manifests, synced);
    // A damaged index is reported above; its entries cannot be compared.
    if let Some(stored) = stored_index {
        let stored = stored.map(|stored| stored.index);
        check_index(stored.as_ref(), &expected, &selection, &unreadable, &mut report);
    }
    if let Some(cdn) = &cdn {
        cdn.check_index(store, &sealed, &expected, options.pubkey, &mut report.findings).await;
    }
    Ok(report)
}

/// The seal of `version`; a seal that is not a valid manifest of it is a
/// finding (`None`), not an error: `verify` reports damage, it does not stop at it.
async fn readable_seal(
    store: &dyn Store,
    version: &Version,
    report: &mut VerifyReport,
) -> Result<Option<VersionManifest>, ReleaseError> {
    match read_manifest(store, version).await {
        Ok(Some(manifest)) => Ok(Some(manifest)),
        Ok(None) => Err(ReleaseError::SealVanished { version: version.clone() }),
        Err(ReleaseError::Corrupt(e)) => {
            report.findings.push(Finding {
                key: layout::manifest(version).to_string(),
                problem: Problem::Seal,
                detail: format!(
                    "{e}: restore it from the copy `publish` wrote (its --manifests-dir, ./manifests/{version}.json by \
                     default), which `verify {version}` then checks the files against"
                ),
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `--pubkey`: the index's signature and each verified manifest's.
async fn check_signatures(
    store: &dyn Store,
    versions: &[Version],
    index: Option<&[u8]>,
    pubkey: &PublicKey,
    report: &mut VerifyReport,
) -> Result<(), ReleaseError> {
    let mut push = |key: String, detail: String| {
        report.findings.push(Finding { key, problem: Problem::Signature, detail });
    };
    if let Some(bytes) = index
        && let Some(problem) = check_index_signature(store, bytes, pubkey).await?
    {
        push(layout::INDEX_KEY.into(), problem);
    }
    for version in versions {
        if let Some(problem) = check_manifest_signature(store, version, pubkey).await? {
            push(layout::manifest(version).to_string(), problem);
        }
    }
    Ok(())
}

/// What `Cache-Control` a file must have.
#[derive(Clone, Copy)]
pub(super) enum CacheRule {
    /// Versioned files: cached forever.
    Immutable,
    /// `latest/`: short-lived, never `immutable`.
    Short,
}

impl CacheRule {
    /// What is wrong with `cache_control` under this rule, if anything.
    pub(super) fn problem(self, cache_control: &str) -> Option<String> {
        let immutable = crate::headers::is_immutable(cache_control);
        match self {
            CacheRule::Immutable if !immutable => Some(format!(
                "Cache-Control {cache_control:?} (expected {:?})",
                crate::headers::IMMUTABLE_CACHE_CONTROL
            )),
            CacheRule::Short if immutable || cache_control.is_empty() => {
                Some(format!("Cache-Control {cache_control:?} (latest/ must be short-lived, never immutable)"))
            }
            _ => None,
        }
    }
}

/// The files of one directory (`sdk/<version>/` or `sdk/latest/`) and what they must be.
struct Files<'a> {
    prefix: &'a str,
    manifest: &'a VersionManifest,
    cache: CacheRule,
}

/// Objects under `sdk/` that no release can own (`sdk/top.js`,
/// `sdk/v2.0.0/…`, `sdk/foo/…`): the CDN serves them at public URLs beside
/// the releases. Directories named by a version are the versions' own
/// (checked file by file, or a partial upload that `list` shows).
async fn check_strays(store: &dyn Store, report: &mut VerifyReport) -> Result<(), ReleaseError> {
    for object in store.list(layout::SDK_PREFIX).await? {
        let rest = object.key.as_str().strip_prefix(layout::SDK_PREFIX).unwrap_or_default();
        let owned = match rest.split_once('/') {
            Some((dir, _)) => dir == layout::LATEST || Version::parse(dir).is_ok(),
            None => false,
        };
        if !owned {
            report.findings.push(Finding {
                key: object.key.to_string(),
                problem: Problem::Extra,
                detail: "not under a version or latest/: no release owns it, yet the CDN serves it; delete it".into(),
            });
        }
    }
    Ok(())
}

async fn check_files(
    store: &dyn Store,
    files: &Files<'_>,
    sri_pubkeys: &[[u8; 32]],
    concurrency: usize,
    report: &mut VerifyReport,
) -> Result<(), ReleaseError> {
    let Files { prefix, manifest, .. } = *files;
    for object in store.list(prefix).await? {
        let path = object.key.as_str().strip_prefix(prefix).unwrap_or_default();
        if !manifest.files.contains_key(path) {
            report.findings.push(Finding {
                key: object.key.to_string(),
                problem: Problem::Extra,
                detail: format!("not a file of {} (per its manifest)", manifest.version),
            });
        }
    }
    let checks: Vec<Result<(Vec<Finding>, u64), ReleaseError>> = futures::stream::iter(&manifest.files)
        .map(|(path, entry)| check_file(store, files, path, entry, sri_pubkeys))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for check in checks {
        let (findings, size) = check?;
        report.files_checked += 1;
        report.bytes_checked += size;
        report.findings.extend(findings);
    }
    Ok(())
}

/// Re-hashes one stored file and checks its headers (and, when it is signed
/// for signature-based SRI, that every signature it carries verifies over
/// the stored bytes, and that it carries one by each of `sri_pubkeys`).
async fn check_file(
    store: &dyn Store,
    files: &Files<'_>,
    path: &str,
    entry: &FileEntry,
    sri_pubkeys: &[[u8; 32]],
) -> Result<(Vec<Finding>, u64), ReleaseError> {
    let key = Key::new(format!("{}{path}", files.prefix)).map_err(|source| ReleaseError::ManifestKey {
        version: files.manifest.version.to_string(),
        path: path.to_string(),
        source,
    })?;
    let mut findings = Vec::new();
    let mut push = |problem: Problem, detail: String| findings.push(Finding { key: key.to_string(), problem, detail });
    let Some((reader, meta)) = store.reader(&key).await? else {
        push(Problem::Missing, "not in the store".into());
        return Ok((findings, 0));
    };
    let (actual, size, sha512) =
        Integrity::of_async_reader_with(reader, entry.signed.is_some() || !sri_pubkeys.is_empty())
            .await
            .map_err(|source| ReleaseError::ReadFailed { key: key.to_string(), command: "verify", source })?;
    if actual != entry.integrity {
        push(
            Problem::Mismatch,
            format!("stored bytes hash to {actual} ({size} bytes); the manifest says {}", entry.integrity),
        );
    }
    let headers = meta.headers.unwrap_or_default();
    let mut wrong = Vec::new();
    if headers.content_type != entry.content_type {
        wrong.push(format!("Content-Type {:?} (expected {:?})", headers.content_type, entry.content_type));
    }
    if headers.sri.as_deref() != Some(entry.integrity.to_string().as_str()) {
        wrong.push(format!("SRI metadata {} (expected {})", shown(&headers.sri), entry.integrity));
    }
    if headers.signed != entry.signed {
        wrong.push(match &entry.signed {
            Some(_) => "the signature headers differ from the manifest's (or are missing)".to_string(),
            None => "signature headers the manifest does not have".to_string(),
        });
    }
    wrong.extend(files.cache.problem(&headers.cache_control));
    if !wrong.is_empty() {
        push(Problem::Headers, wrong.join("; "));
    }
    if let Some(sha512) = sha512 {
        for problem in sri_problems(headers.signed.as_ref(), &sha512, sri_pubkeys) {
            push(Problem::Signature, problem);
        }
    }
    Ok((findings, size))
}

/// What is wrong with a file's signature-based SRI headers over a body
/// whose SHA-512 is `sha512`: every key they name must verify, and each of
/// `required` must be among them.
pub(super) fn sri_problems(signed: Option<&SignedHeaders>, sha512: &[u8; 64], required: &[[u8; 32]]) -> Vec<String> {
    let token = |key: &[u8; 32]| format!("ed25519-{}", base64::engine::general_purpose::STANDARD.encode(key));
    let Some(signed) = signed else {
        return required.iter().map(|key| format!("no signature headers, so no signature by {}", token(key))).collect();
    };
    let named = match signing::sri_key_ids(signed) {
        Ok(named) if named.is_empty() => {
            return vec![
                "signature headers with no Signature-Input member tagged \"ed25519-integrity\" naming a 32-byte key: \
                 no browser accepts them"
                    .into(),
            ];
        }
        Ok(named) => named,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems: Vec<String> = named
        .iter()
        .filter_map(|key| {
            signing::verify_sri_headers(sha512, signed, key).err().map(|e| format!("{}: {e}", token(key)))
        })
        .collect();
    problems
        .extend(required.iter().filter(|key| !named.contains(key)).map(|key| format!("not signed by {}", token(key))));
    problems
}

fn check_index(
    stored: Option<&SriIndex>,
    expected: &SriIndex,
    selection: &Selection,
    unreadable: &[Version],
    report: &mut VerifyReport,
) {
    let Some(stored) = stored else {
        if !expected.files.is_empty() {
            report.findings.push(Finding {
                key: layout::INDEX_KEY.into(),
                problem: Problem::Index,
                detail: "the SRI index is missing: run `sdk-cdn reindex`".into(),
            });
        }
        return;
    };
    // Entries of a version whose seal is unreadable cannot be judged (that seal is the finding).
    let judged = |name: &str| !unreadable.iter().any(|v| name.starts_with(&format!("{v}/")));
    let in_scope = |name: &str| match selection {
        Selection::All => judged(name),
        Selection::Versions(list) => {
            judged(name)
                && (name.starts_with(&format!("{}/", layout::LATEST))
                    || list.iter().any(|v| name.starts_with(&format!("{v}/"))))
        }
    };
    let mut push = |key: &str, detail: String| {
        report.findings.push(Finding { key: format!("{}#{key}", layout::INDEX_KEY), problem: Problem::Index, detail });
    };
    for (name, integrity) in &expected.files {
        match stored.files.get(name) {
            None => push(name, "missing from the index: run `sdk-cdn reindex`".into()),
            Some(listed) if listed != integrity => {
                push(name, format!("the index says {listed}; the manifest says {integrity}: run `sdk-cdn reindex`"))
            }
            Some(_) => {}
        }
    }
    for name in stored.files.keys().filter(|n| in_scope(n) && !expected.files.contains_key(*n)) {
        push(name, "listed in the index but not sealed (or not served by latest/): run `sdk-cdn reindex`".into());
    }
    if stored.version != expected.version && expected.version.is_some() {
        push(
            "version",
            format!(
                "the index says latest is {}; the channel says {}",
                shown(&stored.version),
                shown(&expected.version)
            ),
        );
    }
}

/// An optional value as a user reads it: the value, or "none".
fn shown(value: &Option<impl std::fmt::Display>) -> String {
    value.as_ref().map_or_else(|| "none".to_string(), ToString::to_string)
}
