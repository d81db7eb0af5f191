//! Issue 15, "Versions page": `serve` answers `GET /` with every published
//! version, newest first, the one `latest/` serves, prereleases marked, each
//! file's size and SRI, and the ready tags; under `default-src 'self'`, with
//! nothing injectable through file names. Proven in headless Chromium: the
//! tags taken from the rendered page, pasted into another page on another
//! origin, load the SDK with its integrity.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod chromium;
    pub mod cli;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::backends;
use support::chromium::{browser_present, dump_dom, screenshot};
use support::cli::{build_dir, run};
use support::serve::{Served, get};

const EVIL: &str = "a\"><img src=x onerror=alert(1)>.js";

/// A static file server for the test page, on another origin (port).
struct Site(Child, SocketAddr);

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn site(dir: &Path) -> Site {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the page server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Site(child, addr)
}

fn unescape(html: &str) -> String {
    html.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

#[test]
fn the_versions_page_lists_what_the_index_holds_and_its_tags_load_the_sdk() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    run(&backend, cwd.path(), &["publish", dist.to_str().unwrap(), "--version", "0.1.0"]).expect_code(0);
    let evil = build_dir(&[(EVIL, b"1")]);
    run(&backend, cwd.path(), &["publish", evil.path().to_str().unwrap(), "--version", "0.2.0-rc.1"]).expect_code(0);
    let served = Served::start(&backend, cwd.path(), &[]);

    let page = get(served.addr, "/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-security-policy"), Some("default-src 'self'"));
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    let (rc, stable) = (html.find("id=\"v-0.2.0-rc.1\"").unwrap(), html.find("id=\"v-0.1.0\"").unwrap());
    assert!(rc < stable, "newest first");
    assert!(html.contains("0.2.0-rc.1<span class=\"badge\">prerelease</span>"), "{html}");
    assert!(html.contains("0.1.0<span class=\"badge latest\">latest</span>"), "{html}");
    assert!(html.contains("<td>haloagents.umd.js</td><td>6706</td>"), "{html}");
    assert!(!html.contains("<img"), "a file name became markup: {html}");
    assert_eq!(get(served.addr, "/sdk/", &[]).body, page.body);
    assert_eq!(get(served.addr, "/versions.js", &[]).status, 200);

    if !browser_present() {
        return;
    }
    let base = format!("http://{}", served.addr);
    // What a person sees: a screenshot (SDK_CDN_SCREENSHOT_DIR keeps it for a look).
    let shots = tempfile::tempdir().unwrap();
    let png = std::env::var_os("SDK_CDN_SCREENSHOT_DIR").map_or_else(|| shots.path().into(), std::path::PathBuf::from);
    let png = png.join("versions-page.png");
    screenshot(&format!("{base}/"), &png);
    let image = std::fs::read(&png).expect("a screenshot was written");
    assert!(image.starts_with(b"\x89PNG") && image.len() > 10_000, "{} bytes", image.len());
    let dom = dump_dom(&format!("{base}/"));
    assert!(!dom.contains("<img"), "the rendered page holds an injected element: {dom}");
    // The tags as a person copies them from the page (the text of the snippet element).
    let start = dom.find("id=\"snippet-1\">").expect("snippet of 0.1.0") + "id=\"snippet-1\">".len();
    let tags = unescape(&dom[start..start + dom[start..].find("</code>").unwrap()]);
    assert!(tags.contains("integrity=\"sha384-") && tags.contains("crossorigin=\"anonymous\""), "{tags}");

    let pages = tempfile::tempdir().unwrap();
    let result = "<p id=\"result\"></p><script>document.getElementById('result').textContent = \
                  'RESULT=' + typeof window.HaloAgents;</script>";
    std::fs::write(
        pages.path().join("index.html"),
        format!("<!DOCTYPE html><html><body>{tags}\n{result}</body></html>"),
    )
    .unwrap();
    let other_origin = site(pages.path());
    let loaded = dump_dom(&format!("http://{}/index.html", other_origin.1));
    assert!(loaded.contains("RESULT=object"), "the SDK did not run from the copied tags: {loaded}");
}
