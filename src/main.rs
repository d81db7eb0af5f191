//! The `sdk-cdn` binary: parse arguments, set up logging, run the command,
//! and turn the outcome into output and an exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;
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
    let cli = Cli::parse();
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
    match runtime.block_on(commands::run(&cli)) {
        Ok(output) => {
            if cli.global.json {
                println!("{}", output.json);
            } else {
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

/// The one place error kinds become exit codes.
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::StoreUrl(_) => BAD_INPUT,
        Error::Doctor(report) if report.verdict == Verdict::IgnoresConditionalWrites => UNSAFE_STORE,
        Error::Doctor(_) => STORE_FAILURE,
        Error::Serve(sdk_cdn::serve::ServeError::Bind { .. }) => STORE_FAILURE,
        Error::Serve(sdk_cdn::serve::ServeError::Options(_)) => BAD_INPUT,
        Error::Verify(_) => CONFLICT,
        Error::Signing(e) => e.exit_code(),
        Error::Pin(e) => e.exit_code(),
        Error::Release(e) => match e {
            ReleaseError::Version(_)
            | ReleaseError::Input { .. }
            | ReleaseError::InputChanged { .. }
            | ReleaseError::Usage(_) => BAD_INPUT,
            ReleaseError::Conflict { .. } | ReleaseError::Refused(_) | ReleaseError::NothingPublished { .. } => {
                CONFLICT
            }
            ReleaseError::UnsafeStore(_) => UNSAFE_STORE,
            ReleaseError::Store(StoreError::AlreadyExists { .. } | StoreError::Precondition { .. }) => CONFLICT,
            ReleaseError::StoreUnusable(_)
            | ReleaseError::Contention { .. }
            | ReleaseError::PointerNotSealed { .. }
            | ReleaseError::SealVanished { .. }
            | ReleaseError::Store(_)
            | ReleaseError::Corrupt(_)
            | ReleaseError::Local { .. } => STORE_FAILURE,
        },
    }
}
