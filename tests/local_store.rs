//! The local directory store through the binary, where its filesystem
//! matters: a copied or restored store (`cp -a`, `rsync -a`, `tar`), long
//! names, file/directory clashes across `latest/` promotions, and temp files
//! left by killed runs.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod pause;
    pub mod s3_server;
}

use std::path::Path;
use std::process::Command;

use sdk_cdn::store::{Key, LocalStore, Store};
use support::backends::{self, Backend};
use support::cli::{build_dir, run};
use support::fixtures::publish_dir as publish;
use support::pause::Pause;

fn local() -> (Backend, tempfile::TempDir) {
    (backends::local(), tempfile::tempdir().unwrap())
}

fn store_dir(backend: &Backend) -> &Path {
    let Backend::Local(dir) = backend else { unreachable!() };
    dir.path()
}

/// Every key's headers, as a store reports them.
fn headers_of(root: &Path) -> Vec<(String, String, String, Option<String>)> {
    let store = LocalStore::new(root.to_path_buf());
    backends::runtime().block_on(async {
        let mut out = Vec::new();
        for meta in store.list("").await.unwrap() {
            let h = store.head(&meta.key).await.unwrap().unwrap().headers.unwrap_or_default();
            out.push((meta.key.to_string(), h.content_type, h.cache_control, h.sri));
        }
        out
    })
}

#[test]
fn a_store_copied_with_cp_rsync_or_tar_verifies_clean_and_keeps_its_headers() {
    let (backend, cwd) = local();
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={}"), ("css/a.css", b"body{}")]);
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    let original = headers_of(store_dir(&backend));
    assert!(original.iter().all(|(_, ct, _, _)| !ct.is_empty()), "{original:?}");
    let from = store_dir(&backend).display().to_string();
    let copies = tempfile::tempdir().unwrap();
    for (how, script) in [
        ("cp", "cp -a \"$0\" \"$1\""),
        ("rsync", "rsync -a \"$0/\" \"$1/\""),
        ("tar", "mkdir \"$1\" && tar -C \"$0\" -cf - . | tar -C \"$1\" -xf -"),
    ] {
        let to = copies.path().join(how);
        let status = Command::new("sh").args(["-c", script, &from, to.to_str().unwrap()]).status().unwrap();
        assert!(status.success(), "{how}");
        let args = ["--store", to.to_str().unwrap(), "verify", "--all"];
        let out = support::cli::run_without_store(cwd.path(), &args);
        out.expect_code(0);
        assert_eq!(headers_of(&to), original, "{how}: head returns the published headers");
    }
}

#[test]
fn names_of_250_bytes_publish_promote_and_verify() {
    let (backend, cwd) = local();
    let long = format!("{}.js", "n".repeat(247));
    let build = build_dir(&[(&long, b"one")]);
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    std::fs::write(build.path().join(&long), b"two").unwrap();
    publish(&backend, cwd.path(), build.path(), "1.1.0", &[]).expect_code(0);
    run(&backend, cwd.path(), &["promote", "1.0.0", "--allow-downgrade"]).expect_code(0);
    run(&backend, cwd.path(), &["verify", "--all"]).expect_code(0);
    assert_eq!(std::fs::read(store_dir(&backend).join("sdk/latest").join(&long)).unwrap(), b"one");
}

#[test]
fn a_version_too_long_for_a_local_file_name_is_refused_while_planning() {
    let (backend, cwd) = local();
    let build = build_dir(&[("a.js", b"1")]);
    let version = format!("1.0.0-{}", "p".repeat(250));
    let out = publish(&backend, cwd.path(), build.path(), &version, &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("255 bytes per name") && out.stderr.contains("shorter version"), "{}", out.stderr);
    assert!(backend.snapshot().is_empty(), "nothing was written");
}

#[test]
fn promotion_replaces_a_file_by_a_directory_of_the_same_name_and_back() {
    let (backend, cwd) = local();
    let file = build_dir(&[("foo", b"a file"), ("keep.js", b"k")]);
    let dir = build_dir(&[("foo/bar.js", b"in a directory"), ("keep.js", b"k")]);
    publish(&backend, cwd.path(), file.path(), "1.0.0", &[]).expect_code(0);
    publish(&backend, cwd.path(), dir.path(), "2.0.0", &[]).expect_code(0);
    let latest = store_dir(&backend).join("sdk/latest");
    assert_eq!(std::fs::read(latest.join("foo/bar.js")).unwrap(), b"in a directory");
    run(&backend, cwd.path(), &["promote", "1.0.0", "--allow-downgrade"]).expect_code(0);
    assert_eq!(std::fs::read(latest.join("foo")).unwrap(), b"a file");
    run(&backend, cwd.path(), &["verify", "--all"]).expect_code(0);
    let keys: Vec<String> = backend.snapshot().into_keys().filter(|k| k.starts_with("sdk/latest/")).collect();
    assert_eq!(keys, ["sdk/latest/foo", "sdk/latest/keep.js"]);
}

/// A publish killed while it stages a file (at pause point `staged`, its
/// bytes in a temp file) leaves that temp file behind.
fn kill_a_publish_while_it_writes(backend: &Backend, cwd: &Path, build: &Path) {
    let tmp = store_dir(backend).join(".sdk-cdn/tmp");
    let pause = Pause::new();
    pause.arm("staged");
    let mut child = pause.spawn(backend, cwd, &["publish", build.to_str().unwrap(), "--version", "1.0.0"]);
    pause.reached("staged", &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(std::fs::read_dir(&tmp).unwrap().count() > 0);
}

#[test]
fn temp_files_of_killed_runs_are_removed_by_doctor_and_by_the_next_publish() {
    let (backend, cwd) = local();
    let build = build_dir(&[("sdk.wasm", b"\0asm")]);
    let tmp = store_dir(&backend).join(".sdk-cdn/tmp");

    kill_a_publish_while_it_writes(&backend, cwd.path(), build.path());
    let json = run(&backend, cwd.path(), &["doctor", "--json"]).expect_code(0).json();
    let check = json["checks"].as_array().unwrap().iter().find(|c| c["name"] == "temp files").unwrap().clone();
    assert!(check["detail"].as_str().unwrap().starts_with("removed 1 temp files"), "{check}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);

    kill_a_publish_while_it_writes(&backend, cwd.path(), build.path());
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the next publish removed the orphan");
    let store = LocalStore::new(store_dir(&backend).to_path_buf());
    let meta = backends::runtime().block_on(store.head(&Key::new("sdk/1.0.0/sdk.wasm").unwrap())).unwrap().unwrap();
    assert_eq!(meta.headers.unwrap().sri, Some(support::fixtures::sri_of(b"\0asm")));
}

#[test]
fn an_index_path_that_is_a_directory_is_refused_before_any_write() {
    let (backend, cwd) = local();
    let build = build_dir(&[("a.js", b"1")]);
    publish(&backend, cwd.path(), build.path(), "1.0.0", &[]).expect_code(0);
    // Damage by hand: the index's name is now a directory of other files.
    let index = store_dir(&backend).join("api/sdk/sri");
    std::fs::remove_file(&index).unwrap();
    std::fs::create_dir_all(index.join("stray")).unwrap();
    std::fs::write(index.join("stray/x"), b"x").unwrap();
    let before = backend.snapshot();
    let next = build_dir(&[("a.js", b"2")]);
    let out = publish(&backend, cwd.path(), next.path(), "1.1.0", &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("api/sdk/sri is a directory of other objects"), "{}", out.stderr);
    assert_eq!(backend.snapshot(), before, "the refused publish wrote something");
    assert!(!store_dir(&backend).join("manifests/1.1.0.json").exists(), "1.1.0 was sealed");
}
