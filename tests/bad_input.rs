//! The bad-input catalogue: every case gets a clear message naming what is
//! wrong, the documented exit code, and writes nothing to the store.
//! (HTTP requests to `serve` have their own catalogue in tests/serve_http.rs.)

mod support;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use support::backends::{self, Backend};
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
        let out = run(backend, cwd, &args);
        assert_eq!(out.code, c.code, "{}: {args:?}\nstdout: {}\nstderr: {}", c.what, out.stdout, out.stderr);
        assert!(out.stderr.contains(c.hint), "{}: the message should mention {:?}:\n{}", c.what, c.hint, out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}: {}", c.what, out.stderr);
        assert_eq!(backend.snapshot(), before, "{}: wrote to the store", c.what);
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
        case("promote another channel", &["promote", "1.0.0", "--channel", "beta"], 2, "latest"),
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
    ] {
        let out = run_without_store(cwd.path(), &["--store", store, "publish", g, "--version", "1.0.0"]);
        assert_eq!(out.code, 2, "--store {store:?}: {}", out.stderr);
        assert!(out.stderr.contains(hint), "--store {store:?}: {}", out.stderr);
    }
    assert!(!cwd.path().join("manifests").exists());

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

#[test]
fn corrupted_objects_in_the_store_are_named_and_nothing_is_written() {
    for backend in backends::all() {
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
            ("hash in the wrong format", "manifests/1.0.0.json", bad_hash.into_bytes(), vec!["verify"]),
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
            assert!(
                out.stderr.contains("sdk-cdn verify"),
                "{name}: {what}: the message says what to do: {}",
                out.stderr
            );
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
    }
}
