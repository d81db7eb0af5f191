//! Driving the real `sdk-cdn` binary like a user, against any backend.
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use super::backends::Backend;

/// The outcome of one run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A command for the binary against `backend`, run in `cwd`.
pub fn command(backend: &Backend, cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sdk-cdn"));
    cmd.current_dir(cwd).args(backend.args()).args(args).env_remove("SDK_CDN_STORE").env_remove("AWS_PROFILE");
    for (k, v) in backend.env() {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs the binary to completion.
pub fn run(backend: &Backend, cwd: &Path, args: &[&str]) -> Run {
    output(command(backend, cwd, args))
}

/// Runs `cmd` (a [`command`] the caller added to) to completion.
pub fn output(mut cmd: Command) -> Run {
    Run::from(cmd.output().expect("run sdk-cdn"))
}

/// Runs the binary with no store selected by the harness (for bad `--store` values).
pub fn run_without_store(cwd: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
        .current_dir(cwd)
        .args(args)
        .env_remove("SDK_CDN_STORE")
        .stdin(Stdio::null())
        .output()
        .expect("run sdk-cdn");
    Run::from(output)
}

/// Runs the binary with exactly `args` (store flags included) and `env`.
pub fn run_without_store_with_env(cwd: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sdk-cdn"));
    cmd.current_dir(cwd).args(args).env_remove("SDK_CDN_STORE").env_remove("AWS_PROFILE").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("run sdk-cdn"))
}

/// Starts the binary without waiting (for races).
pub fn spawn(backend: &Backend, cwd: &Path, args: &[&str]) -> Child {
    command(backend, cwd, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn sdk-cdn")
}

/// Waits for a spawned run.
pub fn wait(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait for sdk-cdn"))
}

/// A build directory with the given files.
pub fn build_dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("sdk-cdn-build-").tempdir().expect("tempdir");
    for (path, bytes) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    }
    dir
}

/// Runs `cmd` with no file written past `bytes` (`RLIMIT_FSIZE`): such a
/// write fails with EFBIG, as a write to a full disk fails with ENOSPC.
pub fn limit_file_size(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The write then fails instead of the signal killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}
