//! `publish`, `promote`, `sri`, `snippet` and `list`, driven through the real
//! binary against every backend (local, in-process S3, and moto in CI).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
}

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::backends::{self, Backend, backend_test};
use support::cli::{build_dir, run, spawn, wait};
use support::fixtures::{Files, IMMUTABLE, LATEST, publish_dir as publish, sri_of};

const V1: Files = &[
    ("haloagents.umd.js", b"window.HaloAgents={v:1};"),
    ("haloagents.css", b".ha-launcher{color:red}"),
    ("haloagents.umd.js.map", b"{\"version\":3,\"mappings\":\"\"}"),
    ("chunks/worker.wasm", b"\0asm\x01\0\0\0"),
    ("data/config.json", b"{\"a\":1}"),
];
const V2: Files =
    &[("haloagents.umd.js", b"window.HaloAgents={v:2};"), ("haloagents.css", b".ha-launcher{color:blue}")];

fn index(backend: &Backend) -> Value {
    serde_json::from_slice(&backend.read("api/sdk/sri").expect("index exists")).unwrap()
}

fn expected_entries(dir: &str, files: Files) -> BTreeMap<String, String> {
    files.iter().map(|(p, b)| (format!("{dir}/{p}"), sri_of(b))).collect()
}

fn latest_keys(backend: &Backend) -> Vec<String> {
    backend.snapshot().into_keys().filter(|k| k.starts_with("sdk/latest/")).collect()
}

backend_test!(publish_writes_the_layout_headers_and_integrity, |backend| {
    let name = backend.name();
    let (build, cwd) = (build_dir(V1), tempfile::tempdir().unwrap());
    let out = publish(&backend, cwd.path(), build.path(), "1.0.0", &[]);
    out.expect_code(0);
    assert!(out.stdout.contains("latest/ now serves 1.0.0"), "{name}: {}", out.stdout);

    let snap = backend.snapshot();
    for (path, bytes) in V1 {
        let versioned = &snap[&format!("sdk/1.0.0/{path}")];
        let latest = &snap[&format!("sdk/latest/{path}")];
        assert_eq!(versioned.sri.as_deref(), Some(sri_of(bytes).as_str()), "{name}: {path} sri metadata");
        assert_eq!(versioned.cache_control, IMMUTABLE, "{name}: {path}");
        assert_eq!(latest.cache_control, LATEST, "{name}: {path}");
        assert_eq!(latest.sha256, versioned.sha256, "{name}: latest/{path} holds the same bytes");
        assert_eq!(latest.content_type, versioned.content_type, "{name}: {path}");
    }
    let ct = |p: &str| snap[&format!("sdk/1.0.0/{p}")].content_type.clone();
    assert_eq!(ct("haloagents.umd.js"), "text/javascript; charset=utf-8", "{name}");
    assert_eq!(ct("haloagents.css"), "text/css; charset=utf-8", "{name}");
    assert_eq!(ct("haloagents.umd.js.map"), "application/json", "{name}");
    assert_eq!(ct("chunks/worker.wasm"), "application/wasm", "{name}");
    assert_eq!(ct("data/config.json"), "application/json", "{name}");
    let sri = &snap["api/sdk/sri"];
    assert_eq!((sri.content_type.as_str(), sri.cache_control.as_str()), ("application/json", "public, max-age=60"));
    assert!(snap.contains_key("manifests/1.0.0.json") && snap.contains_key("manifests/channels/latest.json"));

    // The index customers fetch: every file of the version plus latest/, values computed independently.
    let mut files = expected_entries("1.0.0", V1);
    files.extend(expected_entries("latest", V1));
    assert_eq!(index(&backend), json!({ "version": "1.0.0", "files": files }), "{name}");

    // Local copies for the CI job equal what the store holds.
    let local_index = std::fs::read(cwd.path().join("manifests/sri.json")).unwrap();
    assert_eq!(local_index, backend.read("api/sdk/sri").unwrap(), "{name}");
    let local_manifest = std::fs::read(cwd.path().join("manifests/1.0.0.json")).unwrap();
    assert_eq!(local_manifest, backend.read("manifests/1.0.0.json").unwrap(), "{name}");
});

backend_test!(republish_of_identical_bytes_is_a_noop_without_writes, |backend| {
    let name = backend.name();
    let (build, cwd) = (build_dir(V1), tempfile::tempdir().unwrap());
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    let before = backend.snapshot();
    let (writes, requests) = (backend.writes(), backend.requests());
    let out = publish(&backend, cwd.path(), build.path(), "1.0.0", &["--json"]);
    let (writes_after, requests_after) = (backend.writes(), backend.requests());
    out.expect_code(0);
    assert_eq!(out.json()["outcome"], "already_published", "{name}");
    assert_eq!(out.json()["uploaded"], 0, "{name}");
    assert_eq!(backend.snapshot(), before, "{name}: the store is unchanged");
    if let (Some(w0), Some(r0), Some(w1), Some(r1)) = (writes, requests, writes_after, requests_after) {
        assert_eq!(w1 - w0, 0, "{name}: an identical re-publish makes no write request");
        // One round of reads: manifest, whether the index is signed, pointer, index,
        // the version's listing, its intent and latest/'s listing: a constant, not one per file.
        assert!(r1 - r0 <= 7, "{name}: {} requests for a no-op re-publish", r1 - r0);
    }
});

backend_test!(republish_repairs_a_latest_dir_that_lost_or_gained_files, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let (v1, v2) = (build_dir(V1), build_dir(V2));
    publish(&backend, cwd.path(), v1.path(), "1.0.0", &[]).expect_code(0);
    publish(&backend, cwd.path(), v2.path(), "1.1.0", &[]).expect_code(0);
    let [(first, _), (second, _)] = V2 else { panic!("V2 has two files") };
    let damages: [(&str, &dyn Fn()); 3] = [
        ("a file deleted", &|| backend.delete(&format!("sdk/latest/{first}"))),
        ("a file replaced by other bytes", &|| backend.put_raw(&format!("sdk/latest/{second}"), b"tampered, longer")),
        ("a stray file", &|| backend.put_raw("sdk/latest/stray.js", b"x")),
    ];
    for (what, damage) in damages {
        // Re-publishing the version latest/ serves, then an older one: both repair it.
        for (build, version) in [(&v2, "1.1.0"), (&v1, "1.0.0")] {
            damage();
            run(&backend, cwd.path(), &["verify"]).expect_code(3);
            let out = publish(&backend, cwd.path(), build.path(), version, &[]);
            out.expect_code(0);
            assert!(out.stdout.contains("latest/ serves 1.1.0"), "{name}: {what}: {}", out.stdout);
            run(&backend, cwd.path(), &["verify"]).expect_code(0);
        }
    }
});

/// The real release: three files.
const SDK_V1: Files = &[
    ("haloagents.umd.js", b"window.HaloAgents={v:1};"),
    ("haloagents.css", b".ha-launcher{color:red}"),
    ("haloagents.umd.js.map", b"{\"version\":3,\"mappings\":\"\"}"),
];
const SDK_V2: Files = &[
    ("haloagents.umd.js", b"window.HaloAgents={v:2};"),
    ("haloagents.css", b".ha-launcher{color:blue}"),
    ("haloagents.umd.js.map", b"{\"version\":3,\"mappings\":\";\"}"),
];

/// Issue 16: a store a round trip away. The in-process server answers every
/// request after 100 ms, so requests sent at once overlap and count once; the
/// server measures the longest chain of requests each sent only after the
/// one before was answered. On a loaded machine a request sent at once with
/// others can still leave the client late enough to look sequential, so
/// each count is the lower of two runs on fresh servers.
#[test]
fn a_small_sdk_publishes_in_few_sequential_round_trips() {
    if std::env::var_os(backends::EXTERNAL_ONLY_ENV).is_some() {
        return;
    }
    let (v1, v2) = (build_dir(SDK_V1), build_dir(SDK_V2));
    let counts = |_| {
        let backend = backends::in_process();
        let Backend::InProcess(server) = &backend else { unreachable!("in_process() is the in-process server") };
        server.set_latency(std::time::Duration::from_millis(100));
        let cwd = tempfile::tempdir().unwrap();
        let round_trips = |dir: &std::path::Path, version: &str| {
            let mark = backend.span_mark();
            publish(&backend, cwd.path(), dir, version, &[]).expect_code(0);
            backend.round_trips_since(mark).expect("the in-process server counts")
        };
        let counts = [
            round_trips(v1.path(), "1.0.0"),
            round_trips(v2.path(), "1.1.0"),
            round_trips(v2.path(), "1.1.0"),
            round_trips(v1.path(), "1.0.0"),
        ];
        assert_eq!(index(&backend)["version"], "1.1.0");
        counts
    };
    let (a, b) = (counts(0), counts(1));
    let [into_empty, onto_previous, noop_latest, noop_older] = std::array::from_fn(|i| a[i].min(b[i]));
    let counts = format!(
        "first publish into an empty store {into_empty}, onto a previous release {onto_previous}; no-op \
         re-publish of latest {noop_latest}, of an older version {noop_older} (runs: {a:?}, {b:?})"
    );
    eprintln!("round trips: {counts}");
    // publish.rs names the nine and why each waits for the one before it.
    assert!(into_empty <= 9 && onto_previous <= 9, "{counts}");
    // One round of reads; the older version's also reads the manifest latest/ serves.
    assert!(noop_latest <= 1 && noop_older <= 2, "{counts}");
}

backend_test!(republish_with_different_bytes_is_refused_and_writes_nothing, |backend| {
    let name = backend.name();
    let (build, cwd) = (build_dir(V1), tempfile::tempdir().unwrap());
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    let before = backend.snapshot();
    let changed = build_dir(&[
        ("haloagents.umd.js", b"window.HaloAgents={evil:true};"),
        ("haloagents.css", b".ha-launcher{color:red}"),
        ("haloagents.umd.js.map", b"{\"version\":3,\"mappings\":\"\"}"),
        ("chunks/worker.wasm", b"\0asm\x01\0\0\0"),
        ("extra.js", b"1"),
    ]);
    let out = publish(&backend, cwd.path(), changed.path(), "1.0.0", &[]);
    out.expect_code(3);
    for expected in ["haloagents.umd.js", "extra.js", "data/config.json", "immutable"] {
        assert!(out.stderr.contains(expected), "{name}: the refusal names {expected}: {}", out.stderr);
    }
    assert_eq!(backend.snapshot(), before, "{name}: nothing was written");
});

backend_test!(an_interrupted_upload_is_completed_by_rerunning, |backend| {
    let name = backend.name();
    let (build, cwd) = (build_dir(V1), tempfile::tempdir().unwrap());
    // What a crash after the first upload leaves: one file, no seal.
    let store = backend.store();
    let partial = |path: &str, bytes: &'static [u8]| {
        let key = sdk_cdn::store::Key::new(format!("sdk/1.0.0/{path}")).unwrap();
        let headers = sdk_cdn::store::Headers::default();
        let body = sdk_cdn::store::Body::Bytes(bytes::Bytes::from_static(bytes));
        backends::runtime().block_on(store.put(&key, body, &headers, sdk_cdn::store::PutMode::Create)).unwrap();
    };
    partial("haloagents.umd.js", V1[0].1);
    let list = run(&backend, cwd.path(), &["list", "--json"]);
    assert_eq!(list.expect_code(0).json()["versions"][0]["state"], "partial", "{name}");
    let out = publish(&backend, cwd.path(), build.path(), "1.0.0", &["--json"]);
    out.expect_code(0);
    assert_eq!((out.json()["uploaded"].as_u64(), out.json()["already_present"].as_u64()), (Some(4), Some(1)), "{name}");
    assert!(index(&backend)["files"]["1.0.0/haloagents.css"].is_string(), "{name}");
});

backend_test!(a_partial_upload_with_other_bytes_is_refused_naming_the_file, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let store = backend.store();
    let key = sdk_cdn::store::Key::new("sdk/3.0.0/haloagents.umd.js").unwrap();
    let body = sdk_cdn::store::Body::Bytes(bytes::Bytes::from_static(b"someone else's build"));
    let headers = sdk_cdn::store::Headers::default();
    backends::runtime().block_on(store.put(&key, body, &headers, sdk_cdn::store::PutMode::Create)).unwrap();
    let before = backend.snapshot();
    let build = build_dir(V1);
    let out = publish(&backend, cwd.path(), build.path(), "3.0.0", &[]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("partially uploaded") && out.stderr.contains("haloagents.umd.js"),
        "{name}: {}",
        out.stderr
    );
    assert!(out.stderr.contains("sdk-cdn discard"), "{name}: the message says how to recover: {}", out.stderr);
    assert_eq!(backend.snapshot(), before, "{name}: nothing was written");
});

backend_test!(prereleases_and_older_versions_are_published_but_not_promoted, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let (v1, v2) = (build_dir(V1), build_dir(V2));
    publish(&backend, cwd.path(), v1.path(), "1.0.0", &[]).expect_code(0);
    let rc = publish(&backend, cwd.path(), v2.path(), "1.1.0-rc.1", &[]);
    rc.expect_code(0);
    assert!(rc.stdout.contains("prerelease"), "{name}: {}", rc.stdout);
    let old = publish(&backend, cwd.path(), v2.path(), "0.9.0", &[]);
    old.expect_code(0);
    assert!(old.stdout.contains("newer"), "{name}: {}", old.stdout);
    let idx = index(&backend);
    assert_eq!(idx["version"], "1.0.0", "{name}");
    for entry in ["1.1.0-rc.1/haloagents.umd.js", "0.9.0/haloagents.css", "1.0.0/chunks/worker.wasm"] {
        assert!(idx["files"][entry].is_string(), "{name}: {entry} is in the index");
    }
    assert_eq!(idx["files"]["latest/haloagents.umd.js"], sri_of(V1[0].1), "{name}");
    assert_eq!(latest_keys(&backend).len(), V1.len(), "{name}");
    // --no-promote keeps even a newer stable release out of latest/.
    publish(&backend, cwd.path(), v2.path(), "2.0.0", &["--no-promote"]).expect_code(0);
    assert_eq!(index(&backend)["version"], "1.0.0", "{name}");
});

backend_test!(promote_rolls_back_only_with_a_flag_and_removes_stale_latest_files, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let (v1, v2) = (build_dir(V1), build_dir(V2));
    publish(&backend, cwd.path(), v2.path(), "0.9.0", &[]).expect_code(0);
    publish(&backend, cwd.path(), v1.path(), "1.0.0", &[]).expect_code(0);
    assert_eq!(latest_keys(&backend).len(), V1.len(), "{name}");

    let before = backend.snapshot();
    let refused = run(&backend, cwd.path(), &["promote", "0.9.0"]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("--allow-downgrade"), "{name}: {}", refused.stderr);
    assert_eq!(backend.snapshot(), before, "{name}: a refused promotion changes nothing");

    run(&backend, cwd.path(), &["promote", "0.9.0", "--allow-downgrade"]).expect_code(0);
    let expected: Vec<String> = {
        let mut keys: Vec<String> = V2.iter().map(|(p, _)| format!("sdk/latest/{p}")).collect();
        keys.sort();
        keys
    };
    assert_eq!(latest_keys(&backend), expected, "{name}: latest/ holds exactly 0.9.0's files");
    let idx = index(&backend);
    assert_eq!(idx["version"], "0.9.0", "{name}");
    let latest_entries: BTreeMap<String, Value> = idx["files"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("latest/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let want: BTreeMap<String, Value> =
        expected_entries("latest", V2).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    assert_eq!(latest_entries, want, "{name}: the index agrees with latest/");
    assert_eq!(backend.read("sdk/latest/haloagents.umd.js").unwrap(), V2[0].1, "{name}");
    assert!(idx["files"]["1.0.0/haloagents.umd.js"].is_string(), "{name}: versions stay listed");

    // Forward again, and a prerelease needs its own flag.
    run(&backend, cwd.path(), &["promote", "1.0.0"]).expect_code(0);
    publish(&backend, cwd.path(), v2.path(), "1.1.0-beta.1", &[]).expect_code(0);
    let before = backend.snapshot();
    let pre = run(&backend, cwd.path(), &["promote", "1.1.0-beta.1"]);
    pre.expect_code(2);
    assert!(pre.stderr.contains("--allow-prerelease"), "{name}: {}", pre.stderr);
    assert_eq!(backend.snapshot(), before, "{name}");
    run(&backend, cwd.path(), &["promote", "1.1.0-beta.1", "--allow-prerelease"]).expect_code(0);
    assert_eq!(index(&backend)["version"], "1.1.0-beta.1", "{name}");
    // Promoting something never published is bad input.
    run(&backend, cwd.path(), &["promote", "7.7.7"]).expect_code(2);
});

#[test]
fn bad_input_is_refused_with_exit_2_and_writes_nothing() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let good = build_dir(V1);
    publish(&backend, cwd.path(), good.path(), "1.0.0", &[]).expect_code(0);
    let before = backend.snapshot();
    let empty = tempfile::tempdir().unwrap();
    let with_link = build_dir(V2);
    std::os::unix::fs::symlink("/etc/hostname", with_link.path().join("linked.js")).unwrap();
    let good = good.path().to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["publish", good, "--version", "v1.2.0"], "use 1.2.0"),
        (vec!["publish", good, "--version", "latest"], "channel"),
        (vec!["publish", good, "--version", "1.2.0+build.7"], "build metadata"),
        (vec!["publish", good, "--version", "1.2"], "SemVer"),
        (vec!["publish", "/nonexistent/build", "--version", "1.2.0"], "does not exist"),
        (vec!["publish", empty.path().to_str().unwrap(), "--version", "1.2.0"], "no files"),
        (vec!["publish", with_link.path().to_str().unwrap(), "--version", "1.2.0"], "symbolic link"),
        (vec!["publish", good, "--version", "1.2.0", "--latest-cache-control", "public, immutable"], "immutable"),
        (vec!["promote", "v1.0.0"], "use 1.0.0"),
        (vec!["snippet", "1.0.0", "--file", "nope.js"], "no file"),
        (vec!["sri", "9.9.9"], "not in the SRI index"),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, hint) in cases {
        let out = run(&backend, cwd.path(), &args);
        assert_eq!(out.code, 2, "{args:?} should exit 2: {}", out.stderr);
        assert!(out.stderr.contains(hint), "{args:?}: message should mention {hint:?}: {}", out.stderr);
        assert_eq!(backend.snapshot(), before, "{args:?} wrote to the store");
    }
    for (store, hint) in
        [("gs://bucket", "unsupported scheme"), ("s3://Bad_Bucket", "not a valid bucket name"), ("", "empty")]
    {
        let out =
            support::cli::run_without_store(cwd.path(), &["--store", store, "publish", good, "--version", "2.0.0"]);
        assert_eq!(out.code, 2, "--store {store:?} should exit 2: {}", out.stderr);
        assert!(out.stderr.contains(hint), "--store {store:?}: {}", out.stderr);
    }
    assert_eq!(backend.snapshot(), before);
}

backend_test!(dry_run_prints_the_plan_and_writes_nothing, |backend| {
    let name = backend.name();
    let (build, cwd) = (build_dir(V1), tempfile::tempdir().unwrap());
    let before = backend.snapshot();
    let writes = backend.writes();
    let out = publish(&backend, cwd.path(), build.path(), "1.0.0", &["--dry-run"]);
    out.expect_code(0);
    assert!(out.stdout.contains("sdk/1.0.0/chunks/worker.wasm"), "{name}: {}", out.stdout);
    assert!(out.stdout.contains(&sri_of(V1[0].1)), "{name}: the plan shows integrity");
    assert!(out.stdout.contains("application/wasm") && out.stdout.contains(IMMUTABLE), "{name}");
    assert_eq!(backend.snapshot(), before, "{name}");
    assert_eq!(backend.writes(), writes, "{name}");
    assert!(!cwd.path().join("manifests").exists(), "{name}: no local copies either");
});

backend_test!(concurrent_publishes_of_different_versions_lose_no_index_entry, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let versions = ["1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.3.0", "1.4.0"];
    let builds: Vec<_> = versions
        .iter()
        .map(|v| {
            let js = format!("window.HaloAgents={{v:'{v}'}};").into_bytes().leak() as &'static [u8];
            let extra = format!("only-in-{v}.js");
            build_dir(&[("haloagents.umd.js", js), (extra.leak(), b"x")])
        })
        .collect();
    let children: Vec<_> = versions
        .iter()
        .zip(&builds)
        .map(|(v, b)| {
            spawn(
                &backend,
                cwd.path(),
                &["publish", b.path().to_str().unwrap(), "--version", v, "--manifests-dir", &format!("m-{v}")],
            )
        })
        .collect();
    for (v, child) in versions.iter().zip(children) {
        let out = wait(child);
        assert_eq!(out.code, 0, "{name}: publish {v} failed: {}", out.stderr);
    }
    let idx = index(&backend);
    for v in versions {
        let js = format!("window.HaloAgents={{v:'{v}'}};");
        assert_eq!(idx["files"][format!("{v}/haloagents.umd.js")], sri_of(js.as_bytes()), "{name}: {v} lost");
    }
    assert_eq!(idx["version"], "1.4.0", "{name}: latest ends on the highest");
    let mut expected = vec!["sdk/latest/haloagents.umd.js".to_string(), "sdk/latest/only-in-1.4.0.js".to_string()];
    expected.sort();
    assert_eq!(latest_keys(&backend), expected, "{name}: latest/ holds exactly 1.4.0's files");
    let pointer: Value = serde_json::from_slice(&backend.read("manifests/channels/latest.json").unwrap()).unwrap();
    assert_eq!(pointer, json!({"version": "1.4.0", "synced": true}), "{name}");
});

backend_test!(sri_snippet_and_list_print_what_customers_get, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let (v1, v2) = (build_dir(V1), build_dir(V2));
    publish(&backend, cwd.path(), v1.path(), "1.0.0", &[]).expect_code(0);
    publish(&backend, cwd.path(), v2.path(), "1.1.0-rc.1", &[]).expect_code(0);

    let whole = run(&backend, cwd.path(), &["sri"]);
    assert_eq!(whole.expect_code(0).stdout.as_bytes(), backend.read("api/sdk/sri").unwrap(), "{name}");
    let one = run(&backend, cwd.path(), &["sri", "1.0.0", "--file", "haloagents.css"]);
    assert_eq!(one.expect_code(0).stdout.trim(), sri_of(V1[1].1), "{name}");
    let version = run(&backend, cwd.path(), &["sri", "1.1.0-rc.1", "--json"]);
    let want: BTreeMap<String, String> = expected_entries("1.1.0-rc.1", V2);
    assert_eq!(version.expect_code(0).json(), json!({"version": "1.1.0-rc.1", "files": want, "ok": true}), "{name}");

    let snippet = run(&backend, cwd.path(), &["snippet", "1.0.0", "--base-url", "https://cdn.example.com/"]);
    assert_eq!(
        snippet.expect_code(0).stdout.trim(),
        format!(
            r#"<script src="https://cdn.example.com/sdk/1.0.0/haloagents.umd.js" integrity="{}" crossorigin="anonymous"></script>"#,
            sri_of(V1[0].1)
        ),
        "{name}"
    );
    let css =
        run(&backend, cwd.path(), &["snippet", "1.0.0", "--file", "haloagents.css", "--base-url", "https://c.example"]);
    assert!(
        css.expect_code(0)
            .stdout
            .starts_with(r#"<link rel="stylesheet" href="https://c.example/sdk/1.0.0/haloagents.css""#),
        "{name}"
    );

    let list = run(&backend, cwd.path(), &["list", "--json"]);
    let list = list.expect_code(0).json();
    assert_eq!(list["latest"], "1.0.0", "{name}");
    let versions: Vec<&str> =
        list["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.1.0-rc.1", "1.0.0"], "{name}: newest first");
});

#[test]
fn publish_json_output_is_one_machine_readable_object() {
    let backend = backends::local();
    let (build, cwd) = (build_dir(V1), tempfile::tempdir().unwrap());
    let out = publish(&backend, cwd.path(), build.path(), "1.0.0", &["--json"]);
    let value = out.expect_code(0).json();
    assert_eq!(value["ok"], true);
    assert_eq!(value["version"], "1.0.0");
    assert_eq!(value["outcome"], "published");
    assert_eq!(value["files"], V1.len());
    assert_eq!(value["promoted"], true);
    assert_eq!(value["latest"], "1.0.0");
    let conflict = publish(&backend, cwd.path(), build_dir(V2).path(), "1.0.0", &["--json"]);
    let error = conflict.expect_code(3).json();
    assert_eq!(error["ok"], false);
    assert_eq!(error["exit_code"], 3);
    assert_eq!(error["diff"]["differing"], json!(["haloagents.css", "haloagents.umd.js"]));
}
