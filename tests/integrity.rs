//! Issue 12, "integrity end to end": what is sealed is exactly what is
//! stored, and no edge fails open. Each test reproduces one defect found
//! from outside and runs on every backend it applies to (local, in-process
//! S3, and moto in CI).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod pause;
    pub mod s3_server;
}

use serde_json::Value;
use support::backends::{Backend, backend_test};
use support::cli::{Run, build_dir, run};
use support::fixtures::sri_of;
use support::fixtures::{Files, publish_files as publish};
use support::pause::Pause;

const V1: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:1};"), ("haloagents.css", b".a{color:red}")];
const V2: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:2};"), ("haloagents.css", b".a{color:blue}")];
const V3: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:3};")];

fn index_files(backend: &Backend) -> Vec<String> {
    let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").expect("index exists")).unwrap();
    index["files"].as_object().unwrap().keys().cloned().collect()
}

backend_test!(a_lost_index_is_rebuilt_from_every_sealed_version_by_publish_and_promote, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    publish(&backend, cwd.path(), V1, "0.1.0", &[]).expect_code(0);
    publish(&backend, cwd.path(), V2, "0.2.0", &[]).expect_code(0);

    backend.delete("api/sdk/sri");
    publish(&backend, cwd.path(), V3, "0.3.0", &[]).expect_code(0);
    let files = index_files(&backend);
    for version in ["0.1.0", "0.2.0"] {
        assert!(
            files.contains(&format!("{version}/haloagents.css")),
            "{name}: publish rebuilt the index without {version}: {files:?}"
        );
    }
    assert!(files.contains(&"0.3.0/haloagents.umd.js".to_string()), "{name}: {files:?}");

    backend.delete("api/sdk/sri");
    run(&backend, cwd.path(), &["promote", "0.2.0", "--allow-downgrade"]).expect_code(0);
    let files = index_files(&backend);
    for entry in ["0.1.0/haloagents.umd.js", "0.2.0/haloagents.css", "0.3.0/haloagents.umd.js"] {
        assert!(files.contains(&entry.to_string()), "{name}: promote rebuilt the index without {entry}: {files:?}");
    }
    let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
    assert_eq!(index["version"], "0.2.0", "{name}");
    assert_eq!(index["files"]["latest/haloagents.css"], sri_of(b".a{color:blue}"), "{name}");
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

/// Every stored object under `prefix` hashes to the SRI stored with it:
/// metadata never describes other bytes.
fn assert_metadata_tells_the_truth(backend: &Backend, prefix: &str) {
    for (key, snap) in backend.snapshot().into_iter().filter(|(k, _)| k.starts_with(prefix)) {
        let bytes = backend.read(&key).unwrap();
        assert_eq!(snap.sri.as_deref(), Some(sri_of(&bytes).as_str()), "{}: {key} metadata lies", backend.name());
    }
}

// A store that stages while planning (the local one) copied each file while
// hashing it: what it stores is what was hashed, whatever the build
// directory holds later, and the upload reads no byte of the build again.
backend_test!(a_staging_store_publishes_the_bytes_it_hashed_whatever_changes_later, |backend| {
    // 10 MiB: past 8 MiB a copy hashes on a second thread (`overlapped` in
    // src/integrity.rs), so that path is covered too.
    let big: Vec<u8> = (0..10 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    assert_eq!(backend.store().staging().is_some(), matches!(backend, Backend::Local(_)), "the local store stages");
    if backend.store().staging().is_none() {
        return;
    }
    {
        let name = backend.name();
        let tmp_files = || match &backend {
            Backend::Local(root) => std::fs::read_dir(root.path().join(".sdk-cdn/tmp")).map_or(0, Iterator::count),
            _ => 0,
        };
        // A plan refused after some files were staged leaves none behind.
        let refused = build_dir(&[("a.js", b"1"), ("b.js", b"2"), ("z/.env", b"SECRET=1")]);
        let refused_cwd = tempfile::tempdir().unwrap();
        let args = ["publish", refused.path().to_str().unwrap(), "--version", "0.1.0"];
        run(&backend, refused_cwd.path(), &args).expect_code(2);
        assert_eq!(tmp_files(), 0, "{name}: staged files left behind by a refused plan");
        let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={v:1};")]);
        std::fs::write(build.path().join("big.bin"), &big).unwrap();
        let cwd = tempfile::tempdir().unwrap();
        let pause = Pause::new();
        pause.arm("upload");
        let dir = build.path().to_str().unwrap();
        let mut child = pause.spawn(&backend, cwd.path(), &["publish", dir, "--version", "1.0.0"]);
        pause.reached("upload", &mut child);
        // Planned, hashed and staged; now the build changes, and one file goes.
        std::fs::write(build.path().join("big.bin"), b"rewritten after planning").unwrap();
        std::fs::remove_file(build.path().join("haloagents.umd.js")).unwrap();
        pause.go("upload");
        support::cli::wait(child).expect_code(0);
        assert_eq!(backend.read("sdk/1.0.0/big.bin").unwrap(), big, "{name}");
        assert_eq!(backend.read("sdk/1.0.0/haloagents.umd.js").unwrap(), b"window.HaloAgents={v:1};", "{name}");
        let manifest: Value = serde_json::from_slice(&backend.read("manifests/1.0.0.json").unwrap()).unwrap();
        assert_eq!(manifest["files"]["big.bin"]["integrity"], sri_of(&big), "{name}");
        assert_metadata_tells_the_truth(&backend, "sdk/");
        run(&backend, cwd.path(), &["verify"]).expect_code(0);
        assert_eq!(tmp_files(), 0, "{name}: every staged file was linked into place and its temp name removed");
    }
});

backend_test!(a_file_changed_during_upload_is_refused_before_the_seal_and_a_rerun_publishes_it, |backend| {
    // 17 MiB: above the S3 backend's multipart threshold, so parts are covered too.
    let big: Vec<u8> = (0..17 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    // A staging store stores what it hashed (the test above).
    if backend.store().staging().is_some() {
        return;
    }
    let name = backend.name();
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={v:1};")]);
    std::fs::write(build.path().join("big.bin"), &big).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let pause = Pause::new();
    pause.arm("upload");
    let dir = build.path().to_str().unwrap();
    let mut child = pause.spawn(&backend, cwd.path(), &["publish", dir, "--version", "1.0.0"]);
    pause.reached("upload", &mut child);
    // Planned and hashed; now the build changes under the publisher.
    let mut changed = big.clone();
    changed.extend_from_slice(b"appended while uploading");
    std::fs::write(build.path().join("big.bin"), &changed).unwrap();
    std::fs::write(build.path().join("haloagents.umd.js"), b"window.HaloAgents={v:666};").unwrap();
    pause.go("upload");
    let out = support::cli::wait(child);
    out.expect_code(2);
    assert!(out.stderr.contains("changed while it was being published"), "{name}: {}", out.stderr);
    assert!(out.stderr.contains("nothing was sealed"), "{name}: {}", out.stderr);
    assert!(backend.read("manifests/1.0.0.json").is_none(), "{name}: sealed after a changed input");
    assert_metadata_tells_the_truth(&backend, "sdk/");

    // The build has finished writing: a rerun publishes exactly what is on disk now.
    run(&backend, cwd.path(), &["publish", dir, "--version", "1.0.0"]).expect_code(0);
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
    assert_eq!(backend.read("sdk/1.0.0/big.bin").unwrap(), changed, "{name}");
    let manifest: Value = serde_json::from_slice(&backend.read("manifests/1.0.0.json").unwrap()).unwrap();
    assert_eq!(manifest["files"]["big.bin"]["integrity"], sri_of(&changed), "{name}");
    assert_eq!(manifest["files"]["big.bin"]["size"], changed.len(), "{name}");
    assert_metadata_tells_the_truth(&backend, "sdk/");
});

backend_test!(racing_publishers_of_one_version_with_multi_file_builds_seal_exactly_one, |backend| {
    const ROUNDS: usize = 10;
    const PUBLISHERS: usize = 8;
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let builds: Vec<tempfile::TempDir> = (0..PUBLISHERS)
        .map(|p| {
            let dir = tempfile::tempdir().unwrap();
            for f in 0..5 {
                // Two files are the same in every build; three differ.
                let body = if f < 2 { format!("shared {f}") } else { format!("build {p} file {f}") };
                std::fs::write(dir.path().join(format!("f{f}.js")), body).unwrap();
            }
            dir
        })
        .collect();
    for round in 0..ROUNDS {
        let version = format!("1.0.{round}");
        let children: Vec<_> = builds
            .iter()
            .map(|b| {
                let args = ["publish", b.path().to_str().unwrap(), "--version", &version, "--no-promote"];
                support::cli::spawn(&backend, cwd.path(), &args)
            })
            .collect();
        let runs: Vec<Run> = children.into_iter().map(support::cli::wait).collect();
        let winners: Vec<usize> = (0..PUBLISHERS).filter(|&i| runs[i].code == 0).collect();
        assert_eq!(winners.len(), 1, "{name} round {round}: winners {winners:?}: {runs:#?}");
        let winner = winners[0];
        for (i, out) in runs.iter().enumerate().filter(|(i, _)| *i != winner) {
            out.expect_code(3);
            // It names a file that differs; which of the three it saw depends
            // on how far the winner's uploads had got when it looked.
            assert!(
                ["f2.js", "f3.js", "f4.js"].iter().any(|f| out.stderr.contains(f)),
                "{name} round {round} publisher {i}: {}",
                out.stderr
            );
        }
        // The sealed version is exactly the winner's build, and nothing else is under it.
        let prefix = format!("sdk/{version}/");
        let stored: Vec<(String, Vec<u8>)> = backend
            .snapshot()
            .into_keys()
            .filter(|k| k.starts_with(&prefix))
            .map(|k| (k.clone(), backend.read(&k).unwrap()))
            .collect();
        assert_eq!(stored.len(), 5, "{name} round {round}: {stored:?}");
        for (key, bytes) in stored {
            let file = key.strip_prefix(&prefix).unwrap();
            assert_eq!(bytes, std::fs::read(builds[winner].path().join(file)).unwrap(), "{name}: {key}");
        }
        assert!(backend.read(&format!("manifests/pending/{version}.json")).is_none(), "{name}: intent left");
    }
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

backend_test!(discard_racing_a_live_publisher_never_lets_both_win, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let files: Vec<(String, Vec<u8>)> =
        (0..30).map(|i| (format!("f{i}.js"), format!("file {i}").into_bytes())).collect();
    let build = tempfile::tempdir().unwrap();
    for (path, bytes) in &files {
        std::fs::write(build.path().join(path), bytes).unwrap();
    }
    let dir = build.path().to_str().unwrap();

    // The discard comes first: the publisher, paused before its seal, must not seal.
    let pause = Pause::new();
    pause.arm("seal");
    let mut publisher = pause.spawn(&backend, cwd.path(), &["publish", dir, "--version", "2.0.0"]);
    pause.reached("seal", &mut publisher);
    run(&backend, cwd.path(), &["discard", "2.0.0"]).expect_code(0);
    pause.go("seal");
    let out = support::cli::wait(publisher);
    assert_ne!(out.code, 0, "{name}: the publish sealed a discarded version: {}", out.stdout);
    assert!(backend.read("manifests/2.0.0.json").is_none(), "{name}: sealed after discard");
    let left: Vec<String> = backend.snapshot().into_keys().filter(|k| k.starts_with("sdk/2.0.0/")).collect();
    assert!(left.is_empty(), "{name}: {left:?}");

    // The publisher seals first: a discard paused after its own swap cannot have
    // started, so it must find the version sealed or being sealed and refuse.
    let pause = Pause::new();
    pause.arm("seal");
    let mut publisher = pause.spawn(&backend, cwd.path(), &["publish", dir, "--version", "2.0.0"]);
    pause.reached("seal", &mut publisher);
    pause.go("seal");
    let published = support::cli::wait(publisher);
    published.expect_code(0);
    let refused = run(&backend, cwd.path(), &["discard", "2.0.0"]);
    refused.expect_code(3);
    run(&backend, cwd.path(), &["verify", "2.0.0"]).expect_code(0);
});

backend_test!(a_discard_that_found_no_seal_just_before_the_publisher_sealed_deletes_nothing, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(V1);
    let dir = build.path().to_str().unwrap();
    // The publisher has uploaded every file and waits before its seal.
    let publishing = Pause::new();
    publishing.arm("seal");
    let mut publisher = publishing.spawn(&backend, cwd.path(), &["publish", dir, "--version", "2.0.0"]);
    publishing.reached("seal", &mut publisher);
    // The discard found no seal and waits before it claims the version.
    let discarding = Pause::new();
    discarding.arm("discard-claim");
    let mut discard = discarding.spawn(&backend, cwd.path(), &["discard", "2.0.0"]);
    discarding.reached("discard-claim", &mut discard);
    // The seal lands (and its intent record goes) in between.
    publishing.go("seal");
    support::cli::wait(publisher).expect_code(0);
    discarding.go("discard-claim");
    let refused = support::cli::wait(discard);
    refused.expect_code(3);
    assert!(refused.stderr.contains("2.0.0 is published"), "{name}: {}", refused.stderr);
    assert!(backend.read("manifests/pending/2.0.0.json").is_none(), "{name}: the claim was left behind");
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

backend_test!(a_file_swapped_for_a_link_or_a_pipe_while_planning_is_refused_not_followed, [local, s3], |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("z.js"), b"SECRET outside the build").unwrap();
    std::fs::create_dir(outside.path().join("sub")).unwrap();
    std::fs::write(outside.path().join("sub/z.js"), b"SECRET outside the build").unwrap();
    type Swap = fn(&std::path::Path, &std::path::Path);
    let swaps: [(&str, &str, Swap, &str); 3] = [
        (
            "the file for a link",
            "z.js",
            |build, outside| {
                std::fs::remove_file(build.join("z.js")).unwrap();
                std::os::unix::fs::symlink(outside.join("z.js"), build.join("z.js")).unwrap();
            },
            "symbolic link",
        ),
        (
            "its directory for a link",
            "sub/z.js",
            |build, outside| {
                std::fs::remove_dir_all(build.join("sub")).unwrap();
                std::os::unix::fs::symlink(outside.join("sub"), build.join("sub")).unwrap();
            },
            "symbolic link",
        ),
        (
            "the file for a pipe",
            "z.js",
            |build, _| {
                std::fs::remove_file(build.join("z.js")).unwrap();
                let path = std::ffi::CString::new(build.join("z.js").to_str().unwrap()).unwrap();
                // SAFETY: a valid path string.
                assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
            },
            "not a regular file",
        ),
    ];
    for (what, file, swap, hint) in swaps {
        let build = build_dir(&[(file, b"legit")]);
        let dir = build.path().to_str().unwrap();
        let before = backend.snapshot();
        // The walk has found the file; the hashing worker waits before opening it.
        let pause = Pause::new();
        pause.arm("hash");
        let mut publisher = pause.spawn(&backend, cwd.path(), &["publish", dir, "--version", "1.0.0"]);
        pause.reached("hash", &mut publisher);
        swap(build.path(), outside.path());
        pause.go("hash");
        let out = support::cli::wait(publisher);
        assert_eq!(out.code, 2, "{name}: {what}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(file) && out.stderr.contains(hint), "{name}: {what}: {}", out.stderr);
        assert_eq!(backend.snapshot(), before, "{name}: {what}: wrote to the store");
    }
});

backend_test!(promoting_a_version_whose_files_are_gone_changes_nothing, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    publish(&backend, cwd.path(), V1, "1.0.0", &[]).expect_code(0);
    publish(&backend, cwd.path(), V2, "1.1.0", &["--no-promote"]).expect_code(0);
    backend.delete("sdk/1.1.0/haloagents.umd.js");
    let before = backend.snapshot();
    let out = run(&backend, cwd.path(), &["promote", "1.1.0"]);
    out.expect_code(3);
    assert!(
        out.stderr.contains("haloagents.umd.js is missing") && out.stderr.contains("--version 1.1.0"),
        "{name}: {}",
        out.stderr
    );
    assert_eq!(backend.snapshot(), before, "{name}: the pointer, latest/ or the index changed");
    // Publishing the same build again restores the file; then the promotion goes through.
    publish(&backend, cwd.path(), V2, "1.1.0", &["--no-promote"]).expect_code(0);
    run(&backend, cwd.path(), &["promote", "1.1.0"]).expect_code(0);
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

backend_test!(a_publisher_overtaken_by_a_helper_reports_what_latest_serves_now, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    publish(&backend, cwd.path(), V1, "1.0.0", &[]).expect_code(0);
    let build = build_dir(V2);
    let dir = build.path().to_str().unwrap();
    // The first run read the pointer (1.0.0) and waits before its seal; a
    // second run of the same build seals and promotes meanwhile.
    let pause = Pause::new();
    pause.arm("seal");
    let mut first = pause.spawn(&backend, cwd.path(), &["publish", dir, "--version", "1.1.0", "--json"]);
    pause.reached("seal", &mut first);
    run(&backend, cwd.path(), &["publish", dir, "--version", "1.1.0", "-q"]).expect_code(0);
    pause.go("seal");
    let out = support::cli::wait(first);
    out.expect_code(0);
    let report = out.json();
    assert_eq!(report["latest"], "1.1.0", "{name}: the report names a stale latest: {report}");
    let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
    assert_eq!(index["version"], "1.1.0", "{name}");
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

backend_test!(a_publisher_arriving_during_a_discard_is_refused_before_it_writes, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(V1);
    let dir = build.path().to_str().unwrap();
    let pause = Pause::new();
    pause.arm("discard");
    // A discard paused after marking the intent `discarding`: a publisher
    // arriving now is refused before it writes a file.
    run(&backend, cwd.path(), &["publish", dir, "--version", "3.0.0", "--no-promote"]).expect_code(0);
    let other = build_dir(V2);
    // Stage a partial upload of another version to discard.
    backend.put_raw("sdk/3.1.0/haloagents.css", b"partial");
    let mut discard = pause.spawn(&backend, cwd.path(), &["discard", "3.1.0"]);
    pause.reached("discard", &mut discard);
    let blocked = run(&backend, cwd.path(), &["publish", other.path().to_str().unwrap(), "--version", "3.1.0"]);
    blocked.expect_code(3);
    assert!(blocked.stderr.contains("being discarded"), "{name}: {}", blocked.stderr);
    pause.go("discard");
    support::cli::wait(discard).expect_code(0);
    run(&backend, cwd.path(), &["publish", other.path().to_str().unwrap(), "--version", "3.1.0"]).expect_code(0);
});

/// The backend's global arguments with `--store` moved to `store_suffix` under it.
fn args_with_store_suffix(backend: &Backend, suffix: &str, rest: &[&str]) -> Vec<String> {
    let mut args = backend.args();
    let at = args.iter().position(|a| a == "--store").unwrap() + 1;
    args[at] = format!("{}/{suffix}", args[at].trim_end_matches('/'));
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

backend_test!(verify_of_a_store_with_nothing_published_fails_unless_allowed, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    publish(&backend, cwd.path(), V1, "1.0.0", &[]).expect_code(0);
    for rest in [&["verify"][..], &["verify", "--json"]] {
        // A typo'd path or bucket prefix looks like an empty store.
        let args = args_with_store_suffix(&backend, "typo", rest);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = support::cli::run_without_store_with_env(cwd.path(), &args, &backend.env());
        out.expect_code(3);
        let text = if rest.len() == 2 { out.json()["error"].as_str().unwrap().to_string() } else { out.stderr };
        assert!(text.contains("nothing is published at") && text.contains("typo"), "{name}: {text}");
    }
    let args = args_with_store_suffix(&backend, "typo", &["verify", "--allow-empty"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    support::cli::run_without_store_with_env(cwd.path(), &args, &backend.env()).expect_code(0);
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
});

#[test]
fn a_black_holed_s3_endpoint_ends_in_exit_1_naming_it_within_the_timeout() {
    // Accepts connections and never answers (nor closes them).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for conn in listener.incoming().take(64) {
            conns.push(conn);
        }
    });
    let cwd = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID".to_string(), "k".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "s".to_string()),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    let args =
        ["--store", "s3://bucket", "--endpoint-url", &endpoint, "--path-style", "--timeout", "2", "--json", "list"];
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"));
    cmd.current_dir(cwd.path()).args(args).envs(env.iter().cloned()).stdout(std::process::Stdio::piped());
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    // A generous deadline that only a hang can reach (the bound under test is 2 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`list` against a black-holed endpoint still running after 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = support::cli::wait(child);
    out.expect_code(1);
    let error = out.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains(&endpoint) && error.contains("did not answer in time"), "{error}");
    drop(held);
}

// A key change that races a publish between its key check (before its
// first write) and its promotion leaves the version published and the
// index complete, with the reason it was not promoted; never a sealed
// version reported as refused with the index missing it (probe finding).
backend_test!(a_signing_key_change_racing_a_publish_leaves_it_published_not_promoted, |backend| {
    {
        let name = backend.name();
        let cwd = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        support::cli::run_without_store(keys.path(), &["keygen", "--no-password", "--name", "sri"]).expect_code(0);
        let key = keys.path().join("sri.key");
        publish(&backend, cwd.path(), &[("a.js", b"one")], "1.0.0", &[]).expect_code(0);

        let pause = Pause::new();
        pause.arm("seal");
        let build = build_dir(&[("a.js", b"unsigned five")]);
        let dir = build.path().to_str().unwrap();
        let mut unsigned = pause.spawn(&backend, cwd.path(), &["publish", dir, "--version", "1.5.0"]);
        pause.reached("seal", &mut unsigned);
        // Meanwhile a signed release takes over latest/.
        publish(&backend, cwd.path(), &[("a.js", b"signed")], "1.1.0", &["--sri-key", key.to_str().unwrap()])
            .expect_code(0);
        pause.go("seal");
        let out = support::cli::wait(unsigned);
        out.expect_code(0);
        assert!(out.stdout.contains("not promoted: latest/ serves 1.1.0, signed"), "{name}: {}", out.stdout);
        let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
        assert_eq!(index["version"], "1.1.0", "{name}");
        assert!(index["files"]["1.5.0/a.js"].is_string(), "{name}: the published version is in the index");
        run(&backend, cwd.path(), &["verify"]).expect_code(0);
    }
});
