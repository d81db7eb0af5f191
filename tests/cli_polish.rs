//! The CLI as users and CI systems meet it: completions, man page, help with
//! examples, one JSON object per command, the public formats against their
//! JSON Schemas, and the CDN purge hooks.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
    pub mod tools;
}

use std::path::Path;

use serde_json::Value;
use support::backends::{self, Backend, backend_test};
use support::cli::{build_dir, run, run_without_store};

const SCHEMA_BASE: &str = "https://github.com/haloagents/sdk-cdn/docs/schemas/";

#[test]
fn completions_are_generated_for_every_major_shell() {
    let cwd = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run_without_store(cwd.path(), &["completions", shell]);
        out.expect_code(0);
        for command in ["publish", "promote", "verify", "serve"] {
            assert!(out.stdout.contains(command), "{shell} completions lack {command}");
        }
    }
    run_without_store(cwd.path(), &["completions", "tcsh"]).expect_code(2);
}

/// Renders a man page as `man -l` does; the rendering must succeed without warnings.
fn render_man(page: &Path) -> String {
    let out = std::process::Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("run man");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "man -l {}: {stderr}", page.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn there_is_a_man_page_per_command_and_each_renders() {
    let cwd = tempfile::tempdir().unwrap();
    let top = run_without_store(cwd.path(), &["man"]);
    assert!(top.expect_code(0).stdout.contains(".TH sdk-cdn 1"), "not a man page");
    let publish = run_without_store(cwd.path(), &["man", "publish"]);
    assert!(publish.expect_code(0).stdout.contains(".TH sdk-cdn-publish 1"), "{}", publish.stdout);
    run_without_store(cwd.path(), &["man", "publsh"]).expect_code(2);
    if !support::tools::tools_present(&["man"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    run_without_store(cwd.path(), &["man", "--dir", "pages"]).expect_code(0);
    let top = render_man(&cwd.path().join("pages/sdk-cdn.1"));
    // Every page the top level refers to exists, renders, and shows its command's flags and examples.
    let commands = ["publish", "promote", "sri", "snippet", "list", "verify", "reindex", "discard", "doctor", "serve"];
    for command in commands.into_iter().chain(["completions", "man"]) {
        let name = format!("sdk-cdn-{command}");
        assert!(top.contains(&format!("{name}(1)")), "sdk-cdn(1) does not refer to {name}(1)");
        let page = render_man(&cwd.path().join(format!("pages/{name}.1")));
        let name_line = page.split("NAME").nth(1).and_then(|rest| rest.split_whitespace().next());
        assert_eq!(name_line, Some(name.as_str()), "{name}(1) has no NAME section:\n{page}");
        assert!(page.contains("Example"), "{name}(1) has no example:\n{page}");
    }
    let publish = render_man(&cwd.path().join("pages/sdk-cdn-publish.1"));
    assert!(publish.contains("--dry-run") && publish.contains("--no-promote"), "{publish}");
}

#[test]
fn every_help_teaches_with_an_example() {
    let cwd = tempfile::tempdir().unwrap();
    let top = run_without_store(cwd.path(), &["--help"]);
    assert!(top.expect_code(0).stdout.contains("Examples:"), "{}", top.stdout);
    assert!(top.stdout.contains("Exit codes:"));
    let commands = [
        "publish",
        "promote",
        "sri",
        "snippet",
        "list",
        "verify",
        "reindex",
        "discard",
        "doctor",
        "serve",
        "completions",
        "man",
    ];
    for command in commands {
        let out = run_without_store(cwd.path(), &[command, "--help"]);
        out.expect_code(0);
        assert!(out.stdout.contains("Example"), "`sdk-cdn {command} --help` has no example:\n{}", out.stdout);
    }
}

#[test]
fn every_command_prints_one_json_object_with_json() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1"), ("a.css", b"2")]);
    let b = build.path().to_str().unwrap();
    let commands: Vec<(Vec<&str>, &str)> = vec![
        (vec!["publish", b, "--version", "1.0.0", "--dry-run"], "dry_run"),
        (vec!["publish", b, "--version", "1.0.0"], "outcome"),
        (vec!["promote", "1.0.0"], "changed"),
        (vec!["sri"], "files"),
        (vec!["sri", "1.0.0"], "files"),
        (vec!["sri", "1.0.0", "--file", "a.js"], "integrity"),
        (vec!["snippet", "1.0.0", "--file", "a.js"], "html"),
        (vec!["list"], "versions"),
        (vec!["verify"], "findings"),
        (vec!["reindex"], "changed"),
        (vec!["discard", "2.0.0"], "deleted"),
        (vec!["doctor"], "checks"),
        (vec!["completions", "bash"], "script"),
        (vec!["man"], "man"),
        (vec!["man", "publish"], "man"),
    ];
    for (args, field) in commands {
        let mut with_json = args.clone();
        with_json.push("--json");
        let out = run(&backend, cwd.path(), &with_json);
        out.expect_code(0);
        let value = out.json();
        assert!(value.is_object() && value.get(field).is_some(), "{args:?}: no {field:?} in {value}");
        assert_eq!(out.stdout.trim().lines().count(), 1, "{args:?}: one object, one line");
    }
    // Errors too: one object with the exit code and the message.
    let out = run(&backend, cwd.path(), &["promote", "9.9.9", "--json"]);
    let value = out.expect_code(2).json();
    assert_eq!((value["ok"].as_bool(), value["exit_code"].as_u64()), (Some(false), Some(2)));
    assert!(value["error"].as_str().unwrap().contains("9.9.9"));
}

#[test]
fn json_usage_errors_print_one_json_object_too() {
    let cwd = tempfile::tempdir().unwrap();
    let usage_errors: [&[&str]; 5] = [
        &["--json", "publish", "d", "--version", "v1.2.0"],
        &["--json", "publish"],
        &["--json", "publsh"],
        &["--json"],
        &["sri", "--json", "--file", "a.js"],
    ];
    for args in usage_errors {
        let out = run_without_store(cwd.path(), args);
        let value = out.expect_code(2).json();
        assert_eq!(out.stdout.trim().lines().count(), 1, "{args:?}: one object, one line");
        assert_eq!((value["ok"].as_bool(), value["exit_code"].as_u64()), (Some(false), Some(2)), "{args:?}");
        assert!(!value["error"].as_str().unwrap().is_empty(), "{args:?}");
        assert!(out.stderr.contains("error:"), "{args:?}: the message also goes to stderr");
    }
    let value = run_without_store(cwd.path(), &["--json", "publish", "d", "--version", "v1.2.0"]).json();
    assert!(value["error"].as_str().unwrap().contains("use 1.2.0"), "{value}");
    // --help and --version are not errors: exit 0, one object.
    let help = run_without_store(cwd.path(), &["--json", "publish", "--help"]);
    assert!(help.expect_code(0).json()["help"].as_str().unwrap().contains("Examples:"));
    let version = run_without_store(cwd.path(), &["--version", "--json"]);
    assert_eq!(version.expect_code(0).json()["version"], env!("CARGO_PKG_VERSION"));
    // After `--`, `--json` is an argument, not the flag.
    let out = run_without_store(cwd.path(), &["publish", "--", "--json"]);
    assert!(out.expect_code(2).stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn quiet_prints_only_errors_and_the_data_asked_for() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    let b = build.path().to_str().unwrap();
    let silent: [&[&str]; 6] = [
        &["-q", "publish", b, "--version", "1.0.0"],
        &["-q", "publish", b, "--version", "1.0.0"],
        &["-q", "promote", "1.0.0"],
        &["-q", "verify"],
        &["-q", "reindex"],
        &["-q", "doctor"],
    ];
    for args in silent {
        let out = run(&backend, cwd.path(), args);
        out.expect_code(0);
        assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""), "{args:?} is not quiet");
    }
    // The data a command exists to print is still printed.
    let out = run(&backend, cwd.path(), &["-q", "sri", "1.0.0", "--file", "a.js"]);
    assert!(out.expect_code(0).stdout.starts_with("sha384-"), "{}", out.stdout);
    // Errors are never silenced.
    let out = run(&backend, cwd.path(), &["-q", "promote", "9.9.9"]);
    assert!(out.expect_code(2).stderr.contains("9.9.9"), "{}", out.stderr);
}

#[test]
fn boolean_environment_variables_take_1_0_yes_no() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let with = |value: &str| {
        let out = support::cli::command(&backend, cwd.path(), &["list"]).env("SDK_CDN_PATH_STYLE", value).output();
        out.unwrap()
    };
    for value in ["1", "0", "yes", "no", "true", "false", "on", "off"] {
        let out = with(value);
        assert!(out.status.success(), "SDK_CDN_PATH_STYLE={value}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = with("maybe");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("maybe"));
}

#[test]
fn snippets_encode_urls_escape_attributes_and_refuse_what_no_tag_loads() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let evil = r#"a"><img src=x onerror=alert(1)>.js"#;
    let files: [(&str, &[u8]); 6] =
        [("a b.js", b"1"), ("x#y.js", b"2"), ("Q?.js", b"3"), (evil, b"4"), ("a.js.map", b"5"), ("s.css", b"6")];
    let build = build_dir(&files);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    let snippet =
        |file: &str, base: &str| run(&backend, cwd.path(), &["snippet", "1.0.0", "--file", file, "--base-url", base]);
    let src = |file: &str| {
        let out = snippet(file, "https://cdn.example.com");
        let tag = out.expect_code(0).stdout.trim().to_string();
        tag.split('"').nth(1).unwrap().to_string()
    };
    assert_eq!(src("a b.js"), "https://cdn.example.com/sdk/1.0.0/a%20b.js");
    assert_eq!(src("x#y.js"), "https://cdn.example.com/sdk/1.0.0/x%23y.js");
    assert_eq!(src("Q?.js"), "https://cdn.example.com/sdk/1.0.0/Q%3F.js");
    let tag = snippet(evil, "https://cdn.example.com").expect_code(0).stdout.clone();
    assert!(!tag.contains("<img"), "the file name broke out of the tag: {tag}");
    assert!(tag.contains("a%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.js"), "{tag}");
    assert!(snippet("s.css", "https://cdn.example.com").expect_code(0).stdout.starts_with("<link rel=\"stylesheet\""));
    // Only files a tag can load, only http(s) base URLs.
    let map = snippet("a.js.map", "https://cdn.example.com");
    assert!(map.expect_code(2).stderr.contains("neither a script"), "{}", map.stderr);
    for base in ["javascript:alert(1)//", "https://c.example/\"><script>", "ftp://c.example"] {
        let out = snippet("a b.js", base);
        assert!(out.expect_code(2).stderr.contains("not an http(s) URL"), "{base}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn reports_say_what_happened_exactly() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    let out = run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]);
    assert!(out.expect_code(0).stdout.contains(": 1 file, 1 byte ("), "{}", out.stdout);
    let verify = run(&backend, cwd.path(), &["verify", "1.0.0"]);
    assert!(verify.expect_code(0).stdout.contains(": 1 version (1.0.0)"), "{}", verify.stdout);
    let reindex = run(&backend, cwd.path(), &["reindex"]);
    assert!(reindex.expect_code(0).stdout.contains("from 1 published version "), "{}", reindex.stdout);
    // Promoting what latest/ already serves: `previous` is that version, not null.
    let promote = run(&backend, cwd.path(), &["promote", "1.0.0", "--json"]).json();
    assert_eq!((promote["changed"].as_bool(), promote["previous"].as_str()), (Some(false), Some("1.0.0")), "{promote}");
    // Discarding a version that never existed succeeds (a retry script may
    // discard first) but says there was nothing.
    let discard = run(&backend, cwd.path(), &["discard", "9.9.9"]);
    assert!(discard.expect_code(0).stdout.starts_with("nothing to discard: 9.9.9"), "{}", discard.stdout);
    let discard = run(&backend, cwd.path(), &["discard", "9.9.9", "--json"]).json();
    assert_eq!(discard["partial_upload"], false, "{discard}");
    // `sri` prints the stored bytes; `--json sri` the same JSON value on one line.
    let text = run(&backend, cwd.path(), &["sri"]);
    assert_eq!(text.expect_code(0).stdout.as_bytes(), backend.read("api/sdk/sri").unwrap());
    let json = run(&backend, cwd.path(), &["sri", "--json"]);
    assert_eq!(json.expect_code(0).stdout.lines().count(), 1);
    assert_eq!(json.json(), serde_json::from_str::<Value>(&text.stdout).unwrap());
}

fn schemas() -> (boon::Schemas, [boon::SchemaIndex; 3]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas");
    let mut compiler = boon::Compiler::new();
    let names = ["sri-index.schema.json", "version-manifest.schema.json", "channel-pointer.schema.json"];
    for name in names {
        let value: Value = serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        compiler.add_resource(&format!("{SCHEMA_BASE}{name}"), value).unwrap();
    }
    let mut schemas = boon::Schemas::new();
    let idx = names.map(|name| compiler.compile(&format!("{SCHEMA_BASE}{name}"), &mut schemas).unwrap());
    (schemas, idx)
}

backend_test!(published_formats_match_their_json_schemas, |backend| {
    let (schemas, [index, manifest, pointer]) = schemas();
    let cwd = tempfile::tempdir().unwrap();
    for (v, body) in [("1.0.0", "a"), ("1.1.0-rc.1", "b"), ("1.1.0", "c")] {
        let build = build_dir(&[("sdk.js", body.as_bytes()), ("sub/dir/x.wasm", b"\0asm")]);
        run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", v]).expect_code(0);
    }
    let json = |key: &str| -> Value { serde_json::from_slice(&backend.read(key).unwrap()).unwrap() };
    let check = |value: &Value, idx: boon::SchemaIndex, what: &str| {
        if let Err(e) = schemas.validate(value, idx) {
            panic!("{}: {what} does not match its schema: {e:#}\n{value:#}", backend.name());
        }
    };
    check(&json("api/sdk/sri"), index, "the SRI index");
    check(&json("manifests/1.1.0-rc.1.json"), manifest, "a manifest");
    check(&json("manifests/channels/latest.json"), pointer, "the pointer");
});

#[test]
fn the_schemas_accept_the_checked_in_sample_and_refuse_bad_shapes() {
    let (schemas, [index, manifest, _]) = schemas();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample: Value = serde_json::from_slice(&std::fs::read(root.join("manifests/sri.json")).unwrap()).unwrap();
    assert!(schemas.validate(&sample, index).is_ok());
    let bad = serde_json::json!({"version": "v1.0.0", "files": {"1.0.0/a.js": "sha256-abc"}});
    assert!(schemas.validate(&bad, index).is_err(), "the schema must refuse a bad index");
    let bad = serde_json::json!({"version": "1.0.0", "files": {}});
    assert!(schemas.validate(&bad, manifest).is_err(), "a manifest lists at least one file");
}

fn purge_script(dir: &Path) -> String {
    format!(
        "printf '%s\\n' \"$@\" >> {}/purged; printf '%s' \"$SDK_CDN_CHANGED_PATHS\" > {}/env",
        dir.display(),
        dir.display()
    )
}

#[test]
fn the_purge_command_gets_exactly_the_paths_that_changed() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let log = tempfile::tempdir().unwrap();
    let script = purge_script(log.path());
    let purged = || std::fs::read_to_string(log.path().join("purged")).unwrap_or_default();
    let (v1, v2) = (build_dir(&[("a.js", b"1")]), build_dir(&[("a.js", b"2")]));
    let publish = |dir: &Path, v: &str| {
        run(&backend, cwd.path(), &["publish", dir.to_str().unwrap(), "--version", v, "--purge-command", &script])
    };
    publish(v1.path(), "1.0.0").expect_code(0);
    assert_eq!(purged(), "/sdk/latest/*\n/api/sdk/sri\n");
    assert_eq!(std::fs::read_to_string(log.path().join("env")).unwrap(), "/sdk/latest/*\n/api/sdk/sri");
    // Identical re-publish: nothing changed, nothing purged.
    publish(v1.path(), "1.0.0").expect_code(0);
    assert_eq!(purged(), "/sdk/latest/*\n/api/sdk/sri\n");
    // An older version: only the index changed.
    publish(v2.path(), "0.9.0").expect_code(0);
    assert_eq!(purged(), "/sdk/latest/*\n/api/sdk/sri\n/api/sdk/sri\n");
    // A failing hook is reported, and the publish still succeeds.
    let out =
        run(&backend, cwd.path(), &["promote", "0.9.0", "--allow-downgrade", "--purge-command", "exit 9", "--json"]);
    let value = out.expect_code(0).json();
    assert_eq!(value["purge"]["command"]["ok"], false);
    assert!(out.stderr.contains("warning:") && out.stderr.contains("exited"), "{}", out.stderr);
    assert_eq!(value["version"], "0.9.0", "the promotion itself happened");
}

#[test]
fn cloudfront_invalidation_runs_against_moto() {
    let Some(endpoint) = std::env::var(support::backends::EXTERNAL_ENDPOINT_ENV).ok().filter(|e| !e.is_empty()) else {
        println!(
            "skipped: set {} to a moto server to test CloudFront invalidations",
            support::backends::EXTERNAL_ENDPOINT_ENV
        );
        return;
    };
    let distribution = support::backends::runtime().block_on(create_distribution(&endpoint));
    let backend = support::backends::external().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    let out =
        support::cli::command(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"])
            .args(["--invalidate-cloudfront", &distribution, "--json"])
            .env("AWS_ENDPOINT_URL_CLOUDFRONT", &endpoint)
            .output()
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["purge"]["cloudfront"]["ok"], true, "{value}");
    let paths = support::backends::runtime().block_on(invalidated_paths(&endpoint, &distribution));
    assert_eq!(paths, ["/sdk/latest/*", "/api/sdk/sri"]);

    // An unknown distribution: reported, the publish still succeeds.
    let again = build_dir(&[("a.js", b"2")]);
    let out =
        support::cli::command(&backend, cwd.path(), &["publish", again.path().to_str().unwrap(), "--version", "1.1.0"])
            .args(["--invalidate-cloudfront", "ENOSUCHDIST", "--json"])
            .env("AWS_ENDPOINT_URL_CLOUDFRONT", &endpoint)
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["purge"]["cloudfront"]["ok"], false, "{value}");
    let _: &Backend = &backend;
}

fn cloudfront_client(endpoint: &str) -> aws_sdk_cloudfront::Client {
    use aws_sdk_cloudfront::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_cloudfront::Config::builder()
        .http_client(sdk_cdn::https::aws_client().expect("TLS trust roots"))
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    aws_sdk_cloudfront::Client::from_conf(config)
}

async fn create_distribution(endpoint: &str) -> String {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig, ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("cdn-bucket")
        .domain_name("cdn-bucket.s3.amazonaws.com")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(format!("sdk-cdn-test-{}", std::process::id()))
        .comment("sdk-cdn test")
        .enabled(true)
        .origins(Origins::builder().quantity(1).items(origin).build().unwrap())
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("cdn-bucket")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = cloudfront_client(endpoint).create_distribution().distribution_config(config).send().await.unwrap();
    out.distribution().unwrap().id().to_string()
}

async fn invalidated_paths(endpoint: &str, distribution: &str) -> Vec<String> {
    let client = cloudfront_client(endpoint);
    let list = client.list_invalidations().distribution_id(distribution).send().await.unwrap();
    let summary = list.invalidation_list().unwrap().items();
    assert_eq!(summary.len(), 1, "one invalidation");
    let got = client.get_invalidation().distribution_id(distribution).id(summary[0].id()).send().await.unwrap();
    got.invalidation().unwrap().invalidation_batch().unwrap().paths().unwrap().items().to_vec()
}

/// A stand-in for CloudFront's API on 127.0.0.1 that checks each request's
/// SigV4 signature the way CloudFront does (recomputed from what arrived on
/// the wire, with its own secret, scope `us-east-1/cloudfront`) and answers
/// from a script. moto (the test above, in CI) checks the API shape but no
/// signature; this checks the signature but is not CloudFront.
mod fake_cloudfront {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};

    pub const ACCESS_KEY: &str = "AKIDFAKECLOUDFRONT";
    pub const SECRET_KEY: &str = "fake-cloudfront-secret";
    pub const SESSION_TOKEN: &str = "fake-session-token";

    /// What one request looked like.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: String,
        pub path: String,
        pub body: String,
        /// `Ok(())` when the signature is CloudFront-valid, else why not.
        pub signature: Result<(), String>,
    }

    #[derive(Default)]
    struct Shared {
        answers: Vec<(u16, String)>,
        seen: Vec<Seen>,
    }

    pub struct Server {
        pub endpoint: String,
        shared: Arc<Mutex<Shared>>,
        _runtime: tokio::runtime::Runtime,
    }

    impl Server {
        pub fn start() -> Server {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let shared = Arc::new(Mutex::new(Shared::default()));
            let app = axum::Router::new().fallback(answer).with_state(shared.clone());
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let endpoint = format!("http://{}", listener.local_addr().unwrap());
            runtime.spawn(async move { axum::serve(listener, app).await });
            Server { endpoint, shared, _runtime: runtime }
        }

        /// The answers to the next requests, in order (status, XML body).
        pub fn script(&self, answers: &[(u16, &str)]) {
            self.shared.lock().unwrap().answers = answers.iter().map(|(s, b)| (*s, b.to_string())).collect();
        }

        /// The requests since the last call.
        pub fn take(&self) -> Vec<Seen> {
            std::mem::take(&mut self.shared.lock().unwrap().seen)
        }
    }

    async fn answer(
        State(shared): State<Arc<Mutex<Shared>>>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let signature = check_signature(&method, &uri, &headers, &body);
        let mut shared = shared.lock().unwrap();
        let body = String::from_utf8_lossy(&body).into_owned();
        shared.seen.push(Seen { method: method.to_string(), path: uri.path().to_string(), body, signature });
        let (status, xml) = if shared.answers.is_empty() { (500, String::new()) } else { shared.answers.remove(0) };
        (StatusCode::from_u16(status).unwrap(), xml)
    }

    /// Recomputes the signature over the signed headers as received.
    fn check_signature(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).ok_or(format!("no {name} header"));
        let authorization = header("authorization")?;
        let field = |name: &str| {
            authorization
                .split([' ', ','])
                .find_map(|part| part.strip_prefix(name))
                .ok_or(format!("no {name} in {authorization}"))
        };
        let scope = field("Credential=")?;
        let date = header("x-amz-date")?;
        let expected_scope = format!("{ACCESS_KEY}/{}/us-east-1/cloudfront/aws4_request", &date[..8]);
        if scope != expected_scope {
            return Err(format!("credential scope {scope}, expected {expected_scope}"));
        }
        if header("x-amz-security-token")? != SESSION_TOKEN {
            return Err("wrong session token".into());
        }
        let signed: Vec<&str> = field("SignedHeaders=")?.split(';').collect();
        for required in ["host", "x-amz-date", "x-amz-security-token"] {
            if !signed.contains(&required) {
                return Err(format!("{required} is not signed ({signed:?})"));
            }
        }
        let pairs: Vec<(&str, &str)> =
            signed.iter().map(|name| Ok((*name, header(name)?))).collect::<Result<_, String>>()?;
        let identity = Credentials::new(ACCESS_KEY, SECRET_KEY, Some(SESSION_TOKEN.into()), None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("cloudfront")
            .time(amz_date(date)?)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let url = format!("http://{}{}", header("host")?, uri.path_and_query().map_or("/", |p| p.as_str()));
        let request = SignableRequest::new(method.as_str(), url, pairs.into_iter(), SignableBody::Bytes(body)).unwrap();
        let (_, expected) = sign(request, &params).unwrap().into_parts();
        match field("Signature=")? {
            got if got == expected => Ok(()),
            got => Err(format!("signature {got}, expected {expected}")),
        }
    }

    /// `YYYYMMDDTHHMMSSZ` as a time.
    fn amz_date(text: &str) -> Result<SystemTime, String> {
        let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
            text.get(range).and_then(|s| s.parse().ok()).ok_or(format!("bad x-amz-date {text}"))
        };
        let (y, m, d) = (number(0..4)?, number(4..6)?, number(6..8)?);
        // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
        let seconds = days * 86_400 + number(9..11)? * 3600 + number(11..13)? * 60 + number(13..15)?;
        Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).map_err(|e| e.to_string())?))
    }
}

const CREATED: &str = r#"<?xml version="1.0"?><Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status></Invalidation>"#;
const NO_SUCH_DISTRIBUTION: &str = r#"<?xml version="1.0"?><ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Error><Type>Sender</Type><Code>NoSuchDistribution</Code><Message>The specified distribution does not exist.</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
const THROTTLED: &str = r#"<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#;

#[test]
fn cloudfront_invalidations_are_signed_retried_and_reported() {
    let cloudfront = fake_cloudfront::Server::start();
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let publish = |version: &str, body: &[u8], credentials: bool| {
        let build = build_dir(&[("a.js", body)]);
        let mut cmd = support::cli::command(
            &backend,
            cwd.path(),
            &["publish", build.path().to_str().unwrap(), "--version", version],
        );
        cmd.args(["--invalidate-cloudfront", "EDFDVBD6EXAMPLE", "--json"])
            .env("AWS_ENDPOINT_URL_CLOUDFRONT", &cloudfront.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", cwd.path().join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", cwd.path().join("no-credentials"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE");
        if credentials {
            cmd.env("AWS_ACCESS_KEY_ID", fake_cloudfront::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", fake_cloudfront::SECRET_KEY)
                .env("AWS_SESSION_TOKEN", fake_cloudfront::SESSION_TOKEN);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "a purge never fails the publish\n{stdout}\n{stderr}");
        (serde_json::from_str::<Value>(&stdout).unwrap(), stderr)
    };

    // Throttled, then a 503, then created: three signed attempts of one invalidation.
    cloudfront.script(&[(400, THROTTLED), (503, ""), (201, CREATED)]);
    let (value, _) = publish("1.0.0", b"1", true);
    assert_eq!(value["purge"]["cloudfront"]["ok"], true, "{value}");
    assert_eq!(value["purge"]["cloudfront"]["detail"], "invalidation I2J0I21PCUYOIK");
    let seen = cloudfront.take();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    for request in &seen {
        assert_eq!(request.signature, Ok(()), "{request:#?}");
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation");
        assert!(
            request.body.contains(
                "<Paths><Quantity>2</Quantity><Items><Path>/sdk/latest/*</Path><Path>/api/sdk/sri</Path></Items></Paths>"
            ),
            "{}",
            request.body
        );
    }
    assert!(seen.iter().all(|r| r.body == seen[0].body), "one caller reference for every attempt");

    // A refusal is not retried, and the warning says what CloudFront said.
    cloudfront.script(&[(404, NO_SUCH_DISTRIBUTION)]);
    let (value, stderr) = publish("1.1.0", b"2", true);
    assert_eq!(value["purge"]["cloudfront"]["ok"], false, "{value}");
    let detail = value["purge"]["cloudfront"]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "CloudFront invalidation of EDFDVBD6EXAMPLE failed: NoSuchDistribution: The specified distribution does not exist.; the publish succeeded"
        ),
        "{detail}"
    );
    assert!(stderr.contains(detail), "{stderr}");
    assert_eq!(cloudfront.take().len(), 1);

    // No credentials anywhere: nothing is sent, and the warning says so.
    cloudfront.script(&[(201, CREATED)]);
    let (value, _) = publish("1.2.0", b"3", false);
    let detail = value["purge"]["cloudfront"]["detail"].as_str().unwrap();
    assert!(detail.contains("failed: NoCredentials: "), "{detail}");
    assert!(cloudfront.take().is_empty(), "an unsigned request was sent");
}
