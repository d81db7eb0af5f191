//! Progress bars for long work, shown only on an interactive terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Makes progress bars, or hidden ones when output is not for a person
/// (not a terminal, `--json`, `-q`).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Bars are drawn only if `wanted` and stderr is a terminal.
    pub(crate) fn new(wanted: bool) -> Self {
        Progress { enabled: wanted && std::io::stderr().is_terminal() }
    }

    /// No bars at all (tests, library use).
    pub fn hidden() -> Self {
        Progress { enabled: false }
    }

    /// A bar counting bytes.
    pub(crate) fn bytes(&self, label: &'static str, total: u64) -> ProgressBar {
        self.bar(label, total, "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    }

    fn bar(&self, label: &'static str, total: u64, template: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total).with_message(label);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}
