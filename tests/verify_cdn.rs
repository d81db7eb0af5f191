//! `verify --base-url`: checking what browsers get through the CDN, against
//! `sdk-cdn serve` (which sends the right headers) and against a plain static
//! server that does not (no CORS, no cache headers, generic content type).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use support::backends::{self, Backend};
use support::cli::{build_dir, run};
use support::serve::Served;

/// A static file server over the local store's directory with none of the
/// headers SRI and caching need: what a misconfigured CDN looks like.
fn bare_static_server(root: std::path::PathBuf) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let rt = backends::runtime();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/{*path}",
                axum::routing::get(move |axum::extract::Path(path): axum::extract::Path<String>| {
                    let root = root.clone();
                    async move {
                        match std::fs::read(root.join(&path)) {
                            Ok(bytes) => {
                                (axum::http::StatusCode::OK, [("content-type", "application/octet-stream")], bytes)
                            }
                            Err(_) => (axum::http::StatusCode::NOT_FOUND, [("content-type", "text/plain")], Vec::new()),
                        }
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), axum::serve(listener, app)).await;
        });
    });
    (format!("http://{addr}"), handle)
}

#[test]
fn verify_through_serve_is_clean_and_a_bare_static_server_is_caught() {
    let backend = backends::local();
    let Backend::Local(root) = &backend else { unreachable!() };
    let cwd = tempfile::tempdir().unwrap();
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    run(&backend, cwd.path(), &["publish", dist.to_str().unwrap(), "--version", "0.1.0"]).expect_code(0);
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={};"), ("dir with space/a b.css", b"x{}")]);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "0.2.0"]).expect_code(0);

    let served = Served::start(&backend, cwd.path(), &[]);
    let out = run(&backend, cwd.path(), &["verify", "--base-url", &served.base_url(), "--json"]);
    let report = out.expect_code(0).json();
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    served.terminate();

    let (bare, _server) = bare_static_server(root.path().to_path_buf());
    let out = run(&backend, cwd.path(), &["verify", "0.1.0", "--base-url", &bare, "--json"]);
    let report = out.expect_code(3).json()["report"].clone();
    let findings = report["findings"].as_array().unwrap();
    let http: Vec<&str> =
        findings.iter().filter(|f| f["problem"] == "http").map(|f| f["detail"].as_str().unwrap()).collect();
    // 3 files of 0.1.0 and the 2 of latest/ (0.2.0, one under a path with spaces).
    assert_eq!(http.len(), 5, "{findings:#?}");
    for detail in &http {
        assert!(detail.contains("Access-Control-Allow-Origin"), "{detail}");
        assert!(detail.contains("Cache-Control"), "{detail}");
        assert!(detail.contains("Content-Type"), "{detail}");
        assert!(!detail.contains("hashing to"), "the bytes themselves are right: {detail}");
    }
}

#[test]
fn verify_reports_bytes_the_cdn_serves_that_differ_from_the_manifest() {
    let backend = backends::local();
    let Backend::Local(root) = &backend else { unreachable!() };
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"original")]);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    // The origin is compromised: the bytes on disk behind the CDN change.
    std::fs::write(root.path().join("sdk/1.0.0/a.js"), b"tampered").unwrap();
    let (bare, _server) = bare_static_server(root.path().to_path_buf());
    let out = run(&backend, cwd.path(), &["verify", "1.0.0", "--base-url", &bare]);
    out.expect_code(3);
    assert!(out.stderr.contains("the CDN serves bytes hashing to"), "{}", out.stderr);
    let out = run(&backend, cwd.path(), &["verify", "--base-url", "not-a-url"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--base-url"), "{}", out.stderr);
}

/// A copy of the local store at `root` whose `api/sdk/sri` is `index`
/// (`None`: absent), served by a bare static server: a CDN whose index was
/// rewritten, or lost, between the store and the customer.
fn cdn_with_index(root: &std::path::Path, index: Option<&[u8]>) -> (tempfile::TempDir, String) {
    let copy = tempfile::tempdir().unwrap();
    let status =
        std::process::Command::new("cp").arg("-a").arg(format!("{}/.", root.display())).arg(copy.path()).status();
    assert!(status.unwrap().success());
    match index {
        Some(bytes) => std::fs::write(copy.path().join("api/sdk/sri"), bytes).unwrap(),
        None => std::fs::remove_file(copy.path().join("api/sdk/sri")).unwrap(),
    }
    let (url, _server) = bare_static_server(copy.path().to_path_buf());
    (copy, url)
}

#[test]
fn verify_checks_the_index_the_cdn_serves_against_the_seals_and_its_signature() {
    let backend = backends::local();
    let Backend::Local(root) = &backend else { unreachable!() };
    let cwd = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let keygen = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
        .args(["keygen", "--no-password", "--dir", keys.path().to_str().unwrap(), "--name", "release"])
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    let (key, public) = (keys.path().join("release.key"), keys.path().join("release.pub"));
    let sign = ["--sign-key", key.to_str().unwrap()];
    for (version, body) in [("1.0.0", b"one" as &[u8]), ("1.1.0", b"two")] {
        let build = build_dir(&[("a.js", body)]);
        let mut args = vec!["publish", build.path().to_str().unwrap(), "--version", version];
        args.extend(sign);
        run(&backend, cwd.path(), &args).expect_code(0);
    }
    let index = String::from_utf8(backend.read("api/sdk/sri").unwrap()).unwrap();
    let verify = |url: &str| {
        let args = ["verify", "1.0.0", "--base-url", url, "--pubkey", public.to_str().unwrap(), "--json"];
        run(&backend, cwd.path(), &args)
    };
    // The bare server's files lack CORS and cache headers (other findings):
    // only the findings about the index count here.
    let findings = |out: &support::cli::Run| -> Vec<(String, String)> {
        let report = out.json()["report"].clone();
        let list = report["findings"].as_array().unwrap_or_else(|| panic!("{report}")).clone();
        list.iter()
            .filter(|f| f["key"].as_str().unwrap().ends_with("/api/sdk/sri"))
            .map(|f| (f["problem"].as_str().unwrap().into(), f["detail"].as_str().unwrap().into()))
            .collect()
    };

    // The CDN serves the store's own index, and its signature proves it.
    let (_copy, url) = cdn_with_index(root.path(), Some(index.as_bytes()));
    let out = verify(&url);
    assert_eq!(findings(&out), vec![], "{}", out.stdout);

    // A hash of a sealed version rewritten at the CDN: a lie, and no signature proves it.
    let sealed = serde_json::from_str::<serde_json::Value>(&index).unwrap()["files"]["1.0.0/a.js"].clone();
    let sealed = sealed.as_str().unwrap();
    let forged = index.replace(sealed, &format!("sha384-{}", "A".repeat(64)));
    let (_copy, url) = cdn_with_index(root.path(), Some(forged.as_bytes()));
    let out = verify(&url);
    out.expect_code(3);
    let found = findings(&out);
    assert!(
        found.iter().any(|(p, d)| p == "http" && d.contains("1.0.0/a.js") && d.contains("contradicts")),
        "{found:?}"
    );
    assert!(found.iter().any(|(p, d)| p == "signature" && d.contains("index")), "{found:?}");

    // An entry for a version that was never published.
    let invented = index.replace("\"1.1.0/a.js\"", "\"9.9.9/a.js\"");
    let (_copy, url) = cdn_with_index(root.path(), Some(invented.as_bytes()));
    let out = verify(&url);
    out.expect_code(3);
    assert!(findings(&out).iter().any(|(_, d)| d.contains("version 9.9.9 is not published")), "{:?}", findings(&out));

    // The version field changed: latest/ entries must then be that version's files.
    assert!(index.contains("\"version\": \"1.1.0\""), "{index}");
    for (what, version, hint) in [
        ("an older promotion whose latest/ entries are 1.1.0's", "1.0.0", "latest/a.js is sha384-"),
        ("a promotion of a version never published", "9.9.9", "latest is 9.9.9, which is not published"),
    ] {
        let changed = index.replace("\"version\": \"1.1.0\"", &format!("\"version\": \"{version}\""));
        let (_copy, url) = cdn_with_index(root.path(), Some(changed.as_bytes()));
        let out = verify(&url);
        out.expect_code(3);
        assert!(findings(&out).iter().any(|(p, d)| p == "http" && d.contains(hint)), "{what}: {:?}", findings(&out));
    }

    // No index at the CDN.
    let (_copy, url) = cdn_with_index(root.path(), None);
    let out = verify(&url);
    out.expect_code(3);
    assert!(findings(&out).iter().any(|(p, d)| p == "http" && d.contains("HTTP 404")), "{:?}", findings(&out));
}

#[test]
fn verify_through_a_cdn_that_never_answers_ends_after_the_timeout() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"one")]);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let out = run(&backend, cwd.path(), &["--timeout", "1", "verify", "--base-url", &url, "--json"]);
    out.expect_code(3);
    let report = out.json()["report"].clone();
    let details: Vec<&str> =
        report["findings"].as_array().unwrap().iter().map(|f| f["detail"].as_str().unwrap()).collect();
    // The file (1.0.0 and latest/) and the index, each after the --timeout given, not 30 s.
    assert!(details.len() >= 3 && details.iter().all(|d| d.contains("within 1s (--timeout)")), "{details:?}");
}
