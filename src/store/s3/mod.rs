//! The S3 backend (AWS S3 and S3-compatible stores) on `aws-sdk-s3`.
//!
//! Write modes map to S3 conditional writes: [`PutMode::Create`] sends
//! `If-None-Match: *`, [`PutMode::Update`] sends `If-Match: <etag>`; for
//! multipart uploads the condition goes on `CompleteMultipartUpload`. A 412
//! becomes a typed error; a 409 (`ConditionalRequestConflict`, a concurrent
//! write raced ours) is retried here, because the SDK's retry policy does not
//! cover it. Throttling, 5xx and connection errors are retried by the SDK's
//! standard retry config.
//!
//! A file written with a planned SRI ([`Headers::sri`]) is first copied
//! into a private temp file while it is hashed, and the copy is what is
//! sent, by every attempt and every multipart part: a source that changes
//! during the upload (or between an attempt and the SDK's retry) can then
//! never be stored under a hash it does not have. A copy that does not hash
//! to the plan is refused with [`StoreError::ContentChanged`] before the
//! first request. This costs one local read and write per byte, small next
//! to the upload, and temp space for the files in flight (`TMPDIR`). A
//! copy is named by its writer (`sdk-cdn-upload-<host>-<pid>-…`): the copies
//! a killed run left are removed by the next run's first copy on this host,
//! or by `doctor` (see [`copies`]).
//!
//! Bodies are sent with `UNSIGNED-PAYLOAD` signing: SigV4 still signs the
//! request, and the SDK's default flexible checksum (a CRC32 trailer, which
//! the store verifies) protects the bytes, so the SHA-256 of every payload
//! that payload signing costs both sides is saved (TLS protects it in
//! transit on real endpoints; every object's SRI is checked by `verify`).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tempfile::TempPath;

mod copies;
mod errors;
mod request;

use errors::{backend, describe, status, write_error};
use request::{WithHeaders, WithMode};

use super::config::{MIN_TRANSFER_RATE, StoreConfig, Timeouts};
use super::{
    Body, Headers, Key, ObjectMeta, ObjectReader, PutMode, SourceRead, StaleTemp, Store, StoreError, key::MAX_KEY_BYTES,
};
use crate::integrity::Integrity;

/// Files at least this large are uploaded in parts.
pub(crate) const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Part size for multipart uploads (grown for huge files to stay under 10,000 parts).
const PART_SIZE: u64 = 8 * 1024 * 1024;
/// Parts of one file uploaded at once.
const PART_CONCURRENCY: usize = 4;
/// How many times a 409 `ConditionalRequestConflict` is retried.
const CONFLICT_RETRIES: u32 = 5;
/// Total attempts for throttling, 5xx and transport errors (SDK standard mode).
const MAX_ATTEMPTS: u32 = 5;

impl Timeouts {
    /// The SDK's timeouts for requests without a large body: each attempt
    /// gets a third of the operation's time, so retries fit in the bound.
    fn config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.operation / 3)
            .operation_timeout(self.operation)
            .build()
    }

    /// Timeouts for a request that sends `bytes` of body.
    fn transfer(&self, bytes: u64) -> TimeoutConfig {
        let sending = Duration::from_secs(bytes.div_ceil(MIN_TRANSFER_RATE));
        let attempt = self.operation / 3 + sending;
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(attempt)
            .operation_timeout(attempt * MAX_ATTEMPTS)
            .build()
    }
}

/// A store in an S3 bucket, under an optional key prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    /// Where requests go, for messages (the configured URL, or AWS in a region).
    endpoint: String,
    timeouts: Timeouts,
}

impl S3Store {
    /// Builds a client from the AWS config chain plus `options`.
    pub(crate) async fn connect(bucket: &str, prefix: &str, options: &StoreConfig) -> Result<Self, StoreError> {
        let http = crate::https::aws_client().map_err(|e| StoreError::Backend {
            op: "load the TLS trust roots for",
            key: format!("s3://{bucket}"),
            detail: e.to_string(),
            source: Some(Box::new(e)),
        })?;
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(options.timeouts.config())
            .force_path_style(options.path_style);
        if let Some(endpoint) = &options.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        if shared.region().is_none() {
            // S3-compatible stores rarely care, but the SDK refuses to sign without one.
            config = config.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        let endpoint = match (options.endpoint_url.as_deref().or(shared.endpoint_url()), shared.region()) {
            (Some(url), _) => url.to_string(),
            (None, Some(region)) => format!("AWS S3 in {region}"),
            (None, None) => "AWS S3 in us-east-1".to_string(),
        };
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint,
            timeouts: options.timeouts,
        })
    }

    /// A store over an already configured client (tests, embedding).
    pub fn from_client(client: Client, bucket: &str, prefix: &str) -> Self {
        S3Store {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
            endpoint: "the configured endpoint".to_string(),
            timeouts: Timeouts::default(),
        }
    }

    /// Per-request timeouts for a request with `bytes` of body.
    fn transfer_timeouts(&self, bytes: u64) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::default().timeout_config(self.timeouts.transfer(bytes))
    }

    fn full_key(&self, key: &Key) -> Result<String, StoreError> {
        let full = self.full_prefix(key.as_str());
        if full.len() > MAX_KEY_BYTES {
            return Err(StoreError::Backend {
                op: "address",
                key: full.clone(),
                detail: format!("the key is {} bytes with the store prefix; S3 allows {MAX_KEY_BYTES}", full.len()),
                source: None,
            });
        }
        Ok(full)
    }

    fn full_prefix(&self, s: &str) -> String {
        if self.prefix.is_empty() { s.to_string() } else { format!("{}/{s}", self.prefix) }
    }

    fn strip_prefix<'a>(&self, full: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() { Some(full) } else { full.strip_prefix(&self.prefix)?.strip_prefix('/') }
    }

    async fn put_once(
        &self,
        key: &Key,
        body: &Body,
        headers: &Headers,
        mode: &PutMode,
    ) -> Result<Option<String>, StoreError> {
        let full = self.full_key(key)?;
        let size = match body {
            Body::Bytes(b) => b.len() as u64,
            Body::File(path) => file_size(path).await?,
            Body::Staged(staged) => staged.size(),
        };
        if let Body::File(path) = body
            && size >= MULTIPART_THRESHOLD
        {
            return self.put_multipart(key, &full, path, size, headers, mode).await;
        }
        let stream = match body {
            Body::Bytes(b) => ByteStream::from(b.clone()),
            Body::Staged(staged) => ByteStream::from_path(staged.path()).await.map_err(|e| StoreError::Io {
                op: "read".into(),
                path: staged.path().display().to_string(),
                source: std::io::Error::other(e),
            })?,
            Body::File(path) => ByteStream::from_path(path).await.map_err(|e| StoreError::Io {
                op: "read".into(),
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?,
        };
        let req =
            self.client.put_object().bucket(&self.bucket).key(&full).body(stream).with_headers(headers).with_mode(mode);
        let out = req
            .customize()
            .disable_payload_signing()
            .config_override(self.transfer_timeouts(size))
            .send()
            .await
            .map_err(|e| write_error(&self.endpoint, "put", key, mode, e))?;
        Ok(out.e_tag().map(str::to_string))
    }

    async fn put_multipart(
        &self,
        key: &Key,
        full: &str,
        path: &Path,
        size: u64,
        headers: &Headers,
        mode: &PutMode,
    ) -> Result<Option<String>, StoreError> {
        let create = self.client.create_multipart_upload().bucket(&self.bucket).key(full).with_headers(headers);
        let upload = create.send().await.map_err(|e| backend(&self.endpoint, "create multipart upload", key, e))?;
        let Some(upload_id) = upload.upload_id().map(str::to_string) else {
            return Err(StoreError::Backend {
                op: "create multipart upload",
                key: key.to_string(),
                detail: "the store returned no upload id".into(),
                source: None,
            });
        };
        let result = self.upload_parts_and_complete(key, full, path, size, &upload_id, mode).await;
        if result.is_err() {
            // Best effort: a leftover upload costs storage, not correctness.
            let _ =
                self.client.abort_multipart_upload().bucket(&self.bucket).key(full).upload_id(&upload_id).send().await;
        }
        result
    }

    async fn upload_parts_and_complete(
        &self,
        key: &Key,
        full: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
        mode: &PutMode,
    ) -> Result<Option<String>, StoreError> {
        let part_size = PART_SIZE.max(size.div_ceil(10_000));
        let count = size.div_ceil(part_size);
        let parts: Vec<CompletedPart> = futures::stream::iter(0..count)
            .map(|i| async move {
                let offset = i * part_size;
                let length = part_size.min(size - offset);
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(|e| StoreError::Io {
                        op: "read".into(),
                        path: path.display().to_string(),
                        source: std::io::Error::other(e),
                    })?;
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(body)
                    .customize()
                    .disable_payload_signing()
                    .config_override(self.transfer_timeouts(length))
                    .send()
                    .await
                    .map_err(|e| backend(&self.endpoint, "upload part", key, e))?;
                Ok::<_, StoreError>(
                    CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build(),
                )
            })
            .buffered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        let mut complete = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
        complete = complete.with_mode(mode);
        let out = complete
            .send()
            .await
            .map_err(|e| write_error(&self.endpoint, "complete multipart upload", key, mode, e))?;
        Ok(out.e_tag().map(str::to_string))
    }
}

async fn file_size(path: &Path) -> Result<u64, StoreError> {
    Ok(tokio::fs::metadata(path).await.map_err(|e| StoreError::io("stat", path, e))?.len())
}

/// The body to send for a write with `headers`: with a planned SRI, a
/// private copy of the bytes that is proven to hash to it (see the module
/// doc), or [`StoreError::ContentChanged`]. The returned path deletes the
/// copy when dropped.
async fn stage(key: &Key, body: Body, headers: &Headers) -> Result<(Body, Option<TempPath>), StoreError> {
    let Some(expected) = headers.sri.clone() else { return Ok((body, None)) };
    let path = match body {
        Body::Bytes(bytes) => {
            let actual = Integrity::of_bytes(&bytes).to_string();
            check_planned(key, "<memory>", &expected, actual)?;
            return Ok((Body::Bytes(bytes), None));
        }
        Body::File(path) => path,
        Body::Staged(staged) => staged.path().to_path_buf(),
    };
    let key = key.clone();
    let staged = tokio::task::spawn_blocking(move || {
        let mut input = std::fs::File::open(&path).map_err(|e| StoreError::io("open", &path, e))?;
        let mut copy = copies::create()?;
        crate::pause::point_blocking("upload-copy");
        let mut source = SourceRead::new(&mut input);
        let (integrity, _) =
            Integrity::of_copy(&mut source, copy.as_file_mut()).map_err(|e| match source.failed() {
                true => StoreError::io("read", &path, e),
                false => StoreError::io(format!("copy {} into TMPDIR", path.display()), &copies::dir(), e),
            })?;
        check_planned(&key, &path.display().to_string(), &expected, integrity.to_string())?;
        let copy = copy.into_temp_path();
        Ok::<_, StoreError>((Body::File(copy.to_path_buf()), Some(copy)))
    })
    .await;
    staged.map_err(|e| StoreError::Backend {
        op: "stage",
        key: String::new(),
        detail: e.to_string(),
        source: Some(Box::new(e)),
    })?
}

fn check_planned(key: &Key, path: &str, expected: &str, actual: String) -> Result<(), StoreError> {
    if actual == expected {
        return Ok(());
    }
    Err(StoreError::ContentChanged {
        key: key.to_string(),
        path: path.to_string(),
        expected: expected.to_string(),
        actual,
    })
}

/// Percent-encodes a `CopySource` (`bucket/key`), keeping `/` as is.
fn encode_copy_source(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The metadata HeadObject and GetObject both return, as an [`ObjectMeta`].
fn object_meta(
    key: &Key,
    content_length: Option<i64>,
    e_tag: Option<&str>,
    content_type: Option<&str>,
    cache_control: Option<&str>,
    metadata: Option<&std::collections::HashMap<String, String>>,
) -> ObjectMeta {
    ObjectMeta {
        key: key.clone(),
        size: content_length.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        etag: e_tag.map_or_else(|| missing_etag(key), str::to_string),
        headers: Some({
            let (sri, signed) = request::from_metadata(metadata);
            Headers {
                content_type: content_type.unwrap_or_default().to_string(),
                cache_control: cache_control.unwrap_or_default().to_string(),
                sri,
                signed,
            }
        }),
    }
}

fn missing_etag(key: &Key) -> String {
    // Stores that omit the ETag header still work for Create and Overwrite.
    tracing::debug!(%key, "store returned no etag");
    String::new()
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn max_key_len(&self) -> usize {
        if self.prefix.is_empty() { MAX_KEY_BYTES } else { MAX_KEY_BYTES - self.prefix.len() - 1 }
    }

    fn upload_copies_dir(&self) -> Option<std::path::PathBuf> {
        Some(copies::dir())
    }

    /// The upload copies of killed runs in `TMPDIR`, after proving that it
    /// can take one (the bucket keeps no temp objects: an unfinished upload
    /// never becomes one).
    async fn remove_stale_temp_files(&self) -> Result<Option<StaleTemp>, StoreError> {
        tokio::task::spawn_blocking(copies::check_and_sweep).await.map_err(|e| StoreError::Backend {
            op: "sweep",
            key: String::new(),
            detail: e.to_string(),
            source: Some(Box::new(e)),
        })?
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let full = self.full_key(key)?;
        match self.client.head_object().bucket(&self.bucket).key(&full).send().await {
            Ok(out) => Ok(Some(object_meta(
                key,
                out.content_length(),
                out.e_tag(),
                out.content_type(),
                out.cache_control(),
                out.metadata(),
            ))),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(backend(&self.endpoint, "head", key, e)),
        }
    }

    async fn get(&self, key: &Key) -> Result<Option<(Bytes, ObjectMeta)>, StoreError> {
        let Some((reader, meta)) = self.reader(key).await? else { return Ok(None) };
        let mut buf = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        let mut reader = reader;
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut buf).await.map_err(|e| StoreError::Backend {
            op: "get",
            key: key.to_string(),
            detail: e.to_string(),
            source: Some(Box::new(e)),
        })?;
        Ok(Some((Bytes::from(buf), meta)))
    }

    async fn reader(&self, key: &Key) -> Result<Option<(ObjectReader, ObjectMeta)>, StoreError> {
        let full = self.full_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(&full).send().await {
            Ok(out) => {
                let meta = object_meta(
                    key,
                    out.content_length(),
                    out.e_tag(),
                    out.content_type(),
                    out.cache_control(),
                    out.metadata(),
                );
                Ok(Some((Box::pin(out.body.into_async_read()) as ObjectReader, meta)))
            }
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(backend(&self.endpoint, "get", key, e)),
        }
    }

    async fn put(&self, key: &Key, body: Body, headers: &Headers, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        // This store stages nothing while a publish plans (`staging` is
        // `None`: the whole build would sit in TMPDIR at once); another
        // store's staged file is read like any file.
        let (body, _staged_by_another) = match body {
            Body::Staged(staged) => (Body::File(staged.path().to_path_buf()), Some(staged)),
            body => (body, None),
        };
        // Kept until the upload is over: the staged copy is deleted on drop.
        let (body, _staged) = stage(key, body, headers).await?;
        let size = match &body {
            Body::Bytes(b) => b.len() as u64,
            Body::File(path) => file_size(path).await?,
            Body::Staged(staged) => staged.size(),
        };
        let mut attempt = 0;
        loop {
            match self.put_once(key, &body, headers, &mode).await {
                Ok(etag) => {
                    let etag = etag.unwrap_or_else(|| missing_etag(key));
                    return Ok(ObjectMeta { key: key.clone(), size, etag, headers: Some(headers.clone()) });
                }
                Err(StoreError::ConcurrentWrite { .. }) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn copy(&self, from: &Key, to: &Key, headers: &Headers) -> Result<(), StoreError> {
        let source = encode_copy_source(&format!("{}/{}", self.bucket, self.full_key(from)?));
        let req = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(self.full_key(to)?)
            .copy_source(source)
            .metadata_directive(MetadataDirective::Replace)
            .with_headers(headers);
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Err(StoreError::NotFound { key: from.to_string() }),
            Err(e) => Err(backend(&self.endpoint, "copy", to, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let full_prefix = self.full_prefix(prefix);
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&full_prefix).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| match status(&e) {
                Some(403) => {
                    StoreError::Denied { op: "list", key: full_prefix.clone(), detail: describe(&e, &self.endpoint) }
                }
                _ => StoreError::Backend {
                    op: "list",
                    key: full_prefix.clone(),
                    detail: describe(&e, &self.endpoint),
                    source: Some(Box::new(e)),
                },
            })?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| self.strip_prefix(k)).and_then(|k| Key::new(k).ok()) else {
                    continue;
                };
                out.push(ObjectMeta {
                    size: object.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    etag: object.e_tag().map_or_else(|| missing_etag(&key), str::to_string),
                    key,
                    headers: None,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        let full = self.full_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(&full).send().await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(backend(&self.endpoint, "delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_is_percent_encoded_but_keeps_slashes() {
        assert_eq!(encode_copy_source("b/sdk/1.0.0/a b+c.js"), "b/sdk/1.0.0/a%20b%2Bc.js");
        assert_eq!(encode_copy_source("b/é"), "b/%C3%A9");
    }
}
