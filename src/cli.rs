//! The command line: every command, flag, environment variable, help text
//! and example, defined once with clap.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};
use semver::Version;

use crate::headers::{DEFAULT_LATEST_CACHE_CONTROL, INDEX_CACHE_CONTROL};

const EXIT_CODES: &str = "\
Examples:
  sdk-cdn publish dist --version 1.4.0          # upload, seal, promote, update the SRI index (./cdn)
  sdk-cdn --store s3://my-cdn-bucket doctor     # is this bucket safe to publish to?
  sdk-cdn sri 1.4.0 --file haloagents.umd.js    # the integrity customers pin
  sdk-cdn serve                                 # local CDN + /api/sdk/sri on 127.0.0.1:8080

Exit codes:
  0  success (also an idempotent no-op)
  1  store or network failure
  2  bad input or usage
  3  conflict with what is already published
  4  the store does not honour conditional writes";

/// Publish browser-SDK builds to immutable, versioned CDN paths with SHA-384 SRI.
///
/// Each build goes to sdk/<version>/ (never overwritten), the newest stable
/// release is copied to sdk/latest/, and api/sdk/sri lists the Subresource
/// Integrity hash of every published file.
#[derive(Debug, Parser)]
#[command(name = "sdk-cdn", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where the CDN lives: a directory (./cdn), file:///abs/path, or s3://bucket[/prefix].
    ///
    /// S3 uses the standard AWS configuration chain (AWS_PROFILE, AWS_REGION,
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, …).
    #[arg(long, global = true, env = "SDK_CDN_STORE", default_value = "./cdn", value_name = "URL")]
    pub(crate) store: String,

    /// S3 endpoint for S3-compatible stores (R2, MinIO, Garage, …); AWS_ENDPOINT_URL also works.
    #[arg(long, global = true, env = "SDK_CDN_ENDPOINT_URL", value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,

    /// Address buckets as https://endpoint/bucket (most self-hosted S3 stores need this).
    ///
    /// SDK_CDN_PATH_STYLE takes 1/0, true/false, yes/no, on/off.
    #[arg(long, global = true, env = "SDK_CDN_PATH_STYLE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub(crate) path_style: bool,

    /// Seconds any store request may take, retries included, before the command fails (exit 1). File
    /// uploads get this plus the time to send their bytes at 1 MiB/s; `pin` gives each fetch of the index this long.
    #[arg(long, global = true, env = "SDK_CDN_TIMEOUT", value_name = "SECONDS", default_value = "60", value_parser = parse_timeout)]
    pub(crate) timeout: std::time::Duration,

    /// Seconds to establish a connection to the store.
    #[arg(long, global = true, env = "SDK_CDN_CONNECT_TIMEOUT", value_name = "SECONDS", default_value = "5", value_parser = parse_timeout)]
    pub(crate) connect_timeout: std::time::Duration,

    /// Print one machine-readable JSON object on stdout (errors too) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log lines on stderr as text (coloured only on a terminal without NO_COLOR) or one JSON object per line.
    #[arg(long, global = true, env = "SDK_CDN_LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Text, value_name = "FORMAT")]
    pub log_format: crate::logging::LogFormat,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Upload a build to sdk/<version>/, seal it, promote it if newest, update the SRI index.
    #[command(after_help = "\
Examples:
  sdk-cdn publish dist --version 1.4.0
  sdk-cdn publish dist --version 1.5.0-rc.1            # prereleases are never promoted automatically
  sdk-cdn --store s3://my-cdn-bucket publish dist --version 1.4.0 --json
  sdk-cdn publish dist --version 1.4.0 --dry-run       # print the plan, touch nothing

Re-running a publish of the same bytes is safe: it completes an interrupted
run or does nothing. The same version with different bytes is refused (exit 3).")]
    Publish(PublishArgs),

    /// Make latest/ serve a published version (also rollbacks and prereleases).
    #[command(after_help = "\
Examples:
  sdk-cdn promote 1.4.0
  sdk-cdn promote 1.3.2 --allow-downgrade      # roll back
  sdk-cdn promote 1.5.0-rc.1 --allow-prerelease")]
    Promote(PromoteArgs),

    /// Print the SRI index customers fetch, one version's entries, or one integrity value.
    #[command(after_help = "\
Examples:
  sdk-cdn sri                                   # the whole index, byte for byte
  sdk-cdn sri 1.4.0                             # one version's entries
  sdk-cdn sri 1.4.0 --file haloagents.umd.js    # one value: sha384-…")]
    Sri(SriArgs),

    /// Print the <script integrity crossorigin> tag that pins a version.
    #[command(after_help = "\
Examples:
  sdk-cdn snippet 1.4.0 --base-url https://cdn.example.com
  sdk-cdn snippet 1.4.0 --file haloagents.css   # a <link rel=stylesheet> tag")]
    Snippet(SnippetArgs),

    /// List published versions (sealed or partial) and which one latest/ serves.
    #[command(after_help = "Example:\n  sdk-cdn --store s3://my-cdn-bucket list")]
    List,

    /// Re-download and re-hash published files; check latest/ and the SRI index against the manifests.
    #[command(after_help = "\
Examples:
  sdk-cdn verify                  # every published version, latest/ and the whole index
  sdk-cdn verify 1.4.0 1.3.2      # just these versions (and latest/)
  sdk-cdn verify --json           # findings by key, for CI
  sdk-cdn verify 1.4.0 --base-url https://cdn.example.com   # also what browsers get through the CDN

Exit 0 when everything matches, 3 when anything is missing, extra or different.
Repairs: rerun the publish (restores missing files), `promote` (latest/), `reindex` (the index).")]
    Verify(VerifyArgs),

    /// Rebuild the SRI index from the sealed per-version manifests and the latest pointer.
    #[command(after_help = "\
Example:
  sdk-cdn --store s3://my-cdn-bucket reindex

Use it when api/sdk/sri was lost or damaged; it writes only if the rebuilt index differs.")]
    Reindex(ReindexArgs),

    /// Delete a partial upload that was never sealed (refused for published versions).
    #[command(after_help = "\
Example:
  sdk-cdn discard 1.4.0

For a publish that was interrupted and whose build cannot be reproduced. A
published (sealed) version is refused with exit 3 and nothing is deleted.")]
    Discard(DiscardArgs),

    /// Check the store: reachable, permissions, and that conditional writes are enforced.
    #[command(after_help = "\
Examples:
  sdk-cdn doctor
  sdk-cdn --store s3://my-cdn-bucket --endpoint-url https://ACCOUNT.r2.cloudflarestorage.com doctor

Exit 4 means the store accepts If-None-Match/If-Match but ignores them: it
cannot protect published versions from concurrent overwrites.")]
    Doctor,

    /// Serve the SRI index and the files over HTTP: a local CDN + API over any store.
    #[command(after_help = "\
Examples:
  sdk-cdn serve                                 # ./cdn as a CDN + API on http://127.0.0.1:8080
  sdk-cdn serve --addr 127.0.0.1:0              # any free port (printed on stderr)
  sdk-cdn --store s3://my-cdn-bucket serve --addr 0.0.0.0:8080 --refresh 5
  curl -fsS http://127.0.0.1:8080/api/sdk/sri | jq -er '.files[\"0.1.0/haloagents.umd.js\"]'   # fails closed

Endpoints: GET|HEAD /api/sdk/sri, /api/sdk/sri/<version|latest>,
/sdk/<version|latest>/<path>, /healthz, /readyz and /metrics. The index is revalidated every
--refresh seconds; a publish shows up without a restart. SIGTERM or Ctrl-C
stops accepting and lets in-flight requests finish.")]
    Serve(ServeArgs),

    /// Make a minisign key pair for signing releases (NAME.key, NAME.pub).
    #[command(after_help = "\
Examples:
  SDK_CDN_SIGN_KEY_PASSWORD=… sdk-cdn keygen          # ./sdk-cdn.key (password-protected) + ./sdk-cdn.pub
  sdk-cdn keygen --no-password --dir keys --name sri   # unencrypted, for a CI secret store

Never overwrites a file. Keys made by `minisign -G` work everywhere too.")]
    Keygen(crate::signing::KeygenArgs),

    /// Pin the SDK tags in HTML files to a version with its SRI, from a (signed) index.
    #[command(after_help = "\
Examples:
  sdk-cdn pin index.html --index https://cdn.example.com/api/sdk/sri --pubkey RW…
  sdk-cdn pin dist/*.html --index https://cdn.example.com/api/sdk/sri --pubkey-file sdk-cdn.pub --version 1.4.0
  sdk-cdn pin --check dist/*.html --index https://cdn.example.com/api/sdk/sri --pubkey RW…   # CI gate
  sdk-cdn pin index.html --index https://cdn.example.com/api/sdk/sri --pubkey RWold… --pubkey RWnew…   # key rotation
  sdk-cdn pin --check dist/*.html --index https://cdn.example.com/api/sdk/sri --sri-pubkey ed25519-…   # pages pinning latest/ by key

Rewrites every <script src> and <link rel=stylesheet href> that loads
…/sdk/<version|latest>/<file>: the pinned version in the URL, integrity and
crossorigin=\"anonymous\"; all other bytes stay as they are. URLs are read as
a browser reads them (character references, <base href>, percent-escapes);
one that cannot be read for sure is refused. With a key, the index's
signature (<index>.minisig) must verify first. On any error no file is
written. --check writes nothing and exits 3 on a stale or missing integrity,
on integrity a browser blocks, and on a tag pin would refuse.")]
    Pin(crate::pin::PinArgs),

    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = "\
Examples:
  sdk-cdn completions bash > ~/.local/share/bash-completion/completions/sdk-cdn
  sdk-cdn completions zsh > \"${fpath[1]}/_sdk-cdn\"
  sdk-cdn completions fish > ~/.config/fish/completions/sdk-cdn.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print a man page (roff): the top level, one command's, or write them all to a directory.
    #[command(after_help = "\
Examples:
  sdk-cdn man > sdk-cdn.1 && man -l sdk-cdn.1
  sdk-cdn man publish | man -l -                                  # sdk-cdn-publish(1)
  sdk-cdn man --dir /usr/local/share/man/man1 && man sdk-cdn-publish")]
    Man(ManArgs),
}

/// `man` arguments.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// The command whose page to print (sdk-cdn-COMMAND(1)); without it, sdk-cdn(1).
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,

    /// Write every page (sdk-cdn.1 and one sdk-cdn-COMMAND.1 per command) into this directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `publish` arguments.
#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// The build output directory: its regular files are published, except hidden paths (refused unless
    /// asked for), --exclude matches and the local --manifests-dir (README: "What gets published").
    pub dir: PathBuf,

    /// The version: strict SemVer 2.0 without build metadata (1.4.0, 1.5.0-rc.1).
    #[arg(long, value_parser = parse_version)]
    pub version: Version,

    /// Where to write local copies of <version>.json and sri.json for the CI job to keep.
    #[arg(long, default_value = "manifests", value_name = "DIR")]
    pub manifests_dir: PathBuf,

    /// Print the plan (files, sizes, integrity, keys, headers) and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not promote to latest/, even if this is the newest stable release.
    #[arg(long)]
    pub no_promote: bool,

    /// Publish hidden paths (a component starting with '.': .env, .git/, .DS_Store) too. Without it a build
    /// holding any that are not excluded is refused (exit 2), naming them.
    #[arg(long)]
    pub include_hidden: bool,

    /// Leave out paths matching this gitignore pattern ('*.map', 'docs/', '/notes.txt'); repeatable.
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    pub exclude: Vec<String>,

    /// Publish paths matching this gitignore pattern even if hidden or excluded ('.well-known/'); repeatable.
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    pub include: Vec<String>,

    /// Transfer options.
    #[command(flatten)]
    pub transfer: TransferArgs,

    /// Signing options.
    #[command(flatten)]
    pub sign: SignArgs,

    /// Signature-based SRI options.
    #[command(flatten)]
    pub sri: SriSignArgs,

    /// CDN purge options.
    #[command(flatten)]
    pub purge: PurgeArgs,
}

impl PublishArgs {
    /// The filter flags, for the planner.
    pub(crate) fn filter(&self) -> crate::release::select::FilterOptions {
        crate::release::select::FilterOptions {
            include_hidden: self.include_hidden,
            exclude: self.exclude.clone(),
            include: self.include.clone(),
        }
    }
}

/// Options of commands that write files.
#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    /// Uploads or copies in flight at once. On S3 each request waits a network round trip, so many
    /// in flight is what makes a release of many small files fast (BENCHMARKS.md measures 8 to 64).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Cache-Control of latest/ files (short: they change on every promotion; never `immutable`).
    #[arg(long, default_value = DEFAULT_LATEST_CACHE_CONTROL, value_name = "VALUE", value_parser = parse_latest_cache_control)]
    pub latest_cache_control: String,
}

/// Options of commands that write the SRI index or seal versions.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Minisign secret key (from `sdk-cdn keygen` or `minisign -G`): signs every index written
    /// (api/sdk/sri.minisig) and every manifest sealed (manifests/<v>.json.minisig). SDK_CDN_SIGN_KEY may
    /// hold the key text instead (CI secrets); SDK_CDN_SIGN_KEY_PASSWORD its password.
    #[arg(long, env = "SDK_CDN_SIGN_KEY_FILE", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Write without a signing key to a store whose index is signed (refused otherwise: customers
    /// checking signatures would reject the unsigned index).
    #[arg(long)]
    pub allow_unsigned: bool,
}

/// Signature-based SRI: what lets a page pin `latest/` by key.
#[derive(Debug, Args)]
pub(crate) struct SriSignArgs {
    /// Ed25519 key that signs every file for signature-based SRI, so pages can load latest/ with
    /// integrity="ed25519-KEY" (a minisign secret key from `sdk-cdn keygen`; a different key from
    /// --sign-key, docs/SIGNING.md). Repeat it during a key rotation to sign with the old and the new
    /// key. SDK_CDN_SRI_KEY_PASSWORD holds the password of encrypted keys.
    #[arg(long = "sri-key", env = "SDK_CDN_SRI_KEY_FILE", value_name = "FILE", value_delimiter = ',')]
    pub sri_keys: Vec<PathBuf>,

    /// Promote even though latest/ would no longer be signed by a key it is signed by now (the last
    /// step of a key rotation, once no page pins that key); refused otherwise, as those pages would
    /// block every latest/ file.
    #[arg(long)]
    pub allow_sri_key_change: bool,
}

/// `verify` arguments.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Versions to verify (default: every published version).
    #[arg(value_parser = parse_version, conflicts_with = "all")]
    pub versions: Vec<Version>,

    /// Verify every published version (the default when no version is given).
    #[arg(long)]
    pub all: bool,

    /// Also fetch every file through this CDN or origin over HTTP(S), with an Origin header, and check
    /// status, bytes, Access-Control-Allow-Origin, Content-Type and Cache-Control; and fetch the SRI
    /// index it serves: every hash it gives for a published version must be the seal's (with
    /// --pubkey, a signature the CDN serves must prove it). Each request gives up after --timeout.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Also check every signature (the index's and each sealed manifest's) against this minisign
    /// public key: the `RW…` string, or a `.pub` file from `sdk-cdn keygen` or `minisign -G`.
    #[arg(long, value_name = "KEY|FILE")]
    pub pubkey: Option<String>,

    /// Also require every latest/ file to carry a valid signature-based SRI signature by this key (what
    /// pages with integrity="ed25519-KEY" need): the ed25519-… token, a .pub file or the RW… key. Repeat
    /// it during a key rotation. Signatures that files carry are always checked against their bytes.
    #[arg(long, value_name = "KEY|FILE")]
    pub sri_pubkey: Vec<String>,

    /// Exit 0 on a store with nothing published. Without it, an empty store is an error (exit 3): a typo in
    /// --store looks like an empty store, and "verified OK" about nothing would hide it.
    #[arg(long)]
    pub allow_empty: bool,

    /// Objects fetched and re-hashed at once (on S3 each waits a network round trip; BENCHMARKS.md measures 8
    /// against 64).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

/// `reindex` arguments.
#[derive(Debug, Args)]
pub(crate) struct ReindexArgs {
    /// Transfer options (used when an interrupted promotion must be finished first).
    #[command(flatten)]
    pub transfer: TransferArgs,

    /// Signing options.
    #[command(flatten)]
    pub sign: SignArgs,

    /// CDN purge options.
    #[command(flatten)]
    pub purge: PurgeArgs,
}

/// `discard` arguments.
#[derive(Debug, Args)]
pub(crate) struct DiscardArgs {
    /// The version whose partial upload should be removed.
    #[arg(value_parser = parse_version)]
    pub version: Version,

    /// Also discard a version whose publisher was killed while sealing it (its intent record says
    /// `sealing`). Only when that publish cannot be rerun: a live publisher may still seal it.
    #[arg(long)]
    pub force: bool,
}

/// `serve` arguments.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free one. The bound address is printed on stderr.
    #[arg(long, default_value = crate::serve::DEFAULT_ADDR, value_name = "HOST:PORT")]
    pub addr: std::net::SocketAddr,

    /// Seconds between revalidations of the in-memory SRI index against the store.
    #[arg(long, default_value = "2", value_name = "SECONDS", value_parser = parse_refresh)]
    pub refresh: std::time::Duration,

    /// Cache-Control of /api/sdk/sri (never `immutable`: the index changes on every publish).
    #[arg(long, default_value = INDEX_CACHE_CONTROL, value_name = "VALUE", value_parser = parse_index_cache_control)]
    pub index_cache_control: String,

    /// Serve /metrics (Prometheus) on this separate address only, instead of on --addr.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// Largest api/sdk/sri the service will load (bytes); a larger one is refused and /readyz says why.
    #[arg(long, default_value_t = crate::serve::DEFAULT_MAX_INDEX_BYTES, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_index_bytes: u64,

    /// /readyz answers 503 once the index was last confirmed against the store longer ago than this.
    #[arg(long, default_value = "60", value_name = "SECONDS", value_parser = parse_refresh)]
    pub ready_max_age: std::time::Duration,

    /// Base URL the versions page (GET /) writes into its ready-to-copy tags, e.g. your CDN
    /// (https://cdn.example.com); default: http:// and the Host of the request.
    #[arg(long, value_name = "URL", value_parser = parse_public_base_url)]
    pub public_base_url: Option<String>,
}

/// CDN purge options of commands that can change `latest/` or the index.
#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// When latest/ or the index changed, invalidate /sdk/latest/* and /api/sdk/sri in this CloudFront distribution.
    #[arg(long, value_name = "DISTRIBUTION_ID", env = "SDK_CDN_CLOUDFRONT_DISTRIBUTION")]
    pub invalidate_cloudfront: Option<String>,

    /// When latest/ or the index changed, run this shell command with the changed paths as its
    /// arguments ("$@", also newline-separated in $SDK_CDN_CHANGED_PATHS). For CDNs other than CloudFront.
    #[arg(long, value_name = "COMMAND", env = "SDK_CDN_PURGE_COMMAND")]
    pub purge_command: Option<String>,
}

/// `promote` arguments.
#[derive(Debug, Args)]
pub(crate) struct PromoteArgs {
    /// The published version latest/ should serve.
    #[arg(value_parser = parse_version)]
    pub version: Version,

    /// Allow an older version than the one latest/ serves (a rollback).
    #[arg(long)]
    pub allow_downgrade: bool,

    /// Allow a prerelease (1.5.0-rc.1).
    #[arg(long)]
    pub allow_prerelease: bool,

    /// Transfer options.
    #[command(flatten)]
    pub transfer: TransferArgs,

    /// Signing options.
    #[command(flatten)]
    pub sign: SignArgs,

    /// Promote even though latest/ would no longer be signed by a key it is signed by now (the last
    /// step of a key rotation, once no page pins that key); refused otherwise, as those pages would
    /// block every latest/ file.
    #[arg(long)]
    pub allow_sri_key_change: bool,

    /// CDN purge options.
    #[command(flatten)]
    pub purge: PurgeArgs,
}

/// `sri` arguments.
#[derive(Debug, Args)]
pub(crate) struct SriArgs {
    /// A version, or `latest`; without it the whole index is printed.
    #[arg(value_parser = parse_version_or_latest)]
    pub version: Option<String>,

    /// One file of that version (path relative to sdk/<version>/); prints just its integrity.
    #[arg(long, value_name = "PATH", requires = "version")]
    pub file: Option<String>,
}

/// `snippet` arguments.
#[derive(Debug, Args)]
pub(crate) struct SnippetArgs {
    /// The version to pin, or `latest` with --signed (a hash pin on latest/ would break at the next
    /// release; a key pin does not).
    #[arg(value_parser = parse_version_or_latest, value_name = "VERSION|latest")]
    pub version: String,

    /// Pin by the publisher's key too (signature-based SRI, integrity="ed25519-…"): for `latest`, the
    /// tag keeps working across releases and still refuses tampered bytes; for a version, the browser
    /// requires both the hash and the signature. Needs files published with --sri-key.
    #[arg(long)]
    pub signed: bool,

    /// The file (default: the one top-level .js file of the version).
    #[arg(long, value_name = "PATH")]
    pub file: Option<String>,

    /// The CDN origin customers load from.
    #[arg(long, env = "SDK_CDN_BASE_URL", default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub base_url: String,
}

fn parse_version(s: &str) -> Result<Version, String> {
    crate::version::parse(s).map_err(|e| e.reason)
}

fn parse_pattern(s: &str) -> Result<String, String> {
    crate::release::select::check_pattern(s)
}

fn parse_version_or_latest(s: &str) -> Result<String, String> {
    if s == crate::layout::LATEST {
        return Ok(s.to_string());
    }
    parse_version(s).map(|v| v.to_string())
}

fn parse_latest_cache_control(s: &str) -> Result<String, String> {
    crate::headers::check_mutable_cache_control(s, "latest/ changes on every promotion")?;
    Ok(s.to_string())
}

fn parse_public_base_url(s: &str) -> Result<String, String> {
    match s.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() && !s.contains(['"', '<', '>', ' ']) => {
            Ok(s.trim_end_matches('/').to_string())
        }
        _ => Err("give an http(s) URL such as https://cdn.example.com".into()),
    }
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if (0.1..=86_400.0).contains(&secs) => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err("give a number of seconds between 0.1 and 86400, such as 60".into()),
    }
}

fn parse_refresh(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if (0.1..=3600.0).contains(&secs) => Ok(std::time::Duration::from_secs_f64(secs)),
        _ => Err("give a number of seconds between 0.1 and 3600, such as 2".into()),
    }
}

fn parse_index_cache_control(s: &str) -> Result<String, String> {
    crate::headers::check_mutable_cache_control(s, "the index changes on every publish")?;
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn store_timeout_defaults_are_the_stores_own() {
        let cli = Cli::try_parse_from(["sdk-cdn", "list"]).unwrap();
        let defaults = crate::store::Timeouts::default();
        assert_eq!((cli.global.timeout, cli.global.connect_timeout), (defaults.operation, defaults.connect));
    }

    #[test]
    fn latest_may_not_be_cached_as_immutable() {
        assert!(parse_latest_cache_control("public, max-age=31536000, immutable").is_err());
        assert!(parse_latest_cache_control("public, max-age=60").is_ok());
    }
}
