//! `sdk-cdn pin` against what a hostile probe found: URLs a browser
//! resolves to the SDK in forms pin did not recognise, integrity a browser
//! always blocks, `--version latest`, symbolic links, a write failing
//! halfway through several files, and a server that never answers. The real
//! binary, an index published by it, and `sdk-cdn serve`.

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

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::backends::{self, Backend};
use support::cli::{Run, build_dir, output, run, run_without_store, wait};
use support::fixtures::sri_of;
use support::serve::Served;

const JS: &[u8] = b"window.HaloAgents = 1;\n";

/// A store with 1.0.0 published (latest: 1.0.0), served, and a work dir.
struct Site {
    backend: Backend,
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
        Site { backend, cwd, served }
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
        output(self.pin_command(args))
    }

    fn pin_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sdk-cdn"));
        cmd.current_dir(self.cwd.path()).args(["pin", "--index", &self.index()]).args(args);
        cmd.env_remove("SDK_CDN_STORE").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Names in the work dir left by pin's temp files.
    fn temps(&self) -> Vec<String> {
        let names = std::fs::read_dir(self.cwd.path()).unwrap().map(|e| e.unwrap().file_name());
        names.map(|n| n.to_string_lossy().into_owned()).filter(|n| n.contains("sdk-cdn-pin")).collect()
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

/// A static file server over `root` on 127.0.0.1 (another origin than the
/// CDN, as a customer's site): GET /path → 200 + bytes, or 404.
fn static_server(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            while reader.read_line(&mut String::new()).is_ok_and(|n| n > 2) {}
            let path = line.split(' ').nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let _ = match std::fs::read(root.join(&path)) {
                Ok(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body))
                }
                Err(_) => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
    format!("http://{addr}")
}

/// Probe finding 1 in the browser: the spelled-otherwise tag loads latest/
/// in Chromium (the probe's claim), runs pinned after `pin`, and a changed
/// stored byte is then blocked.
#[test]
fn a_tag_spelled_otherwise_runs_pinned_in_chromium_after_pin() {
    if !support::chromium::browser_present() {
        return;
    }
    let site = Site::new();
    let web = tempfile::tempdir().unwrap();
    let page = web.path().join("index.html");
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><base href=\"{}/sdk/l&#97;test/\"></head><body>\n\
         <script src=\"haloagents.umd.js\"></script>\n\
         <script>var p = document.createElement('p'); p.id = 'result';\n\
         p.textContent = 'RESULT=' + (typeof window.HaloAgents === 'undefined' ? 'blocked' : 'loaded');\n\
         document.body.appendChild(p);</script></body></html>\n",
        site.base()
    );
    std::fs::write(&page, html).unwrap();
    let url = format!("{}/index.html", static_server(web.path().to_path_buf()));
    let result = || {
        let dom = support::chromium::dump_dom(&url);
        ["RESULT=loaded", "RESULT=blocked"].into_iter().find(|r| dom.contains(r)).map(str::to_string)
    };
    assert_eq!(result().as_deref(), Some("RESULT=loaded"), "the probe's page does not load latest/");
    site.pin(&[path(&page)]).expect_code(0);
    assert!(std::fs::read_to_string(&page).unwrap().contains(&sri_of(JS)));
    assert_eq!(result().as_deref(), Some("RESULT=loaded"), "the pinned page does not run");
    let stored = PathBuf::from(&site.backend.args()[1]).join("sdk/1.0.0/haloagents.umd.js");
    std::fs::write(&stored, b"window.HaloAgents = 'evil';\n").unwrap();
    assert_eq!(result().as_deref(), Some("RESULT=blocked"), "a changed file ran");
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

const TAG: &str = "<script src=\"/sdk/latest/haloagents.umd.js\"></script>";

fn pinned(page: &Path) -> bool {
    std::fs::read_to_string(page).unwrap().contains(&format!("integrity=\"{}\"", sri_of(JS)))
}

/// Probe finding 3: the link became a regular file and the real file stayed unpinned.
#[test]
fn a_symbolic_link_is_written_through_and_stays_a_link() {
    let site = Site::new();
    let real = site.page("real.html", TAG);
    let link = site.cwd.path().join("link.html");
    std::os::unix::fs::symlink("real.html", &link).unwrap();
    site.pin(&[path(&link)]).expect_code(0);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("real.html"));
    assert!(pinned(&real), "{}", std::fs::read_to_string(&real).unwrap());
    // The link and its target given together: one file, pinned once.
    site.pin(&[path(&link), path(&real)]).expect_code(0);
    assert!(site.temps().is_empty(), "{:?}", site.temps());
}

/// Probe finding 2: `pin A B` rewrote A when writing B failed, and said nothing of it.
#[test]
fn a_file_that_cannot_be_written_leaves_every_file_as_it_was() {
    let site = Site::new();
    let small = site.page("a.html", TAG);
    let big = site.page("b.html", &format!("{TAG}\n<!-- {} -->", "x".repeat(64 * 1024)));
    let before = [std::fs::read(&small).unwrap(), std::fs::read(&big).unwrap()];
    let mut cmd = site.pin_command(&[path(&small), path(&big)]);
    support::cli::limit_file_size(&mut cmd, 16 * 1024);
    let out = output(cmd);
    out.expect_code(1);
    assert!(out.stderr.contains("b.html") && out.stderr.contains("no file was changed"), "{}", out.stderr);
    let after = [std::fs::read(&small).unwrap(), std::fs::read(&big).unwrap()];
    assert!(after == before, "a file was changed");
    assert!(site.temps().is_empty(), "{:?}", site.temps());
    site.pin(&[path(&small), path(&big)]).expect_code(0);
    assert!(pinned(&small) && pinned(&big));
}

/// Probe finding 2, the outcome left: a rename fails after another
/// succeeded (here its temp file vanishes at a pause point between the
/// two). The error, also in --json, names the file already pinned.
#[test]
fn a_rename_failing_after_another_names_the_files_already_replaced() {
    let site = Site::new();
    let (a, b) = (site.page("a.html", TAG), site.page("b.html", TAG));
    let pause = tempfile::tempdir().unwrap();
    std::fs::write(pause.path().join("pin-renamed.wait"), b"").unwrap();
    let mut cmd = site.pin_command(&["--json", path(&a), path(&b)]);
    cmd.env("SDK_CDN_TEST_PAUSE_DIR", pause.path());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pause.path().join("pin-renamed.reached").exists() {
        assert!(Instant::now() < deadline, "pin never reached the pause point");
        assert!(child.try_wait().unwrap().is_none(), "pin ended before the pause point: {:?}", wait(child));
        std::thread::sleep(Duration::from_millis(10));
    }
    for temp in site.temps() {
        std::fs::remove_file(site.cwd.path().join(temp)).unwrap();
    }
    std::fs::write(pause.path().join("pin-renamed.go"), b"").unwrap();
    let out = wait(child);
    out.expect_code(1);
    let error = out.json()["error"].as_str().unwrap().to_string();
    let already = format!("already pinned: {}; left as they were: {}", a.display(), b.display());
    assert!(error.contains(&format!("cannot replace {}", b.display())) && error.contains(&already), "{error}");
    assert!(pinned(&a) && !pinned(&b));
}

/// Probe finding 6: `--timeout` was ignored; a server that never answers held pin for 30 s.
#[test]
fn an_index_server_that_never_answers_fails_after_the_timeout() {
    let cwd = tempfile::tempdir().unwrap();
    let page = cwd.path().join("index.html");
    std::fs::write(&page, TAG).unwrap();
    let before = std::fs::read(&page).unwrap();
    // Accepts connections and never answers; holds them open.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let index = format!("http://{}/api/sdk/sri", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let out = run_without_store(cwd.path(), &["--timeout", "1", "pin", path(&page), "--index", &index]);
    out.expect_code(1);
    assert!(out.stderr.contains("within 1s (--timeout)"), "{}", out.stderr);
    assert_eq!(std::fs::read(&page).unwrap(), before);
}
