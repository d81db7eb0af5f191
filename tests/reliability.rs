//! The six invariants under pressure: racing publishers, kill -9 at random
//! points, injected S3 faults, and the repair commands (`verify`, `reindex`,
//! `discard`). Runs against the local store and the in-process S3 server
//! (and moto when `SDK_CDN_TEST_S3_ENDPOINT` is set).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod pause;
    pub mod s3_server;
}

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use support::backends::{self, Backend, Snap, backend_test};
use support::cli::{Run, build_dir, output, run, spawn, wait};
use support::fixtures::publish_dir as publish;
use support::pause::Pause;
use support::s3_server::{self, Conditional};

/// Every object under a sealed version's prefix: invariant 1 says these never change.
fn sealed_objects(backend: &Backend) -> BTreeMap<String, Snap> {
    let snap = backend.snapshot();
    let sealed: Vec<String> = snap
        .keys()
        .filter_map(|k| k.strip_prefix("manifests/")?.strip_suffix(".json").map(|v| format!("sdk/{v}/")))
        .filter(|p| !p.contains("channels"))
        .collect();
    snap.into_iter().filter(|(k, _)| sealed.iter().any(|p| k.starts_with(p))).collect()
}

/// Invariants 2 and 3 through `verify` (re-hashes everything, checks latest/
/// and the index), plus a settled pointer.
#[track_caller]
fn assert_invariants(backend: &Backend, cwd: &Path, context: &str) {
    let out = run(backend, cwd, &["verify", "--json"]);
    assert_eq!(out.code, 0, "{context}: verify found problems:\n{}\n{}", out.stdout, out.stderr);
    if let Some(bytes) = backend.read("manifests/channels/latest.json") {
        let pointer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(pointer["synced"], true, "{context}: the promotion was not completed: {pointer}");
        let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
        assert_eq!(index["version"], pointer["version"], "{context}: index and pointer disagree");
    }
}

fn many_files(tag: &str, count: usize) -> tempfile::TempDir {
    let files: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (format!("chunks/part-{i:03}.js"), format!("/*{tag}*/ var p{i}={i};").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    build_dir(&refs)
}

backend_test!(verify_is_clean_after_publishing_and_names_every_kind_of_damage, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let v1 = build_dir(&[("a.js", b"one"), ("b.css", b"two")]);
    publish(&backend, cwd.path(), v1.path(), "1.0.0", &[]).expect_code(0);
    assert_invariants(&backend, cwd.path(), name);

    let store = backend.store();
    let rt = backends::runtime();
    let key = |k: &str| sdk_cdn::store::Key::new(k).unwrap();
    let headers = sdk_cdn::store::Headers {
        content_type: "text/javascript; charset=utf-8".into(),
        cache_control: "public, max-age=31536000, immutable".into(),
        // A store refuses bytes that do not hash to the SRI they come with
        // (StoreError::ContentChanged), so the tampering carries none (the default).
        ..Default::default()
    };
    let overwrite = |k: &str, bytes: &'static [u8]| {
        let body = sdk_cdn::store::Body::Bytes(bytes::Bytes::from_static(bytes));
        rt.block_on(store.put(&key(k), body, &headers, sdk_cdn::store::PutMode::Overwrite)).unwrap();
    };
    // Tampering the tool itself never does: bytes swapped behind valid metadata, a
    // file deleted, a stray file added, a latest/ copy altered.
    overwrite("sdk/1.0.0/a.js", b"evil");
    rt.block_on(store.delete(&key("sdk/1.0.0/b.css"))).unwrap();
    overwrite("sdk/1.0.0/stray.js", b"one");
    overwrite("sdk/latest/a.js", b"old");
    let out = run(&backend, cwd.path(), &["verify", "--json"]);
    out.expect_code(3);
    let report = &out.json()["report"];
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["problem"].as_str().unwrap().to_string(), f["key"].as_str().unwrap().to_string()))
        .collect();
    for expected in [
        ("mismatch", "sdk/1.0.0/a.js"),
        ("missing", "sdk/1.0.0/b.css"),
        ("extra", "sdk/1.0.0/stray.js"),
        ("mismatch", "sdk/latest/a.js"),
    ] {
        assert!(
            found.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{name}: {expected:?} not in {found:?}"
        );
    }
    // Verify found the damage from the bytes, not from metadata.
    let text = run(&backend, cwd.path(), &["verify", "1.0.0"]);
    text.expect_code(3);
    assert!(text.stderr.contains("sdk/1.0.0/a.js") && text.stderr.contains("hash to"), "{name}: {}", text.stderr);
});

backend_test!(rerunning_a_publish_restores_files_missing_from_a_sealed_version, |backend| {
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"one"), ("b.css", b"two")]);
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    let before = backend.snapshot();
    let store = backend.store();
    backends::runtime().block_on(store.delete(&sdk_cdn::store::Key::new("sdk/1.0.0/b.css").unwrap())).unwrap();
    run(&backend, cwd.path(), &["verify"]).expect_code(3);
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    assert_eq!(backend.snapshot(), before, "{}: restored exactly as published", backend.name());
    assert_invariants(&backend, cwd.path(), backend.name());
});

backend_test!(verify_reports_a_damaged_index_seal_or_pointer_as_findings_not_as_errors, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    for (v, body) in [("1.0.0", "a"), ("1.1.0", "b")] {
        publish(&backend, cwd.path(), build_dir(&[("sdk.js", body.as_bytes())]).path(), v, &[]).expect_code(0);
    }
    let good_index = backend.read("api/sdk/sri").unwrap();
    let good_seal = backend.read("manifests/1.0.0.json").unwrap();
    let good_pointer = backend.read("manifests/channels/latest.json").unwrap();
    let other_seal = String::from_utf8(good_seal.clone()).unwrap().replace("\"1.0.0\"", "\"1.0.1\"");
    let cases: [(&str, &str, Vec<u8>, &str, &str); 4] = [
        ("index not JSON", "api/sdk/sri", b"{bad".to_vec(), "index", "sdk-cdn reindex"),
        (
            "index with a malformed hash",
            "api/sdk/sri",
            br#"{"version":"1.1.0","files":{"1.1.0/sdk.js":"sha384-AAAA"}}"#.to_vec(),
            "index",
            "sdk-cdn reindex",
        ),
        (
            "seal naming another version",
            "manifests/1.0.0.json",
            other_seal.into_bytes(),
            "seal",
            "./manifests/1.0.0.json",
        ),
        (
            "pointer to a version never sealed",
            "manifests/channels/latest.json",
            br#"{"version":"3.0.0","synced":true}"#.to_vec(),
            "channel",
            "not sealed",
        ),
    ];
    for (what, key, bytes, problem, hint) in cases {
        backend.put_raw(key, &bytes);
        let before = backend.snapshot();
        let out = run(&backend, cwd.path(), &["verify", "--json"]);
        assert_eq!(out.code, 3, "{name}: {what}: {}{}", out.stdout, out.stderr);
        let report = out.json();
        let findings = report["report"]["findings"].as_array().unwrap_or_else(|| panic!("{name}: {what}: {report}"));
        assert!(
            findings
                .iter()
                .any(|f| f["key"] == key && f["problem"] == problem && f["detail"].as_str().unwrap().contains(hint)),
            "{name}: {what}: {findings:?}"
        );
        // The rest of the store is still checked: both versions' files were read.
        assert!(report["report"]["files_checked"].as_u64().unwrap() >= 2, "{name}: {what}: {report}");
        assert_eq!(backend.snapshot(), before, "{name}: {what}: verify wrote to the store");
        backend.put_raw("api/sdk/sri", &good_index);
        backend.put_raw("manifests/1.0.0.json", &good_seal);
        backend.put_raw("manifests/channels/latest.json", &good_pointer);
    }
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

backend_test!(verify_reports_public_objects_that_no_release_owns, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    publish(&backend, cwd.path(), build_dir(&[("sdk.js", b"a")]).path(), "1.0.0", &[]).expect_code(0);
    let strays = ["sdk/top.js", "sdk/v2.0.0/y.js", "sdk/foo/x.js"];
    for key in strays {
        backend.put_raw(key, b"stray");
    }
    // A partial upload of a version is the version's (list shows it), not a stray.
    backend.put_raw("sdk/3.0.0/sdk.js", b"partial");
    let out = run(&backend, cwd.path(), &["verify", "--json"]);
    assert_eq!(out.code, 3, "{name}: {}", out.stdout);
    let report = out.json()["report"].clone();
    let mut extra: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["problem"] == "extra")
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    extra.sort();
    assert_eq!(extra, ["sdk/foo/x.js", "sdk/top.js", "sdk/v2.0.0/y.js"], "{name}: {report}");
    // Verifying named versions checks those versions only.
    run(&backend, cwd.path(), &["verify", "1.0.0"]).expect_code(0);
    for key in strays {
        backend.delete(key);
    }
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

backend_test!(reindex_rebuilds_a_lost_or_damaged_index_exactly, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    for (v, body) in [("1.0.0", "a"), ("1.1.0-rc.1", "b"), ("1.1.0", "c"), ("0.9.0", "d")] {
        let build = build_dir(&[("sdk.js", body.as_bytes()), (&format!("only-{v}.css"), b"x")]);
        publish(&backend, cwd.path(), build.path(), v, &[]).expect_code(0);
    }
    let published = backend.read("api/sdk/sri").unwrap();
    let store = backend.store();
    let rt = backends::runtime();
    let index_key = sdk_cdn::store::Key::new("api/sdk/sri").unwrap();

    // Lost.
    rt.block_on(store.delete(&index_key)).unwrap();
    run(&backend, cwd.path(), &["verify"]).expect_code(3);
    let out = run(&backend, cwd.path(), &["reindex", "--json"]);
    assert_eq!(out.expect_code(0).json()["changed"], true, "{name}");
    assert_eq!(backend.read("api/sdk/sri").unwrap(), published, "{name}: rebuilt byte for byte");

    // Damaged: truncated JSON.
    let headers = sdk_cdn::store::Headers {
        content_type: "application/json".into(),
        cache_control: "public, max-age=60".into(),
        ..Default::default()
    };
    let damage = || {
        let truncated = bytes::Bytes::copy_from_slice(&published[..published.len() / 2]);
        let body = sdk_cdn::store::Body::Bytes(truncated);
        rt.block_on(store.put(&index_key, body, &headers, sdk_cdn::store::PutMode::Overwrite)).unwrap();
    };
    damage();
    run(&backend, cwd.path(), &["reindex"]).expect_code(0);
    assert_eq!(backend.read("api/sdk/sri").unwrap(), published, "{name}: rebuilt byte for byte");

    // Publishing refuses to build on a damaged index, naming the key and the fix;
    // after `reindex` a rerun completes the publish.
    damage();
    let build = build_dir(&[("sdk.js", b"e")]);
    let refused = publish(&backend, cwd.path(), build.path(), "2.0.0", &[]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("api/sdk/sri") && refused.stderr.contains("reindex"), "{name}: {}", refused.stderr);
    run(&backend, cwd.path(), &["reindex"]).expect_code(0);
    publish(&backend, cwd.path(), build.path(), "2.0.0", &[]).expect_code(0);
    assert_invariants(&backend, cwd.path(), name);
    let again = run(&backend, cwd.path(), &["reindex", "--json"]);
    assert_eq!(again.expect_code(0).json()["changed"], false, "{name}: an intact index is left alone");
});

backend_test!(discard_removes_a_partial_upload_and_refuses_a_sealed_version, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"one")]);
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    let store = backend.store();
    let body = sdk_cdn::store::Body::Bytes(bytes::Bytes::from_static(b"half"));
    let key = sdk_cdn::store::Key::new("sdk/2.0.0/a.js").unwrap();
    let headers = sdk_cdn::store::Headers::default();
    backends::runtime().block_on(store.put(&key, body, &headers, sdk_cdn::store::PutMode::Create)).unwrap();

    let before = backend.snapshot();
    let refused = run(&backend, cwd.path(), &["discard", "1.0.0"]);
    refused.expect_code(3);
    assert!(refused.stderr.contains("immutable"), "{name}: {}", refused.stderr);
    assert_eq!(backend.snapshot(), before, "{name}: nothing deleted");

    let out = run(&backend, cwd.path(), &["discard", "2.0.0", "--json"]);
    assert_eq!(out.expect_code(0).json()["deleted"], serde_json::json!(["sdk/2.0.0/a.js"]), "{name}");
    assert!(backend.read("sdk/2.0.0/a.js").is_none(), "{name}");
    // The version can now be published from a reproducible build.
    publish(&backend, cwd.path(), build.path(), "2.0.0", &[]).expect_code(0);
    assert_invariants(&backend, cwd.path(), name);
});

backend_test!(racing_publishers_of_one_version_with_different_bytes_never_overwrite, |backend| {
    let mut trials = 0;
    let mut sealed_by_one = 0;
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let version = format!("1.{round}.0");
        let before = sealed_objects(&backend);
        let builds: Vec<_> = (0..8)
            .map(|i| {
                let body = format!("window.v='{version} from publisher {i}';");
                build_dir(&[("sdk.js", body.as_bytes()), ("shared.css", b"same in all builds")])
            })
            .collect();
        let children: Vec<_> = builds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let dir = format!("m{i}");
                spawn(
                    &backend,
                    cwd.path(),
                    &["publish", b.path().to_str().unwrap(), "--version", &version, "--manifests-dir", &dir],
                )
            })
            .collect();
        let results: Vec<Run> = children.into_iter().map(wait).collect();
        trials += 1;
        let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.code == 0).map(|(i, _)| i).collect();
        for r in &results {
            assert!(r.code == 0 || r.code == 3, "{name}: only success or conflict: {}", r.stderr);
        }
        assert!(winners.len() <= 1, "{name} {version}: several publishers succeeded: {winners:?}");
        // Nothing that was sealed before the round changed.
        let after = sealed_objects(&backend);
        for (key, snap) in &before {
            assert_eq!(after.get(key), Some(snap), "{name}: sealed object {key} changed");
        }
        if let [winner] = winners[..] {
            sealed_by_one += 1;
            let stored = backend.read(&format!("sdk/{version}/sdk.js")).unwrap();
            assert_eq!(stored, format!("window.v='{version} from publisher {winner}';").into_bytes(), "{name}");
        }
        assert_invariants(&backend, cwd.path(), &format!("{name} {version}"));
    }
    println!(
        "same-version races: {trials} rounds of 8 publishers, {sealed_by_one} sealed by exactly one, 0 overwrites"
    );
});

backend_test!(eight_versions_published_at_once_all_land_and_latest_is_the_highest, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let versions: Vec<String> = (0..8).map(|i| format!("2.{i}.0")).collect();
    let builds: Vec<_> = versions
        .iter()
        .map(|v| build_dir(&[("sdk.js", format!("v='{v}'").as_bytes()), (&format!("only-{v}.js"), b"1")]))
        .collect();
    let children: Vec<_> = versions
        .iter()
        .zip(&builds)
        .map(|(v, b)| {
            spawn(&backend, cwd.path(), &["publish", b.path().to_str().unwrap(), "--version", v, "--manifests-dir", v])
        })
        .collect();
    for (v, child) in versions.iter().zip(children) {
        let out = wait(child);
        assert_eq!(out.code, 0, "{name}: {v}: {}", out.stderr);
    }
    let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
    assert_eq!(index["version"], "2.7.0", "{name}");
    for v in &versions {
        assert!(index["files"][format!("{v}/sdk.js")].is_string(), "{name}: {v} lost from the index");
    }
    let latest: Vec<String> = backend.snapshot().into_keys().filter(|k| k.starts_with("sdk/latest/")).collect();
    assert_eq!(latest, ["sdk/latest/only-2.7.0.js", "sdk/latest/sdk.js"], "{name}");
    assert_invariants(&backend, cwd.path(), name);
});

/// Kills publishers with SIGKILL at random moments, reruns, checks every invariant.
fn crash_trials(backend: &Backend, trials: usize, seed: u64) -> (usize, usize) {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    // Time one undisturbed publish of the same shape to spread kill times over it.
    let warmup = many_files("warmup", 40);
    let started = Instant::now();
    publish(backend, cwd.path(), warmup.path(), "0.0.1", &[]).expect_code(0);
    let span = started.elapsed();
    let mut rng = seed;
    let mut killed = 0;
    for trial in 0..trials {
        let version = format!("3.{trial}.0");
        let build = many_files(&version, 40);
        let sealed_before = sealed_objects(backend);
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = span.mul_f64(((rng >> 33) % 1000) as f64 / 1000.0 * 1.2);
        let mut child = spawn(backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", &version]);
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let _ = child.wait();
        let rerun = publish(backend, cwd.path(), build.path(), &version, &[]);
        assert_eq!(rerun.code, 0, "{name} trial {trial} (killed after {delay:?}): rerun failed: {}", rerun.stderr);
        let after = sealed_objects(backend);
        for (key, snap) in &sealed_before {
            assert_eq!(after.get(key), Some(snap), "{name} trial {trial}: sealed object {key} changed");
        }
        assert_invariants(backend, cwd.path(), &format!("{name} crash trial {trial} (killed after {delay:?})"));
    }
    (trials, killed)
}

#[test]
fn kill_9_at_random_points_then_rerun_completes_and_every_invariant_holds() {
    let local = backends::local();
    let (t1, k1) = crash_trials(&local, 12, 7);
    let s3 = backends::in_process();
    let (t2, k2) = crash_trials(&s3, 8, 11);
    println!("crash trials: local {t1} ({k1} killed mid-run), s3s {t2} ({k2} killed mid-run), 0 violations");
    assert!(k1 + k2 > (t1 + t2) / 2, "most trials should really interrupt a publish ({k1}+{k2} of {t1}+{t2})");
}

#[test]
fn injected_s3_faults_end_in_success_or_exit_1_and_a_rerun_completes() {
    let server = s3_server::start_blocking(Conditional::Atomic);
    let backend = Backend::InProcess(server);
    let Backend::InProcess(server) = &backend else { unreachable!() };
    let cwd = tempfile::tempdir().unwrap();
    let (mut succeeded, mut failed) = (0, 0);
    for trial in 0..8 {
        let version = format!("4.{trial}.0");
        let build = many_files(&version, 20);
        server.set_fault_rate(15);
        let first = publish(&backend, cwd.path(), build.path(), &version, &[]);
        server.set_fault_rate(0);
        match first.code {
            0 => succeeded += 1,
            1 => {
                failed += 1;
                assert!(first.stderr.starts_with("error: "), "a clear message: {}", first.stderr);
                assert!(!first.stderr.contains("panicked"), "{}", first.stderr);
            }
            other => panic!("trial {trial}: a fault must end in 0 or 1, got {other}: {}", first.stderr),
        }
        publish(&backend, cwd.path(), build.path(), &version, &[]).expect_code(0);
        assert_invariants(&backend, cwd.path(), &format!("fault trial {trial}"));
    }
    println!(
        "fault trials: 8 at 15% faults ({} injected): {succeeded} succeeded through retries, {failed} exited 1; all reruns completed",
        server.faults_injected()
    );
    assert!(server.faults_injected() > 0);
}

backend_test!(a_promotion_race_leaves_latest_pointer_and_index_agreeing, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let versions = ["5.0.0", "5.1.0", "5.2.0", "5.3.0"];
    for v in versions {
        let build = build_dir(&[("sdk.js", v.as_bytes()), (&format!("only-{v}.js"), b"x")]);
        run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", v, "--no-promote"])
            .expect_code(0);
    }
    for round in 0..3 {
        let children: Vec<_> =
            versions.iter().map(|v| spawn(&backend, cwd.path(), &["promote", v, "--allow-downgrade"])).collect();
        for child in children {
            let out = wait(child);
            assert_eq!(out.code, 0, "{name} round {round}: {}", out.stderr);
        }
        assert_invariants(&backend, cwd.path(), &format!("{name} promotion race {round}"));
        let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
        let winner = index["version"].as_str().unwrap().to_string();
        let latest: Vec<String> = backend.snapshot().into_keys().filter(|k| k.starts_with("sdk/latest/")).collect();
        assert_eq!(latest, [format!("sdk/latest/only-{winner}.js"), "sdk/latest/sdk.js".to_string()], "{name}");
        assert_eq!(backend.read("sdk/latest/sdk.js").unwrap(), winner.as_bytes(), "{name}");
    }
});

// The private copies an S3 upload sends from (in `TMPDIR`) of a killed
// run: `doctor` and the next publish remove them, never a live run's.
// (The local store's temp files: tests/local_store.rs.)
backend_test!(upload_copies_of_killed_runs_are_removed_by_doctor_and_by_the_next_publish, |backend| {
    if backend.store().staging().is_some() {
        return;
    }
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={v:1};")]);
    let dir = build.path().to_str().unwrap();
    let copies = || -> Vec<String> {
        let names = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
        names.filter(|n| n.starts_with("sdk-cdn-upload-")).collect()
    };
    let command = |args: &[&str]| {
        let mut cmd = support::cli::command(&backend, cwd.path(), args);
        cmd.env("TMPDIR", tmp.path());
        cmd
    };
    // A publish paused with its first upload copy made.
    let paused = || {
        let pause = Pause::new();
        pause.arm("upload-copy");
        let mut child = pause.spawn_with(command(&["publish", dir, "--version", "1.0.0"]));
        pause.reached("upload-copy", &mut child);
        assert_eq!(copies().len(), 1, "{name}: {:?}", copies());
        (pause, child)
    };
    let doctor = || {
        let json = output(command(&["doctor", "--json"])).expect_code(0).json();
        let checks = json["checks"].as_array().unwrap();
        checks.iter().find(|c| c["name"] == "temp files").unwrap()["detail"].as_str().unwrap().to_string()
    };

    let (_pause, mut live) = paused();
    assert_eq!(doctor(), "no temp files left by interrupted writes", "{name}: a live run's copy is not stale");
    assert_eq!(copies().len(), 1, "{name}: the live run's copy was kept");
    live.kill().unwrap();
    live.wait().unwrap();
    let detail = doctor();
    assert!(detail.starts_with("removed 1 temp files"), "{name}: {detail}");
    assert_eq!(copies(), Vec::<String>::new(), "{name}");

    let (_pause, mut killed) = paused();
    killed.kill().unwrap();
    killed.wait().unwrap();
    output(command(&["publish", dir, "--version", "1.0.0"])).expect_code(0);
    assert_eq!(copies(), Vec::<String>::new(), "{name}: the next publish removed the killed run's copy");
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

// A destination that cannot take a copy (a full disk; here a file-size
// limit, which fails the same write) names where the copy was going and
// what to do: the store's temp directory, or TMPDIR for S3. Nothing is
// sealed, no copy is left, and a rerun with room publishes.
backend_test!(a_copy_that_cannot_be_written_names_its_destination_and_seals_nothing, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={v:1};")]);
    std::fs::write(build.path().join("big.bin"), vec![7u8; 2 << 20]).unwrap();
    let dir = build.path().to_str().unwrap();
    let mut cmd = support::cli::command(&backend, cwd.path(), &["publish", dir, "--version", "1.0.0"]);
    cmd.env("TMPDIR", tmp.path());
    support::cli::limit_file_size(&mut cmd, 1 << 20);
    let out = output(cmd);
    out.expect_code(1);
    let destination = match &backend {
        Backend::Local(store) => format!("in {}", store.path().join(".sdk-cdn/tmp").display()),
        _ => format!("into TMPDIR {}", tmp.path().display()),
    };
    assert!(out.stderr.contains(&destination), "{name}: the destination is named: {}", out.stderr);
    assert!(out.stderr.contains("File too large") && out.stderr.contains("ulimit -f"), "{name}: {}", out.stderr);
    assert!(backend.read("manifests/1.0.0.json").is_none(), "{name}: nothing was sealed");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "{name}: no copy is left in TMPDIR");
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

// TMPDIR on S3: one that cannot take a copy refuses the publish before it
// writes anything (not at its first upload, after its intent record); an
// empty one means /tmp, never the working directory (which may be the
// build: a killed run's copies would be published with it).
backend_test!(tmpdir_that_cannot_take_copies_refuses_first_and_an_empty_one_is_not_the_build, |backend| {
    if backend.store().staging().is_some() {
        return;
    }
    let name = backend.name();
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={v:1};")]);
    let cwd = tempfile::tempdir().unwrap();
    let missing = cwd.path().join("no-such-dir");
    let dir = build.path().to_str().unwrap();
    let writes = backend.writes();
    for args in [&["publish", dir, "--version", "1.0.0"][..], &["doctor"]] {
        let mut cmd = support::cli::command(&backend, cwd.path(), args);
        cmd.env("TMPDIR", &missing);
        let out = output(cmd);
        out.expect_code(1);
        assert!(out.stderr.contains(&format!("TMPDIR {}", missing.display())), "{name}: {}", out.stderr);
        assert!(out.stderr.contains("point TMPDIR at a writable directory"), "{name}: {}", out.stderr);
        if args[0] == "publish" {
            assert_eq!(backend.writes(), writes, "{name}: the publish was refused before its first write");
        }
    }
    // A TMPDIR with no room at all (here: a file-size limit of 0 bytes) is refused alike.
    let mut cmd = support::cli::command(&backend, cwd.path(), &["publish", dir, "--version", "1.0.0"]);
    support::cli::limit_file_size(&mut cmd, 0);
    let out = output(cmd);
    out.expect_code(1);
    assert!(out.stderr.contains("write an upload copy in TMPDIR"), "{name}: {}", out.stderr);
    assert_eq!(backend.writes(), writes, "{name}: the publish was refused before its first write");
    assert!(backend.snapshot().is_empty(), "{name}: nothing was written: {:?}", backend.snapshot().keys());
    // TMPDIR inside the build: another run's copies would be published with it.
    let mut cmd = support::cli::command(&backend, build.path(), &["publish", ".", "--version", "1.0.0"]);
    cmd.env("TMPDIR", ".");
    let out = output(cmd);
    out.expect_code(2);
    assert!(out.stderr.contains("holds TMPDIR") && out.stderr.contains("outside the build"), "{name}: {}", out.stderr);
    assert!(backend.snapshot().is_empty(), "{name}: nothing was written: {:?}", backend.snapshot().keys());

    let pause = Pause::new();
    pause.arm("upload-copy");
    let mut cmd = support::cli::command(&backend, build.path(), &["publish", ".", "--version", "1.0.0"]);
    cmd.env("TMPDIR", "");
    let mut child = pause.spawn_with(cmd);
    pause.reached("upload-copy", &mut child);
    let names: Vec<String> =
        std::fs::read_dir(build.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!names.iter().any(|n| n.starts_with("sdk-cdn-upload-")), "{name}: a copy in the build: {names:?}");
    let mut cmd = support::cli::command(&backend, build.path(), &["publish", ".", "--version", "1.0.0"]);
    cmd.env("TMPDIR", "");
    output(cmd).expect_code(0);
    let manifest: Value = serde_json::from_slice(&backend.read("manifests/1.0.0.json").unwrap()).unwrap();
    let files: Vec<&String> = manifest["files"].as_object().unwrap().keys().collect();
    assert_eq!(files, ["haloagents.umd.js"], "{name}");
});

// The release is in the store before its local copies are written: when
// they fail (a full disk; here a file-size limit), the error says the
// release is live and how to get the copies, no half-written copy is left,
// and the rerun writes them without changing the store.
backend_test!(local_copies_that_cannot_be_written_say_the_release_is_live, [s3, external], |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1"), ("b.css", b"2")]);
    let b = build.path().to_str().unwrap();
    let mut cmd = support::cli::command(&backend, cwd.path(), &["publish", b, "--version", "1.0.0"]);
    // The uploads' copies are 1 byte; the manifests are larger.
    support::cli::limit_file_size(&mut cmd, 64);
    let out = output(cmd);
    assert_eq!(out.code, 1, "{name}: {}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("1.0.0 is published and live") && out.stderr.contains("rerun the same publish"),
        "{name}: {}",
        out.stderr
    );
    let left: Vec<_> =
        std::fs::read_dir(cwd.path().join("manifests")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{name}: a half-written copy was left: {left:?}");
    let before = backend.snapshot();
    run(&backend, cwd.path(), &["publish", b, "--version", "1.0.0"]).expect_code(0);
    assert_eq!(backend.snapshot(), before, "{name}: the rerun changed the store");
    assert!(cwd.path().join("manifests/1.0.0.json").is_file() && cwd.path().join("manifests/sri.json").is_file());
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});
