//! The commands that write: `publish` (and its `--dry-run`), `promote`,
//! `reindex` and `discard`, how their reports read, and the CDN purge that
//! follows the ones that move `latest/` or the index.

use std::fmt;
use std::path::Path;

use serde_json::{Value, json};

use super::open_store;
use super::output::{Error, Output, count, count_of, to_value};
use crate::cli::{DiscardArgs, GlobalArgs, PromoteArgs, PublishArgs, PurgeArgs, ReindexArgs, SignArgs, SriSignArgs};
use crate::progress::Progress;
use crate::purge::{self, PurgeOptions, PurgeReport};
use crate::release::{
    self, DiscardReport, Plan, PlanOptions, PromoteOptions, PromoteReport, PublishOptions, PublishOutcome,
    PublishReport, ReindexReport, ReleaseError,
};
use crate::signing::SecretKey;
use crate::store::{Store, StoreUrl};

/// Plans the publish; `stage`: copy each file into the store's staging area
/// while hashing it, so that the upload reads no byte again; `sri_keys`
/// sign every file (signature-based SRI).
async fn plan(
    global: &GlobalArgs,
    store: &dyn Store,
    args: &PublishArgs,
    stage: bool,
    sri_keys: Vec<SecretKey>,
    progress: Progress,
) -> Result<Plan, Error> {
    let (dir, version) = (args.dir.clone(), args.version.clone());
    let options = PlanOptions {
        max_key_len: store.max_key_len(),
        filter: release::select::Filter::new(&args.filter()).map_err(ReleaseError::Usage)?,
        store_root: StoreUrl::parse(&global.store)?.local_root().map(Path::to_path_buf),
        manifests_dir: Some(args.manifests_dir.clone()),
        upload_copies_dir: store.upload_copies_dir(),
        sri_keys,
        staging: if stage { store.staging() } else { None },
    };
    let plan = tokio::task::spawn_blocking(move || Plan::build(&dir, &version, &options, progress))
        .await
        .map_err(|source| ReleaseError::Interrupted { what: "hashing", source })??;
    plan.check_keys(store)?;
    Ok(plan)
}

/// The signature-based SRI keys `--sri-key` names, loaded before any store
/// request, with the password in `SDK_CDN_SRI_KEY_PASSWORD`; none may be
/// `index_key`, the `--sign-key` (docs/SIGNING.md: separate keys).
fn sri_keys(args: &SriSignArgs, index_key: Option<&SecretKey>) -> Result<Vec<SecretKey>, Error> {
    if args.sri_keys.len() > crate::signing::MAX_SRI_KEYS {
        return Err(ReleaseError::Usage(format!(
            "{} --sri-key flags given; at most {} keys sign one file (the old and the new key of a rotation)",
            args.sri_keys.len(),
            crate::signing::MAX_SRI_KEYS
        ))
        .into());
    }
    let mut keys: Vec<SecretKey> = Vec::new();
    for path in &args.sri_keys {
        let key = SecretKey::load_sri_key(path)?;
        if keys.iter().any(|k| k.public_key().ed25519() == key.public_key().ed25519()) {
            return Err(ReleaseError::Usage(format!(
                "--sri-key {} names a key already given; give each key once",
                path.display()
            ))
            .into());
        }
        if let Some(index_key) = index_key.filter(|i| i.public_key().ed25519() == key.public_key().ed25519()) {
            return Err(ReleaseError::Usage(format!(
                "--sri-key and --sign-key name the same key ({}): sign files for browsers with a separate key, so \
                 either can be rotated or revoked without the other (docs/SIGNING.md); make one with `sdk-cdn \
                 keygen --name sri`",
                index_key.public_key().key_id()
            ))
            .into());
        }
        keys.push(key);
    }
    // The order the flags came in does not matter: a re-run with the same
    // keys in another order signs identically (`sig1` is the smallest key).
    keys.sort_by_key(|k| k.public_key().ed25519());
    Ok(keys)
}

/// The signing key the flags or the environment name, loaded before any
/// store request (a wrong password or file writes nothing).
fn signing(args: &SignArgs) -> Result<release::Signing, Error> {
    let key = match crate::signing::KeySource::from_env_or(args.sign_key.as_deref()) {
        Some(_) => Some(std::sync::Arc::new(crate::signing::SecretKey::load_from_env(args.sign_key.as_deref())?)),
        None => None,
    };
    Ok(release::Signing { key, allow_unsigned: args.allow_unsigned })
}

pub(super) async fn dry_run(global: &GlobalArgs, args: &PublishArgs, progress: Progress) -> Result<Output, Error> {
    // The store is parsed (a bad URL is still an error) but never contacted.
    let store = open_store(global).await?;
    let plan = plan(global, store.as_ref(), args, false, sri_keys(&args.sri, None)?, progress).await?;
    let mut text = format!(
        "dry run: would publish {} to {} ({}, {}); nothing was written\n",
        plan.version,
        store.describe(),
        count_of(plan.files.len(), "file"),
        count(plan.total_bytes(), "byte")
    );
    // Every file is signed by the same keys (signature-based SRI), or none is.
    let sri_keys: Vec<String> = release::sri::keys_of(&plan.manifest())?.into_iter().collect();
    if !sri_keys.is_empty() {
        use fmt::Write as _;
        let _ = writeln!(text, "every file signed for signature-based SRI by {}", sri_keys.join(", "));
    }
    let mut files = Vec::new();
    for file in &plan.files {
        let key = file.key.as_str();
        let headers = file.headers();
        // Only the form that is printed is built: a plan can list 10,000s of files.
        if global.json {
            files.push(json!({
                "path": file.path, "key": key, "size": file.size, "integrity": file.integrity,
                "content_type": headers.content_type, "cache_control": headers.cache_control,
            }));
        } else {
            use fmt::Write as _;
            let _ = writeln!(
                text,
                "  {key}\n    {} bytes  {}\n    Content-Type: {}\n    Cache-Control: {}",
                file.size, file.integrity, headers.content_type, headers.cache_control
            );
        }
    }
    if !plan.left_out.is_empty() {
        use fmt::Write as _;
        let _ = writeln!(text, "left out ({}):", plan.left_out.len());
        for left in &plan.left_out {
            let _ = writeln!(text, "  {}  ({})", left.path, left.reason);
        }
    }
    let json = json!({
        "ok": true, "dry_run": true, "version": plan.version, "store": store.describe(), "files": files,
        "left_out": plan.left_out, "sri_keys": sri_keys,
    });
    Ok(Output::data(text, json))
}

pub(super) async fn publish(global: &GlobalArgs, args: &PublishArgs, progress: Progress) -> Result<Output, Error> {
    let signing = signing(&args.sign)?;
    let sri = sri_keys(&args.sri, signing.key.as_deref())?;
    let store = open_store(global).await?;
    // A version already sealed (a no-op re-publish) stages nothing: its
    // files are only hashed, to compare with the seal.
    let stage = store.staging().is_some() && release::read_manifest(store.as_ref(), &args.version).await?.is_none();
    let plan = plan(global, store.as_ref(), args, stage, sri, progress).await?;
    // Before the first store write: a publish that is live must not fail on a local directory.
    release::outputs::check_manifests_dir(&args.manifests_dir)?;
    let options = PublishOptions {
        no_promote: args.no_promote,
        concurrency: usize::from(args.transfer.concurrency),
        latest_cache_control: args.transfer.latest_cache_control.clone(),
        manifests_dir: Some(args.manifests_dir.clone()),
        signing,
        allow_sri_key_change: args.sri.allow_sri_key_change,
    };
    let report = release::publish(store.as_ref(), &plan, &options, progress).await?;
    let text = PublishText { report: &report, store: &store.describe() }.to_string();
    let mut output = Output::status(text, to_value(&report));
    purge_and_report(&args.purge, report.promoted, report.index_updated, &mut output).await;
    Ok(output)
}

/// How a publish reads.
struct PublishText<'a> {
    report: &'a PublishReport,
    store: &'a str,
}

impl fmt::Display for PublishText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, store) = (self.report, self.store);
        match r.outcome {
            PublishOutcome::Published => writeln!(
                f,
                "published {} to {store}: {}, {} ({} uploaded, {} already there)",
                r.version,
                count_of(r.files, "file"),
                count(r.bytes, "byte"),
                r.uploaded,
                r.already_present
            )?,
            PublishOutcome::AlreadyPublished => {
                writeln!(f, "{} is already published in {store} with the same files; nothing to upload", r.version)?;
            }
        }
        if !r.sri_keys.is_empty() {
            writeln!(f, "every file signed for signature-based SRI by {}", r.sri_keys.join(", "))?;
        }
        match (&r.latest, r.promoted, &r.not_promoted_reason) {
            (Some(latest), true, _) => writeln!(f, "latest/ now serves {latest}")?,
            (latest, false, Some(reason)) => {
                let serving = latest.as_ref().map_or("nothing".to_string(), ToString::to_string);
                writeln!(f, "not promoted: {reason}; latest/ serves {serving}")?;
            }
            (Some(latest), false, None) => writeln!(f, "latest/ serves {latest}")?,
            _ => {}
        }
        writeln!(f, "SRI index {}", if r.index_updated { "updated" } else { "already up to date" })?;
        for path in &r.local_copies {
            writeln!(f, "wrote {}", path.display())?;
        }
        Ok(())
    }
}

pub(super) async fn promote(global: &GlobalArgs, args: &PromoteArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let options = PromoteOptions {
        allow_downgrade: args.allow_downgrade,
        allow_prerelease: args.allow_prerelease,
        latest_cache_control: args.transfer.latest_cache_control.clone(),
        concurrency: usize::from(args.transfer.concurrency),
        signing: signing(&args.sign)?,
        allow_sri_key_change: args.allow_sri_key_change,
    };
    let report = release::promote(store.as_ref(), &args.version, &options).await?;
    let mut output = Output::status(PromoteText(&report).to_string(), to_value(&report));
    purge_and_report(&args.purge, report.changed, report.index_updated, &mut output).await;
    Ok(output)
}

/// How a promotion reads.
struct PromoteText<'a>(&'a PromoteReport);

impl fmt::Display for PromoteText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        match (&r.previous, r.changed) {
            (_, false) => writeln!(f, "latest/ already serves {}; copied its files again, headers included", r.version),
            (Some(previous), true) => writeln!(f, "latest/ now serves {} (was {previous})", r.version),
            (None, true) => writeln!(f, "latest/ now serves {}", r.version),
        }
    }
}

pub(super) async fn reindex(global: &GlobalArgs, args: &ReindexArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let cache = &args.transfer.latest_cache_control;
    let signing = signing(&args.sign)?;
    let report = release::reindex(store.as_ref(), cache, usize::from(args.transfer.concurrency), &signing).await?;
    let text = ReindexText { report: &report, store: &store.describe() }.to_string();
    let mut output = Output::status(text, to_value(&report));
    purge_and_report(&args.purge, false, report.changed, &mut output).await;
    Ok(output)
}

/// How a reindex reads.
struct ReindexText<'a> {
    report: &'a ReindexReport,
    store: &'a str,
}

impl fmt::Display for ReindexText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        writeln!(
            f,
            "{} the SRI index of {} from {} (latest: {})",
            if r.changed { "rebuilt" } else { "checked" },
            self.store,
            count_of(r.versions.len(), "published version"),
            r.latest.as_ref().map_or("none".into(), ToString::to_string)
        )
    }
}

pub(super) async fn discard(global: &GlobalArgs, args: &DiscardArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let report = release::discard(store.as_ref(), &args.version, args.force).await?;
    let text = DiscardText { report: &report, store: &store.describe() }.to_string();
    let mut json = to_value(&report);
    json["partial_upload"] = Value::Bool(!report.deleted.is_empty());
    Ok(Output::status(text, json))
}

/// How a discard reads. Nothing to discard is success (exit 0), so `discard V
/// && publish …` retries work, but it is said, here and as `"partial_upload":
/// false`: a typo'd version must not look like a discard that happened.
struct DiscardText<'a> {
    report: &'a DiscardReport,
    store: &'a str,
}

impl fmt::Display for DiscardText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (version, deleted) = (&self.report.version, self.report.deleted.len());
        if deleted == 0 {
            writeln!(
                f,
                "nothing to discard: {version} has no partial upload in {} (`sdk-cdn list` shows what is there)",
                self.store
            )
        } else {
            writeln!(f, "discarded the partial upload of {version}: {} deleted", count_of(deleted, "file"))
        }
    }
}

fn purge_options(args: &PurgeArgs) -> PurgeOptions {
    PurgeOptions { cloudfront_distribution: args.invalidate_cloudfront.clone(), command: args.purge_command.clone() }
}

/// Runs the configured CDN purges and records them in the output: the
/// successes in the text, failures as warnings on stderr too (a failed purge
/// does not undo the publish), the whole report as `"purge"` in the JSON.
async fn purge_and_report(args: &PurgeArgs, latest_changed: bool, index_changed: bool, output: &mut Output) {
    let paths = purge::changed_paths(latest_changed, index_changed);
    let Some(report) = purge::purge(&purge_options(args), paths).await else { return };
    output.text.push_str(&PurgeText(&report).to_string());
    for failure in report.failures() {
        eprintln!("warning: {failure}");
    }
    output.json["purge"] = to_value(&report);
}

/// How a purge reads.
struct PurgeText<'a>(&'a PurgeReport);

impl fmt::Display for PurgeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        for (method, outcome) in [("CloudFront", &r.cloudfront), ("purge command", &r.command)] {
            match outcome {
                Some(o) if o.ok => writeln!(f, "purged {} via {method} {}", r.paths.join(" "), o.detail)?,
                Some(o) => writeln!(f, "warning: {}", o.detail)?,
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use semver::Version;

    use super::*;
    use crate::purge::PurgeOutcome;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn published() -> PublishReport {
        PublishReport {
            version: v("1.4.0"),
            outcome: PublishOutcome::Published,
            uploaded: 1,
            already_present: 0,
            files: 1,
            bytes: 1,
            promoted: true,
            not_promoted_reason: None,
            latest: Some(v("1.4.0")),
            index_updated: true,
            local_copies: vec!["manifests/1.4.0.json".into()],
            sri_keys: Vec::new(),
        }
    }

    #[test]
    fn a_publish_reads_as_what_happened() {
        let text = PublishText { report: &published(), store: "./cdn" }.to_string();
        assert_eq!(
            text,
            "published 1.4.0 to ./cdn: 1 file, 1 byte (1 uploaded, 0 already there)\n\
             latest/ now serves 1.4.0\nSRI index updated\nwrote manifests/1.4.0.json\n"
        );
        let prerelease = PublishReport {
            version: v("1.5.0-rc.1"),
            outcome: PublishOutcome::AlreadyPublished,
            promoted: false,
            not_promoted_reason: Some("1.5.0-rc.1 is a prerelease".into()),
            index_updated: false,
            local_copies: vec![],
            ..published()
        };
        let text = PublishText { report: &prerelease, store: "./cdn" }.to_string();
        assert_eq!(
            text,
            "1.5.0-rc.1 is already published in ./cdn with the same files; nothing to upload\n\
             not promoted: 1.5.0-rc.1 is a prerelease; latest/ serves 1.4.0\nSRI index already up to date\n"
        );
    }

    #[test]
    fn promotions_reindexes_and_discards_read_as_what_happened() {
        let report = |previous: Option<&str>, changed| PromoteReport {
            version: v("1.4.0"),
            previous: previous.map(v),
            changed,
            latest: Some(v("1.4.0")),
            index_updated: changed,
        };
        assert_eq!(PromoteText(&report(Some("1.3.0"), true)).to_string(), "latest/ now serves 1.4.0 (was 1.3.0)\n");
        assert_eq!(PromoteText(&report(None, true)).to_string(), "latest/ now serves 1.4.0\n");
        assert_eq!(
            PromoteText(&report(Some("1.4.0"), false)).to_string(),
            "latest/ already serves 1.4.0; copied its files again, headers included\n"
        );
        let reindex = ReindexReport { versions: vec![v("1.4.0")], latest: None, changed: true };
        assert_eq!(
            ReindexText { report: &reindex, store: "s3://b" }.to_string(),
            "rebuilt the SRI index of s3://b from 1 published version (latest: none)\n"
        );
        let nothing = DiscardReport { version: v("9.9.9"), deleted: vec![] };
        assert!(DiscardText { report: &nothing, store: "./cdn" }.to_string().starts_with("nothing to discard: 9.9.9"));
        let two = DiscardReport { version: v("1.0.0"), deleted: vec!["a".into(), "b".into()] };
        assert_eq!(
            DiscardText { report: &two, store: "./cdn" }.to_string(),
            "discarded the partial upload of 1.0.0: 2 files deleted\n"
        );
    }

    #[test]
    fn purges_read_as_what_happened() {
        let report = PurgeReport {
            paths: vec!["/sdk/latest/*".into(), "/api/sdk/sri".into()],
            cloudfront: Some(PurgeOutcome { ok: true, detail: "invalidation I1".into() }),
            command: Some(PurgeOutcome { ok: false, detail: "the purge command exited with 7".into() }),
        };
        assert_eq!(
            PurgeText(&report).to_string(),
            "purged /sdk/latest/* /api/sdk/sri via CloudFront invalidation I1\n\
             warning: the purge command exited with 7\n"
        );
    }
}
