//! One CloudFront `CreateInvalidation`, sent as a SigV4-signed `POST`.
//!
//! This used to go through `aws-sdk-cloudfront`. That generated client was
//! the largest unit of a cold release build (issue 16: about a tenth of its
//! CPU time) for one request, so the request is now written here: the XML
//! body, the endpoint CloudFront's client would pick, a signature by
//! `aws-sigv4` (the signer the S3 client uses, already in the build), and the
//! same retry rule as the SDK's standard mode (3 attempts on throttling,
//! 5xx and transport errors). Credentials, region settings and endpoint
//! overrides come from the same `aws-config` chain as the S3 store's.
//!
//! The caller reference is fixed for all attempts of one purge, so a retry
//! after a lost response cannot create a second invalidation: CloudFront
//! answers a repeated reference with the first invalidation.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_xml::decode::{Document, try_data};
use aws_smithy_xml::encode::XmlWriter;
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// CloudFront's API version, in every request path and the XML namespace.
const API_VERSION: &str = "2020-05-31";
/// CloudFront's one global endpoint.
const DEFAULT_ENDPOINT: &str = "https://cloudfront.amazonaws.com";
/// CloudFront is global, and its requests are signed for this region.
const SIGNING_REGION: &str = "us-east-1";
/// The SigV4 service name.
const SERVICE: &str = "cloudfront";
/// Attempts in all, as the SDK's standard retry mode.
const ATTEMPTS: u32 = 3;
/// Give up on one attempt (connect, send, whole response) after this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Give up connecting after this long (the AWS SDK's default): a
/// black-holed endpoint costs seconds per attempt, not the whole attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
/// Larger than any answer CloudFront sends to `CreateInvalidation`.
const MAX_RESPONSE: usize = 1024 * 1024;

type HttpsClient = crate::https::HttpsClient<Full<Bytes>>;

/// Why an invalidation was not created: CloudFront's error code (or what
/// kind of failure it was) and its message.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) code: String,
    pub(super) message: String,
}

impl Failure {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Failure { code: code.to_string(), message: message.into() }
    }
}

/// Invalidates `paths` in `distribution`; returns the invalidation id.
pub(super) async fn create_invalidation(distribution: &str, paths: &[String]) -> Result<String, Failure> {
    let http = crate::https::aws_client().map_err(tls_roots)?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await;
    let url = format!(
        "{}/{API_VERSION}/distribution/{}/invalidation",
        endpoint(&config).trim_end_matches('/'),
        percent_encoding::utf8_percent_encode(distribution, percent_encoding::NON_ALPHANUMERIC)
    );
    let body = invalidation_batch(paths, &caller_reference());
    let client = https_client()?;
    let mut attempt = 1;
    loop {
        let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, send(&client, &config, &url, &body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Attempt::Retryable(Failure::new(
                "Timeout",
                format!("no complete answer from {url} within {}s", ATTEMPT_TIMEOUT.as_secs()),
            ))),
        };
        match outcome {
            Ok(id) => return Ok(id),
            Err(Attempt::Retryable(failure)) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, code = %failure.code, "CloudFront invalidation failed; retrying");
                tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            Err(Attempt::Retryable(failure) | Attempt::Final(failure)) => return Err(failure),
        }
    }
}

/// How one attempt failed.
enum Attempt {
    /// Throttling, a 5xx or a transport error: worth another attempt.
    Retryable(Failure),
    /// Anything else (no credentials, no such distribution, access denied).
    Final(Failure),
}

/// One signed `POST`, and what came back.
async fn send(client: &HttpsClient, config: &SdkConfig, url: &str, body: &str) -> Result<String, Attempt> {
    let request = signed_request(config, url, body, SystemTime::now()).await.map_err(Attempt::Final)?;
    let response = client.request(request).await.map_err(|e| {
        Attempt::Retryable(Failure::new("RequestFailed", format!("{url}: {}", crate::https::error_chain(&e))))
    })?;
    let status = response.status();
    let limited = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE);
    let answer = limited.collect().await.map_err(|e| {
        Attempt::Retryable(Failure::new("ResponseFailed", format!("reading the answer from {url}: {e}")))
    })?;
    let answer = String::from_utf8_lossy(&answer.to_bytes()).into_owned();
    if status.is_success() {
        return element_text(&answer, "Id").ok_or_else(|| {
            Attempt::Final(Failure::new("UnexpectedResponse", format!("HTTP {status} without an invalidation Id")))
        });
    }
    let code = element_text(&answer, "Code").unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    let message = element_text(&answer, "Message").unwrap_or_else(|| format!("HTTP {status}"));
    let failure = Failure { code, message };
    if status.is_server_error() || status.as_u16() == 429 || failure.code.contains("Throttl") {
        Err(Attempt::Retryable(failure))
    } else {
        Err(Attempt::Final(failure))
    }
}

/// The request, with `Authorization`, `X-Amz-Date` and (for temporary
/// credentials) `X-Amz-Security-Token` from SigV4.
async fn signed_request(
    config: &SdkConfig,
    url: &str,
    body: &str,
    now: SystemTime,
) -> Result<http::Request<Full<Bytes>>, Failure> {
    let provider = config.credentials_provider().ok_or_else(|| {
        Failure::new("NoCredentials", "no AWS credentials are configured (the same chain as the S3 store's)")
    })?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| Failure::new("NoCredentials", crate::https::error_chain(&e)))?;
    let uri: http::Uri = url.parse().map_err(|e| Failure::new("BadEndpoint", format!("{url}: {e}")))?;
    let host = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
    let mut request = http::Request::post(uri)
        .header(http::header::HOST, &host)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .map_err(|e| Failure::new("BadEndpoint", format!("{url}: {e}")))?;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(SIGNING_REGION)
        .name(SERVICE)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Failure::new("SigningFailed", e.to_string()))?
        .into();
    let headers = request.headers().iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let signable = SignableRequest::new("POST", url, headers, SignableBody::Bytes(body.as_bytes()))
        .map_err(|e| Failure::new("SigningFailed", e.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| Failure::new("SigningFailed", e.to_string()))?.into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

/// The endpoint CloudFront's SDK client would use: `AWS_ENDPOINT_URL_CLOUDFRONT`
/// or the profile's `services` section, then `AWS_ENDPOINT_URL` or the
/// profile's `endpoint_url` (both honour `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`),
/// then CloudFront's own.
fn endpoint(config: &SdkConfig) -> String {
    let key = ServiceConfigKey::builder().service_id("CloudFront").env("AWS_ENDPOINT_URL").profile("endpoint_url");
    let service = key.build().ok().and_then(|key| config.service_config()?.load_config(key));
    service.or_else(|| config.endpoint_url().map(str::to_string)).unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
}

fn https_client() -> Result<HttpsClient, Failure> {
    crate::https::client(Some(CONNECT_TIMEOUT)).map_err(tls_roots)
}

fn tls_roots(e: std::io::Error) -> Failure {
    Failure::new("TlsRoots", format!("cannot load the system's TLS trust roots: {e}"))
}

/// Unique per purge: CloudFront refuses a reused reference with other paths.
fn caller_reference() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("sdk-cdn-{nanos}")
}

/// The `InvalidationBatch` document CloudFront's API reference describes.
fn invalidation_batch(paths: &[String], caller_reference: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let mut writer = XmlWriter::new(&mut out);
    let mut batch = writer
        .start_el("InvalidationBatch")
        .write_ns(&format!("http://cloudfront.amazonaws.com/doc/{API_VERSION}/"), None)
        .finish();
    let mut list = batch.start_el("Paths").finish();
    list.start_el("Quantity").finish().data(&paths.len().to_string());
    let mut items = list.start_el("Items").finish();
    for path in paths {
        items.start_el("Path").finish().data(path);
    }
    items.finish();
    list.finish();
    batch.start_el("CallerReference").finish().data(caller_reference);
    batch.finish();
    out
}

/// The text of the first element named `name` in `xml`, unescaped.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let mut document = Document::new(xml);
    while let Some(start) = document.next_start_element() {
        if start.local() == name {
            return try_data(&mut document).ok().map(|text| text.trim().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_names_every_path_and_escapes_them() {
        let paths = ["/sdk/latest/*".to_string(), "/a&b<c>".to_string()];
        assert_eq!(
            invalidation_batch(&paths, "sdk-cdn-1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">\
             <Paths><Quantity>2</Quantity><Items><Path>/sdk/latest/*</Path><Path>/a&amp;b&lt;c&gt;</Path></Items></Paths>\
             <CallerReference>sdk-cdn-1</CallerReference></InvalidationBatch>"
        );
    }

    #[test]
    fn answers_and_errors_are_read_as_cloudfront_writes_them() {
        let created = r#"<?xml version="1.0"?>
            <Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
              <Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status>
              <InvalidationBatch><Paths><Quantity>1</Quantity><Items><Path>/x</Path></Items></Paths>
              <CallerReference>r</CallerReference></InvalidationBatch></Invalidation>"#;
        assert_eq!(element_text(created, "Id").as_deref(), Some("I2J0I21PCUYOIK"));
        let error = r#"<?xml version="1.0"?>
            <ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
              <Error><Type>Sender</Type><Code>NoSuchDistribution</Code>
              <Message>The specified distribution does not exist &amp; never did.</Message></Error>
              <RequestId>abc</RequestId></ErrorResponse>"#;
        assert_eq!(element_text(error, "Code").as_deref(), Some("NoSuchDistribution"));
        assert_eq!(
            element_text(error, "Message").as_deref(),
            Some("The specified distribution does not exist & never did.")
        );
        assert_eq!(element_text("not xml at all", "Code"), None);
    }
}
