//! The install guide's SRI promise, proven in a real browser: headless
//! Chromium loads a page from one origin that includes the sample SDK from
//! `sdk-cdn serve` (the real binary) on another, with `integrity` and
//! `crossorigin="anonymous"`, and the page reports whether the script ran.
//!
//! Needs `chromium` on the PATH (Debian package `chromium`), or any Chromium
//! or Chrome executable named by `SDK_CDN_CHROMIUM` (`.ci/run` sets it to the
//! preinstalled Chrome on GitHub's Ubuntu runners, which have no `chromium`
//! deb). Without one the test prints "skipped: chromium not installed", unless
//! `SDK_CDN_REQUIRE_BROWSER=1` (CI sets it), which turns a missing browser into
//! a failure.

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

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use support::backends;
use support::chromium::{browser_present, dump_dom};
use support::cli::run;
use support::fixtures::sri_of;
use support::serve::{Served, get as http_get};

/// What the page writes into the DOM once its scripts ran.
const LOADED: &str = "RESULT=loaded";
const BLOCKED: &str = "RESULT=blocked";

fn page(src: &str, integrity: Option<&str>) -> String {
    let attributes = match integrity {
        Some(sri) => format!(" integrity=\"{sri}\" crossorigin=\"anonymous\""),
        None => String::new(),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sri</title></head><body>\n\
         <script src=\"{src}\"{attributes}></script>\n\
         <script>\n\
         var p = document.createElement('p'); p.id = 'result';\n\
         p.textContent = 'RESULT=' + (typeof window.HaloAgents === 'undefined' ? 'blocked' : 'loaded');\n\
         document.body.appendChild(p);\n\
         </script></body></html>\n"
    )
}

/// Serves `router` on a fresh 127.0.0.1 port (a separate origin) on the current runtime.
async fn origin(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The `RESULT=…` the page wrote, or the whole DOM in the panic message.
fn result_of(dom: &str) -> &'static str {
    for result in [LOADED, BLOCKED] {
        if dom.contains(&format!("<p id=\"result\">{result}</p>")) {
            return result;
        }
    }
    panic!("the page wrote no result; DOM:\n{dom}");
}

#[test]
fn sri_with_crossorigin_runs_the_right_bytes_and_blocks_wrong_ones_in_a_real_browser() {
    if !browser_present() {
        return;
    }
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let js = std::fs::read(dist.join("haloagents.umd.js")).unwrap();
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    run(&backend, cwd.path(), &["publish", dist.to_str().unwrap(), "--version", "0.1.0"]).expect_code(0);
    let served = Served::start(&backend, cwd.path(), &[]);

    // The integrity value a customer's pipeline would take from the API.
    let api = http_get(served.addr, "/api/sdk/sri", &[]).json();
    let integrity = api["files"]["0.1.0/haloagents.umd.js"].as_str().unwrap().to_string();
    assert_eq!(integrity, sri_of(&js));
    let wrong = sri_of(b"window.HaloAgents = 'tampered';");
    let cdn = format!("{}/sdk/0.1.0/haloagents.umd.js", served.base_url());

    let runtime = backends::runtime();
    // The same bytes from a server that sends no Access-Control-Allow-Origin.
    let bare = runtime.block_on(origin(Router::new().route(
        "/haloagents.umd.js",
        get(move || {
            let js = js.clone();
            async move { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], js) }
        }),
    )));
    let bare = format!("http://{bare}/haloagents.umd.js");

    let cases = [
        ("correct hash, served by sdk-cdn", page(&cdn, Some(&integrity)), LOADED),
        ("wrong hash, served by sdk-cdn", page(&cdn, Some(&wrong)), BLOCKED),
        ("correct hash, no CORS header", page(&bare, Some(&integrity)), BLOCKED),
        ("control: no CORS header, no integrity", page(&bare, None), LOADED),
    ];
    let pages: Router = cases.iter().enumerate().fold(Router::new(), |router, (i, (_, html, _))| {
        let html = html.clone();
        router.route(
            &format!("/case{i}.html"),
            get(move || {
                let html = html.clone();
                async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html) }
            }),
        )
    });
    let site = runtime.block_on(origin(pages));
    assert_ne!(site.port(), served.addr.port(), "the page comes from another origin");

    for (i, (case, _, expected)) in cases.iter().enumerate() {
        let dom = dump_dom(&format!("http://{site}/case{i}.html"));
        assert_eq!(result_of(&dom), *expected, "{case}");
    }
}
