//! The documentation is executed: every ```console block of README.md and
//! docs/CLI.md runs, in order, in a fresh sandbox (a copy of `dist/`, the
//! default `./cdn` store, the built `sdk-cdn` first on PATH), and each
//! command's stdout must match what the docs show (snapbox: `[..]` matches
//! within a line, `...` any lines). Commands run under `bash -o pipefail`, as
//! a customer's CI would, and must exit 0, unless the line ends in
//! `# exit N`. A command naming `127.0.0.1:8080` runs against an
//! `sdk-cdn serve` on a free port, and that port is shown back as 8080.
//!
//! Blocks fenced as ```sh, ```text, ```yaml or ```json are not run: the
//! README's first two commands (a release build, the whole test suite), S3
//! and CI examples, and the headless-Chromium transcript (tests/browser.rs
//! proves that one). Needs bash, curl, jq, openssl and minisign; skipped without them
//! unless `SDK_CDN_REQUIRE_TOOLS=1`.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod tools;
}

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::tools::tools_present;

/// The address the docs use for `sdk-cdn serve`.
const DOC_ADDR: &str = "127.0.0.1:8080";

/// One command of a console block and the stdout the docs promise.
struct Step {
    line: usize,
    command: String,
    code: i32,
    expected: String,
}

/// The steps of every ```console block of `markdown`, in order.
fn steps(markdown: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    for (i, line) in markdown.lines().enumerate() {
        if !in_console {
            in_console = line.trim() == "```console";
            continue;
        }
        if line.trim() == "```" {
            in_console = false;
        } else if let Some(command) = line.strip_prefix("$ ") {
            let (command, code) = match command.rsplit_once("# exit ") {
                Some((c, n)) => (c.trim_end().to_string(), n.trim().parse().expect("`# exit N`")),
                None => (command.to_string(), 0),
            };
            steps.push(Step { line: i + 1, command, code, expected: String::new() });
        } else {
            let step = steps.last_mut().unwrap_or_else(|| panic!("line {}: output before any `$ ` command", i + 1));
            step.expected.push_str(line);
            step.expected.push('\n');
        }
    }
    steps
}

/// `sdk-cdn serve` in the sandbox, on a free port.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(sandbox: &Path, path: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .current_dir(sandbox)
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sdk-cdn serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let addr = first.strip_prefix("listening on http://").unwrap_or_else(|| panic!("serve said {first:?}"));
        let addr = addr.to_string();
        // Keep draining stderr so logging never blocks the server.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Runs every console block of `doc` (relative to the repository) and compares.
fn run_doc(doc: &str) {
    if !tools_present(&["bash", "curl", "jq", "openssl", "minisign"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = std::fs::read_to_string(repo.join(doc)).unwrap();
    let steps = steps(&markdown);
    assert!(!steps.is_empty(), "{doc} has no console blocks");
    let sandbox = tempfile::tempdir().unwrap();
    copy_dir(&repo.join("dist"), &sandbox.path().join("dist"));
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_sdk-cdn")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap()
    .into_string()
    .unwrap();
    let mut server: Option<Server> = None;
    for step in steps {
        let mut command = step.command.clone();
        if command.contains(DOC_ADDR) {
            let addr = &server.get_or_insert_with(|| Server::start(sandbox.path(), &path)).addr;
            command = command.replace(DOC_ADDR, addr);
        }
        let mut bash = Command::new("bash");
        bash.args(["--noprofile", "--norc", "-o", "pipefail", "-c", &command]).current_dir(sandbox.path());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("SDK_CDN_") || key.starts_with("AWS_") || key == "RUST_LOG" {
                bash.env_remove(key);
            }
        }
        let out = bash.env("PATH", &path).env("NO_COLOR", "1").stdin(Stdio::null()).output().unwrap();
        let mut stdout = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        if let Some(server) = &server {
            stdout = stdout.replace(&server.addr, DOC_ADDR);
        }
        // A terminal shows output without a final newline on its own line too.
        if !stdout.is_empty() && !stdout.ends_with('\n') {
            stdout.push('\n');
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(step.code),
            "{doc}:{}: `{}` exited {:?}, the docs say {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            step.line,
            step.command,
            out.status.code(),
            step.code
        );
        let assert = snapbox::Assert::new().action_env("SNAPSHOTS").normalize_paths(false);
        if let Err(error) = assert.try_eq(
            Some(&format!("{doc}:{}: `{}`", step.line, step.command)),
            stdout.into(),
            step.expected.into(),
        ) {
            panic!("{error}");
        }
    }
}

#[test]
fn readme_commands_do_what_the_readme_shows() {
    run_doc("README.md");
}

#[test]
fn cli_reference_commands_do_what_it_shows() {
    run_doc("docs/CLI.md");
}
