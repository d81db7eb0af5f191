//! The bad-input catalogue: every case gets a clear message naming what is
//! wrong, the documented exit code, and writes nothing to the store.
//! (HTTP requests to `serve` have their own catalogue in tests/serve_http.rs.)

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
}

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use support::backends::{self, Backend, backend_test};
use support::cli::{build_dir, run, run_without_store};
use support::s3_server::{self, Conditional};

struct Case {
    what: &'static str,
    args: Vec<String>,
    code: i32,
    hint: &'static str,
}

fn case(what: &'static str, args: &[&str], code: i32, hint: &'static str) -> Case {
    Case { what, args: args.iter().map(|s| s.to_string()).collect(), code, hint }
}

#[track_caller]
fn check(backend: &Backend, cwd: &Path, cases: &[Case]) -> usize {
    let before = backend.snapshot();
    for c in cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let writes_before = backend.writes();
        let out = run(backend, cwd, &args);
        assert_eq!(out.code, c.code, "{}: {args:?}\nstdout: {}\nstderr: {}", c.what, out.stdout, out.stderr);
        assert!(out.stderr.contains(c.hint), "{}: the message should mention {:?}:\n{}", c.what, c.hint, out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}: {}", c.what, out.stderr);
        assert_eq!(backend.snapshot(), before, "{}: wrote to the store", c.what);
        // Not even a probe key that came and went (the in-process server counts requests).
        assert_eq!(backend.writes(), writes_before, "{}: made write requests", c.what);
    }
    cases.len()
}

#[test]
fn cli_arguments_and_build_directories() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let good = build_dir(&[("a.js", b"1")]);
    run(&backend, cwd.path(), &["publish", good.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    let g = good.path().to_str().unwrap();

    let file_not_dir = good.path().join("a.js");
    let only_dirs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(only_dirs.path().join("empty/nested")).unwrap();
    let symlinked_file = build_dir(&[("a.js", b"1")]);
    std::os::unix::fs::symlink("/etc/hostname", symlinked_file.path().join("host.js")).unwrap();
    let symlinked_dir = build_dir(&[("a.js", b"1")]);
    std::os::unix::fs::symlink("/etc", symlinked_dir.path().join("etc")).unwrap();
    let fifo = build_dir(&[("a.js", b"1")]);
    let fifo_path = std::ffi::CString::new(fifo.path().join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid, NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(fifo_path.as_ptr(), 0o644) }, 0);
    let non_utf8 = build_dir(&[("a.js", b"1")]);
    std::fs::write(non_utf8.path().join(std::ffi::OsStr::from_bytes(b"bad\xff.js")), b"x").unwrap();
    let backslash = build_dir(&[("a\\b.js", b"1")]);
    let newline = build_dir(&[("a\nb.js", b"1")]);
    let long = tempfile::tempdir().unwrap();
    let deep = long.path().join("d".repeat(200)).join("e".repeat(200)).join("f".repeat(200)).join("g".repeat(200));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("h".repeat(250)), b"x").unwrap();
    let p = |d: &tempfile::TempDir| d.path().to_str().unwrap().to_string();
    let (f, od, sf, sd, ff, nu, bs, nl, lg) = (
        file_not_dir.to_str().unwrap().to_string(),
        p(&only_dirs),
        p(&symlinked_file),
        p(&symlinked_dir),
        p(&fifo),
        p(&non_utf8),
        p(&backslash),
        p(&newline),
        p(&long),
    );

    let cases = vec![
        case("missing --version", &["publish", g], 2, "--version"),
        case("leading v", &["publish", g, "--version", "v1.2.0"], 2, "use 1.2.0"),
        case("channel name as version", &["publish", g, "--version", "latest"], 2, "channel"),
        case("build metadata", &["publish", g, "--version", "1.2.0+sha.5"], 2, "build metadata"),
        case("two-part version", &["publish", g, "--version", "1.2"], 2, "SemVer"),
        case("leading zero", &["publish", g, "--version", "01.2.3"], 2, "leading zero"),
        case("empty version", &["publish", g, "--version", ""], 2, "version"),
        case("zero concurrency", &["publish", g, "--version", "1.2.0", "--concurrency", "0"], 2, "concurrency"),
        case(
            "immutable latest",
            &["publish", g, "--version", "1.2.0", "--latest-cache-control", "max-age=1, immutable"],
            2,
            "immutable",
        ),
        case("promote with v", &["promote", "v1.0.0"], 2, "use 1.0.0"),
        case("promote unpublished", &["promote", "9.9.9"], 2, "not published"),
        case("sri --file without version", &["sri", "--file", "a.js"], 2, "VERSION"),
        case("sri unknown version", &["sri", "4.0.0"], 2, "not in the SRI index"),
        case("snippet unknown file", &["snippet", "1.0.0", "--file", "nope.js"], 2, "a.js"),
        case("verify unpublished", &["verify", "4.0.0"], 2, "not published"),
        case("discard latest", &["discard", "latest"], 2, "channel"),
        case("unknown command", &["frobnicate"], 2, "unrecognized subcommand"),
        case("verbose and quiet", &["-v", "-q", "list"], 2, "cannot be used with"),
        case("missing directory", &["publish", "/nonexistent/dist", "--version", "1.2.0"], 2, "does not exist"),
        case("file instead of directory", &["publish", &f, "--version", "1.2.0"], 2, "not a directory"),
        case("directory without files", &["publish", &od, "--version", "1.2.0"], 2, "contains no files"),
        case("symlinked file", &["publish", &sf, "--version", "1.2.0"], 2, "symbolic link"),
        case("symlinked directory", &["publish", &sd, "--version", "1.2.0"], 2, "symbolic link"),
        case("named pipe", &["publish", &ff, "--version", "1.2.0"], 2, "not a regular file"),
        case("non-UTF-8 name", &["publish", &nu, "--version", "1.2.0"], 2, "UTF-8"),
        case("backslash in name", &["publish", &bs, "--version", "1.2.0"], 2, "backslash"),
        case("control character in name", &["publish", &nl, "--version", "1.2.0"], 2, "control character"),
        case("key longer than S3 allows", &["publish", &lg, "--version", "1.2.0"], 2, "S3 allows"),
    ];
    let n = check(&backend, cwd.path(), &cases);
    println!("bad input: {n} CLI and directory cases");
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

#[test]
fn store_urls_and_credentials() {
    let cwd = tempfile::tempdir().unwrap();
    let good = build_dir(&[("a.js", b"1")]);
    let g = good.path().to_str().unwrap();
    for (store, hint) in [
        ("gs://bucket", "unsupported scheme"),
        ("https://cdn.example.com", "--endpoint-url"),
        ("s3://Bad_Bucket", "not a valid bucket name"),
        ("s3://ab", "not a valid bucket name"),
        ("s3://bucket/../escape", "not a valid key"),
        ("file://relative/path", "absolute path"),
        ("", "empty"),
        ("file:", "file:///abs/path"),
        ("file:cdn", "file:///abs/path"),
        ("file:/srv/cdn", "file:///abs/path"),
        ("file:///srv/cdn?x=1", "query"),
        ("s3:/my-bucket", "s3://bucket"),
    ] {
        let out = run_without_store(cwd.path(), &["--store", store, "publish", g, "--version", "1.0.0"]);
        assert_eq!(out.code, 2, "--store {store:?}: {}", out.stderr);
        assert!(out.stderr.contains(hint), "--store {store:?}: {}", out.stderr);
    }
    // The filesystem root, however spelled: with --dry-run, so that a
    // regression can never write into `/`.
    for store in ["/", "//", "/tmp/..", "file:///", "file:///.."] {
        let out = run_without_store(cwd.path(), &["--store", store, "publish", g, "--version", "1.0.0", "--dry-run"]);
        assert_eq!(out.code, 2, "--store {store:?}: {}", out.stderr);
        assert!(out.stderr.contains("filesystem root"), "--store {store:?}: {}", out.stderr);
    }
    // A regular file, or a path through one: exit 2 for every command, nothing written.
    let afile = cwd.path().join("afile");
    std::fs::write(&afile, b"not a store").unwrap();
    let through = afile.join("cdn");
    for (store, args) in [
        (&afile, vec!["publish", g, "--version", "1.0.0"]),
        (&through, vec!["publish", g, "--version", "1.0.0"]),
        (&afile, vec!["list"]),
        (&afile, vec!["reindex"]),
    ] {
        let mut all = vec!["--store", store.to_str().unwrap()];
        all.extend(args);
        let out = run_without_store(cwd.path(), &all);
        assert_eq!(out.code, 2, "{all:?}: {}", out.stderr);
        assert!(out.stderr.contains("is a file") && out.stderr.contains("afile"), "{all:?}: {}", out.stderr);
        assert_eq!(std::fs::read(&afile).unwrap(), b"not a store");
    }
    assert_eq!(tree(cwd.path()).len(), 1, "nothing but afile: no `file:` directory, no manifests");
    // file:// URLs are percent-decoded: a%20b is the directory "a b".
    let spaced = tempfile::tempdir().unwrap();
    let url = format!("file://{}/a%20b", spaced.path().display());
    run_without_store(cwd.path(), &["--store", &url, "publish", g, "--version", "1.0.0"]).expect_code(0);
    assert!(spaced.path().join("a b/sdk/1.0.0/a.js").is_file(), "{:?}", tree(spaced.path()));

    // Credentials: none at all, and a wrong secret. Exit 1, saying what to set; the secret never printed.
    let server = s3_server::start_blocking(Conditional::Atomic);
    let base = |cmd: &mut std::process::Command| {
        cmd.current_dir(cwd.path())
            .args(["--store", &server.store_url(), "--endpoint-url", &server.endpoint, "--path-style"])
            .args(["publish", g, "--version", "1.0.0", "-vv"])
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", cwd.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", cwd.path().join("none"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE");
    };
    let mut none = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"));
    base(&mut none);
    let out = none.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no AWS credentials found"), "{stderr}");

    let secret = "FAKE-secret-7f3a9c-never-print-me";
    let mut wrong = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"));
    base(&mut wrong);
    let out = wrong
        .env("AWS_ACCESS_KEY_ID", s3_server::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .arg("--json")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("credentials"), "{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret), "the secret leaked");
    let backend = Backend::InProcess(server);
    assert!(backend.snapshot().is_empty(), "nothing was written");
}

backend_test!(corrupted_objects_in_the_store_are_named_and_nothing_is_written, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    let b = build.path().to_str().unwrap();
    run(&backend, cwd.path(), &["publish", b, "--version", "1.0.0"]).expect_code(0);
    let store = backend.store();
    let rt = backends::runtime();
    let put = |key: &str, bytes: &[u8]| {
        let key = sdk_cdn::store::Key::new(key).unwrap();
        let body = sdk_cdn::store::Body::Bytes(bytes::Bytes::copy_from_slice(bytes));
        let headers = sdk_cdn::store::Headers { content_type: "application/json".into(), ..Default::default() };
        rt.block_on(store.put(&key, body, &headers, sdk_cdn::store::PutMode::Overwrite)).unwrap();
    };
    let good_manifest = backend.read("manifests/1.0.0.json").unwrap();
    let good_pointer = backend.read("manifests/channels/latest.json").unwrap();
    let good_index = backend.read("api/sdk/sri").unwrap();
    let bad_hash = String::from_utf8(good_manifest.clone()).unwrap().replace("sha384-", "sha256-");
    let scenarios: Vec<(&str, &str, Vec<u8>, Vec<&str>)> = vec![
        (
            "truncated manifest",
            "manifests/1.0.0.json",
            good_manifest[..20].to_vec(),
            vec!["publish", b, "--version", "1.0.0"],
        ),
        ("manifest of the wrong shape", "manifests/1.0.0.json", b"[1,2,3]".to_vec(), vec!["promote", "1.0.0"]),
        ("hash in the wrong format", "manifests/1.0.0.json", bad_hash.into_bytes(), vec!["reindex"]),
        ("manifest for another version", "manifests/1.0.0.json", good_manifest.clone(), vec![]),
        (
            "truncated pointer",
            "manifests/channels/latest.json",
            b"{\"version\":".to_vec(),
            vec!["publish", b, "--version", "2.0.0"],
        ),
        ("index of the wrong shape", "api/sdk/sri", b"{\"files\":[]}".to_vec(), vec!["sri"]),
        (
            "index with a bad hash",
            "api/sdk/sri",
            b"{\"version\":\"1.0.0\",\"files\":{\"1.0.0/a.js\":\"md5-x\"}}".to_vec(),
            vec!["sri", "1.0.0"],
        ),
    ];
    let mut count = 0;
    for (what, key, bytes, args) in scenarios {
        if args.is_empty() {
            continue;
        }
        put(key, &bytes);
        let before = backend.snapshot();
        let writes_before = backend.writes();
        let out = run(&backend, cwd.path(), &args);
        assert_eq!(out.code, 1, "{name}: {what}: {}", out.stderr);
        assert!(out.stderr.contains(key), "{name}: {what}: the message names {key}: {}", out.stderr);
        assert!(out.stderr.contains("sdk-cdn verify"), "{name}: {what}: the message says what to do: {}", out.stderr);
        assert_eq!(backend.snapshot(), before, "{name}: {what}: wrote to the store");
        // Not even a probe of conditional writes: the snapshot cannot see
        // a probe key that came and went, the server's counter can.
        if let (Some(b), Some(a)) = (writes_before, backend.writes()) {
            assert_eq!(a, b, "{name}: {what}: made {} write requests", a - b);
        }
        count += 1;
        // Put the good object back for the next scenario.
        put("manifests/1.0.0.json", &good_manifest);
        put("manifests/channels/latest.json", &good_pointer);
        put("api/sdk/sri", &good_index);
    }
    assert_eq!(count, 6);
});

/// Every file under `dir` with its bytes (for stores and directories the
/// backend snapshot cannot see, e.g. one that should not exist at all).
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name().into_iter().flatten() {
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, std::fs::read(entry.path()).unwrap()));
        }
    }
    out
}

fn manifest_paths(backend: &Backend, version: &str) -> Vec<String> {
    let bytes = backend.read(&format!("manifests/{version}.json")).expect("sealed manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    manifest["files"].as_object().unwrap().keys().cloned().collect()
}

backend_test!(hidden_files_are_refused_by_name_unless_left_out_or_asked_for, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[
        ("a.js", b"1"),
        (".env", b"SECRET=1"),
        (".git/config", b"[core]"),
        ("sub/.DS_Store", b"x"),
        ("a.js.map", b"{}"),
    ]);
    let b = build.path().to_str().unwrap();
    let cases = vec![
        case("hidden files", &["publish", b, "--version", "1.0.0"], 2, ".env, .git/, sub/.DS_Store"),
        case("hidden files say how", &["publish", b, "--version", "1.0.0"], 2, "--include-hidden"),
        case("hidden files, dry run", &["publish", b, "--version", "1.0.0", "--dry-run"], 2, "3 hidden"),
        case(
            "hidden files, some excluded",
            &["publish", b, "--version", "1.0.0", "--exclude", ".git/", "--exclude", ".DS_Store"],
            2,
            "contains 1 hidden path(s) that would be published at public, immutable URLs: .env;",
        ),
        case("empty pattern", &["publish", b, "--version", "1.0.0", "--exclude", ""], 2, "matches nothing"),
        case("comment pattern", &["publish", b, "--version", "1.0.0", "--include", "#x"], 2, "\\#"),
        case(
            "everything excluded",
            &["publish", b, "--version", "1.0.0", "--include-hidden", "--exclude", "*"],
            2,
            "no files to publish",
        ),
    ];
    check(&backend, cwd.path(), &cases);

    // The dry run shows what would be published and what is left out, and why.
    let leave_out = ["--exclude", ".env", "--exclude", ".git/", "--exclude", ".DS_Store", "--exclude", "*.map"];
    let mut args = vec!["publish", b, "--version", "1.0.0", "--dry-run", "--json"];
    args.extend(leave_out);
    let plan = run(&backend, cwd.path(), &args).expect_code(0).json();
    let published: Vec<&str> = plan["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(published, ["a.js"], "{name}");
    let left: Vec<(&str, &str)> = plan["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["path"].as_str().unwrap(), l["pattern"].as_str().unwrap()))
        .collect();
    assert_eq!(left, [(".env", ".env"), (".git/", ".git/"), ("a.js.map", "*.map"), ("sub/.DS_Store", ".DS_Store")]);
    let mut args = vec!["publish", b, "--version", "1.0.0", "--dry-run"];
    args.extend(leave_out);
    let text = run(&backend, cwd.path(), &args).expect_code(0).stdout.clone();
    assert!(text.contains("left out (4):") && text.contains(".git/  (excluded by --exclude .git/)"), "{text}");

    // Published, the manifest holds exactly the files the plan kept.
    let mut args = vec!["publish", b, "--version", "1.0.0"];
    args.extend(leave_out);
    run(&backend, cwd.path(), &args).expect_code(0);
    assert_eq!(manifest_paths(&backend, "1.0.0"), ["a.js"], "{name}");
    assert_eq!(backend.read("sdk/1.0.0/.env"), None, "{name}");
    // Asked for, a hidden file is published; the rest stays refused or left out.
    let args = ["publish", b, "--version", "2.0.0", "--include", ".env", "--exclude", ".*", "--exclude", "*.map"];
    run(&backend, cwd.path(), &args).expect_code(0);
    assert_eq!(manifest_paths(&backend, "2.0.0"), [".env", "a.js"], "{name}");
});

#[test]
fn a_build_that_is_holds_or_is_inside_the_local_store_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let c = cwd.path();
    // A build holding a store that does not exist yet: compared by the path it would have.
    let build = build_dir(&[("a.js", b"1")]);
    let b = build.path().to_str().unwrap();
    let store = build.path().join("cdn");
    let out = run_without_store(c, &["--store", store.to_str().unwrap(), "publish", b, "--version", "1.0.0"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("contains the local store"), "{}", out.stderr);
    assert!(!store.exists() && !c.join("manifests").exists(), "nothing was created");

    // A store with a version in it: the build is the store, or a directory inside it.
    let first = build_dir(&[("a.js", b"1")]);
    let s = store.to_str().unwrap();
    run_without_store(c, &["--store", s, "publish", first.path().to_str().unwrap(), "--version", "1.0.0"])
        .expect_code(0);
    let before = tree(build.path());
    let inside = format!("{s}/sdk/1.0.0");
    let dotted = format!("{b}/./cdn/..");
    for (what, args, hint) in [
        ("build holds the store", vec!["--store", s, "publish", b, "--version", "2.0.0"], "contains the local store"),
        ("build is the store", vec!["--store", s, "publish", s, "--version", "2.0.0"], "is the local store"),
        ("build inside the store", vec!["--store", s, "publish", &inside, "--version", "2.0.0"], "is inside"),
        ("spelled otherwise", vec!["--store", s, "publish", &dotted, "--version", "2.0.0"], "contains the local"),
        ("dry run", vec!["--store", s, "publish", b, "--version", "2.0.0", "--dry-run"], "contains the local store"),
    ] {
        let out = run_without_store(c, &args);
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(out.stderr.contains(hint) && out.stderr.contains("--store"), "{what}: {}", out.stderr);
        assert_eq!(tree(build.path()), before, "{what}: wrote to the store");
    }
}

backend_test!(publishing_from_inside_the_build_twice_is_a_no_op_and_never_publishes_manifests, |backend| {
    let name = backend.name();
    let root = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("a.js"), b"1").unwrap();
    // `cd dist && sdk-cdn --store ../cdn publish . --version 1.0.0`: ./manifests lies inside the build.
    let publish = |version: &str, extra: &[&str]| {
        let mut args = vec!["publish", ".", "--version", version];
        args.extend(extra);
        match &backend {
            Backend::Local(_) => {
                let mut with_store = vec!["--store", "../cdn"];
                with_store.extend(args);
                run_without_store(&dist, &with_store)
            }
            _ => run(&backend, &dist, &args),
        }
    };
    publish("1.0.0", &[]).expect_code(0);
    assert!(dist.join("manifests/1.0.0.json").is_file(), "{name}: the local copy is written");
    let out = publish("1.0.0", &[]);
    out.expect_code(0);
    assert!(out.stdout.contains("already published"), "{name}: {}", out.stdout);
    let plan = publish("1.0.1", &["--dry-run", "--json"]).expect_code(0).json();
    assert_eq!(plan["left_out"], serde_json::json!([{ "path": "manifests/", "reason": "manifests_dir" }]));
    publish("1.0.1", &[]).expect_code(0);
    let paths = match &backend {
        Backend::Local(_) => {
            let bytes = std::fs::read(root.path().join("cdn/manifests/1.0.1.json")).unwrap();
            let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            manifest["files"].as_object().unwrap().keys().cloned().collect()
        }
        _ => manifest_paths(&backend, "1.0.1"),
    };
    assert_eq!(paths, ["a.js"], "{name}: the next version publishes no manifests");
});

backend_test!(an_unusable_manifests_dir_is_refused_before_the_store_changes, |backend| {
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("afile"), b"x").unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    let b = build.path().to_str().unwrap();
    let cases = vec![
        case("manifests dir is a file", &["publish", b, "--version", "1.0.0", "--manifests-dir", "afile"], 2, "afile"),
        case(
            "manifests dir under a file",
            &["publish", b, "--version", "1.0.0", "--manifests-dir", "afile/sub"],
            2,
            "cannot be used as --manifests-dir",
        ),
        case(
            "manifests dir is the build",
            &["publish", b, "--version", "1.0.0", "--manifests-dir", b],
            2,
            "is also the --manifests-dir",
        ),
    ];
    check(&backend, cwd.path(), &cases);
    assert_eq!(std::fs::read(cwd.path().join("afile")).unwrap(), b"x", "{name}");
    // A new directory is created, and the publish goes through.
    run(&backend, cwd.path(), &["publish", b, "--version", "1.0.0", "--manifests-dir", "out/m"]).expect_code(0);
    assert!(cwd.path().join("out/m/1.0.0.json").is_file(), "{name}");
});

unsafe extern "C" {
    fn geteuid() -> u32;
    fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
}

/// `prctl` option dropping a capability from the bounding set, and the two
/// capabilities that let root read any file (linux/prctl.h, linux/capability.h).
const PR_CAPBSET_DROP: std::ffi::c_int = 24;
const CAP_DAC_OVERRIDE: std::ffi::c_ulong = 1;
const CAP_DAC_READ_SEARCH: std::ffi::c_ulong = 2;

/// Root reads a mode-000 file anyway; when the tests run as root, the child
/// drops the two capabilities that allow it (from the bounding set, so the
/// binary starts without them) and a mode-000 file is unreadable to it too.
/// Nothing else changes: same user, same paths. Should that not take effect,
/// the publish reads the file and the test fails; it never passes vacuously.
fn unable_to_read_mode_000(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        return;
    }
    // SAFETY: the closure only makes prctl system calls, which are safe between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for cap in [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH] {
                if prctl(PR_CAPBSET_DROP, cap) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

backend_test!(an_unreadable_input_file_is_bad_input_named_before_any_write, |backend| {
    use std::os::unix::fs::PermissionsExt;
    let name = backend.name();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1"), ("secret.js", b"2")]);
    let secret = build.path().join("secret.js");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (before, writes) = (backend.snapshot(), backend.writes());
    let mut cmd =
        support::cli::command(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]);
    unable_to_read_mode_000(&mut cmd);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(stderr.contains("secret.js") && stderr.contains("cannot be read"), "{name}: {stderr}");
    assert_eq!(backend.snapshot(), before, "{name}: wrote to the store");
    assert_eq!(backend.writes(), writes, "{name}");
});

/// A sealed manifest is store data, not input: a file path in it that fits
/// under `sdk/2.0.0/` but not under `sdk/latest/` (one byte longer) makes
/// `promote` fail as a damaged store (exit 1) naming the manifest, never as
/// bad input (exit 2).
#[test]
fn a_manifest_path_too_long_for_latest_is_a_damaged_store_not_bad_input() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    let manifest: serde_json::Value = serde_json::from_slice(&backend.read("manifests/1.0.0.json").unwrap()).unwrap();
    // 1,014 bytes: `sdk/2.0.0/` + path is S3's 1,024; `sdk/latest/` + path is 1,025.
    let long = format!("{}/{}", vec!["d".repeat(200); 5].join("/"), "abcdef.js");
    assert_eq!(long.len(), 1014);
    let entry = manifest["files"]["a.js"].clone();
    let damaged = serde_json::json!({"version": "2.0.0", "files": {long.clone(): entry}});
    backend.put_raw("manifests/2.0.0.json", damaged.to_string().as_bytes());
    let before = backend.snapshot();
    let out = run(&backend, cwd.path(), &["promote", "2.0.0"]);
    // Its files are not in the store (they never could be): refused before anything changes.
    out.expect_code(3);
    assert!(
        out.stderr.contains("2.0.0 cannot be promoted") && out.stderr.contains("sdk-cdn verify 2.0.0"),
        "{}",
        out.stderr
    );
    assert_eq!(backend.snapshot(), before, "the promotion changed the store");
}

backend_test!(a_path_too_long_only_under_latest_is_refused_before_anything_is_written, [local, s3], |backend| {
    let cwd = tempfile::tempdir().unwrap();
    // 1,014 bytes: `sdk/1.0.0/` + path is S3's 1,024, `sdk/latest/` + path is
    // 1,025. Sealed, the version could never be promoted.
    let long = format!("{}/x.js", vec!["b".repeat(100); 10].join("/"));
    assert_eq!(long.len(), 1014);
    let build = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(build.path().join(&long).parent().unwrap()).unwrap();
    std::fs::write(build.path().join(&long), b"x").unwrap();
    std::fs::write(build.path().join("main.js"), b"ok").unwrap();
    let b = build.path().to_str().unwrap();
    let cases = vec![
        case("latest key too long", &["publish", b, "--version", "1.0.0"], 2, "is 1025 bytes"),
        case("the same, not promoted", &["publish", b, "--version", "1.0.0", "--no-promote"], 2, "sdk/latest/"),
    ];
    check(&backend, cwd.path(), &cases);
});

#[test]
fn a_manifests_dir_inside_the_local_store_is_refused() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"js"), ("sri.json", b"{\"mine\":1}")]);
    let b = build.path().to_str().unwrap();
    run(&backend, cwd.path(), &["publish", b, "--version", "1.0.0"]).expect_code(0);
    let store = backend.args()[1].clone();
    // Its local copies (`<v>.json`, `sri.json`) would land on published files.
    let inside = format!("{store}/sdk/1.0.0");
    let cases = vec![
        case(
            "inside a version",
            &["publish", b, "--version", "1.0.0", "--manifests-dir", &inside],
            2,
            "inside the local store",
        ),
        case(
            "the store itself",
            &["publish", b, "--version", "1.1.0", "--manifests-dir", &store],
            2,
            "--manifests-dir",
        ),
    ];
    check(&backend, cwd.path(), &cases);
    run(&backend, cwd.path(), &["verify"]).expect_code(0);
}
