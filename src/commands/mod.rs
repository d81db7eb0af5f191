//! Running one parsed command: pick the handler, and hand `main` what to
//! print. Dispatch only; the handlers live by concern beside how their
//! results read:
//!
//! - [`release`]: `publish` (and `--dry-run`), `promote`, `reindex`, `discard`,
//!   with the CDN purge the steps that move `latest/` or the index need;
//! - [`query`]: `sri`, `snippet`, `list`;
//! - [`check`]: `verify`, `doctor`;
//! - [`reference`]: `completions`, `man`;
//! - [`output`]: what a command prints, and why it failed.
//!
//! Text for people is each report's `Display` (a view in the handler's
//! module, unit-tested there), JSON its `Serialize`.

mod check;
mod output;
mod query;
mod reference;
mod release;

pub use output::{Error, Output};

use crate::cli::{Cli, Command, GlobalArgs, SriArgs};
use crate::progress::Progress;
use crate::store::{self, Store, StoreConfig, StoreUrl};

/// Runs `cli`'s command on `runtime`, blocking until it is done.
///
/// The binary calls this, not `runtime.block_on(run(cli))`: that call,
/// written in `main.rs`, makes the binary crate compile every command's
/// async state machine a second time (49 s of a 122 s release build of
/// this crate, measured with `cargo build --release --timings`; issue 16).
pub fn run_on(runtime: &tokio::runtime::Runtime, cli: &Cli) -> Result<Output, Error> {
    runtime.block_on(run(cli))
}

/// Runs `cli`'s command. Every `--json` success object carries `"ok": true`,
/// except `sri` without a version, which prints the index as a JSON value.
async fn run(cli: &Cli) -> Result<Output, Error> {
    let mut output = dispatch(cli).await?;
    let whole_index = matches!(&cli.command, Command::Sri(SriArgs { version: None, .. }));
    if let (false, Some(object)) = (whole_index, output.json.as_object_mut()) {
        object.insert("ok".into(), serde_json::Value::Bool(true));
    }
    Ok(output)
}

async fn dispatch(cli: &Cli) -> Result<Output, Error> {
    let global = &cli.global;
    let progress = Progress::new(!global.json && !global.quiet);
    match &cli.command {
        Command::Publish(args) if args.dry_run => release::dry_run(global, args, progress).await,
        Command::Publish(args) => release::publish(global, args, progress).await,
        Command::Promote(args) => release::promote(global, args).await,
        Command::Reindex(args) => release::reindex(global, args).await,
        Command::Discard(args) => release::discard(global, args).await,
        Command::Sri(args) => query::sri(global, args).await,
        Command::Snippet(args) => query::snippet(global, args).await,
        Command::List => query::list(global).await,
        Command::Verify(args) => check::verify(global, args).await,
        Command::Doctor => check::doctor(global).await,
        Command::Serve(args) => serve(global, args).await,
        Command::Completions { shell } => Ok(reference::completions(*shell)),
        Command::Man(args) => reference::man(args),
        Command::Keygen(args) => Ok(crate::signing::run_keygen(args)?),
        Command::Pin(args) => Ok(crate::pin::run(args, global.timeout, global.connect_timeout).await?),
    }
}

/// Opens the store named by the global options.
pub(crate) async fn open_store(global: &GlobalArgs) -> Result<std::sync::Arc<dyn Store>, Error> {
    let url = StoreUrl::parse(&global.store)?;
    url.check_local()?;
    let config = StoreConfig {
        endpoint_url: global.endpoint_url.clone(),
        path_style: global.path_style,
        timeouts: store::Timeouts { connect: global.connect_timeout, operation: global.timeout },
    };
    Ok(store::open(&url, &config).await?)
}

async fn serve(global: &GlobalArgs, args: &crate::cli::ServeArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let options = crate::serve::ServeOptions {
        addr: args.addr,
        refresh: args.refresh,
        index_cache_control: args.index_cache_control.clone(),
        metrics_addr: args.metrics_addr,
        max_index_bytes: args.max_index_bytes,
        ready_max_age: args.ready_max_age,
        public_base_url: args.public_base_url.clone(),
        ..crate::serve::ServeOptions::default()
    };
    crate::serve::run(store, options).await?;
    Ok(Output::status(String::new(), serde_json::json!({ "ok": true, "stopped": true })))
}
