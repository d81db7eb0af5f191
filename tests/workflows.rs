//! The CI contract, checked by running the scripts CI runs: the workflow
//! check refuses a release workflow that can go green when the release
//! failed (it catches the release.yml that hid exit 3), accepts ours, and
//! the release's first step refuses anything but a version tag.
//!
//! Needs python3 with PyYAML and bash; without them the tests print
//! "skipped", unless `SDK_CDN_REQUIRE_TOOLS=1` (CI sets it).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod tools;
}

use std::path::Path;
use std::process::Command;

use support::tools::tools_present;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have_python_yaml() -> bool {
    if !tools_present(&["python3", "bash"], "SDK_CDN_REQUIRE_TOOLS") {
        return false;
    }
    let ok = Command::new("python3").args(["-c", "import yaml"]).status().is_ok_and(|s| s.success());
    if !ok && std::env::var("SDK_CDN_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("SDK_CDN_REQUIRE_TOOLS=1 but python3 has no PyYAML (pip install pyyaml)");
    }
    ok
}

fn check_workflows(files: &[&str]) -> (i32, String) {
    let out = Command::new("python3")
        .arg("scripts/check-workflows.py")
        .args(files)
        .current_dir(repo())
        .output()
        .expect("run scripts/check-workflows.py");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_workflow_check_catches_a_release_that_hides_failures() {
    if !have_python_yaml() {
        return;
    }
    let (code, stderr) = check_workflows(&["tests/fixtures/workflows/release-without-pipefail-purge-or-cdn-check.yml"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("pipes without pipefail"), "{stderr}");
    assert!(stderr.contains("never purges the CDN"), "{stderr}");
    assert!(stderr.contains("--base-url"), "{stderr}");
}

#[test]
fn our_workflows_pass_the_workflow_check() {
    if !have_python_yaml() {
        return;
    }
    let (code, stderr) = check_workflows(&[]);
    assert_eq!(code, 0, "{stderr}");
}

fn release_version(ref_type: &str, ref_name: &str) -> (i32, String, String) {
    let out = Command::new("bash")
        .args(["scripts/release-version.sh", ref_type, ref_name])
        .current_dir(repo())
        .env("CDN_URL", "https://cdn.example.com")
        .env("SDK_CDN_PURGE_COMMAND", "true")
        .env_remove("SDK_CDN_CLOUDFRONT_DISTRIBUTION")
        .output()
        .expect("run scripts/release-version.sh");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_release_refuses_branches_and_bad_tags_before_anything_runs() {
    if !tools_present(&["bash"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let (code, stdout, stderr) = release_version("branch", "main");
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.is_empty(), "no version may be output: {stdout}");
    assert!(stderr.contains("branch 'main'") && stderr.contains("push a tag"), "{stderr}");
    for bad in ["1.2.3", "v1.2", "v1.2.3+build.5", "v01.2.3", "vmain"] {
        let (code, stdout, stderr) = release_version("tag", bad);
        assert_eq!(code, 2, "tag {bad} was accepted: {stdout}");
        assert!(stderr.contains(bad), "{stderr}");
    }
    assert_eq!(release_version("tag", "v1.2.3"), (0, "version=1.2.3\nprerelease=false\n".into(), String::new()));
    let (code, stdout, _) = release_version("tag", "v1.3.0-rc.1");
    assert_eq!((code, stdout.as_str()), (0, "version=1.3.0-rc.1\nprerelease=true\n"));
}

#[test]
fn the_release_refuses_to_run_without_a_cdn_to_purge_and_check() {
    if !tools_present(&["bash"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let out = Command::new("bash")
        .args(["scripts/release-version.sh", "tag", "v1.2.3"])
        .current_dir(repo())
        .env("CDN_URL", "https://cdn.example.com")
        .env_remove("SDK_CDN_PURGE_COMMAND")
        .env_remove("SDK_CDN_CLOUDFRONT_DISTRIBUTION")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SDK_CDN_CLOUDFRONT_DISTRIBUTION"));
    let out = Command::new("bash")
        .args(["scripts/release-version.sh", "tag", "v1.2.3"])
        .current_dir(repo())
        .env_remove("CDN_URL")
        .env("SDK_CDN_PURGE_COMMAND", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SDK_CDN_BASE_URL"));
}
