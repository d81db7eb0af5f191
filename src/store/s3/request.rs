//! How our write modes and headers become S3 request fields, written once
//! for every request type that carries them.
//!
//! - A [`PutMode`] is a condition: `If-None-Match: *` for
//!   [`PutMode::Create`], `If-Match: <etag>` for [`PutMode::Update`]
//!   (PutObject, and CompleteMultipartUpload for multipart uploads).
//! - [`Headers`] are `Content-Type`, `Cache-Control` and the SRI as user
//!   metadata `x-amz-meta-sri` (PutObject, CreateMultipartUpload, and
//!   CopyObject with `MetadataDirective::Replace`).

use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
use aws_sdk_s3::operation::create_multipart_upload::builders::CreateMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;

use super::super::{Headers, PutMode};

/// User-metadata name under which the SRI is stored (`x-amz-meta-sri`).
pub(super) const SRI_METADATA: &str = "sri";

/// A request that can carry a write condition.
pub(super) trait WithMode: Sized {
    /// The request with `mode`'s condition.
    fn with_mode(self, mode: &PutMode) -> Self;
}

/// A request that stores an object's headers.
pub(super) trait WithHeaders: Sized {
    /// The request with `headers` as the object's stored headers.
    fn with_headers(self, headers: &Headers) -> Self;
}

macro_rules! with_mode {
    ($($builder:ty),*) => {$(
        impl WithMode for $builder {
            fn with_mode(self, mode: &PutMode) -> Self {
                match mode {
                    PutMode::Create => self.if_none_match("*"),
                    PutMode::Update { etag } => self.if_match(etag),
                    PutMode::Overwrite => self,
                }
            }
        }
    )*};
}

macro_rules! with_headers {
    ($($builder:ty),*) => {$(
        impl WithHeaders for $builder {
            fn with_headers(self, headers: &Headers) -> Self {
                let request = self.content_type(&headers.content_type).cache_control(&headers.cache_control);
                match &headers.sri {
                    Some(sri) => request.metadata(SRI_METADATA, sri),
                    None => request,
                }
            }
        }
    )*};
}

with_mode!(PutObjectFluentBuilder, CompleteMultipartUploadFluentBuilder);
with_headers!(PutObjectFluentBuilder, CreateMultipartUploadFluentBuilder, CopyObjectFluentBuilder);
