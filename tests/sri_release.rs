//! Issue 19, publisher side: `publish --sri-key` signs every file for
//! signature-based SRI, on `sdk/<v>/` and on the `latest/` copies, on every
//! backend; `verify` checks each signature against the stored bytes (and,
//! with `--sri-pubkey`, that `latest/` is signed by a key) and, with
//! `--base-url`, what `serve` sends; a key rotation keeps pages on either key
//! working, and `latest/` never silently drops a key pages may pin.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
    pub mod serve;
    pub mod tools;
}

use std::path::{Path, PathBuf};

use sdk_cdn::signing::{PublicKey, SignedHeaders, sha512_of, sri_key_ids, verify_sri_headers};
use sdk_cdn::store::{Body, Key, PutMode};
use support::backends::{self, Backend, backend_test};
use support::cli::{Run, build_dir, run, run_without_store};
use support::serve::{Served, get as http_get, request};

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new(names: &[&str]) -> Keys {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            run_without_store(dir.path(), &["keygen", "--no-password", "--name", name]).expect_code(0);
        }
        Keys { dir }
    }

    fn secret(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    fn public(&self, name: &str) -> PublicKey {
        PublicKey::load(&self.dir.path().join(format!("{name}.pub"))).unwrap()
    }
}

const FILES: &[(&str, &[u8])] = &[
    ("haloagents.umd.js", b"window.HaloAgents = { v: 1 };"),
    ("haloagents.css", b".halo { color: red }"),
    ("maps/haloagents.umd.js.map", b"{\"version\":3}"),
];

fn publish(backend: &Backend, cwd: &Path, version: &str, keys: &[PathBuf], extra: &[&str]) -> Run {
    let build = build_dir(&FILES.iter().map(|(p, b)| (*p, *b)).collect::<Vec<_>>());
    // Each version's bytes differ (a release changes its files).
    std::fs::write(build.path().join("version.txt"), version).unwrap();
    let mut args: Vec<String> =
        ["publish", build.path().to_str().unwrap(), "--version", version].map(String::from).into();
    for key in keys {
        args.extend(["--sri-key".to_string(), key.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    run(backend, cwd, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The signature headers stored with `key`, and the stored bytes.
fn stored(backend: &Backend, key: &str) -> (Option<SignedHeaders>, Vec<u8>) {
    let store = backend.store();
    let key = Key::new(key).unwrap();
    let (bytes, meta) = backends::runtime().block_on(store.get(&key)).unwrap().expect("stored");
    (meta.headers.unwrap().signed, bytes.to_vec())
}

/// The keys (`ed25519-…`) that sign `latest/haloagents.umd.js`, checked to verify.
fn latest_keys(backend: &Backend) -> Vec<String> {
    let (signed, bytes) = stored(backend, "sdk/latest/haloagents.umd.js");
    let Some(signed) = signed else { return Vec::new() };
    let keys = sri_key_ids(&signed).unwrap();
    for key in &keys {
        verify_sri_headers(&sha512_of(&bytes), &signed, key).unwrap();
    }
    keys.iter().map(|k| format!("ed25519-{}", base64_of(k))).collect()
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

backend_test!(every_copy_is_signed_and_verify_checks_each_signature_against_the_bytes, |backend| {
    let keys = Keys::new(&["sri", "other"]);
    {
        let name = backend.name();
        let cwd = tempfile::tempdir().unwrap();
        publish(&backend, cwd.path(), "1.0.0", &[keys.secret("sri")], &[]).expect_code(0);
        let public = keys.public("sri").ed25519();
        for path in ["haloagents.umd.js", "haloagents.css", "maps/haloagents.umd.js.map", "version.txt"] {
            for dir in ["1.0.0", "latest"] {
                let (signed, bytes) = stored(&backend, &format!("sdk/{dir}/{path}"));
                let signed = signed.unwrap_or_else(|| panic!("{name}: sdk/{dir}/{path} carries no signature headers"));
                verify_sri_headers(&sha512_of(&bytes), &signed, &public).unwrap();
            }
        }
        let sri_pub = keys.dir.path().join("sri.pub");
        let token = keys.public("sri").integrity_token();
        run(&backend, cwd.path(), &["verify", "--sri-pubkey", sri_pub.to_str().unwrap()]).expect_code(0);
        run(&backend, cwd.path(), &["verify", "--sri-pubkey", &token]).expect_code(0);
        let other = keys.public("other").integrity_token();
        let refused = run(&backend, cwd.path(), &["verify", "--sri-pubkey", &other]);
        refused.expect_code(3);
        assert!(refused.stderr.contains(&format!("not signed by {other}")), "{name}: {}", refused.stderr);

        // What serve sends, fetched and checked by verify --base-url.
        let served = Served::start(&backend, cwd.path(), &[]);
        run(&backend, cwd.path(), &["verify", "--base-url", &served.base_url()]).expect_code(0);
        // A browser's Accept-Signature (and a preflight asking to send one)
        // changes nothing: every signature is always sent, whole bodies only.
        let path = "/sdk/latest/haloagents.umd.js";
        let plain = http_get(served.addr, path, &[]);
        let asked = format!("sig0=(\"unencoded-digest\";sf);keyid=\"{}\";type=\"ed25519-integrity\"", &token[8..]);
        let with = http_get(served.addr, path, &[("Accept-Signature", &asked), ("Range", "bytes=0-3")]);
        assert_eq!((with.status, &with.body), (200, &plain.body), "{name}: a whole body, whatever was asked");
        for header in ["unencoded-digest", "signature-input", "signature"] {
            assert!(with.header(header).is_some() && with.header(header) == plain.header(header), "{name}: {header}");
        }
        assert_eq!(with.header("accept-ranges"), Some("none"), "{name}");
        assert_eq!(with.header("vary"), None, "{name}: nothing varies on Accept-Signature");
        let preflight = request(
            served.addr,
            "OPTIONS",
            path,
            &[("Origin", "https://shop.example"), ("Access-Control-Request-Headers", "accept-signature")],
        );
        assert_eq!(preflight.header("access-control-allow-headers"), Some("accept-signature"), "{name}");

        // Signature headers of other bytes, stored behind intact bytes and SRI:
        // the signature no longer proves the file, and verify says so.
        let (_, bytes) = stored(&backend, "sdk/latest/haloagents.css");
        let (foreign, _) = stored(&backend, "sdk/latest/haloagents.umd.js");
        let store = backend.store();
        let key = Key::new("sdk/latest/haloagents.css").unwrap();
        let mut headers = backends::runtime().block_on(store.head(&key)).unwrap().unwrap().headers.unwrap();
        headers.signed = foreign;
        let body = Body::Bytes(bytes.into());
        backends::runtime().block_on(store.put(&key, body, &headers, PutMode::Overwrite)).unwrap();
        let found = run(&backend, cwd.path(), &["verify"]);
        found.expect_code(3);
        assert!(
            found.stderr.contains("signature: sdk/latest/haloagents.css") && found.stderr.contains("does not verify"),
            "{name}: {}",
            found.stderr
        );
        let http = run(&backend, cwd.path(), &["verify", "--base-url", &served.base_url(), "1.0.0"]);
        assert!(http.stderr.contains("signature-based SRI"), "{name}: {}", http.stderr);
    }
});

backend_test!(a_key_rotation_keeps_both_keys_working_and_latest_never_silently_drops_one, |backend| {
    let keys = Keys::new(&["old", "new"]);
    let (old, new) = (keys.secret("old"), keys.secret("new"));
    let (old_token, new_token) = (keys.public("old").integrity_token(), keys.public("new").integrity_token());
    {
        let name = backend.name();
        let cwd = tempfile::tempdir().unwrap();
        publish(&backend, cwd.path(), "1.0.0", std::slice::from_ref(&old), &[]).expect_code(0);
        assert_eq!(latest_keys(&backend), std::slice::from_ref(&old_token), "{name}");

        // Dropping the key latest/ is signed by is refused before any write.
        let before = backend.snapshot();
        for keys in [vec![], vec![new.clone()]] {
            let refused = publish(&backend, cwd.path(), "1.1.0", &keys, &[]);
            refused.expect_code(2);
            assert!(refused.stderr.contains(&old_token) && refused.stderr.contains("--allow-sri-key-change"), "{name}");
            assert_eq!(backend.snapshot(), before, "{name}: a refused publish wrote nothing");
        }
        // The rotation window: both keys sign; pages on either key work.
        let plan = publish(&backend, cwd.path(), "1.1.0", &[old.clone(), new.clone()], &["--dry-run", "--json"]);
        let mut planned: Vec<String> =
            plan.json()["sri_keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
        planned.sort();
        let mut both = vec![old_token.clone(), new_token.clone()];
        both.sort();
        assert_eq!(planned, both, "{name}: the dry run names the keys");
        publish(&backend, cwd.path(), "1.1.0", &[old.clone(), new.clone()], &[]).expect_code(0);
        let mut signed_by = latest_keys(&backend);
        signed_by.sort();
        assert_eq!(signed_by, both, "{name}");
        let snippet = run(&backend, cwd.path(), &["snippet", "latest", "--signed", "--file", "haloagents.umd.js"]);
        snippet.expect_code(0);
        assert!(
            snippet.stdout.contains(&old_token) && snippet.stdout.contains(&new_token),
            "{name}: {}",
            snippet.stdout
        );
        assert!(!snippet.stdout.contains("sha384-"), "{name}: latest/ is pinned by key only: {}", snippet.stdout);
        let pinned = run(&backend, cwd.path(), &["snippet", "1.1.0", "--signed", "--file", "haloagents.umd.js"]);
        assert!(pinned.stdout.contains("sha384-") && pinned.stdout.contains(&new_token), "{name}: {}", pinned.stdout);

        // The end of the window: the old key goes, on purpose only.
        publish(&backend, cwd.path(), "1.2.0", std::slice::from_ref(&new), &[]).expect_code(2);
        publish(&backend, cwd.path(), "1.2.0", std::slice::from_ref(&new), &["--allow-sri-key-change"]).expect_code(0);
        assert_eq!(latest_keys(&backend), std::slice::from_ref(&new_token), "{name}");
        // A rollback to a version the new key never signed is a key change too.
        run(&backend, cwd.path(), &["promote", "1.0.0", "--allow-downgrade"]).expect_code(2);
        run(&backend, cwd.path(), &["promote", "1.0.0", "--allow-downgrade", "--allow-sri-key-change"]).expect_code(0);
        assert_eq!(latest_keys(&backend), std::slice::from_ref(&old_token), "{name}");

        // A version's headers are as immutable as its bytes.
        let resigned = publish(&backend, cwd.path(), "1.2.0", std::slice::from_ref(&old), &[]);
        resigned.expect_code(3);
        assert!(resigned.stderr.contains("signed with other --sri-key keys"), "{name}: {}", resigned.stderr);
        // Unsigned: no key to pin, said plainly.
        publish(&backend, cwd.path(), "1.3.0", &[], &["--no-promote"]).expect_code(0);
        let unsigned = run(&backend, cwd.path(), &["snippet", "1.3.0", "--signed", "--file", "haloagents.umd.js"]);
        unsigned.expect_code(2);
        assert!(unsigned.stderr.contains("not signed for signature-based SRI"), "{name}");
    }
});

// Probe findings, each a defect fixed: a `latest/` file deleted or
// stripped of its headers is put back by `promote` of the version it
// serves; leftovers of an earlier run with other keys get this run's
// headers; headers no browser accepts fail `verify`; the order of
// `--sri-key` flags does not matter.
backend_test!(promote_repairs_latest_leftovers_are_restamped_and_headers_no_browser_accepts_fail, |backend| {
    let keys = Keys::new(&["a", "b"]);
    let (a, b) = (keys.secret("a"), keys.secret("b"));
    {
        let name = backend.name();
        let cwd = tempfile::tempdir().unwrap();
        publish(&backend, cwd.path(), "1.0.0", std::slice::from_ref(&a), &[]).expect_code(0);
        // A latest/ file deleted, another re-stored without its signature headers.
        backend.delete("sdk/latest/haloagents.css");
        let (_, bytes) = stored(&backend, "sdk/latest/haloagents.umd.js");
        backend.put_raw("sdk/latest/haloagents.umd.js", &bytes);
        run(&backend, cwd.path(), &["verify"]).expect_code(3);
        run(&backend, cwd.path(), &["promote", "1.0.0"]).expect_code(0);
        run(&backend, cwd.path(), &["verify", "--sri-pubkey", &keys.public("a").integrity_token()]).expect_code(0);

        // A leftover of an earlier, failed run that had no --sri-key: our
        // bytes, no signature headers, no intent record.
        let build = build_dir(&[("app.js", b"window.X = 2;")]);
        let bytes = b"window.X = 2;";
        let store = backend.store();
        let key = Key::new("sdk/1.1.0/app.js").unwrap();
        let headers = sdk_cdn::store::Headers {
            content_type: "text/javascript; charset=utf-8".into(),
            cache_control: "public, max-age=31536000, immutable".into(),
            sri: Some(support::fixtures::sri_of(bytes)),
            signed: None,
        };
        let body = Body::Bytes(bytes.to_vec().into());
        backends::runtime().block_on(store.put(&key, body, &headers, PutMode::Create)).unwrap();
        let dir = build.path().to_str().unwrap();
        let both = [a.to_str().unwrap(), b.to_str().unwrap()];
        run(&backend, cwd.path(), &["publish", dir, "--version", "1.1.0", "--sri-key", both[0], "--sri-key", both[1]])
            .expect_code(0);
        let (signed, _) = stored(&backend, "sdk/1.1.0/app.js");
        assert!(signed.is_some(), "{name}: the leftover got this run's signature headers");
        run(&backend, cwd.path(), &["verify"]).expect_code(0);
        // The same keys in the other order: the same version, a no-op.
        run(&backend, cwd.path(), &["publish", dir, "--version", "1.1.0", "--sri-key", both[1], "--sri-key", both[0]])
            .expect_code(0);

        // Signature headers no browser accepts (not tagged ed25519-integrity),
        // consistent between the manifest and the object: verify refuses them.
        let manifest_key = Key::new("manifests/1.1.0.json").unwrap();
        let (manifest, _) = backends::runtime().block_on(store.get(&manifest_key)).unwrap().unwrap();
        let untagged = String::from_utf8(manifest.to_vec()).unwrap().replace("ed25519-integrity", "other");
        backend.put_raw("manifests/1.1.0.json", untagged.as_bytes());
        let file = Key::new("sdk/1.1.0/app.js").unwrap();
        let mut headers = backends::runtime().block_on(store.head(&file)).unwrap().unwrap().headers.unwrap();
        let signed = headers.signed.as_mut().unwrap();
        signed.signature_input = signed.signature_input.replace("ed25519-integrity", "other");
        let body = Body::Bytes(bytes.to_vec().into());
        backends::runtime().block_on(store.put(&file, body, &headers, PutMode::Overwrite)).unwrap();
        let found = run(&backend, cwd.path(), &["verify", "1.1.0"]);
        found.expect_code(3);
        assert!(found.stderr.contains("no browser accepts them"), "{name}: {}", found.stderr);
    }
});

/// Flags and keys, refused before any store request: `--sri-key` cannot be
/// the index key; an encrypted key's errors name `SDK_CDN_SRI_KEY_PASSWORD`.
#[test]
fn sri_keys_are_checked_for_what_they_are_before_any_write() {
    let keys = Keys::new(&["a"]);
    let a = keys.secret("a");
    let cwd = tempfile::tempdir().unwrap();
    let backend = backends::local();
    let same = publish(&backend, cwd.path(), "2.0.0", std::slice::from_ref(&a), &["--sign-key", a.to_str().unwrap()]);
    same.expect_code(2);
    assert!(same.stderr.contains("--sri-key and --sign-key name the same key"), "{}", same.stderr);
    let dir = keys.dir.path().to_str().unwrap();
    let made = support::cli::command(&backend, cwd.path(), &["keygen", "--name", "enc", "--dir", dir])
        .env("SDK_CDN_SIGN_KEY_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let enc = keys.secret("enc");
    let needs = publish(&backend, cwd.path(), "2.0.0", std::slice::from_ref(&enc), &[]);
    needs.expect_code(2);
    assert!(needs.stderr.contains("SDK_CDN_SRI_KEY_PASSWORD"), "{}", needs.stderr);
    assert!(backend.snapshot().is_empty(), "refused publishes wrote nothing");
}
