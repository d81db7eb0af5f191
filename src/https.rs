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
/// Fails only when the system's trust roots cannot be loaded.
pub(crate) fn client<B>(connect_timeout: Option<Duration>) -> std::io::Result<HttpsClient<B>>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(connect_timeout);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
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
pub fn aws_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// What to do about a server certificate this machine does not trust.
pub(crate) const TRUST_HINT: &str =
    "add the CA that signed it to the system's trust store, or point SSL_CERT_FILE at a PEM bundle that has it";

/// An error and its causes, outermost first, each cause once: hyper's
/// "client error (Connect)" alone says nothing a person can act on, the
/// cause under it does ("invalid peer certificate: UnknownIssuer",
/// "Connection refused"). A refused certificate ends with [`TRUST_HINT`].
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
        text = format!("{text}; {TRUST_HINT}");
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
