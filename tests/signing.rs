//! Keys and signatures against independent implementations: the stock
//! `minisign` CLI (both directions) and Python's `cryptography` for the
//! signature-based SRI headers. Without `minisign`/`python3` these tests
//! print a skip notice, unless `SDK_CDN_REQUIRE_TOOLS=1` (CI sets it), which
//! makes a missing tool a failure.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
    pub mod tools;
}

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use sdk_cdn::signing::{
    self, KeySource, PublicKey, SecretKey, SignedHeaders, SignedKind, SigningError, sha512_of, sri_headers,
    sri_key_ids, verify_sri_headers,
};
use support::cli::run_without_store;
use support::tools::tools_present;

const PASSWORD: &str = "correct horse battery staple";

fn keygen(dir: &Path, extra: &[&str], password: Option<&str>) -> support::cli::Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sdk-cdn"));
    cmd.current_dir(dir).arg("keygen").args(extra).env_remove("SDK_CDN_SIGN_KEY_PASSWORD").stdin(Stdio::null());
    if let Some(p) = password {
        cmd.env("SDK_CDN_SIGN_KEY_PASSWORD", p);
    }
    let out = cmd.output().expect("run sdk-cdn keygen");
    support::cli::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn minisign(dir: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new("minisign")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run minisign");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn keygen_writes_a_private_key_and_never_overwrites_one() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), &[], None).expect_code(2); // neither a password nor --no-password
    assert!(!dir.path().join("sdk-cdn.key").exists());
    let first = keygen(dir.path(), &["--no-password", "--json"], None);
    first.expect_code(0);
    let key = dir.path().join("sdk-cdn.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let written = std::fs::read(&key).unwrap();
    let public = PublicKey::load(&dir.path().join("sdk-cdn.pub")).unwrap();
    assert_eq!(first.json()["public_key"], public.to_base64());
    let again = keygen(dir.path(), &["--no-password"], None);
    again.expect_code(2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(std::fs::read(&key).unwrap(), written, "the existing key was changed");
}

#[test]
fn keygen_creates_a_missing_directory_for_the_owner_alone() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys/release");
    keygen(parent.path(), &["--no-password", "--dir", "keys/release"], None).expect_code(0);
    assert!(dir.join("sdk-cdn.key").is_file() && dir.join("sdk-cdn.pub").is_file());
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn a_password_protected_key_needs_its_password() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), &[], Some(PASSWORD)).expect_code(0);
    let source = KeySource::File(dir.path().join("sdk-cdn.key"));
    assert!(matches!(SecretKey::load(&source, None), Err(SigningError::PasswordNeeded { .. })));
    assert!(matches!(SecretKey::load(&source, Some("wrong")), Err(SigningError::WrongPassword { .. })));
    let key = SecretKey::load(&source, Some(PASSWORD)).unwrap();
    assert_eq!(key.public_key().to_base64(), PublicKey::load(&dir.path().join("sdk-cdn.pub")).unwrap().to_base64());
}

#[test]
fn stock_minisign_accepts_our_signature_and_rejects_a_changed_byte() {
    if !tools_present(&["minisign"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), &[], Some(PASSWORD)).expect_code(0);
    let key = SecretKey::load(&KeySource::File(dir.path().join("sdk-cdn.key")), Some(PASSWORD)).unwrap();
    let index = br#"{"version":"1.4.0","files":{}}"#;
    let version = semver::Version::new(1, 4, 0);
    std::fs::write(dir.path().join("sri"), index).unwrap();
    std::fs::write(dir.path().join("sri.minisig"), signing::sign_index(&key, index, Some(&version)).unwrap()).unwrap();
    let pubkey = key.public_key().to_base64();
    let ok = minisign(dir.path(), &["-Vm", "sri", "-P", &pubkey], "");
    assert!(ok.status.success(), "minisign refused: {}", String::from_utf8_lossy(&ok.stderr));
    let shown = String::from_utf8_lossy(&ok.stdout);
    assert!(shown.contains("sdk-cdn/1 kind=index version=1.4.0 sha384=sha384-"), "{shown}");
    let mut tampered = index.to_vec();
    tampered[12] ^= 1;
    std::fs::write(dir.path().join("sri"), &tampered).unwrap();
    let refused = minisign(dir.path(), &["-Vm", "sri", "-P", &pubkey], "");
    assert!(!refused.status.success(), "minisign accepted a changed byte");
}

#[test]
fn we_verify_stock_minisign_signatures_and_sign_with_its_keys() {
    if !tools_present(&["minisign"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Unencrypted (-W): minisign's own password hardening costs ~1 GiB and
    // seconds per use; password-protected keys are crossed the other way below.
    let made = minisign(d, &["-G", "-W", "-p", "m.pub", "-s", "m.key"], "");
    assert!(made.status.success(), "minisign -G: {}", String::from_utf8_lossy(&made.stderr));
    let public = PublicKey::load(&d.join("m.pub")).unwrap();
    let manifest = b"{\"version\":\"2.0.0\",\"files\":{}}\n";
    std::fs::write(d.join("2.0.0.json"), manifest).unwrap();
    let comment =
        format!("sdk-cdn/1 kind=manifest version=2.0.0 sha384={} time=1", support::fixtures::sri_of(manifest));
    let signed = minisign(d, &["-S", "-s", "m.key", "-m", "2.0.0.json", "-t", &comment], "");
    assert!(signed.status.success(), "minisign -S: {}", String::from_utf8_lossy(&signed.stderr));
    let sig = std::fs::read_to_string(d.join("2.0.0.json.minisig")).unwrap();
    let read = signing::verify_signature(manifest, &sig, &public, SignedKind::Manifest).unwrap();
    assert_eq!(read.version, "2.0.0");
    let err = signing::verify_signature(b"{}", &sig, &public, SignedKind::Manifest).unwrap_err();
    assert!(matches!(err, SigningError::BadSignature { .. }), "{err}");
    // A stock signature with minisign's default comment proves no content: refused.
    minisign(d, &["-S", "-s", "m.key", "-m", "2.0.0.json", "-x", "plain.minisig"], "");
    let plain = std::fs::read_to_string(d.join("plain.minisig")).unwrap();
    assert!(signing::verify_signature(manifest, &plain, &public, SignedKind::Manifest).is_err());
    // The key minisign made signs with our code, and minisign accepts the result.
    let key = SecretKey::load(&KeySource::File(d.join("m.key")), None).unwrap();
    let ours = signing::sign_manifest(&key, manifest, &semver::Version::new(2, 0, 0)).unwrap();
    std::fs::write(d.join("2.0.0.json.minisig"), ours).unwrap();
    let ok = minisign(d, &["-Vm", "2.0.0.json", "-p", "m.pub"], "");
    assert!(ok.status.success(), "minisign refused our signature: {}", String::from_utf8_lossy(&ok.stderr));
    // Our password-protected key is a standard minisign key: the stock tool signs with it.
    keygen(d, &[], Some(PASSWORD)).expect_code(0);
    let signed =
        minisign(d, &["-S", "-s", "sdk-cdn.key", "-m", "2.0.0.json", "-x", "ours.minisig"], &format!("{PASSWORD}\n"));
    assert!(signed.status.success(), "minisign -S with our key: {}", String::from_utf8_lossy(&signed.stderr));
    let ok = minisign(d, &["-Vm", "2.0.0.json", "-x", "ours.minisig", "-p", "sdk-cdn.pub"], "");
    assert!(ok.status.success(), "minisign refused: {}", String::from_utf8_lossy(&ok.stderr));
}

/// Rebuilds the signature base of one `Signature-Input` member (the one
/// naming the key) from the header values and checks the Ed25519 signature
/// and the SHA-512 digest with Python's `cryptography`: an implementation
/// that shares no code with ours.
const PYTHON_CHECK: &str = r#"
import base64, hashlib, re, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
body = open(sys.argv[1], "rb").read()
digest, sig_input, signature, pub = sys.argv[2:6]
assert digest == "sha-512=:" + base64.b64encode(hashlib.sha512(body).digest()).decode() + ":", "digest"
inputs = dict(m.split("=", 1) for m in sig_input.split(", "))
sigs = dict(m.split("=", 1) for m in signature.split(", "))
label = [l for l, v in inputs.items() if 'keyid="' + pub + '"' in v][0]
base = '"unencoded-digest";sf: ' + digest + '\n"@signature-params": ' + inputs[label]
raw = base64.b64decode(sigs[label][1:-1])
Ed25519PublicKey.from_public_bytes(base64.b64decode(pub)).verify(raw, base.encode())
print("verified")
"#;

fn python_verifies(body: &Path, h: &SignedHeaders, public: &str) -> bool {
    let out = Command::new("python3")
        .args(["-c", PYTHON_CHECK])
        .arg(body)
        .args([&h.unencoded_digest, &h.signature_input, &h.signature, public])
        .output()
        .expect("run python3");
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "verified"
}

fn sri_key(dir: &Path, name: &str) -> SecretKey {
    keygen(dir, &["--no-password", "--name", name], None).expect_code(0);
    SecretKey::load(&KeySource::File(dir.join(format!("{name}.key"))), None).unwrap()
}

fn token(key: &SecretKey) -> String {
    key.public_key().integrity_token().strip_prefix("ed25519-").unwrap().to_string()
}

#[test]
fn sri_headers_verify_with_python_cryptography_and_break_on_a_changed_byte() {
    if !tools_present(&["python3"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = sri_key(dir.path(), "sri");
    let body = b"window.HaloAgents = { version: '1.4.0' };\n".to_vec();
    let headers = sri_headers(&sha512_of(&body), std::slice::from_ref(&key)).unwrap();
    let raw = key.public_key().ed25519();
    let public = token(&key);
    assert_eq!(
        headers.signature_input,
        format!("sig1=(\"unencoded-digest\";sf);keyid=\"{public}\";tag=\"ed25519-integrity\"")
    );
    verify_sri_headers(&sha512_of(&body), &headers, &raw).unwrap();
    let file = dir.path().join("body.js");
    std::fs::write(&file, &body).unwrap();
    assert!(python_verifies(&file, &headers, &public), "python refused our headers");
    let mut changed = body.clone();
    changed[0] ^= 1;
    std::fs::write(&file, &changed).unwrap();
    assert!(!python_verifies(&file, &headers, &public), "python accepted a changed byte");
    assert!(verify_sri_headers(&sha512_of(&changed), &headers, &raw).is_err());
    let other = run_without_store(dir.path(), &["keygen", "--no-password", "--name", "other"]);
    other.expect_code(0);
    let other = PublicKey::load(&dir.path().join("other.pub")).unwrap().ed25519();
    assert!(verify_sri_headers(&sha512_of(&body), &headers, &other).is_err(), "another key was accepted");
}

/// A rotation signs with the old and the new key: one member each, and
/// both verify (ours and Python's), each under its own key only.
#[test]
fn two_keys_sign_one_body_and_each_verifies_on_its_own() {
    if !tools_present(&["python3"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (sri_key(dir.path(), "old"), sri_key(dir.path(), "new"));
    let body = b"window.HaloAgents = { version: '2.0.0' };\n".to_vec();
    let digest = sha512_of(&body);
    let headers = sri_headers(&digest, &[old.clone(), new.clone()]).unwrap();
    assert!(headers.signature_input.starts_with("sig1=") && headers.signature_input.contains(", sig2="));
    assert_eq!(sri_key_ids(&headers).unwrap(), vec![old.public_key().ed25519(), new.public_key().ed25519()]);
    let file = dir.path().join("body.js");
    std::fs::write(&file, &body).unwrap();
    for key in [&old, &new] {
        verify_sri_headers(&digest, &headers, &key.public_key().ed25519()).unwrap();
        assert!(python_verifies(&file, &headers, &token(key)), "python refused the signature by {}", token(key));
    }
    // The signatures are bound to their members: swapped, neither verifies.
    let swapped = SignedHeaders {
        signature: headers.signature.replace("sig1=", "sigX=").replace("sig2=", "sig1=").replace("sigX=", "sig2="),
        ..headers.clone()
    };
    for key in [&old, &new] {
        assert!(verify_sri_headers(&digest, &swapped, &key.public_key().ed25519()).is_err());
    }
    // A CDN that re-serialises the headers with spaces changes nothing they mean.
    // (RFC 9421 signs the canonical serialisation, which the verifier rebuilds.)
    let spaced = SignedHeaders {
        signature_input: headers.signature_input.replace(";", "; ").replace(", ", ",   "),
        signature: headers.signature.replace(", ", " ,  "),
        ..headers
    };
    verify_sri_headers(&digest, &spaced, &new.public_key().ed25519()).unwrap();
}
