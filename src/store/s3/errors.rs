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
        SdkError::DispatchFailure(_) if crate::https::refused_certificate(e) => format!(
            "{endpoint} presented a TLS certificate this machine does not trust ({}); {}",
            root_cause(e),
            crate::https::trust_hint()
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
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + Send + Sync + 'static,
{
    let detail = describe(&e, endpoint);
    match status(&e) {
        Some(403) => StoreError::Denied { op, key: key.to_string(), detail },
        _ => StoreError::Backend { op, key: key.to_string(), detail, source: Some(Box::new(e)) },
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
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus + Send + Sync + 'static,
{
    match (status(&e), mode) {
        (Some(412), PutMode::Create) => StoreError::AlreadyExists { key: key.to_string() },
        (Some(412), _) => StoreError::Precondition { key: key.to_string() },
        (Some(404), PutMode::Update { .. }) => StoreError::NotFound { key: key.to_string() },
        // S3 answers a conditional write that raced another with 409
        // `ConditionalRequestConflict`: retry. Other 409s (a bucket being
        // deleted, an aborted operation) are not races and must not be retried.
        (Some(409), _) if e.code() == Some(CONDITIONAL_REQUEST_CONFLICT) => {
            StoreError::ConcurrentWrite { key: key.to_string(), detail: describe(&e, endpoint) }
        }
        _ => backend(endpoint, op, key, e),
    }
}

/// The S3 error code of a conditional write that raced another one.
const CONDITIONAL_REQUEST_CONFLICT: &str = "ConditionalRequestConflict";

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn answer(status: u16, code: &str) -> SdkError<PutObjectError, HttpResponse> {
        let error = PutObjectError::generic(ErrorMetadata::builder().code(code).message("test").build());
        let response = HttpResponse::new(status.try_into().expect("status"), SdkBody::empty());
        SdkError::service_error(error, response)
    }

    fn mapped(status: u16, code: &str) -> StoreError {
        let key = Key::new("api/sdk/sri").expect("key");
        write_error("http://127.0.0.1:9", "put", &key, &PutMode::Update { etag: "\"e\"".into() }, answer(status, code))
    }

    #[test]
    fn a_conditional_request_conflict_is_a_concurrent_write_to_retry() {
        assert!(matches!(mapped(409, "ConditionalRequestConflict"), StoreError::ConcurrentWrite { .. }));
    }

    #[test]
    fn another_409_is_a_backend_failure_that_keeps_its_cause() {
        let error = mapped(409, "OperationAborted");
        assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
        let cause = std::error::Error::source(&error).expect("the SDK error is kept as the source");
        assert!(cause.downcast_ref::<SdkError<PutObjectError, HttpResponse>>().is_some(), "{cause:?}");
    }
}
