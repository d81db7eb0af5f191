//! Issue 19: `latest/` that updates itself and still cannot be tampered
//! with. A page pins `sdk/latest/app.js` by the publisher's key
//! (`integrity="ed25519-KEY"`), and headless Chromium, against `sdk-cdn
//! serve` over each backend (the local store and S3), shows:
//! - the signed `latest/` file runs; after a new version is published and
//!   promoted, the same page runs the new bytes;
//! - a page naming another key is blocked; the same bytes from a server that
//!   sends no signature headers are blocked (and load with a hash pin, so the
//!   block is the signature's doing); a byte changed in the stored `latest/`
//!   file (its stored headers kept) is never served whole by `serve`, and
//!   the page does not run it;
//! - a pinned version with a mixed list (`"sha384-… ed25519-…"`) needs both:
//!   a wrong hash or a wrong key blocks it (what docs/SIGNING.md says).
//!
//! Needs `chromium` (see tests/browser.rs for `SDK_CDN_CHROMIUM` and
//! `SDK_CDN_REQUIRE_BROWSER`).

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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::header;
use axum::routing::get;
use sdk_cdn::signing::{PublicKey, sha512_of, verify_sri_headers};
use sdk_cdn::store::{Body, Headers, Key, PutMode};
use support::backends::{self, Backend};
use support::chromium::{browser_present, dump_dom};
use support::cli::{build_dir, run, run_without_store};
use support::fixtures::sri_of;
use support::serve::{Served, get as http_get};

const BLOCKED: &str = "blocked";

fn sdk(version: &str) -> String {
    format!("window.HaloAgents = {{ version: \"{version}\" }};\n")
}

/// A page that loads each `(src, integrity)` in order, as classic scripts
/// (each runs, or is blocked, before the next starts), and writes which SDK
/// version each one ran, or "blocked", comma-separated. Each URL gets its
/// own query string, so no two cases can share a cached response.
fn page(cases: &[(&str, &str)]) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sbsri</title></head><body>\n\
         <script>window.results = [];</script>\n",
    );
    for (i, (src, integrity)) in cases.iter().enumerate() {
        html.push_str(&format!(
            "<script src=\"{src}?case={i}\" integrity=\"{integrity}\" crossorigin=\"anonymous\"></script>\n\
             <script>results.push(window.HaloAgents ? window.HaloAgents.version : '{BLOCKED}'); \
             window.HaloAgents = undefined;</script>\n"
        ));
    }
    html.push_str(
        "<script>var p = document.createElement('p'); p.id = 'result';\n\
         p.textContent = 'RESULT=' + results.join(','); document.body.appendChild(p);</script></body></html>\n",
    );
    html
}

/// Pages and a plain copy of the SDK (no signature headers), on an origin
/// other than `serve`'s.
#[derive(Clone, Default)]
struct Site {
    pages: Arc<Mutex<HashMap<String, String>>>,
    plain: Arc<Mutex<Vec<u8>>>,
}

impl Site {
    async fn start(&self) -> SocketAddr {
        let (pages, plain) = (self.pages.clone(), self.plain.clone());
        let router = Router::new()
            .route(
                "/page/{name}",
                get(move |UrlPath(name): UrlPath<String>| {
                    let html = pages.lock().unwrap().get(&name).cloned().unwrap_or_default();
                    async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html) }
                }),
            )
            .route(
                "/plain/app.js",
                get(move || {
                    let js = plain.lock().unwrap().clone();
                    async move {
                        (
                            [
                                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                            ],
                            js,
                        )
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    /// Loads a page in Chromium and returns what each case ran.
    fn run(&self, addr: SocketAddr, name: &str, html: String) -> Vec<String> {
        self.pages.lock().unwrap().insert(name.to_string(), html);
        let dom = dump_dom(&format!("http://{addr}/page/{name}"));
        let start = dom.find("<p id=\"result\">RESULT=").unwrap_or_else(|| panic!("no result in the DOM:\n{dom}"));
        let rest = &dom[start + "<p id=\"result\">RESULT=".len()..];
        rest[..rest.find('<').unwrap()].split(',').map(str::to_string).collect()
    }
}

/// Polls the served index until `latest/` is `version` (the refresh is 1 s).
fn wait_for_latest(served: &Served, version: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while http_get(served.addr, "/api/sdk/sri", &[]).json()["version"] != version {
        assert!(Instant::now() < until, "serve did not pick up {version} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn publish(backend: &Backend, cwd: &Path, version: &str, keys: &[&Path]) {
    let dist = build_dir(&[("app.js", sdk(version).as_bytes())]);
    let mut args = vec!["publish", dist.path().to_str().unwrap(), "--version", version];
    for key in keys {
        args.extend(["--sri-key", key.to_str().unwrap()]);
    }
    run(backend, cwd, &args).expect_code(0);
}

#[test]
fn latest_pinned_by_key_runs_each_release_and_blocks_tampering_in_chromium_local() {
    if browser_present() {
        check_backend(&backends::local());
    }
}

#[test]
fn latest_pinned_by_key_runs_each_release_and_blocks_tampering_in_chromium_s3() {
    if browser_present() {
        check_backend(&backends::in_process());
    }
}

fn check_backend(backend: &Backend) {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    for key in ["sri", "other"] {
        run_without_store(keys.path(), &["keygen", "--no-password", "--name", key]).expect_code(0);
    }
    let sri_key = keys.path().join("sri.key");
    let token = PublicKey::load(&keys.path().join("sri.pub")).unwrap().integrity_token();
    let other = PublicKey::load(&keys.path().join("other.pub")).unwrap().integrity_token();

    publish(backend, cwd.path(), "1.0.0", &[&sri_key]);
    let served = Served::start(backend, cwd.path(), &["--refresh", "1"]);
    let latest = format!("{}/sdk/latest/app.js", served.base_url());
    let pinned = format!("{}/sdk/1.0.0/app.js", served.base_url());

    // What serve sends, checked by our verifier before the browser sees it.
    let response = http_get(served.addr, "/sdk/latest/app.js", &[]);
    assert_eq!(response.header("accept-ranges"), Some("none"), "{name}");
    let served_headers = sdk_cdn::signing::SignedHeaders::from_pairs(|h| response.header(h)).expect("three headers");
    let raw = PublicKey::load(&keys.path().join("sri.pub")).unwrap().ed25519();
    verify_sri_headers(&sha512_of(sdk("1.0.0").as_bytes()), &served_headers, &raw).unwrap();

    let site = Site::default();
    *site.plain.lock().unwrap() = sdk("1.0.0").into_bytes();
    let runtime = backends::runtime();
    let addr = runtime.block_on(site.start());
    let plain = format!("http://{addr}/plain/app.js");
    let hash = sri_of(sdk("1.0.0").as_bytes());
    let wrong_hash = sri_of(b"window.HaloAgents = 'tampered';");

    let mut cases = vec![
        ("latest/ pinned by the key", latest.as_str(), token.clone(), "1.0.0"),
        ("latest/ pinned by another key", latest.as_str(), other.clone(), BLOCKED),
        ("the same bytes without signature headers", plain.as_str(), token.clone(), BLOCKED),
        ("control: those bytes pinned by hash", plain.as_str(), hash.clone(), "1.0.0"),
        ("a version pinned by hash and key", pinned.as_str(), format!("{hash} {token}"), "1.0.0"),
        ("a mixed list with a wrong hash", pinned.as_str(), format!("{wrong_hash} {token}"), BLOCKED),
        ("a mixed list with another key", pinned.as_str(), format!("{hash} {other}"), BLOCKED),
    ];
    if name != "local" {
        // What does not depend on the store is shown once, over the local one.
        cases.truncate(2);
    }
    let html = page(&cases.iter().map(|(_, src, integrity, _)| (*src, integrity.as_str())).collect::<Vec<_>>());
    let ran = site.run(addr, "first", html);
    for ((case, .., expected), ran) in cases.iter().zip(&ran) {
        assert_eq!(ran, expected, "{name}: {case}");
    }
    assert_eq!(ran.len(), cases.len(), "{name}: every case reported");

    // A new release: the page that pins the key runs it with no change.
    publish(backend, cwd.path(), "1.1.0", &[&sri_key]);
    wait_for_latest(&served, "1.1.0");
    assert_eq!(site.run(addr, "next", page(&[(&latest, &token)])), ["1.1.0"], "{name}: the next release");

    // Bytes swapped in the store behind the stored signature headers (an
    // attacker with write access to the bucket, not to the key).
    let store = backend.store();
    let key = Key::new("sdk/latest/app.js").unwrap();
    let meta = runtime.block_on(store.head(&key)).unwrap().expect("latest/app.js is stored");
    let stored = meta.headers.expect("headers");
    assert!(stored.signed.is_some(), "{name}: the latest/ copy keeps the signature headers");
    let tampered = sdk("6.6.6");
    assert_eq!(tampered.len(), sdk("1.1.0").len());
    let keep = Headers { sri: None, ..stored };
    let body = Body::Bytes(tampered.clone().into_bytes().into());
    runtime.block_on(store.put(&key, body, &keep, PutMode::Overwrite)).unwrap();
    // `serve` itself never delivers them whole (it hashes each body as it
    // streams and aborts it before its last chunk, docs/SERVE.md), and the
    // page that pins the key does not run them either.
    let raw = raw_get(served.addr, "/sdk/latest/app.js");
    assert!(!raw.windows(tampered.len()).any(|w| w == tampered.as_bytes()), "{name}: the changed bytes were served");
    assert_eq!(site.run(addr, "tampered", page(&[(&latest, &token)])), [BLOCKED], "{name}: a changed byte in latest/");
}

/// `GET target` over TCP, read until the server closes or resets the connection.
fn raw_get(addr: SocketAddr, target: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let (mut raw, mut buf) = (Vec::new(), [0u8; 16 * 1024]);
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return raw,
            Err(e) => panic!("reading {target}: {e}"),
        }
    }
}
