//! Turning `aws-sdk-s3` errors into [`StoreError`]s a person can act on:
//! typed conditions for 412/404/409, and one-line messages with the fix
//! instead of the SDK's debug dumps.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::super::{Key, PutMode, StoreError};

type HttpStatus = Option<u16>;

pub(super) fn status<E, R: HasStatus>(e: &SdkError<E, R>) -> HttpStatus {
    e.raw_response().map(HasStatus::status_code)
}

/// Lets the error mappers read the HTTP status of any SDK response type.
pub(super) trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A one-line account of an SDK error with what to do about it (no debug dumps).
pub(super) fn describe<E, R>(e: &SdkError<E, R>, endpoint: &str) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    match e {
        SdkError::DispatchFailure(failure) if !failure.is_io() && !failure.is_timeout() => {
            let text = root_cause(e);
            // The credential chain reports its failures only through these
            // error kinds (no typed accessor on a dispatch failure).
            let debug = format!("{failure:?}");
            if debug.contains("CredentialsNotLoaded") || debug.contains("ProviderError") {
                format!(
                    "no AWS credentials found (tried the environment, AWS_PROFILE/~/.aws, web identity, ECS and EC2 \
                     metadata; last: {text}); set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                )
            } else {
                text
            }
        }
        SdkError::TimeoutError(_) => format!(
            "{endpoint} did not answer in time ({}); check --endpoint-url / AWS_ENDPOINT_URL, the network and \
             AWS_REGION, or allow more time with --timeout / --connect-timeout",
            root_cause(e)
        ),
        SdkError::DispatchFailure(_) => format!(
            "{endpoint} is unreachable ({}); check --endpoint-url / AWS_ENDPOINT_URL, the network and AWS_REGION",
            root_cause(e)
        ),
        SdkError::ConstructionFailure(_) => format!(
            "{}; are AWS credentials configured (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)?",
            root_cause(e)
        ),
        SdkError::ServiceError(service) => {
            let err = service.err();
            let status = status(e).map_or(String::new(), |s| format!("HTTP {s} "));
            let code = err.code().unwrap_or("error");
            let message = err.message().map_or(String::new(), |m| format!(": {m}"));
            let hint = match (code, status.trim()) {
                ("NoSuchBucket", _) => "; create the bucket or fix the --store URL",
                ("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied", _) | (_, "HTTP 403") => {
                    "; check the credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the bucket policy"
                }
                _ => "",
            };
            format!("{status}{code}{message}{hint}")
        }
        _ => root_cause(e),
    }
}

/// The innermost error message: the part a person can act on.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

pub(super) fn backend<E, R>(endpoint: &str, op: &'static str, key: &Key, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    match status(&e) {
        Some(403) => StoreError::Denied { op, key: key.to_string(), detail: describe(&e, endpoint) },
        _ => StoreError::Backend { op, key: key.to_string(), detail: describe(&e, endpoint) },
    }
}

pub(super) fn write_error<E, R>(
    endpoint: &str,
    op: &'static str,
    key: &Key,
    mode: &PutMode,
    e: SdkError<E, R>,
) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + HasStatus + 'static,
{
    match (status(&e), mode) {
        (Some(412), PutMode::Create) => StoreError::AlreadyExists { key: key.to_string() },
        (Some(412), _) => StoreError::Precondition { key: key.to_string() },
        (Some(404), PutMode::Update { .. }) => StoreError::NotFound { key: key.to_string() },
        (Some(409), _) => StoreError::ConcurrentWrite { key: key.to_string(), detail: describe(&e, endpoint) },
        _ => backend(endpoint, op, key, e),
    }
}
