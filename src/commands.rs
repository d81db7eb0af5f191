//! Running one parsed command: open the store, call the release layer,
//! shape the result as text for people and JSON for CI.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{
    Cli, Command, DiscardArgs, GlobalArgs, PromoteArgs, PublishArgs, ReindexArgs, SnippetArgs, SriArgs, VerifyArgs,
};
use crate::layout;
use crate::progress::Progress;
use crate::release::{self, Plan, PromoteOptions, PublishOptions, PublishOutcome, ReleaseError};
use crate::store::{self, ProbeReport, S3Options, Store, StoreError, StoreUrl, Verdict};

/// What a command prints on success.
#[derive(Debug)]
pub struct Output {
    /// For people.
    pub text: String,
    /// For machines (`--json`).
    pub json: Value,
    /// Whether `text` is the data asked for (`sri`, `snippet`, `list`, …:
    /// printed even with `-q`) or a status report (`publish`, `verify`, …:
    /// `-q` silences it, the exit code says how it went).
    pub kind: Kind,
}

/// See [`Output::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The data the command was run for.
    Data,
    /// A report of what the command did.
    Status,
}

impl Output {
    /// A status report (silenced by `-q`).
    pub fn status(text: String, json: Value) -> Self {
        Output { text, json, kind: Kind::Status }
    }

    /// The data the command was run for (printed even with `-q`).
    pub fn data(text: String, json: Value) -> Self {
        Output { text, json, kind: Kind::Data }
    }

    /// Whether `-q` silences the text.
    pub fn is_status(&self) -> bool {
        self.kind == Kind::Status
    }
}

/// Why a command failed; `main` maps each kind to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--store` URL is malformed.
    #[error(transparent)]
    StoreUrl(#[from] store::StoreUrlError),
    /// A release operation failed.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// `verify` found problems.
    #[error("{}", verify_text(.0))]
    Verify(Box<release::VerifyReport>),
    /// `doctor` found a problem.
    #[error("{}", doctor_text(.0))]
    Doctor(Box<ProbeReport>),
    /// `serve` could not start.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Release(e.into())
    }
}

impl Error {
    /// The error as JSON for `--json`, with its exit code.
    pub fn to_json(&self, code: u8) -> Value {
        let mut value = json!({ "ok": false, "exit_code": code, "error": self.to_string() });
        match self {
            Error::Doctor(report) => value["report"] = to_value(report),
            Error::Verify(report) => value["report"] = to_value(report),
            Error::Release(ReleaseError::Conflict { diff, .. }) => value["diff"] = to_value(diff),
            _ => {}
        }
        value
    }
}

/// `n noun` or `n nouns`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Runs `cli`'s command. Every `--json` success object carries `"ok": true`,
/// except `sri` without a version, which prints the index exactly as served.
pub async fn run(cli: &Cli) -> Result<Output, Error> {
    let mut output = dispatch(cli).await?;
    let whole_index = matches!(&cli.command, Command::Sri(SriArgs { version: None, .. }));
    if let (false, Some(object)) = (whole_index, output.json.as_object_mut()) {
        object.insert("ok".into(), Value::Bool(true));
    }
    Ok(output)
}

async fn dispatch(cli: &Cli) -> Result<Output, Error> {
    let global = &cli.global;
    let progress = Progress::new(!global.json && !global.quiet);
    match &cli.command {
        Command::Publish(args) if args.dry_run => dry_run(global, args, progress).await,
        Command::Publish(args) => publish(global, args, progress).await,
        Command::Promote(args) => promote(global, args).await,
        Command::Sri(args) => sri(global, args).await,
        Command::Snippet(args) => snippet(global, args).await,
        Command::List => list(global).await,
        Command::Verify(args) => verify(global, args).await,
        Command::Reindex(args) => reindex(global, args).await,
        Command::Discard(args) => discard(global, args).await,
        Command::Doctor => doctor(global).await,
        Command::Completions { shell } => Ok(completions(*shell)),
        Command::Man(args) => man(args),
        Command::Serve(args) => serve(global, args).await,
    }
}

/// Opens the store named by the global options.
pub async fn open_store(global: &GlobalArgs) -> Result<std::sync::Arc<dyn Store>, Error> {
    let url = StoreUrl::parse(&global.store)?;
    let options = S3Options { endpoint_url: global.endpoint_url.clone(), path_style: global.path_style };
    Ok(store::open(&url, &options).await?)
}

async fn plan(store: &dyn Store, args: &PublishArgs, progress: Progress) -> Result<Plan, Error> {
    let (dir, version, max) = (args.dir.clone(), args.version.clone(), store.max_key_len());
    let plan = tokio::task::spawn_blocking(move || Plan::build(&dir, &version, max, progress))
        .await
        .map_err(|e| ReleaseError::StoreUnusable(format!("hashing was interrupted: {e}")))??;
    Ok(plan)
}

async fn dry_run(global: &GlobalArgs, args: &PublishArgs, progress: Progress) -> Result<Output, Error> {
    // The store is parsed (a bad URL is still an error) but never contacted.
    let store = open_store(global).await?;
    let plan = plan(store.as_ref(), args, progress).await?;
    let mut text = format!(
        "dry run: would publish {} to {} ({}, {}); nothing was written\n",
        plan.version,
        store.describe(),
        count(plan.files.len() as u64, "file"),
        count(plan.total_bytes(), "byte")
    );
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
            let _ = writeln!(
                text,
                "  {key}\n    {} bytes  {}\n    Content-Type: {}\n    Cache-Control: {}",
                file.size, file.integrity, headers.content_type, headers.cache_control
            );
        }
    }
    let json =
        json!({ "ok": true, "dry_run": true, "version": plan.version, "store": store.describe(), "files": files });
    Ok(Output::data(text, json))
}

async fn publish(global: &GlobalArgs, args: &PublishArgs, progress: Progress) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let plan = plan(store.as_ref(), args, progress).await?;
    let options = PublishOptions {
        no_promote: args.no_promote,
        concurrency: usize::from(args.transfer.concurrency),
        latest_cache_control: args.transfer.latest_cache_control.clone(),
        manifests_dir: Some(args.manifests_dir.clone()),
    };
    let report = release::publish(store.as_ref(), &plan, &options, progress).await?;
    let (latest_changed, index_changed) = (report.promoted, report.index_updated);
    let mut text = match report.outcome {
        PublishOutcome::Published => format!(
            "published {} to {}: {}, {} ({} uploaded, {} already there)\n",
            report.version,
            store.describe(),
            count(report.files as u64, "file"),
            count(report.bytes, "byte"),
            report.uploaded,
            report.already_present
        ),
        PublishOutcome::AlreadyPublished => {
            format!(
                "{} is already published in {} with the same files; nothing to upload\n",
                report.version,
                store.describe()
            )
        }
    };
    match (&report.latest, report.promoted, &report.not_promoted_reason) {
        (Some(latest), true, _) => {
            let _ = writeln!(text, "latest/ now serves {latest}");
        }
        (latest, false, Some(reason)) => {
            let serving = latest.as_ref().map_or("nothing".to_string(), ToString::to_string);
            let _ = writeln!(text, "not promoted: {reason}; latest/ serves {serving}");
        }
        (Some(latest), false, None) => {
            let _ = writeln!(text, "latest/ serves {latest}");
        }
        _ => {}
    }
    let _ = writeln!(text, "SRI index {}", if report.index_updated { "updated" } else { "already up to date" });
    for path in &report.local_copies {
        let _ = writeln!(text, "wrote {}", path.display());
    }
    let json = to_value(&report);
    let mut output = Output::status(text, json);
    purge_and_report(&args.purge, latest_changed, index_changed, &mut output).await;
    Ok(output)
}

async fn promote(global: &GlobalArgs, args: &PromoteArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let options = PromoteOptions {
        allow_downgrade: args.allow_downgrade,
        allow_prerelease: args.allow_prerelease,
        latest_cache_control: args.transfer.latest_cache_control.clone(),
        concurrency: usize::from(args.transfer.concurrency),
    };
    let report = release::promote(store.as_ref(), &args.version, &options).await?;
    let text = match (&report.previous, report.changed) {
        (_, false) => format!("latest/ already serves {}; checked it is complete\n", report.version),
        (Some(previous), true) => format!("latest/ now serves {} (was {previous})\n", report.version),
        (None, true) => format!("latest/ now serves {}\n", report.version),
    };
    let json = to_value(&report);
    let mut output = Output::status(text, json);
    purge_and_report(&args.purge, report.changed, report.index_updated, &mut output).await;
    Ok(output)
}

async fn sri(global: &GlobalArgs, args: &SriArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    match (&args.version, &args.file) {
        (None, _) => {
            // Text: the stored bytes exactly. --json: the same JSON value on one
            // line (read_index has parsed it already; this cannot fail unnoticed).
            let bytes = release::sri_index(store.as_ref()).await?;
            let json = serde_json::from_slice(&bytes).map_err(|e| {
                ReleaseError::StoreUnusable(format!(
                    "{}api/sdk/sri is not JSON ({e}); run `sdk-cdn reindex` to rebuild it",
                    store.describe()
                ))
            })?;
            Ok(Output::data(String::from_utf8_lossy(&bytes).into_owned(), json))
        }
        (Some(version), None) => {
            let entries = release::sri_version(store.as_ref(), version).await?;
            let json = to_value(&entries);
            Ok(Output::data(format!("{}\n", serde_json::to_string_pretty(&json).unwrap_or_default()), json))
        }
        (Some(version), Some(file)) => {
            let integrity = release::sri_file(store.as_ref(), version, file).await?;
            let json = json!({ "file": layout::index_entry(version, file), "integrity": integrity });
            Ok(Output::data(format!("{integrity}\n"), json))
        }
    }
}

async fn snippet(global: &GlobalArgs, args: &SnippetArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let tag = release::snippet(store.as_ref(), &args.version, args.file.as_deref(), &args.base_url).await?;
    Ok(Output::data(format!("{tag}\n"), json!({ "version": args.version, "html": tag })))
}

async fn list(global: &GlobalArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let report = release::list(store.as_ref()).await?;
    let mut text = String::new();
    if report.versions.is_empty() {
        let _ = writeln!(text, "nothing is published in {}", report.store);
    }
    for v in &report.versions {
        let state = match v.state {
            release::VersionState::Sealed => "published",
            release::VersionState::Partial => "partial (never sealed: rerun its publish, or discard it)",
        };
        let latest = if v.latest { "  <- latest" } else { "" };
        let _ = writeln!(text, "{:<24} {state}{latest}", v.version.to_string());
    }
    if report.latest.is_some() && !report.latest_synced {
        let _ = writeln!(
            text,
            "warning: latest/ is not fully synced (a promotion is running or was interrupted); rerun `sdk-cdn promote`"
        );
    }
    Ok(Output::data(text, to_value(&report)))
}

async fn verify(global: &GlobalArgs, args: &VerifyArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let selection = if args.versions.is_empty() {
        release::Selection::All
    } else {
        release::Selection::Versions(args.versions.clone())
    };
    let report =
        release::verify(store.as_ref(), selection, usize::from(args.concurrency), args.base_url.as_deref()).await?;
    if !report.is_clean() {
        return Err(Error::Verify(Box::new(report)));
    }
    let json = to_value(&report);
    Ok(Output::status(verify_text(&report), json))
}

fn verify_text(report: &release::VerifyReport) -> String {
    let versions: Vec<String> = report.versions.iter().map(ToString::to_string).collect();
    let latest = report.latest.as_ref().map_or("nothing".into(), ToString::to_string);
    let mut text = format!(
        "verified {} in {}: {} ({}), latest/ = {latest}, {}, {} re-hashed\n",
        if report.is_clean() { "OK" } else { "with problems" },
        report.store,
        count(versions.len() as u64, "version"),
        versions.join(", "),
        count(report.files_checked as u64, "file"),
        count(report.bytes_checked as u64, "byte")
    );
    for finding in &report.findings {
        let _ = writeln!(text, "  {:?}: {}: {}", finding.problem, finding.key, finding.detail);
    }
    text
}

async fn reindex(global: &GlobalArgs, args: &ReindexArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let cache = &args.transfer.latest_cache_control;
    let report = release::reindex(store.as_ref(), cache, usize::from(args.transfer.concurrency)).await?;
    let text = format!(
        "{} the SRI index of {} from {} (latest: {})\n",
        if report.changed { "rebuilt" } else { "checked" },
        store.describe(),
        count(report.versions.len() as u64, "published version"),
        report.latest.as_ref().map_or("none".into(), ToString::to_string)
    );
    let json = to_value(&report);
    let mut output = Output::status(text, json);
    purge_and_report(&args.purge, false, report.changed, &mut output).await;
    Ok(output)
}

async fn discard(global: &GlobalArgs, args: &DiscardArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let report = release::discard(store.as_ref(), &args.version).await?;
    // Nothing to discard is success (exit 0), so `discard V && publish …` retries
    // work, but it is said, in text and as `"partial_upload": false`: a typo'd
    // version must not look like a discard that happened.
    let text = if report.deleted.is_empty() {
        format!(
            "nothing to discard: {} has no partial upload in {} (`sdk-cdn list` shows what is there)\n",
            args.version,
            store.describe()
        )
    } else {
        format!(
            "discarded the partial upload of {}: {} deleted\n",
            args.version,
            count(report.deleted.len() as u64, "file")
        )
    };
    let mut json = to_value(&report);
    json["partial_upload"] = Value::Bool(!report.deleted.is_empty());
    Ok(Output::status(text, json))
}

async fn doctor(global: &GlobalArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let report = store::probe_conditional_writes(store.as_ref()).await;
    if report.verdict != Verdict::Healthy {
        return Err(Error::Doctor(Box::new(report)));
    }
    Ok(Output::status(doctor_text(&report), to_value(&report)))
}

fn doctor_text(report: &ProbeReport) -> String {
    let mut text = format!("store {}\n", report.store);
    for check in &report.checks {
        let _ = writeln!(text, "  [{}] {:<17} {}", if check.ok { " ok " } else { "FAIL" }, check.name, check.detail);
    }
    text.push_str(match report.verdict {
        Verdict::Healthy => "the store is ready for publishing\n",
        Verdict::Unusable => "the store cannot be used until the failed check is fixed\n",
        Verdict::IgnoresConditionalWrites => "the store ignores conditional writes: refusing to trust it\n",
    });
    text
}

async fn serve(global: &GlobalArgs, args: &crate::cli::ServeArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let options = crate::serve::ServeOptions {
        addr: args.addr,
        refresh: args.refresh,
        index_cache_control: args.index_cache_control.clone(),
        ..crate::serve::ServeOptions::default()
    };
    crate::serve::run(store, options).await?;
    Ok(Output::status(String::new(), json!({ "ok": true, "stopped": true })))
}

fn completions(shell: clap_complete::Shell) -> Output {
    let script = completion_script(shell);
    let json = json!({ "shell": shell.to_string(), "script": script });
    Output::data(script, json)
}

/// The binary's name, as completions and man pages call it.
const BIN: &str = "sdk-cdn";

/// The completion script for `shell`.
///
/// clap_complete 4.6's bash generator mangles a hyphenated binary name two
/// ways: the loop that finds the subcommand sets `cmd="sdk__cdn__subcmd__publish"`
/// while the `case` arms read `sdk__subcmd__cdn__subcmd__publish)`, so nothing
/// below the top level completed. The arms are rewritten to the loop's spelling.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    match shell {
        clap_complete::Shell::Bash => script.replace(&BIN.replace('-', "__subcmd__"), &BIN.replace('-', "__")),
        _ => script,
    }
}

/// The whole command tree as the man pages describe it: built (so each
/// command is named `sdk-cdn-COMMAND`), without the `help` pseudo-command.
fn man_command() -> clap::Command {
    let mut command = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    command.build();
    command
}

/// Renders one man page.
fn man_page(command: clap::Command) -> Result<String, Error> {
    let man = clap_mangen::Man::new(command);
    let mut page = Vec::new();
    man.render(&mut page).map_err(|e| ReleaseError::Local {
        what: "render",
        path: man.get_filename().into(),
        source: e,
    })?;
    Ok(String::from_utf8_lossy(&page).into_owned())
}

fn man(args: &crate::cli::ManArgs) -> Result<Output, Error> {
    let top = man_command();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(|e| ReleaseError::Local {
            what: "create",
            path: dir.display().to_string(),
            source: e,
        })?;
        let mut pages = Vec::new();
        for command in std::iter::once(top.clone()).chain(top.get_subcommands().cloned()) {
            let man = clap_mangen::Man::new(command);
            let path = man.generate_to(dir).map_err(|e| ReleaseError::Local {
                what: "write",
                path: dir.join(man.get_filename()).display().to_string(),
                source: e,
            })?;
            pages.push(path.display().to_string());
        }
        let text = pages.iter().map(|p| format!("wrote {p}\n")).collect();
        return Ok(Output::status(text, json!({ "dir": dir, "pages": pages })));
    }
    let command = match &args.command {
        None => top,
        Some(name) => top.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = top.get_subcommands().map(clap::Command::get_name).collect();
            ReleaseError::Usage(format!("no man page for `{name}`: give one of {}", names.join(", ")))
        })?,
    };
    let page = man_page(command)?;
    let json = json!({ "man": page });
    Ok(Output::data(page, json))
}

fn purge_options(args: &crate::cli::PurgeArgs) -> crate::purge::PurgeOptions {
    crate::purge::PurgeOptions {
        cloudfront_distribution: args.invalidate_cloudfront.clone(),
        command: args.purge_command.clone(),
    }
}

/// Runs the configured CDN purges and records them in the output.
async fn purge_and_report(
    args: &crate::cli::PurgeArgs,
    latest_changed: bool,
    index_changed: bool,
    output: &mut Output,
) {
    let paths = crate::purge::changed_paths(latest_changed, index_changed);
    let Some(report) = crate::purge::purge(&purge_options(args), paths).await else { return };
    for (method, outcome) in [("CloudFront", &report.cloudfront), ("purge command", &report.command)] {
        match outcome {
            Some(o) if o.ok => {
                let _ = writeln!(output.text, "purged {} via {method} {}", report.paths.join(" "), o.detail);
            }
            Some(o) => {
                let _ = writeln!(output.text, "warning: {}", o.detail);
                eprintln!("warning: {}", o.detail);
            }
            None => {}
        }
    }
    output.json["purge"] = to_value(&report);
}
