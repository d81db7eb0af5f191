//! The one HTTPS client setup: rustls with the system's trust roots, plain
//! `http://` allowed (a local `serve`, a test server), HTTP/1.1. Used by
//! `verify --base-url`, `pin` and the CloudFront purge, each with its own
//! request body type.

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
