//! Driving the binary's test-only pause points (`src/pause.rs`): arm one,
//! wait until a process reached it, act, then let it go (or kill it there).
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::path::Path;

use super::backends::Backend;

/// A pause point armed in a fresh directory (see `src/pause.rs`).
pub struct Pause {
    dir: tempfile::TempDir,
}

impl Pause {
    pub fn new() -> Pause {
        Pause { dir: tempfile::tempdir().unwrap() }
    }

    pub fn arm(&self, name: &str) {
        std::fs::write(self.dir.path().join(format!("{name}.wait")), b"").unwrap();
    }

    /// Waits (with a deadline, never a fixed sleep) until a process reached `name`.
    pub fn reached(&self, name: &str, child: &mut std::process::Child) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.dir.path().join(format!("{name}.reached")).exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the process exited ({status}) before reaching pause point {name}");
            }
            assert!(std::time::Instant::now() < deadline, "pause point {name} never reached");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn go(&self, name: &str) {
        std::fs::write(self.dir.path().join(format!("{name}.go")), b"").unwrap();
    }

    pub fn spawn(&self, backend: &Backend, cwd: &Path, args: &[&str]) -> std::process::Child {
        self.spawn_with(super::cli::command(backend, cwd, args))
    }

    /// Starts `cmd` (the binary, set up by the caller) with this pause directory.
    pub fn spawn_with(&self, mut cmd: std::process::Command) -> std::process::Child {
        cmd.env(sdk_cdn::pause::PAUSE_DIR_ENV, self.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sdk-cdn")
    }
}
