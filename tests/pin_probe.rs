//! `sdk-cdn pin` against what a hostile probe found: URLs a browser
//! resolves to the SDK in forms pin did not recognise, integrity a browser
//! always blocks, and `--version latest`. The real binary, an index
//! published by it, and `sdk-cdn serve`.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod chromium;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use std::path::{Path, PathBuf};

use support::backends::{self, Backend};
use support::cli::{Run, build_dir, run, run_without_store};
use support::fixtures::sri_of;
use support::serve::Served;

const JS: &[u8] = b"window.HaloAgents = 1;\n";

/// A store with 1.0.0 published (latest: 1.0.0), served, and a work dir.
struct Site {
    /// Kept for the store's directory.
    _backend: Backend,
    cwd: tempfile::TempDir,
    served: Served,
}

impl Site {
    fn new() -> Site {
        let backend = backends::local();
        let cwd = tempfile::tempdir().unwrap();
        let build = build_dir(&[("haloagents.umd.js", JS)]);
        run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
        let served = Served::start(&backend, cwd.path(), &[]);
        Site { _backend: backend, cwd, served }
    }

    fn base(&self) -> String {
        self.served.base_url()
    }

    fn index(&self) -> String {
        format!("{}/api/sdk/sri", self.base())
    }

    fn page(&self, name: &str, body: &str) -> PathBuf {
        let path = self.cwd.path().join(name);
        std::fs::write(&path, format!("<!doctype html>\n<title>t</title>\n{body}\n")).unwrap();
        path
    }

    fn pin(&self, args: &[&str]) -> Run {
        let index = self.index();
        run_without_store(self.cwd.path(), &[&["pin", "--index", &index], args].concat())
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Probe finding 1: each of these loads `latest/` in Chromium, and pin and
/// --check passed them by.
#[test]
fn urls_a_browser_resolves_to_latest_are_pinned_and_fail_check_until_pinned() {
    let site = Site::new();
    let b = site.base();
    let host = b.trim_start_matches("http://");
    for tag in [
        format!("<script src=\"{b}/sdk/l&#97;test/haloagents.umd.js\"></script>"),
        format!("<script src=\"{b}/sdk/lat&#9;est/haloagents.umd.js\"></script>"),
        format!("<script src=\"{b}/sdk/lat\nest/haloagents.umd.js\"></script>"),
        format!("<script src=\"{b}/sdk/%6catest/haloagents.umd.js\"></script>"),
        format!("<script src=\"http:\\\\{host}\\sdk\\latest\\haloagents.umd.js\"></script>"),
        format!("<base href=\"{b}/sdk/latest/\"><script src=\"haloagents.umd.js\"></script>"),
    ] {
        let page = site.page("index.html", &tag);
        let out = site.pin(&["--check", path(&page)]);
        out.expect_code(3);
        assert!(out.stderr.contains("index.html: line 3: <script"), "{tag}: {}", out.stderr);
        site.pin(&[path(&page)]).expect_code(0);
        let pinned = std::fs::read_to_string(&page).unwrap();
        let want = format!("src=\"{b}/sdk/1.0.0/haloagents.umd.js\" integrity=\"{}\"", sri_of(JS));
        assert!(pinned.contains(&want), "{tag} was pinned as:\n{pinned}");
        assert!(pinned.starts_with("<!doctype html>\n<title>t</title>\n"), "{pinned}");
        site.pin(&["--check", path(&page)]).expect_code(0);
    }
}

/// Probe finding 1, the part no rewrite can fix: a URL that may load the
/// SDK but cannot be read for sure, and an SVG script (no integrity there),
/// make --check fail and pin refuse, naming file, line and tag.
#[test]
fn a_url_that_may_load_the_sdk_but_cannot_be_read_fails_closed() {
    let site = Site::new();
    let b = site.base();
    for (tag, why) in [
        (format!("<script src=\"{b}/sdk/&lscr;atest/haloagents.umd.js\"></script>"), "&lscr;"),
        (format!("<svg><script href=\"{b}/sdk/latest/haloagents.umd.js\"></script></svg>"), "SVG"),
        (format!("<svg><script xlink:href=\"{b}/sdk/latest/haloagents.umd.js\"></script></svg>"), "SVG"),
        (format!("<base href=\"{b}/sdk/&lscr;atest/\"><script src=\"x.js\"></script>"), "base URL"),
    ] {
        let page = site.page("index.html", &tag);
        let before = std::fs::read(&page).unwrap();
        let out = site.pin(&["--check", path(&page)]);
        out.expect_code(3);
        assert!(out.stderr.contains("index.html: line 3: <") && out.stderr.contains(why), "{tag}: {}", out.stderr);
        let out = site.pin(&[path(&page)]);
        out.expect_code(2);
        assert!(out.stderr.contains(why), "{tag}: {}", out.stderr);
        assert_eq!(std::fs::read(&page).unwrap(), before);
    }
}

/// Probe finding 4: a hash on latest/ breaks at the next release.
#[test]
fn pin_version_latest_is_refused_as_usage() {
    let site = Site::new();
    let page = site.page("index.html", "<script src=\"/sdk/latest/haloagents.umd.js\"></script>");
    let before = std::fs::read(&page).unwrap();
    let out = site.pin(&[path(&page), "--version", "latest"]);
    out.expect_code(2);
    assert!(out.stderr.contains("every release") && out.stderr.contains("snippet latest --signed"), "{}", out.stderr);
    assert_eq!(std::fs::read(&page).unwrap(), before);
}

/// Probe finding 5: integrity Chromium always blocks passed --check.
#[test]
fn integrity_a_browser_always_blocks_fails_check() {
    let site = Site::new();
    let keys = site.cwd.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let keygen = |name: &str| {
        let args = ["--json", "keygen", "--no-password", "--dir", path(&keys), "--name", name];
        run_without_store(site.cwd.path(), &args).expect_code(0).json()["integrity"].as_str().unwrap().to_string()
    };
    let (right, wrong) = (keygen("sri"), keygen("other"));
    let sri_pub = keys.join("sri.pub");
    let hash = sri_of(JS);
    for (src, integrity, crossorigin, why) in [
        ("latest", "ed25519-garbage".to_string(), "anonymous", "not an Ed25519 public key"),
        ("latest", wrong.clone(), "anonymous", "not the publisher's SRI key"),
        ("1.0.0", format!("ed25519-garbage {hash}"), "anonymous", "not an Ed25519 public key"),
        ("1.0.0", hash.clone(), "use-credentials", "sends credentials"),
    ] {
        let tag = format!(
            "<script src=\"/sdk/{src}/haloagents.umd.js\" integrity=\"{integrity}\" crossorigin=\"{crossorigin}\"></script>"
        );
        let page = site.page("index.html", &tag);
        let out = site.pin(&["--check", path(&page), "--sri-pubkey", path(&sri_pub)]);
        out.expect_code(3);
        assert!(out.stderr.contains(why) && out.stderr.contains("line 3"), "{tag}: {}", out.stderr);
        if !why.contains("credentials") {
            // pin does not report such a tag as pinned.
            site.pin(&[path(&page), "--sri-pubkey", path(&sri_pub)]).expect_code(2);
        }
    }
    // The right key passes; without --sri-pubkey it cannot be proven.
    let page = site.page(
        "index.html",
        &format!(
            "<script src=\"/sdk/latest/haloagents.umd.js\" integrity=\"{right}\" crossorigin=\"anonymous\"></script>"
        ),
    );
    site.pin(&["--check", path(&page), "--sri-pubkey", path(&sri_pub)]).expect_code(0);
    site.pin(&["--check", path(&page), "--sri-pubkey", &right]).expect_code(0);
    let out = site.pin(&["--check", path(&page)]);
    out.expect_code(3);
    assert!(out.stderr.contains("--sri-pubkey"), "{}", out.stderr);
}
