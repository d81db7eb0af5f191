//! Where diagnostics go and how they look: one `tracing` subscriber on
//! stderr, set up once by `main`.
//!
//! Why it is its own module: the same stderr is read by people at a
//! terminal and by log shippers reading files and pipes, and the two want
//! different things.
//! - `--log-format text` (the default): human lines. Colour only when
//!   stderr is a terminal and `NO_COLOR` is unset (<https://no-color.org>):
//!   ANSI escapes in a file or a pipe are noise a log shipper must strip.
//! - `--log-format json`: one JSON object per line (`timestamp`, `level`,
//!   `target` and the event's fields flattened, e.g. `serve`'s access lines
//!   carry `method`, `path`, `status`, `latency_ms`, `bytes`,
//!   `request_id`); never coloured.
//!
//! Levels: `-q` errors only, default warnings, `-v` info (access lines of
//! `serve`), `-vv` debug; `RUST_LOG` overrides all of it.

use std::io::IsTerminal;

use clap::ValueEnum;

/// The shape of log lines on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured only on a terminal without `NO_COLOR`).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// How much to log: `-q`, default, `-v`, `-vv`.
#[derive(Debug, Clone, Copy)]
pub struct Verbosity {
    /// `-q`: errors only.
    pub quiet: bool,
    /// The number of `-v`.
    pub verbose: u8,
}

impl Verbosity {
    fn filter(self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        }
    }
}

/// Installs the global subscriber (call once, before anything logs).
pub fn init(verbosity: Verbosity, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("sdk_cdn={}", verbosity.filter())));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            builder
                .with_ansi(use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").is_some()))
                .init();
        }
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_ansi(false).init(),
    }
}

/// Colour is for people at a terminal who did not opt out (`NO_COLOR` set to anything).
fn use_colour(stderr_is_terminal: bool, no_color_set: bool) -> bool {
    stderr_is_terminal && !no_color_set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, false));
        assert!(!use_colour(true, true));
        assert!(!use_colour(false, false));
        assert!(!use_colour(false, true));
    }

    #[test]
    fn verbosity_maps_to_levels() {
        let at = |quiet, verbose| Verbosity { quiet, verbose }.filter();
        assert_eq!([at(true, 0), at(false, 0), at(false, 1), at(false, 2)], ["error", "warn", "info", "debug"]);
    }
}
