//! The rule for tests that need tools from the system (chromium, curl, jq,
//! openssl, minisign, …): run when installed, and fail instead of skipping
//! when CI says they must be there.
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::path::PathBuf;

/// The full path of `name` on `PATH`, if it is installed.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Whether the tools are installed. If one is missing: fails the test when
/// `require_env` is `1` (CI sets it, so these tests always run there),
/// otherwise prints a clear skip notice and returns `false`.
pub fn tools_present(tools: &[&str], require_env: &str) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| which(t).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var(require_env).as_deref() == Ok("1") {
        panic!("{require_env}=1 but {} not installed", missing.join(", "));
    }
    eprintln!("skipped: {} not installed (set {require_env}=1 to make this a failure)", missing.join(", "));
    false
}
