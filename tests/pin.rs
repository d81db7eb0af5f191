//! `sdk-cdn pin` as a customer pipeline runs it: the real binary, an index
//! published by the real binary, read from disk, from `sdk-cdn serve`, and
//! from a plain static file server on 127.0.0.1 (the way a CDN hands out
//! `api/sdk/sri` and `api/sdk/sri.minisig`). Every refusal leaves every HTML
//! file byte for byte as it was.

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

use sdk_cdn::signing::{self, KeySource, SecretKey};
use support::backends::{self, Backend};
use support::cli::{Run, build_dir, run, run_without_store};
use support::fixtures::sri_of;
use support::serve::Served;

const JS: &[u8] = b"window.HaloAgents = 1;\n";
const CSS: &[u8] = b"body { color: red }\n";
/// Odd but valid markup around the tags; must survive byte for byte.
const HEAD: &str = "<!DOCTYPE html>\r\n<!-- <script src=\"/sdk/latest/app.js\"></script> -->\n<meta charset=utf-8 >\n\
                    <P CLASS='x'  >caf\u{e9} &amp; &lt;tags&gt;</P\n>";
const TAIL: &str = "\n<script>if (a < b && c) { document.write('<script src=/sdk/latest/app.js>') }</script>\n\
                    <script src=\"/other/1.0.0/x.js\"></script>\n";

/// A store with 1.0.0 and 1.1.0 published (latest: 1.1.0) and a work dir.
struct Published {
    backend: Backend,
    cwd: tempfile::TempDir,
}

impl Published {
    fn new() -> Published {
        let backend = backends::local();
        let cwd = tempfile::tempdir().unwrap();
        for (version, js) in [("1.0.0", b"old\n".as_slice()), ("1.1.0", JS)] {
            let build = build_dir(&[("app.js", js), ("app.css", CSS)]);
            run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", version])
                .expect_code(0);
        }
        Published { backend, cwd }
    }

    fn root(&self) -> PathBuf {
        PathBuf::from(&self.backend.args()[1])
    }

    fn index_path(&self) -> PathBuf {
        self.root().join("api/sdk/sri")
    }

    /// Signs the index in place with a fresh key; returns the public key.
    fn sign(&self) -> String {
        let key = key();
        let bytes = std::fs::read(self.index_path()).unwrap();
        let sig = signing::sign_index(&key, &bytes, Some(&semver::Version::new(1, 1, 0))).unwrap();
        std::fs::write(self.root().join("api/sdk/sri.minisig"), sig).unwrap();
        key.public_key().to_base64()
    }

    fn page(&self, name: &str, tags: &str) -> PathBuf {
        let path = self.cwd.path().join(name);
        std::fs::write(&path, format!("{HEAD}{tags}{TAIL}")).unwrap();
        path
    }

    fn pin(&self, args: &[&str]) -> Run {
        run_without_store(self.cwd.path(), &[&["pin"], args].concat())
    }
}

fn key() -> SecretKey {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    SecretKey::load(&KeySource::Text { env: "TEST", text: pair.sk.to_box(None).unwrap().into_string() }, None).unwrap()
}

const TAGS: &str = "<script src=\"https://cdn.example/sdk/latest/app.js\" integrity=\"sha384-stale\" defer></script>\n\
                    <link href=/sdk/1.0.0/app.css rel=stylesheet>";

fn assert_pinned(page: &Path) {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.starts_with(HEAD) && html.ends_with(TAIL), "markup around the tags changed:\n{html}");
    let js = format!("src=\"https://cdn.example/sdk/1.1.0/app.js\" integrity=\"{}\"", sri_of(JS));
    assert!(html.contains(&js), "{html}");
    let css =
        format!("href=\"/sdk/1.1.0/app.css\" rel=stylesheet integrity=\"{}\" crossorigin=\"anonymous\"", sri_of(CSS));
    assert!(html.contains(&css), "{html}");
    assert_eq!(html.matches("crossorigin=\"anonymous\"").count(), 2, "{html}");
}

#[test]
fn pin_rewrites_the_sdk_tags_from_a_local_index_and_keeps_other_bytes() {
    let p = Published::new();
    let page = p.page("index.html", TAGS);
    p.pin(&[page.to_str().unwrap(), "--index", p.index_path().to_str().unwrap()]).expect_code(0);
    assert_pinned(&page);
    let once = std::fs::read(&page).unwrap();
    p.pin(&[page.to_str().unwrap(), "--index", p.index_path().to_str().unwrap()]).expect_code(0);
    assert_eq!(std::fs::read(&page).unwrap(), once, "pinning twice changed the file");
    // An explicit older version.
    p.pin(&[page.to_str().unwrap(), "--index", p.index_path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    assert!(std::fs::read_to_string(&page).unwrap().contains(&sri_of(b"old\n")));
}

#[test]
fn pin_reads_the_index_from_sdk_cdn_serve() {
    let p = Published::new();
    let served = Served::start(&p.backend, p.cwd.path(), &[]);
    let page = p.page("index.html", TAGS);
    let index = format!("{}/api/sdk/sri", served.base_url());
    p.pin(&[page.to_str().unwrap(), "--index", &index]).expect_code(0);
    assert_pinned(&page);
    p.pin(&["--check", page.to_str().unwrap(), "--index", &index]).expect_code(0);
}

/// A static file server over `root` on 127.0.0.1: GET /path → 200 + bytes, or 404.
fn static_server(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            while let Ok(n) = reader.read_line(&mut String::new()) {
                if n <= 2 {
                    break;
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let mut stream = stream;
            let _ = match std::fs::read(root.join(&path)) {
                Ok(body) => stream
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                            .as_bytes(),
                    )
                    .and_then(|()| stream.write_all(&body)),
                Err(_) => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_signed_index_over_http_is_verified_then_used() {
    let p = Published::new();
    let pubkey = p.sign();
    let base = static_server(p.root());
    let page = p.page("index.html", TAGS);
    let out = p.pin(&[page.to_str().unwrap(), "--index", &format!("{base}/api/sdk/sri"), "--pubkey", &pubkey]);
    out.expect_code(0);
    assert!(out.stdout.contains("index signature verified"), "{}", out.stdout);
    assert_pinned(&page);
}

#[test]
fn during_a_key_rotation_any_one_of_the_given_keys_suffices() {
    let p = Published::new();
    let current = p.sign();
    let next = key().public_key().to_base64();
    let page = p.page("index.html", TAGS);
    let index = p.index_path();
    let out =
        p.pin(&[page.to_str().unwrap(), "--index", index.to_str().unwrap(), "--pubkey", &next, "--pubkey", &current]);
    out.expect_code(0);
    assert_pinned(&page);
    // Neither key signed it: refused, naming the signer's key id.
    let other = key().public_key().to_base64();
    let out =
        p.pin(&[page.to_str().unwrap(), "--index", index.to_str().unwrap(), "--pubkey", &next, "--pubkey", &other]);
    out.expect_code(3);
    assert!(out.stderr.contains("not by the trusted key"), "{}", out.stderr);
}

#[test]
fn a_tampered_index_with_a_key_is_refused_and_no_file_changes() {
    let p = Published::new();
    let pubkey = p.sign();
    // The attacker swaps the hash of 1.1.0/app.js for their own file's.
    let index = std::fs::read_to_string(p.index_path()).unwrap();
    std::fs::write(p.index_path(), index.replace(&sri_of(JS), &sri_of(b"evil()"))).unwrap();
    let base = static_server(p.root());
    let page = p.page("index.html", TAGS);
    let before = std::fs::read(&page).unwrap();
    let out = p.pin(&[page.to_str().unwrap(), "--index", &format!("{base}/api/sdk/sri"), "--pubkey", &pubkey]);
    out.expect_code(3);
    assert!(out.stderr.contains("does not verify"), "{}", out.stderr);
    assert_eq!(std::fs::read(&page).unwrap(), before);
    // Another publisher's key: refused too.
    let other = key().public_key().to_base64();
    let index_path = p.index_path();
    std::fs::write(&index_path, index).unwrap();
    p.pin(&[page.to_str().unwrap(), "--index", index_path.to_str().unwrap(), "--pubkey", &other]).expect_code(3);
    assert_eq!(std::fs::read(&page).unwrap(), before);
}

#[test]
fn a_missing_signature_is_refused_when_a_key_is_given() {
    let p = Published::new();
    let pubkey = key().public_key().to_base64();
    let page = p.page("index.html", TAGS);
    let before = std::fs::read(&page).unwrap();
    let out = p.pin(&[page.to_str().unwrap(), "--index", p.index_path().to_str().unwrap(), "--pubkey", &pubkey]);
    out.expect_code(3);
    assert!(out.stderr.contains("no signature for the index"), "{}", out.stderr);
    assert_eq!(std::fs::read(&page).unwrap(), before);
}

#[test]
fn a_signature_from_an_older_cache_falls_back_to_the_content_addressed_copy() {
    let p = Published::new();
    let key = key();
    let pubkey = key.public_key().to_base64();
    let bytes = std::fs::read(p.index_path()).unwrap();
    let v = semver::Version::new(1, 1, 0);
    // The CDN still serves the signature of the previous index beside the new one.
    let old = signing::sign_index(&key, b"{\"version\":null,\"files\":{}}\n", None).unwrap();
    std::fs::write(p.root().join("api/sdk/sri.minisig"), old).unwrap();
    let base = static_server(p.root());
    let page = p.page("index.html", TAGS);
    let index = format!("{base}/api/sdk/sri");
    p.pin(&[page.to_str().unwrap(), "--index", &index, "--pubkey", &pubkey]).expect_code(3);
    // The publisher wrote the content-addressed copy before the index: found, verified.
    let addressed = signing::content_addressed_signature_key("api/sdk/sri", &bytes);
    std::fs::create_dir_all(p.root().join(&addressed).parent().unwrap()).unwrap();
    std::fs::write(p.root().join(&addressed), signing::sign_index(&key, &bytes, Some(&v)).unwrap()).unwrap();
    p.pin(&[page.to_str().unwrap(), "--index", &index, "--pubkey", &pubkey]).expect_code(0);
    assert_pinned(&page);
}

#[test]
fn check_exits_3_on_a_stale_integrity_and_changes_nothing() {
    let p = Published::new();
    let page = p.page("index.html", TAGS);
    let index = p.index_path();
    let index = index.to_str().unwrap();
    p.pin(&["--check", page.to_str().unwrap(), "--index", index]).expect_code(3); // not pinned yet
    p.pin(&[page.to_str().unwrap(), "--index", index]).expect_code(0);
    p.pin(&["--check", page.to_str().unwrap(), "--index", index]).expect_code(0);
    p.pin(&["--check", page.to_str().unwrap(), "--index", index, "--version", "1.0.0"]).expect_code(3);
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, html.replace(&sri_of(CSS), &sri_of(b"other"))).unwrap();
    let before = std::fs::read(&page).unwrap();
    let out = p.pin(&["--check", page.to_str().unwrap(), "--index", index]);
    out.expect_code(3);
    assert!(out.stderr.contains("app.css"), "{}", out.stderr);
    assert_eq!(std::fs::read(&page).unwrap(), before);
}

#[test]
fn one_unpinnable_file_leaves_every_file_untouched() {
    let p = Published::new();
    let good = p.page("good.html", TAGS);
    let bad = p.page("bad.html", "<script src=/sdk/latest/missing.js></script>");
    let none = p.page("none.html", "");
    let before: Vec<Vec<u8>> = [&good, &bad, &none].iter().map(|f| std::fs::read(f).unwrap()).collect();
    let index = p.index_path();
    let out = p.pin(&[good.to_str().unwrap(), bad.to_str().unwrap(), "--index", index.to_str().unwrap()]);
    out.expect_code(2);
    assert!(out.stderr.contains("1.1.0/missing.js"), "{}", out.stderr);
    p.pin(&[good.to_str().unwrap(), none.to_str().unwrap(), "--index", index.to_str().unwrap()]).expect_code(2);
    p.pin(&[good.to_str().unwrap(), "--index", index.to_str().unwrap(), "--version", "9.9.9"]).expect_code(2);
    let after: Vec<Vec<u8>> = [&good, &bad, &none].iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(before, after);
}

#[test]
fn an_unreachable_or_broken_index_exits_1() {
    let p = Published::new();
    let page = p.page("index.html", TAGS);
    let before = std::fs::read(&page).unwrap();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed when dropped
    p.pin(&[page.to_str().unwrap(), "--index", &format!("http://{dead}/api/sdk/sri")]).expect_code(1);
    p.pin(&[page.to_str().unwrap(), "--index", "no/such/index"]).expect_code(1);
    let broken = p.cwd.path().join("broken.json");
    for body in [
        "<html>",
        "{\"version\":\"1.1.0\",\"files\":{\"1.1.0/app.js\":null}}",
        "{\"version\":\"1.1.0\",\"files\":{\"1.1.0/app.js\":\"\"}}",
    ] {
        std::fs::write(&broken, body).unwrap();
        p.pin(&[page.to_str().unwrap(), "--index", broken.to_str().unwrap()]).expect_code(1);
    }
    assert_eq!(std::fs::read(&page).unwrap(), before);
}

/// The page a customer ships: the SDK from the CDN, then a script that
/// reports whether it ran.
const BROWSER_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>pin</title></head><body>\n\
    <script src=\"CDN/sdk/latest/haloagents.umd.js\"></script>\n\
    <script>var p = document.createElement('p'); p.id = 'result';\n\
    p.textContent = 'RESULT=' + (typeof window.HaloAgents === 'undefined' ? 'blocked' : 'loaded');\n\
    document.body.appendChild(p);</script></body></html>\n";

#[test]
fn a_page_pinned_by_pin_runs_the_sdk_in_chromium_and_a_tampered_file_is_blocked() {
    if !support::chromium::browser_present() {
        return;
    }
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    run(&backend, cwd.path(), &["publish", dist.to_str().unwrap(), "--version", "0.1.0"]).expect_code(0);
    let served = Served::start(&backend, cwd.path(), &[]);
    let site = tempfile::tempdir().unwrap();
    let page = site.path().join("index.html");
    std::fs::write(&page, BROWSER_PAGE.replace("CDN", &served.base_url())).unwrap();
    let index = format!("{}/api/sdk/sri", served.base_url());
    run_without_store(cwd.path(), &["pin", page.to_str().unwrap(), "--index", &index]).expect_code(0);
    let pinned = std::fs::read_to_string(&page).unwrap();
    assert!(pinned.contains("/sdk/0.1.0/haloagents.umd.js\" integrity=\"sha384-"), "{pinned}");
    // The page comes from another origin than the CDN, as on a customer's site.
    let url = format!("{}/index.html", static_server(site.path().to_path_buf()));
    let result =
        |dom: &str| ["RESULT=loaded", "RESULT=blocked"].into_iter().find(|r| dom.contains(r)).map(str::to_string);
    assert_eq!(result(&support::chromium::dump_dom(&url)).as_deref(), Some("RESULT=loaded"));
    // Someone changes the stored file behind the CDN: the pinned page refuses it.
    let stored = PathBuf::from(&backend.args()[1]).join("sdk/0.1.0/haloagents.umd.js");
    let mut js = std::fs::read(&stored).unwrap();
    js.extend_from_slice(b"\nwindow.stolen = document.cookie;\n");
    std::fs::write(&stored, js).unwrap();
    assert_eq!(result(&support::chromium::dump_dom(&url)).as_deref(), Some("RESULT=blocked"));
}
