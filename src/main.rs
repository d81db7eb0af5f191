//! The `sdk-cdn` binary: parse arguments, set up logging, run the command,
//! and turn the outcome into output and an exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use sdk_cdn::cli::Cli;
use sdk_cdn::commands::{self, Error};
use sdk_cdn::release::ReleaseError;
use sdk_cdn::store::{StoreError, Verdict};

/// Exit codes (documented in `--help` and the README).
const OK: u8 = 0;
const STORE_FAILURE: u8 = 1;
const BAD_INPUT: u8 = 2;
const CONFLICT: u8 = 3;
const UNSAFE_STORE: u8 = 4;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    sdk_cdn::logging::init(
        sdk_cdn::logging::Verbosity { quiet: cli.global.quiet, verbose: cli.global.verbose },
        cli.global.log_format,
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(STORE_FAILURE);
        }
    };
    match commands::run_on(&runtime, &cli) {
        Ok(output) => {
            if cli.global.json {
                println!("{}", output.json);
            } else if !(cli.global.quiet && output.is_status()) {
                print!("{}", output.text);
            }
            ExitCode::from(OK)
        }
        Err(error) => {
            let code = exit_code(&error);
            if cli.global.json {
                println!("{}", error.to_json(code));
            }
            eprintln!("error: {error}");
            ExitCode::from(code)
        }
    }
}

/// What a command line clap refused (or `--help`/`--version`, which are not
/// errors) prints. With `--json` anywhere before `--`, stdout gets exactly one
/// JSON object like every other invocation: `{"ok":true,"help":…}`,
/// `{"ok":true,"version":…}`, or `{"ok":false,"exit_code":2,"error":…}`;
/// the text goes to stderr as without `--json`.
fn usage(error: &clap::Error) -> ExitCode {
    let json = std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    let text = error.render().to_string();
    let (code, object) = match error.kind() {
        ErrorKind::DisplayHelp => (OK, serde_json::json!({ "ok": true, "help": text })),
        ErrorKind::DisplayVersion => (OK, serde_json::json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") })),
        _ => {
            let message = text.trim_end().trim_start_matches("error: ");
            (BAD_INPUT, serde_json::json!({ "ok": false, "exit_code": BAD_INPUT, "error": message }))
        }
    };
    if json {
        println!("{object}");
        if code != OK {
            eprint!("{text}");
        }
    } else {
        // clap's own output: help and version on stdout, usage errors on stderr, coloured on a terminal.
        let _ = error.print();
    }
    ExitCode::from(code)
}

/// The one place error kinds become exit codes.
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::StoreUrl(_) => BAD_INPUT,
        Error::Doctor(report) if report.verdict == Verdict::IgnoresConditionalWrites => UNSAFE_STORE,
        Error::Doctor(_) => STORE_FAILURE,
        Error::Serve(sdk_cdn::serve::ServeError::Bind { .. } | sdk_cdn::serve::ServeError::Start(_)) => STORE_FAILURE,
        Error::Serve(sdk_cdn::serve::ServeError::Options(_)) => BAD_INPUT,
        Error::Verify(_) => CONFLICT,
        Error::Signing(e) => e.exit_code(),
        Error::Pin(e) => e.exit_code(),
        Error::Release(e) => match e {
            ReleaseError::Version(_)
            | ReleaseError::Input { .. }
            | ReleaseError::InputChanged { .. }
            | ReleaseError::Unsigned { .. }
            | ReleaseError::SriKeyDropped { .. }
            | ReleaseError::Usage(_)
            | ReleaseError::NotPublished { .. }
            | ReleaseError::NoIndex { .. }
            | ReleaseError::NotInIndex { .. }
            | ReleaseError::NoSuchFile { .. } => BAD_INPUT,
            ReleaseError::Signing(e) => e.exit_code(),
            ReleaseError::Conflict { .. } | ReleaseError::Refused(_) | ReleaseError::NothingPublished { .. } => {
                CONFLICT
            }
            ReleaseError::UnsafeStore(_) => UNSAFE_STORE,
            ReleaseError::Store(StoreError::AlreadyExists { .. } | StoreError::Precondition { .. }) => CONFLICT,
            ReleaseError::ProbeFailed { .. }
            | ReleaseError::ReadFailed { .. }
            | ReleaseError::IndexNotJson { .. }
            | ReleaseError::Interrupted { .. }
            | ReleaseError::TlsRoots { .. }
            | ReleaseError::ManifestKey { .. }
            | ReleaseError::Contention { .. }
            | ReleaseError::PointerNotSealed { .. }
            | ReleaseError::SealVanished { .. }
            | ReleaseError::Store(_)
            | ReleaseError::Corrupt(_)
            | ReleaseError::Local { .. }
            | ReleaseError::LocalCopies { .. } => STORE_FAILURE,
        },
    }
}
