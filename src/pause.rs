//! Test-only pause points, so that races and mid-upload changes can be
//! tested deterministically instead of with sleeps.
//!
//! In debug builds, when `SDK_CDN_TEST_PAUSE_DIR` names a directory and
//! `<dir>/<name>.wait` exists, the process reaching pause point `name`
//! creates `<dir>/<name>.reached` and waits until `<dir>/<name>.go` exists
//! (or a minute passes). A test arms a point, waits for `.reached`, does
//! what it must (changes an input, starts a racing command), then writes
//! `.go`. Release builds compile this to nothing.

/// Environment variable naming the directory of pause-point files.
pub const PAUSE_DIR_ENV: &str = "SDK_CDN_TEST_PAUSE_DIR";

/// Waits at pause point `name` if a test armed it (debug builds only).
#[cfg(debug_assertions)]
pub async fn point(name: &str) {
    use std::time::{Duration, Instant};
    let Some(dir) = std::env::var_os(PAUSE_DIR_ENV).map(std::path::PathBuf::from) else { return };
    // Each point pauses once per process: the first caller claims it.
    if std::fs::remove_file(dir.join(format!("{name}.wait"))).is_err() {
        return;
    }
    let _ = std::fs::write(dir.join(format!("{name}.reached")), b"");
    let go = dir.join(format!("{name}.go"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Release builds: no pause points.
#[cfg(not(debug_assertions))]
pub async fn point(_name: &str) {}
