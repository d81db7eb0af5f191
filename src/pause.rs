//! Test-only pause points, so that races, crashes and mid-upload changes
//! can be tested deterministically instead of with sleeps. This is the one
//! such mechanism in the crate: async code calls [`point`], code on a
//! blocking thread (the local store's writes) calls [`point_blocking`].
//!
//! In debug builds, when `SDK_CDN_TEST_PAUSE_DIR` names a directory and
//! `<dir>/<name>.wait` exists, the process reaching pause point `name`
//! creates `<dir>/<name>.reached` and waits until `<dir>/<name>.go` exists
//! (or a minute passes). A test arms a point, waits for `.reached`, does
//! what it must (changes an input, starts a racing command, kills the
//! process), then writes `.go`. Release builds compile this to nothing.
//!
//! The same directory injects faults where the OS cannot be made to fail
//! on demand: when `<dir>/<name>.fail` exists, the first caller of
//! [`fails`]`(name)` removes it and gets `true`.

/// Environment variable naming the directory of pause-point files.
pub const PAUSE_DIR_ENV: &str = "SDK_CDN_TEST_PAUSE_DIR";

#[cfg(debug_assertions)]
mod armed {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// How long a paused process waits for `.go` before it goes on anyway.
    pub(super) const MAX_PAUSE: Duration = Duration::from_secs(60);
    /// How often a paused process looks for `.go`.
    pub(super) const POLL: Duration = Duration::from_millis(10);

    /// If a test armed `name`: claims it, says it was reached, and returns
    /// the file that releases it with the deadline to wait for it.
    pub(super) fn claim(name: &str) -> Option<(PathBuf, Instant)> {
        let dir = PathBuf::from(std::env::var_os(super::PAUSE_DIR_ENV)?);
        // Each point pauses once per process: the first caller claims it.
        std::fs::remove_file(dir.join(format!("{name}.wait"))).ok()?;
        let _ = std::fs::write(dir.join(format!("{name}.reached")), b"");
        Some((dir.join(format!("{name}.go")), Instant::now() + MAX_PAUSE))
    }
}

/// Waits at pause point `name` if a test armed it (debug builds only).
#[cfg(debug_assertions)]
pub(crate) async fn point(name: &str) {
    let Some((go, deadline)) = armed::claim(name) else { return };
    while !go.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(armed::POLL).await;
    }
}

/// [`point`] for code on a blocking thread (debug builds only).
#[cfg(debug_assertions)]
pub(crate) fn point_blocking(name: &str) {
    let Some((go, deadline)) = armed::claim(name) else { return };
    while !go.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(armed::POLL);
    }
}

/// Release builds: no pause points.
#[cfg(not(debug_assertions))]
pub(crate) async fn point(_name: &str) {}

/// Release builds: no pause points.
#[cfg(not(debug_assertions))]
pub(crate) fn point_blocking(_name: &str) {}

/// Whether a test made point `name` fail (debug builds only; see the
/// module doc): once per arming, for the first caller.
#[cfg(debug_assertions)]
pub(crate) fn fails(name: &str) -> bool {
    let Some(dir) = std::env::var_os(PAUSE_DIR_ENV) else { return false };
    std::fs::remove_file(std::path::Path::new(&dir).join(format!("{name}.fail"))).is_ok()
}

/// Release builds: no injected faults.
#[cfg(not(debug_assertions))]
pub(crate) fn fails(_name: &str) -> bool {
    false
}
