//! HTTPS, end to end through the binary: the S3 client and `verify
//! --base-url` speak TLS (rustls on `ring`, src/https.rs) to a local
//! endpoint whose certificate a test CA signed, and trust it only through
//! the system's trust store (`SSL_CERT_FILE` here). An endpoint signed by a
//! CA the machine does not trust is refused: non-zero exit, a message that
//! names the certificate, nothing written.
//!
//! The endpoints are the usual plain-HTTP test servers behind a TLS front
//! (`tls_front`); the certificates are in tests/fixtures/tls (README there).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
    pub mod serve;
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::backends::{self, Backend};
use support::cli::{Run, build_dir, run, run_without_store_with_env};
use support::s3_server::{self, Conditional};
use support::serve::Served;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

/// Accepts TLS on a port of 127.0.0.1 (certificate for `127.0.0.1`, signed by
/// `ca.pem`) and relays each connection's plain bytes to `target`, on a thread
/// of its own for the rest of the test process. Returns the TLS address.
fn tls_front(target: SocketAddr) -> SocketAddr {
    let chain = CertificateDer::pem_file_iter(fixture("server.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        backends::runtime().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses our certificate ends the handshake: nothing to relay.
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(target).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    addr
}

fn port_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap()
}

/// The S3 test server with its endpoint behind TLS, and an environment that
/// trusts the CA in `trusted` (a PEM file) and nothing else.
struct S3OverTls {
    server: s3_server::S3Server,
    endpoint: String,
    env: Vec<(String, String)>,
}

impl S3OverTls {
    fn start(trusted: &str) -> S3OverTls {
        let server = s3_server::start_blocking(Conditional::Atomic);
        let endpoint = format!("https://{}", tls_front(port_of(&server.endpoint)));
        let mut env = server.env();
        env.retain(|(name, _)| name != "AWS_ENDPOINT_URL");
        env.push(("SSL_CERT_FILE".into(), fixture(trusted).to_string_lossy().into_owned()));
        // Empty: no directory of certificates either, whatever the test process has.
        env.push(("SSL_CERT_DIR".into(), String::new()));
        S3OverTls { server, endpoint, env }
    }

    /// Runs the binary on this store through its TLS endpoint.
    fn run(&self, cwd: &Path, args: &[&str]) -> Run {
        let store = self.server.store_url();
        let mut all = vec!["--store", &store, "--endpoint-url", &self.endpoint, "--path-style"];
        all.extend_from_slice(args);
        run_without_store_with_env(cwd, &all, &self.env)
    }

    fn publish(&self, cwd: &Path, build: &Path) -> Run {
        self.run(cwd, &["publish", build.to_str().unwrap(), "--version", "1.0.0"])
    }

    fn keys(self) -> Vec<String> {
        Backend::InProcess(self.server).snapshot().into_keys().collect()
    }
}

#[test]
fn publish_and_verify_reach_s3_over_https_trusting_the_system_store() {
    let s3 = S3OverTls::start("ca.pem");
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={};"), ("haloagents.css", b"x{}")]);
    s3.publish(cwd.path(), build.path()).expect_code(0);
    s3.run(cwd.path(), &["verify", "1.0.0"]).expect_code(0);

    let keys = s3.keys();
    for key in ["sdk/1.0.0/haloagents.umd.js", "sdk/latest/haloagents.css", "api/sdk/sri"] {
        assert!(keys.iter().any(|k| k == key), "{key} was written over TLS: {keys:?}");
    }
}

#[test]
fn an_s3_endpoint_signed_by_an_untrusted_ca_is_refused_and_nothing_is_written() {
    let s3 = S3OverTls::start("other-ca.pem");
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    let out = s3.publish(cwd.path(), build.path());
    // Exit 1: the store failed (docs/CLI.md, exit codes).
    out.expect_code(1);
    for part in ["does not trust", "UnknownIssuer", "SSL_CERT_FILE"] {
        assert!(out.stderr.contains(part), "the message names the certificate and the fix ({part}):\n{}", out.stderr);
    }
    assert!(s3.keys().is_empty(), "nothing reached the store");
}

#[test]
fn a_trust_file_that_does_not_exist_is_named_in_the_refusal() {
    let mut s3 = S3OverTls::start("ca.pem");
    let missing = fixture("no-such-bundle.pem").to_string_lossy().into_owned();
    s3.env.retain(|(name, _)| name != "SSL_CERT_FILE");
    s3.env.push(("SSL_CERT_FILE".into(), missing.clone()));
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("a.js", b"1")]);
    let out = s3.publish(cwd.path(), build.path());
    out.expect_code(1);
    let named = format!("only the certificates in SSL_CERT_FILE={missing} are trusted");
    assert!(out.stderr.contains(&named), "the message names the trust file:\n{}", out.stderr);
    assert!(s3.keys().is_empty(), "nothing reached the store");
}

#[test]
fn verify_base_url_checks_a_cdn_over_https_and_refuses_an_untrusted_one() {
    let backend = backends::local();
    let cwd = tempfile::tempdir().unwrap();
    let build = build_dir(&[("haloagents.umd.js", b"window.HaloAgents={};")]);
    run(&backend, cwd.path(), &["publish", build.path().to_str().unwrap(), "--version", "1.0.0"]).expect_code(0);
    let served = Served::start(&backend, cwd.path(), &[]);
    let base = format!("https://{}", tls_front(port_of(&served.base_url())));

    for (trusted, code) in [("ca.pem", 0), ("other-ca.pem", 3)] {
        let mut command = support::cli::command(&backend, cwd.path(), &["verify", "--base-url", &base]);
        command.env("SSL_CERT_FILE", fixture(trusted)).env("SSL_CERT_DIR", "");
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(code), "trusting {trusted}:\n{stdout}\n{stderr}");
        if code != 0 {
            for part in ["invalid peer certificate: UnknownIssuer", "SSL_CERT_FILE"] {
                assert!(stderr.contains(part), "the finding names the certificate and the fix ({part}):\n{stderr}");
            }
        }
    }
    served.terminate();
}
