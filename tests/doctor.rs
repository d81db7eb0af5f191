//! `sdk-cdn doctor`, and the same probe guarding `publish`, through the binary.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
}

use support::backends::{Backend, backend_test};
use support::cli::{build_dir, run};
use support::s3_server::{self, Conditional};

backend_test!(doctor_passes_on_every_honest_store, |backend| {
    let cwd = tempfile::tempdir().unwrap();
    let out = run(&backend, cwd.path(), &["doctor"]);
    out.expect_code(0);
    for check in ["list", "write", "read", "create-only", "compare-and-swap", "delete"] {
        assert!(out.stdout.contains(check), "{}: {check} missing from {}", backend.name(), out.stdout);
    }
    let json = run(&backend, cwd.path(), &["doctor", "--json"]).expect_code(0).json();
    assert_eq!(json["verdict"], "healthy");
    // Each store also reports temp files of interrupted writes (S3: upload copies in TMPDIR).
    assert_eq!(json["checks"].as_array().unwrap().len(), 7, "{}", backend.name());
    assert!(backend.snapshot().is_empty(), "{}: the probe leaves nothing behind", backend.name());
});

#[test]
fn doctor_exits_4_when_the_store_ignores_conditional_writes() {
    let backend = Backend::InProcess(s3_server::start_blocking(Conditional::Ignore));
    let cwd = tempfile::tempdir().unwrap();
    let out = run(&backend, cwd.path(), &["doctor"]);
    out.expect_code(4);
    assert!(out.stderr.contains("ignores conditional writes"), "{}", out.stderr);
    assert!(out.stderr.contains("If-None-Match"), "the message names the header: {}", out.stderr);
    let json = run(&backend, cwd.path(), &["doctor", "--json"]).expect_code(4).json();
    assert_eq!(json["report"]["verdict"], "ignores_conditional_writes");
}

#[test]
fn publish_refuses_a_store_that_ignores_conditional_writes_before_any_upload() {
    let backend = Backend::InProcess(s3_server::start_blocking(Conditional::Ignore));
    let (cwd, build) = (tempfile::tempdir().unwrap(), build_dir(&[("a.js", b"1")]));
    let out = run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]);
    out.expect_code(4);
    assert!(out.stderr.contains("refusing to publish"), "{}", out.stderr);
    assert!(backend.snapshot().is_empty(), "no asset was written: {:?}", backend.snapshot().keys());
}

#[test]
fn doctor_exits_1_naming_the_problem_when_the_store_is_unreachable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cwd = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
        .current_dir(cwd.path())
        .args(["--store", "s3://some-bucket", "--endpoint-url", &endpoint, "--path-style", "doctor"])
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unreachable") && stderr.contains("--endpoint-url"), "{stderr}");
}

#[test]
fn doctor_exits_1_on_bad_credentials_and_never_prints_the_secret() {
    let server = s3_server::start_blocking(Conditional::Atomic);
    let cwd = tempfile::tempdir().unwrap();
    let secret = "sdkcdn-FAKE-SECRET-do-not-print-4711";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
        .current_dir(cwd.path())
        .args(["--store", &server.store_url(), "--endpoint-url", &server.endpoint, "--path-style", "doctor", "-vv"])
        .envs(server.env())
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("credentials"), "the message says what to fix: {stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret), "the secret leaked");
}
