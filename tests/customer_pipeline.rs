//! The install guide's pipeline with the real tools customers use:
//! `curl -fsS $API/api/sdk/sri | jq -er '.files["0.1.0/haloagents.umd.js"]'`
//! against `sdk-cdn serve` must print exactly
//! `sha384-` + `openssl dgst -sha384 -binary F | openssl base64 -A`, and
//! must fail (non-zero exit) instead of printing `null` or nothing when the
//! version is typo'd or the API is down: `integrity="null"` makes a browser
//! run the script unchecked.
//!
//! Needs curl, jq and openssl. Without them the test prints a skip notice,
//! unless `SDK_CDN_REQUIRE_TOOLS=1` (CI sets it), which makes it a failure.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use std::path::Path;
use std::process::Command;

use support::backends;
use support::cli::run;
use support::serve::Served;
use support::tools::tools_present;

/// Runs `script` with bash (`pipefail`, so a failing curl is not hidden by jq) and returns stdout.
fn sh(script: &str, cwd: &Path) -> String {
    let out = Command::new("bash").args(["-o", "pipefail", "-c", script]).current_dir(cwd).output().expect("run bash");
    assert!(out.status.success(), "{script}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The exit code of `script` under bash with pipefail.
fn sh_code(script: &str, cwd: &Path) -> i32 {
    let out = Command::new("bash").args(["-o", "pipefail", "-c", script]).current_dir(cwd).output().expect("run bash");
    out.status.code().unwrap_or(-1)
}

#[test]
fn curl_and_jq_from_the_install_guide_print_the_hash_openssl_computes() {
    if !tools_present(&["curl", "jq", "openssl", "bash"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    run(&backend, cwd.path(), &["publish", root.join("dist").to_str().unwrap(), "--version", "0.1.0"]).expect_code(0);
    let served = Served::start(&backend, cwd.path(), &[]);
    let url = served.base_url();

    let from_api = sh(&format!("curl -fsS {url}/api/sdk/sri | jq -er '.files[\"0.1.0/haloagents.umd.js\"]'"), root);
    let digest = sh("openssl dgst -sha384 -binary dist/haloagents.umd.js | openssl base64 -A", root);
    assert_eq!(from_api.trim_end(), format!("sha384-{digest}"));

    // The bytes the CDN serves have that hash too, and so does latest/.
    let served_digest = sh(
        &format!("curl -sf {url}/sdk/0.1.0/haloagents.umd.js | openssl dgst -sha384 -binary | openssl base64 -A"),
        root,
    );
    assert_eq!(served_digest, digest);
    let latest = sh(&format!("curl -fsS {url}/api/sdk/sri | jq -er '.files[\"latest/haloagents.umd.js\"]'"), root);
    // Fail closed: a typo'd version, an unpublished one, an API that is down.
    let typo = format!("curl -fsS {url}/api/sdk/sri | jq -er '.files[\"0.8.0/haloagents.umd.js\"]'");
    assert_ne!(sh_code(&typo, root), 0, "{typo} succeeded");
    let unpublished = format!("curl -fsS {url}/api/sdk/sri/0.8.0 | jq -er .files");
    assert_ne!(sh_code(&unpublished, root), 0, "{unpublished} succeeded");
    let down = "curl -fsS http://127.0.0.1:9/api/sdk/sri | jq -er '.files[\"0.1.0/haloagents.umd.js\"]'";
    assert_ne!(sh_code(down, root), 0, "{down} succeeded");
    assert_eq!(latest.trim_end(), format!("sha384-{digest}"));

    // The index arrives byte for byte as stored, also through curl's decompression.
    let stored = backend.read("api/sdk/sri").unwrap();
    let plain = Command::new("curl").args(["-sf", &format!("{url}/api/sdk/sri")]).output().unwrap().stdout;
    let compressed =
        Command::new("curl").args(["-sf", "--compressed", &format!("{url}/api/sdk/sri")]).output().unwrap();
    assert_eq!(plain, stored);
    assert_eq!(compressed.stdout, stored);
}
