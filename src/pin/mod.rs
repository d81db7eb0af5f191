//! `sdk-cdn pin`: the customer side. Rewrites the `<script>`/`<link>` tags
//! that load the SDK in a customer's HTML to a pinned version with its SRI,
//! taken from the index, and, given the publisher's key, only from an index
//! whose signature verifies.
//!
//! Fails closed: everything is fetched, verified and computed for every file
//! first; files are written only when all of them could be pinned, and then
//! all or none (`write`). On any error no file is touched, except a rename
//! failing between others, which names the files already replaced.

mod charref;
mod rewrite;
mod source;
mod target;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde_json::json;

use self::rewrite::{Mode, Rewritten, Rules, pin_html};
use self::source::{Fetched, Source};
use crate::commands::Output;
use crate::layout::LATEST;
use crate::manifest::SriIndex;
use crate::signing::{
    self, NO_VERSION, PublicKey, SIGNATURE_SUFFIX, SignedKind, SigningError, TrustedComment,
    content_addressed_signature_key,
};

/// `pin` arguments.
#[derive(Debug, Args)]
pub(crate) struct PinArgs {
    /// The HTML files to rewrite (or check).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The SRI index: its URL (https://cdn.example.com/api/sdk/sri) or a local copy.
    #[arg(long, value_name = "URL_OR_PATH")]
    pub index: String,

    /// The publisher's minisign public key (RW…): the index must carry its
    /// valid signature. Repeat it during a key rotation: any one key suffices.
    #[arg(long, value_name = "KEY")]
    pub pubkey: Vec<String>,

    /// The publisher's public key file (.pub); repeatable, combinable with --pubkey.
    #[arg(long, value_name = "FILE")]
    pub pubkey_file: Vec<PathBuf>,

    /// Pin this version (default: the one the index says latest/ serves).
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,

    /// The publisher's signature-based SRI key (ed25519-…, RW… or a .pub file), as the install guide
    /// gives it; repeatable. Required when a tag's integrity names a key: each must be one of these.
    #[arg(long, value_name = "KEY")]
    pub sri_pubkey: Vec<String>,

    /// Rewrite nothing; exit 3 if a tag's integrity differs from the index.
    #[arg(long)]
    pub check: bool,
}

/// Why `pin` refused; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// A key or signature problem.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The index could not be fetched.
    #[error("cannot fetch the index {location}: {detail}; check --index and the network")]
    IndexUnreachable {
        /// URL or path.
        location: String,
        /// Why.
        detail: String,
    },
    /// The index is not a valid SRI index.
    #[error("{location} is not a valid SRI index ({detail}); check that --index points at api/sdk/sri")]
    IndexInvalid {
        /// URL or path.
        location: String,
        /// Why.
        detail: String,
    },
    /// A key was given but the index has no signature.
    #[error(
        "no signature for the index: tried {}; the publisher must sign it (publish --sign-key), \
         or the signature was removed: do not trust this index",
        .tried.join(" and ")
    )]
    SignatureMissing {
        /// The locations tried.
        tried: Vec<String>,
    },
    /// No `--version` and nothing promoted.
    #[error("the index {location} names no latest version; pass --version")]
    NoVersion {
        /// URL or path.
        location: String,
    },
    /// The version asked for is not in the index.
    #[error("version {version} is not in the index {location}; see `sdk-cdn list` or the index for published versions")]
    VersionNotInIndex {
        /// The version.
        version: String,
        /// URL or path.
        location: String,
    },
    /// `--version latest`: a hash on a URL whose bytes change at every release.
    #[error(
        "--version latest would pin a sha384 hash on sdk/latest/, whose files change at every release, and \
         browsers would then block them; pin a version (--version 1.4.0, or no --version for the one latest/ \
         serves now), or pin latest/ by the publisher's key (`sdk-cdn snippet latest --signed`)"
    )]
    LatestByHash,
    /// An HTML file could not be read.
    #[error("cannot read {path}: {detail}")]
    FileRead {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Some tags cannot be pinned, or a file has none.
    #[error("nothing was written, because:\n  {}", .0.join("\n  "))]
    Unpinnable(Vec<String>),
    /// `--check` found tags that differ from the index or that browsers block.
    #[error("pinned tags differ from the index or would be blocked:\n  {}", .0.join("\n  "))]
    CheckFailed(Vec<String>),
    /// Writing a rewritten file failed before any file was replaced.
    #[error(
        "cannot write {path}: {source}; no file was changed (free space or fix the permissions, then run pin again)"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Every file was written, but replacing one failed after others were replaced.
    #[error(
        "cannot replace {path}: {source}; already pinned: {}; left as they were: {}; fix the cause and run \
         pin again (files already pinned are not changed again)",
        list(.replaced),
        list(.untouched)
    )]
    PartlyWritten {
        /// The file whose rename failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
        /// Files already replaced by their pinned version.
        replaced: Vec<PathBuf>,
        /// Files left as they were (the failed one included).
        untouched: Vec<PathBuf>,
    },
}

impl PinError {
    /// 1 unreachable or broken index / write failure, 2 bad input, 3 a
    /// signature that does not prove the index or a `--check` mismatch.
    pub fn exit_code(&self) -> u8 {
        match self {
            PinError::Signing(e) => e.exit_code(),
            PinError::IndexUnreachable { .. }
            | PinError::IndexInvalid { .. }
            | PinError::Write { .. }
            | PinError::PartlyWritten { .. } => 1,
            PinError::SignatureMissing { .. } | PinError::CheckFailed(_) => 3,
            _ => 2,
        }
    }
}

fn list(paths: &[PathBuf]) -> String {
    match paths.is_empty() {
        true => "none".into(),
        false => paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    }
}

/// Runs `pin`; each fetch of the index or its signature gives up after
/// `timeout` (`--timeout`), connecting after `connect` (`--connect-timeout`).
pub(crate) async fn run(args: &PinArgs, timeout: Duration, connect: Duration) -> Result<Output, PinError> {
    // The key first: a bad key is a usage error before any network.
    let mut keys = Vec::new();
    for text in &args.pubkey {
        keys.push(PublicKey::parse(text, "--pubkey")?);
    }
    for path in &args.pubkey_file {
        keys.push(PublicKey::load(path)?);
    }
    let mut sri_keys = Vec::new();
    for text in &args.sri_pubkey {
        sri_keys.push(PublicKey::sri_from_arg(text)?);
    }
    if !args.check && args.version.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(LATEST)) {
        return Err(PinError::LatestByHash);
    }
    let location = args.index.as_str();
    let unreachable = |detail: String| PinError::IndexUnreachable { location: location.into(), detail };
    let source = Source::for_location(location, timeout, connect).map_err(unreachable)?;
    let bytes = match source.fetch(location).await.map_err(unreachable)? {
        Fetched::Found(bytes) => bytes,
        Fetched::Missing => return Err(unreachable("not found".into())),
    };
    let signed = match keys.is_empty() {
        true => None,
        false => Some(verified(&source, location, &bytes, &keys).await?),
    };
    let index: SriIndex = serde_json::from_slice(&bytes)
        .map_err(|e| PinError::IndexInvalid { location: location.into(), detail: e.to_string() })?;
    if let Some((comment, _)) = &signed {
        let says = index.version.as_ref().map_or_else(|| NO_VERSION.to_string(), ToString::to_string);
        if comment.version != says {
            return Err(SigningError::WrongContent {
                what: "the SRI index".into(),
                detail: format!("its trusted comment says version={}, the index says {says}", comment.version),
            }
            .into());
        }
    }
    let version = match (&args.version, &index.version) {
        (Some(v), _) => v.clone(),
        (None, Some(v)) => v.to_string(),
        (None, None) if args.check => String::new(),
        (None, None) => return Err(PinError::NoVersion { location: location.into() }),
    };
    if !version.is_empty() && !index.files.keys().any(|k| k.strip_prefix(&version).is_some_and(|r| r.starts_with('/')))
    {
        return Err(PinError::VersionNotInIndex { version, location: location.into() });
    }
    let mode = match args.check {
        true => Mode::Check(args.version.as_deref()),
        false => Mode::Pin(&version),
    };
    let results = compute(&args.files, &index, Rules { mode, sri_keys: &sri_keys })?;
    let report = report(&results, signed.as_ref(), &version, args.check);
    if args.check {
        let mismatches: Vec<String> = results
            .iter()
            .flat_map(|(path, r)| r.mismatches.iter().map(move |m| format!("{}: {m}", path.display())))
            .collect();
        if !mismatches.is_empty() {
            return Err(PinError::CheckFailed(mismatches));
        }
        return Ok(report);
    }
    let files: Vec<(&Path, &[u8])> = results.iter().map(|(p, r)| (p.as_path(), r.html.as_bytes())).collect();
    write::write_all(&files)?;
    Ok(report)
}

/// Fetches the index's signature and verifies it under any of `keys`; a
/// signature that belongs to another version of the index (a cache of
/// another age) is retried at its content-addressed name.
async fn verified(
    source: &Source,
    location: &str,
    bytes: &[u8],
    keys: &[PublicKey],
) -> Result<(TrustedComment, PublicKey), PinError> {
    let beside = format!("{location}{SIGNATURE_SUFFIX}");
    let addressed = content_addressed_signature_key(location, bytes);
    let mut first_error = None;
    for at in [&beside, &addressed] {
        let fetched =
            source.fetch(at).await.map_err(|detail| PinError::IndexUnreachable { location: at.clone(), detail })?;
        let Fetched::Found(sig) = fetched else { continue };
        let text = String::from_utf8_lossy(&sig);
        for key in keys {
            match signing::verify_signature(bytes, &text, key, SignedKind::Index) {
                Ok(comment) => return Ok((comment, key.clone())),
                // "Made by another key" is expected for all but one key; any other reason says more.
                Err(e) => {
                    let better = match &first_error {
                        None => true,
                        Some(SigningError::KeyIdMismatch { .. }) => !matches!(e, SigningError::KeyIdMismatch { .. }),
                        Some(_) => false,
                    };
                    if better {
                        first_error = Some(e);
                    }
                }
            }
        }
    }
    Err(match first_error {
        Some(e) => e.into(),
        None => PinError::SignatureMissing { tried: vec![beside, addressed] },
    })
}

/// Reads and rewrites every file in memory; any problem anywhere refuses all.
fn compute(files: &[PathBuf], index: &SriIndex, rules: Rules<'_>) -> Result<Vec<(PathBuf, Rewritten)>, PinError> {
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        let bytes =
            std::fs::read(path).map_err(|e| PinError::FileRead { path: path.clone(), detail: e.to_string() })?;
        let html = String::from_utf8(bytes)
            .map_err(|_| PinError::FileRead { path: path.clone(), detail: "not UTF-8 text".into() })?;
        match pin_html(&html, index, rules) {
            Ok(r) if r.tags.is_empty() && r.mismatches.is_empty() => problems.push(format!(
                "{}: no <script src> or <link rel=stylesheet href> loads …/sdk/<version|latest>/<file>",
                path.display()
            )),
            Ok(r) => results.push((path.clone(), r)),
            Err(list) => problems.extend(list.into_iter().map(|p| format!("{}: {p}", path.display()))),
        }
    }
    if problems.is_empty() { Ok(results) } else { Err(PinError::Unpinnable(problems)) }
}

fn report(
    results: &[(PathBuf, Rewritten)],
    signed: Option<&(TrustedComment, PublicKey)>,
    version: &str,
    check: bool,
) -> Output {
    let mut text = match signed {
        Some((c, k)) => {
            format!("index signature verified: key {}, signed at {} (Unix time)\n", k.key_id(), c.time)
        }
        _ => "index NOT verified (no --pubkey): it is trusted as served\n".to_string(),
    };
    let verb = if check { "checked" } else { "pinned" };
    for (path, r) in results {
        text.push_str(&format!("{}: {} tag(s) {verb}\n", path.display(), r.tags.len()));
        for tag in &r.tags {
            text.push_str(&format!("  {} {}\n", tag.pinned_url, tag.integrity));
        }
    }
    let files: Vec<_> = results.iter().map(|(p, r)| json!({ "file": p, "tags": r.tags })).collect();
    let signature = signed.map(|(c, k)| json!({ "key_id": k.key_id(), "time": c.time }));
    let json = json!({ "version": version, "check": check, "signature": signature, "files": files });
    Output::status(text, json)
}
