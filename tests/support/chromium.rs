//! Headless Chromium for tests: load a URL with a fresh profile and return
//! the DOM after load, within a deadline.
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tools::which;

/// Longest a single page load may take, browser start included.
pub const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

/// The browser: `SDK_CDN_CHROMIUM` if set (GitHub's runners have Chrome,
/// not a `chromium` package), else `chromium` on the PATH.
pub fn browser() -> Option<std::path::PathBuf> {
    std::env::var_os("SDK_CDN_CHROMIUM").filter(|p| !p.is_empty()).map(Into::into).or_else(|| which("chromium"))
}

/// Whether a browser is there; without one, skipped with a notice unless
/// `SDK_CDN_REQUIRE_BROWSER=1` (CI), which makes its absence a failure.
pub fn browser_present() -> bool {
    browser().is_some() || super::tools::tools_present(&["chromium"], "SDK_CDN_REQUIRE_BROWSER")
}

/// Loads `url` in headless Chromium and writes a screenshot of it to `png`.
pub fn screenshot(url: &str, png: &std::path::Path) {
    let screenshot = format!("--screenshot={}", png.display());
    run_headless(&[&screenshot, "--window-size=1200,900", "--hide-scrollbars", url], url);
}

/// Loads `url` in headless Chromium and returns `--dump-dom`'s output.
pub fn dump_dom(url: &str) -> String {
    run_headless(&["--dump-dom", url], url)
}

/// The flags every headless run uses: no sandbox (root in CI), no GPU, and
/// no background traffic (the machines have no network beyond loopback).
const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Runs the browser with a fresh profile and `args`; returns its stdout.
/// Polls the child with a deadline (no fixed wait for the browser).
fn run_headless(args: &[&str], url: &str) -> String {
    let chromium = browser().expect("chromium is installed (or SDK_CDN_CHROMIUM names a browser)");
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let until = Instant::now() + BROWSER_DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {url} within {BROWSER_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}
