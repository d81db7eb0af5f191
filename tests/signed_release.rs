//! Issue 15, publisher side: `publish`, `promote` and `reindex` with a
//! signing key sign every index and every sealed manifest; the stock
//! `minisign` CLI accepts the signatures and rejects them after a byte
//! changes; a signed store refuses unsigned writes; `verify --pubkey` checks
//! it all. On every backend.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use std::path::Path;

use support::backends::backend_test;
use support::cli::run;
use support::fixtures::publish_files as publish;
use support::tools::tools_present;

fn keygen(dir: &Path) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sdk-cdn"))
        .args(["keygen", "--no-password", "--dir", dir.to_str().unwrap(), "--name", "release"])
        .env_remove("SDK_CDN_SIGN_KEY_PASSWORD")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = dir.join("release.key").display().to_string();
    let public = std::fs::read_to_string(dir.join("release.pub")).unwrap();
    let public = public.lines().last().unwrap().trim().to_string();
    (key, public)
}

fn sha384_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha384::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `minisign -Vm FILE -P KEY` on `bytes` with `signature` beside it.
fn stock_minisign_accepts(bytes: &[u8], signature: &[u8], public: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("object");
    std::fs::write(&file, bytes).unwrap();
    std::fs::write(dir.path().join("object.minisig"), signature).unwrap();
    let out = std::process::Command::new("minisign").args(["-Vm"]).arg(&file).args(["-P", public]).output().unwrap();
    out.status.success()
}

backend_test!(signed_publishes_verify_with_stock_minisign_and_a_signed_store_stays_signed, |backend| {
    if !tools_present(&["minisign"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let name = backend.name();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let cwd = tempfile::tempdir().unwrap();
    let v1: &[(&str, &[u8])] = &[("haloagents.umd.js", b"window.HaloAgents={v:1};")];
    let v2: &[(&str, &[u8])] = &[("haloagents.umd.js", b"window.HaloAgents={v:2};")];
    publish(&backend, cwd.path(), v1, "1.0.0", &["--sign-key", &key]).expect_code(0);

    for (object, signature) in
        [("api/sdk/sri", "api/sdk/sri.minisig"), ("manifests/1.0.0.json", "manifests/1.0.0.json.minisig")]
    {
        let bytes = backend.read(object).unwrap();
        let sig = backend.read(signature).unwrap_or_else(|| panic!("{name}: {signature} missing"));
        assert!(stock_minisign_accepts(&bytes, &sig, &public), "{name}: minisign refused {signature}");
        let mut changed = bytes.clone();
        changed[10] ^= 1;
        assert!(!stock_minisign_accepts(&changed, &sig, &public), "{name}: {signature} accepted changed bytes");
    }
    run(&backend, cwd.path(), &["verify", "--pubkey", &public]).expect_code(0);

    // `serve` hands out what a customer needs to check, and nothing else.
    let served = support::serve::Served::start(&backend, cwd.path(), &[]);
    for (path, object) in [
        ("/api/sdk/sri.minisig", "api/sdk/sri.minisig"),
        ("/api/sdk/manifests/1.0.0.json.minisig", "manifests/1.0.0.json.minisig"),
        ("/api/sdk/manifests/1.0.0.json", "manifests/1.0.0.json"),
    ] {
        let response = support::serve::get(served.addr, path, &[]);
        assert_eq!(response.status, 200, "{name}: {path}");
        assert_eq!(response.body, backend.read(object).unwrap(), "{name}: {path}");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"), "{name}: {path}");
    }
    let signature = String::from_utf8(backend.read("api/sdk/sri.minisig").unwrap()).unwrap();
    let index = backend.read("api/sdk/sri").unwrap();
    let copy = format!("/api/sdk/sigs/sri-{}.minisig", sha384_hex(&index));
    assert_eq!(support::serve::get(served.addr, &copy, &[]).body, signature.as_bytes(), "{name}: {copy}");
    for hidden in [
        "/manifests/1.0.0.json",
        "/api/sdk/manifests/pending%2f1.0.0.json",
        "/api/sdk/manifests/latest.json",
        "/api/sdk/manifests/9.9.9.json",
        "/api/sdk/sigs/sri-00.minisig",
    ] {
        let status = support::serve::get(served.addr, hidden, &[]).status;
        assert!(matches!(status, 400 | 404), "{name}: {hidden} gave {status}");
    }
    drop(served);

    // Without the key, a signed store refuses the write and nothing changes.
    let before = backend.snapshot();
    let out = publish(&backend, cwd.path(), v2, "2.0.0", &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("--sign-key") && out.stderr.contains("--allow-unsigned"), "{name}: {}", out.stderr);
    assert_eq!(backend.snapshot(), before, "{name}: a refused unsigned publish wrote");
    run(&backend, cwd.path(), &["promote", "1.0.0"]).expect_code(2);

    // With the key, the next index is signed too, and the signature follows it.
    publish(&backend, cwd.path(), v2, "2.0.0", &["--sign-key", &key]).expect_code(0);
    let index = backend.read("api/sdk/sri").unwrap();
    assert!(stock_minisign_accepts(&index, &backend.read("api/sdk/sri.minisig").unwrap(), &public), "{name}");
    run(&backend, cwd.path(), &["promote", "1.0.0", "--allow-downgrade", "--sign-key", &key]).expect_code(0);
    run(&backend, cwd.path(), &["verify", "--pubkey", &public]).expect_code(0);

    // A tampered index (or one signed by another key) fails verify --pubkey.
    // Still a valid index, with one hash changed (as an attacker would).
    let index = String::from_utf8(backend.read("api/sdk/sri").unwrap()).unwrap();
    let at = index.find("sha384-").unwrap() + 10;
    let swapped = if &index[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &index[..at], &index[at + 1..]);
    backend.put_raw("api/sdk/sri", tampered.as_bytes());
    let out = run(&backend, cwd.path(), &["verify", "--pubkey", &public, "--json"]);
    out.expect_code(3);
    let findings = out.json()["report"]["findings"].to_string();
    assert!(findings.contains("\"signature\""), "{name}: {findings}");
    let other_dir = keys.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let (_, other) = keygen(&other_dir);
    run(&backend, cwd.path(), &["reindex", "--sign-key", &key]).expect_code(0);
    run(&backend, cwd.path(), &["verify", "--pubkey", &public]).expect_code(0);
    run(&backend, cwd.path(), &["verify", "--pubkey", &other]).expect_code(3);
});

backend_test!(reindex_with_a_key_signs_an_unsigned_store_and_allow_unsigned_writes_past_a_signed_one, |backend| {
    let name = backend.name();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path());
    let cwd = tempfile::tempdir().unwrap();
    publish(&backend, cwd.path(), &[("a.js", b"1")], "1.0.0", &[]).expect_code(0);
    assert!(backend.read("api/sdk/sri.minisig").is_none(), "{name}");
    run(&backend, cwd.path(), &["verify", "--pubkey", &public]).expect_code(3);
    run(&backend, cwd.path(), &["reindex", "--sign-key", &key]).expect_code(0);
    run(&backend, cwd.path(), &["verify", "--pubkey", &public]).expect_code(0);
    publish(&backend, cwd.path(), &[("a.js", b"2")], "1.1.0", &["--allow-unsigned"]).expect_code(0);
    // The index changed without a new signature: verify says so.
    run(&backend, cwd.path(), &["verify", "--pubkey", &public]).expect_code(3);
});
