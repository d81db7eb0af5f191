//! The HTTPS clients: rustls on `ring` (the build's one crypto provider)
//! with the system's trust roots.
//!
//! - [`client`]: plain `http://` allowed (a local `serve`, a test server),
//!   HTTP/1.1. Used by `verify --base-url`, `pin` and the CloudFront purge,
//!   each with its own request body type.
//! - [`aws_client`]: the AWS SDK's own client (connection pool, the
//!   configured timeouts, retries), on the same provider. The SDK's default
//!   one would build AWS-LC, a second crypto library and the largest C build
//!   in the tree (issue 16, target 5).

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A client sending request bodies of type `B`.
pub(crate) type HttpsClient<B> = Client<hyper_rustls::HttpsConnector<HttpConnector>, B>;

/// Builds a client; connecting gives up after `connect_timeout` if given.
/// Fails only when the system's trust roots cannot be loaded, or none of
/// them parses.
pub(crate) fn client<B>(connect_timeout: Option<Duration>) -> std::io::Result<HttpsClient<B>>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(trust_roots()?);
    if roots.is_empty() {
        return Err(std::io::Error::other(format!("no trusted certificate could be parsed; {}", trust_hint())));
    }
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(connect_timeout);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The HTTP client for the AWS SDK: S3, and the credential providers behind
/// `aws_config` (STS, SSO, instance metadata). Give it to every SDK config
/// (`aws_config::defaults(..).http_client(..)`, `aws_sdk_s3::Config::builder()
/// .http_client(..)`): without the SDK's default client, a config without one
/// fails its first request with "no HTTP client".
///
/// Fails when the trust store yields no certificate: the SDK's client would
/// panic on its first request instead (even to an `http://` endpoint).
pub fn aws_client() -> std::io::Result<aws_sdk_s3::config::SharedHttpClient> {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    // The SDK loads the store again itself, once, on its first connection.
    trust_roots()?;
    Ok(aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https())
}

/// Loads the trust store (the system's, or `SSL_CERT_FILE`/`SSL_CERT_DIR`
/// instead) and fails, naming what was tried, when it yields no certificate.
fn trust_roots() -> std::io::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let found = rustls_native_certs::load_native_certs();
    if !found.certs.is_empty() {
        return Ok(found.certs);
    }
    let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    let errors = if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) };
    Err(std::io::Error::other(format!("no trusted certificate could be loaded{errors}; {}", trust_hint())))
}

/// What to do about a server certificate this machine does not trust. When
/// `SSL_CERT_FILE` or `SSL_CERT_DIR` is set, only what they name is trusted
/// (a missing file just means no roots), so the hint names them.
pub(crate) fn trust_hint() -> String {
    let set: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .into_iter()
        .filter_map(|name| {
            let value = std::env::var_os(name).filter(|value| !value.is_empty())?;
            Some(format!("{name}={}", value.to_string_lossy()))
        })
        .collect();
    if set.is_empty() {
        "add the CA that signed it to the system's trust store, or point SSL_CERT_FILE at a PEM bundle that has it"
            .to_string()
    } else {
        format!(
            "only the certificates in {} are trusted (instead of the system's store): check that it exists and \
             holds the CA that signed the server's certificate",
            set.join(" and ")
        )
    }
}

/// An error and its causes, outermost first, each cause once: hyper's
/// "client error (Connect)" alone says nothing a person can act on, the
/// cause under it does ("invalid peer certificate: UnknownIssuer",
/// "Connection refused"). A refused certificate ends with [`trust_hint`].
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut current = e.source();
    while let Some(cause) = current {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        current = cause.source();
    }
    if refused_certificate(e) {
        text = format!("{text}; {}", trust_hint());
    }
    text
}

/// Whether `e` or one of its causes is rustls refusing the server's
/// certificate (unknown issuer, expired, wrong name, …). rustls reports it
/// inside an `io::Error`, whose `source()` skips the error it wraps, so the
/// walk goes into an `io::Error`'s own inner error.
pub(crate) fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(cause) = current {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return matches!(tls, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented);
        }
        let inner = cause.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
        current = match inner {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    false
}
