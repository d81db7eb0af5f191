//! In-process S3 server for integration tests.
//!
//! [`start`] (async tests) and [`start_blocking`] (sync tests that run the real
//! binary) serve an `s3s` service backed by `s3s-fs` on
//! `http://127.0.0.1:<random port>`, with SigV4 authentication
//! ([`ACCESS_KEY`]/[`SECRET_KEY`]) and one pre-created, empty bucket. The
//! server stops when the returned [`S3Server`] is dropped; the data lives in
//! [`S3Server::root`], a temporary directory removed at the same moment.
//!
//! # Why the `Serialised` wrapper exists
//!
//! `s3s-fs` 0.14.1 evaluates `If-None-Match: *` and `If-Match: <etag>` on
//! `PutObject` and `CompleteMultipartUpload` by checking the file system and
//! then, later, renaming a temp file into place. That check-then-act is not
//! atomic: 20 concurrent create-only PUTs on one key produced several
//! "winners" in 19 of 20 trials. Real S3 evaluates the condition atomically
//! with the write, and our publish logic relies on exactly that, so a test
//! against plain `s3s-fs` would be flaky or, worse, would pass against a store
//! weaker than the one we target.
//!
//! `Serialised` wraps the `FileSystem` and holds a per-`(bucket, key)` async
//! mutex for the whole of every call that writes a key (`PutObject`,
//! `CopyObject` (destination and source), `CompleteMultipartUpload`,
//! `DeleteObject`, `DeleteObjects` (all of its keys, taken in sorted order))
//! and also around `HeadObject`/`GetObject`.
//!
//! What that guarantees:
//! * Conditional writes on one key are linearisable: of N concurrent
//!   `If-None-Match: *` PUTs exactly one succeeds and the rest get
//!   `412 PreconditionFailed`; `If-Match: <etag>` is a real compare-and-swap.
//! * A `HeadObject`/`GetObject` never observes a half-finished write. (`s3s-fs`
//!   renames the body into place *before* it writes the metadata and ETag
//!   sidecars, so without the lock a reader could see the new body with the old
//!   `Content-Type`/metadata/ETag.) `GetObject` streams from a file handle
//!   opened under the lock, so its body is a consistent snapshot too.
//! * `CopyObject` destination conditions (`If-None-Match: *`, `If-Match`),
//!   which S3 supports but `s3s` 0.14.1 does not even parse (its
//!   `CopyObjectInput` has no such fields, so plain `s3s-fs` silently ignores
//!   them), are evaluated here from the raw headers, under the lock, with the
//!   same semantics `s3s-fs` uses for `PutObject`.
//!
//! What it does NOT do:
//! * It never returns `409 ConditionalRequestConflict`. Real S3 may return 409
//!   when conditional writes on one key race; here they are simply queued, so
//!   the 409 retry path of the code under test is not exercised.
//! * `ListObjectsV2` and the multipart part operations are not serialised: a
//!   listing can include a key whose write is still in progress.
//! * Apart from the multipart checksum repair noted below, it does not fix
//!   any other `s3s-fs` behaviour, and it does not roll back a PUT that fails
//!   half-way.
//! * Locks are keyed by the key *string*; two spellings that `s3s-fs` maps to
//!   the same path (e.g. `a/./b` and `a/b`) would not share a lock. The lock
//!   map is never pruned (irrelevant for a test's lifetime).
//!
//! With [`Conditional::Ignore`] the wrapper strips `If-None-Match`/`If-Match`
//! from `PutObject` and `CompleteMultipartUpload` (and skips its own
//! `CopyObject` destination checks) before delegating: the server then behaves
//! like an S3-compatible store that accepts conditional headers and silently
//! ignores them, which is what `doctor` must detect.
//!
//! # `s3s-fs` 0.14.1 behaviour a test writer should know
//!
//! Protocol
//! * Requests must be SigV4-signed with [`ACCESS_KEY`]/[`SECRET_KEY`]; a bad
//!   signature gets 403. Any signing region is accepted.
//! * The endpoint is an IP address, so aws-sdk-s3's endpoint rules use
//!   path-style addressing even without `force_path_style(true)`.
//!
//! Metadata and headers
//! * `PutObject` stores user metadata, `Content-Type`, `Cache-Control`,
//!   `Content-Encoding`, `Content-Disposition`, `Content-Language`, `Expires`
//!   and `x-amz-website-redirect-location` in a JSON sidecar and returns them
//!   from `HeadObject`/`GetObject`. These round-trip exactly.
//! * No default `Content-Type`: the stored value is exactly what the request
//!   carried. aws-sdk-s3 sends `application/octet-stream` on `PutObject` when
//!   the caller sets none, so SDK PUTs read back as that; but an object made
//!   by `CreateMultipartUpload` or by `CopyObject` + `REPLACE` without a
//!   content type has *no* `Content-Type` on HEAD/GET (S3 would report
//!   `binary/octet-stream`).
//! * Metadata keys come back lower-cased (HTTP header names; S3 does the same).
//!   Non-ASCII values are RFC 2047-decoded on the way in and come back
//!   RFC 2047-encoded (`=?UTF-8?B?...?=`, which aws-sdk-s3 does not decode) -
//!   the same as S3. Plain ASCII values (e.g. an SRI `sha384-...` string with
//!   `+`, `/`, `=`) round-trip unchanged.
//! * `CopyObject` with `MetadataDirective: REPLACE` builds the destination's
//!   attributes *only* from the request (user metadata, content-type,
//!   cache-control, ...), dropping everything from the source - as S3 does.
//!   `REPLACE` with no metadata in the request leaves none.
//!   With `COPY` (or no directive) it copies the source's sidecar file; if the
//!   source has no sidecar, whatever sidecar the destination key had before
//!   is left in place.
//! * `CopyObject` of an object onto itself without `REPLACE` succeeds (S3
//!   rejects it with 400 `InvalidRequest`); it only bumps `LastModified`.
//! * `DeleteObject`/`DeleteObjects` remove only the body file, not the
//!   sidecars. A later `PutObject` rewrites both sidecars, so this is normally
//!   invisible.
//!
//! ETags
//! * Single-part objects: `"<hex md5 of body>"`, as S3. Multipart:
//!   `"<md5 of concatenated part md5s>-<part count>"`, as S3.
//! * `CopyObject` gives the destination the *source's* ETag, also for
//!   multipart sources (`"...-N"` is kept; S3 may compute a new one).
//! * `ListObjectsV2` entries carry no ETag (and no storage class); only
//!   key, size and last-modified.
//!
//! Conditionals and errors
//! * `If-Match: <etag>` on a key that does not exist returns 412 from `s3s-fs`
//!   (for `PutObject` and, here, `CopyObject`); as far as we know real S3
//!   answers 404 `NoSuchKey` in that case, so accept both in tests.
//! * `If-None-Match` with a value other than `*` is ignored by `s3s-fs` on
//!   `PutObject` (S3 only supports `*`).
//! * Conditional *reads* (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//!   ... on `GetObject`/`HeadObject`) are ignored: never 304 or 412.
//!   `If-Match` on `DeleteObject` is ignored too.
//! * `PutObject` renames the body into place *before* validating
//!   `Content-MD5`/`x-amz-checksum-*`: a PUT rejected with 400 `BadDigest` has
//!   nevertheless replaced the stored body, while the sidecars (ETag, stored
//!   checksums, metadata) keep the old values - a later SDK `GetObject` then
//!   fails reading the body with a checksum mismatch. S3 leaves the object
//!   untouched. Do not write tests that send bad digests and then read back.
//!
//! Multipart
//! * Parts must be numbered 1..=N without gaps, part ETags in the complete
//!   request are not checked, and every part but the last must be >= 5 MiB.
//! * `CompleteMultipartUpload` writes the upload's metadata onto the key and
//!   consumes the upload id *before* assembling the parts; if assembly fails
//!   (e.g. `EntityTooSmall`) the upload cannot be retried and the key's
//!   metadata sidecar has already been replaced.
//! * `ListParts` returns parts in directory order (not sorted) and without
//!   ETags.
//! * `CompleteMultipartUpload` over an existing key keeps that key's old
//!   stored checksums (it only updates the ETag), so `GetObject` would then
//!   advertise e.g. the old `x-amz-checksum-crc32` and aws-sdk-s3 fails reading
//!   the body with a checksum mismatch. The wrapper repairs this: after a
//!   successful completion it resets the key's internal record to just the
//!   new ETag (this relies on the `s3s-fs` 0.14.1 on-disk layout, hence the
//!   exact version pin).
//!
//! Keys
//! * Keys are file paths under `root/<bucket>/`: `a` and `a/b` cannot both
//!   exist (the second PUT fails with 500), a key ending in `/` is a
//!   directory, and `.`/`..` segments are normalised (`x/../y` is stored and
//!   listed as `y`). Buckets are directories; sidecars live in hidden files
//!   in `root` itself (never inside a bucket directory).
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput, CompleteMultipartUploadOutput,
    CopyObjectInput, CopyObjectOutput, CopySource, CreateBucketInput, CreateBucketOutput, CreateMultipartUploadInput,
    CreateMultipartUploadOutput, DeleteObjectInput, DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput,
    ETagCondition, GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput,
    HeadObjectOutput, ListBucketsInput, ListBucketsOutput, ListObjectsV2Input, ListObjectsV2Output, ListPartsInput,
    ListPartsOutput, PutObjectInput, PutObjectOutput, UploadPartInput, UploadPartOutput,
};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use tokio::net::TcpListener;
use tokio::sync::{OwnedMutexGuard, oneshot};
use tokio::task::JoinSet;

/// Access key accepted by the test server.
pub const ACCESS_KEY: &str = "sdkcdntestkey";
/// Secret key accepted by the test server.
pub const SECRET_KEY: &str = "sdkcdntestsecret";
/// Name of the bucket every server is created with.
pub const BUCKET: &str = "sdk-cdn-test";
/// Region the server claims to be in (any region is accepted by `s3s`).
pub const REGION: &str = "us-east-1";

/// How the server treats `If-None-Match` / `If-Match` on writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// Atomic, S3-like conditional writes.
    Atomic,
    /// Accept conditional headers but ignore them (a broken "S3-compatible" store).
    Ignore,
}

/// A running test server. Dropping it stops the server and deletes `root`.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The pre-created bucket.
    pub bucket: String,
    /// The `s3s-fs` root directory. Objects are at `root/<bucket>/<key>`.
    pub root: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    runner: Option<Runner>,
    counters: Arc<Counters>,
    faults: Arc<Faults>,
}

/// Requests the server has answered, by kind, so tests can prove that an
/// operation made no writes (or O(1) requests).
#[derive(Debug, Default)]
pub struct Counters {
    /// Every object-level request (reads, lists and writes).
    pub requests: std::sync::atomic::AtomicU64,
    /// Requests that can change an object: put, copy, delete, multipart.
    pub writes: std::sync::atomic::AtomicU64,
    /// When each HTTP request arrived and when its handler answered, in
    /// arrival order: [`S3Server::round_trips_since`] finds in them the
    /// requests a client made one after another.
    spans: Mutex<Vec<(std::time::Instant, std::time::Instant)>>,
}

/// Fault injection, off until [`S3Server::set_fault_rate`] turns it on: a
/// share of object requests gets 503 SlowDown or 500 InternalError before the
/// operation runs, 500 *after* it ran (the response is lost, so a retry sees
/// its own write), or a delay. Deterministic: a counter drives the choice.
#[derive(Debug, Default)]
pub struct Faults {
    /// Percentage of requests that get a fault (0 = off).
    pub rate_percent: std::sync::atomic::AtomicU64,
    /// Requests seen while faults were on.
    seen: std::sync::atomic::AtomicU64,
    /// Faults injected so far.
    pub injected: std::sync::atomic::AtomicU64,
    /// Milliseconds every HTTP request waits before it is handled (0 = none):
    /// a stand-in for the round trip to a real S3 region, for benchmarks.
    pub latency_ms: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    SlowDownBefore,
    InternalBefore,
    InternalAfter,
    Delay(u64),
}

impl Faults {
    fn roll(&self) -> Option<Fault> {
        use std::sync::atomic::Ordering::SeqCst;
        let rate = self.rate_percent.load(SeqCst);
        if rate == 0 {
            return None;
        }
        let n = self.seen.fetch_add(1, SeqCst);
        // A cheap, well-mixed hash of the counter (splitmix64).
        let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z % 100 >= rate {
            return None;
        }
        self.injected.fetch_add(1, SeqCst);
        Some(match (z / 100) % 4 {
            0 => Fault::SlowDownBefore,
            1 => Fault::InternalBefore,
            2 => Fault::InternalAfter,
            _ => Fault::Delay(50 + (z / 400) % 200),
        })
    }
}

impl Counters {
    /// The longest chain among the spans from `mark` on in which each
    /// request arrived after the one before it was answered.
    fn round_trips_since(&self, mark: usize) -> usize {
        let spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        let spans = spans.get(mark..).unwrap_or_default();
        // Spans are in arrival order, so every request a span can follow comes before it.
        let mut depth = vec![0usize; spans.len()];
        for (i, (arrived, _)) in spans.iter().enumerate() {
            let before = (0..i).filter(|&j| spans[j].1 <= *arrived).map(|j| depth[j]).max().unwrap_or(0);
            depth[i] = before + 1;
        }
        depth.into_iter().max().unwrap_or(0)
    }

    fn read(&self) {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn write(&self) {
        self.read();
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

enum Runner {
    /// `start`: the accept loop is a task on the caller's runtime.
    Task(tokio::task::JoinHandle<()>),
    /// `start_blocking`: a dedicated OS thread owning its own runtime.
    Thread(std::thread::JoinHandle<()>),
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Dropping (or sending on) the sender ends the accept loop; the loop
        // owns the per-connection tasks, which are aborted with it.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.runner.take() {
            Some(Runner::Task(handle)) => handle.abort(),
            Some(Runner::Thread(thread)) => {
                let _ = thread.join();
            }
            None => {}
        }
        // `root` (a field) is dropped after this, i.e. after the server stopped.
    }
}

impl S3Server {
    /// Environment for running the real binary against this server.
    ///
    /// Besides the credentials, region and endpoint it points
    /// `AWS_CONFIG_FILE`/`AWS_SHARED_CREDENTIALS_FILE` at files that do not
    /// exist, so a developer's `~/.aws` cannot leak into the test. Variables
    /// inherited from the test process (e.g. `AWS_PROFILE`,
    /// `AWS_SESSION_TOKEN`) are not overridden; use `env_remove`/`env_clear`
    /// on the command if that matters.
    pub fn env(&self) -> Vec<(String, String)> {
        let absent = |name: &str| self.root.path().join(name).to_string_lossy().into_owned();
        vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), absent(".no-aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), absent(".no-aws-credentials")),
        ]
    }

    /// A mark for [`S3Server::round_trips_since`]: the HTTP requests seen so far.
    pub fn span_mark(&self) -> usize {
        self.counters.spans.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Sequential round trips since `mark`: the longest chain of requests in
    /// which each arrived only after the one before it was answered. With a
    /// latency set ([`S3Server::set_latency`]) requests a client sends at once
    /// overlap for at least that long, so they count once, whatever order the
    /// scheduler runs them in.
    pub fn round_trips_since(&self, mark: usize) -> usize {
        self.counters.round_trips_since(mark)
    }

    /// Object requests answered so far.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Turns fault injection on (`percent` of object requests) or off (0).
    pub fn set_fault_rate(&self, percent: u64) {
        self.faults.rate_percent.store(percent, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every request wait `latency` before it is handled (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.faults.latency_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.faults.injected.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Write requests answered so far.
    pub fn writes(&self) -> u64 {
        self.counters.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `s3://<bucket>`
    pub fn store_url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    /// An SDK client for this server: static credentials, custom endpoint,
    /// path-style addressing, region `us-east-1`.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_s3::Config::builder()
            .http_client(sdk_cdn::https::aws_client().expect("TLS trust roots"))
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "sdk-cdn-test-server"))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// Starts a server on the current tokio runtime (which must outlive it).
pub async fn start(conditional: Conditional) -> S3Server {
    let (root, service, counters, faults) = prepare(conditional);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(serve(listener, service, Arc::clone(&faults), Arc::clone(&counters), rx));
    S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: BUCKET.to_owned(),
        root,
        shutdown: Some(tx),
        runner: Some(Runner::Task(handle)),
        counters,
        faults,
    }
}

/// Starts a server on a dedicated OS thread with its own multi-thread
/// runtime, for synchronous tests. Does not need (or use) a caller runtime.
/// Dropping the returned server joins that thread (a brief blocking wait).
pub fn start_blocking(conditional: Conditional) -> S3Server {
    let (root, service, counters, faults) = prepare(conditional);
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("set_nonblocking");
    let port = listener.local_addr().expect("local_addr").port();
    let (tx, rx) = oneshot::channel();
    let server_faults = Arc::clone(&faults);
    let server_counters = Arc::clone(&counters);
    let thread = std::thread::Builder::new()
        .name("s3-test-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("s3-test-server-rt")
                .enable_all()
                .build()
                .expect("build server runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("register listener");
                serve(listener, service, server_faults, server_counters, rx).await;
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
        })
        .expect("spawn server thread");
    S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: BUCKET.to_owned(),
        root,
        shutdown: Some(tx),
        runner: Some(Runner::Thread(thread)),
        counters,
        faults,
    }
}

fn prepare(conditional: Conditional) -> (tempfile::TempDir, S3Service, Arc<Counters>, Arc<Faults>) {
    let root = tempfile::Builder::new().prefix("sdk-cdn-s3-").tempdir().expect("create s3s-fs root");
    // A bucket in s3s-fs is just a directory under the root (this is all its
    // CreateBucket does).
    std::fs::create_dir(root.path().join(BUCKET)).expect("create bucket dir");
    let counters = Arc::new(Counters::default());
    let faults = Arc::new(Faults::default());
    let service = build_service(root.path(), conditional, Arc::clone(&counters), Arc::clone(&faults));
    (root, service, counters, faults)
}

fn build_service(root: &Path, conditional: Conditional, counters: Arc<Counters>, faults: Arc<Faults>) -> S3Service {
    let fs = FileSystem::new(root).expect("s3s-fs FileSystem::new");
    let wrapper =
        Serialised { fs, root: root.to_owned(), locks: Mutex::new(HashMap::new()), conditional, counters, faults };
    let mut builder = S3ServiceBuilder::new(wrapper);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    builder.build()
}

async fn serve(
    listener: TcpListener,
    service: S3Service,
    faults: Arc<Faults>,
    counters: Arc<Counters>,
    mut shutdown: oneshot::Receiver<()>,
) {
    // Owning the connection tasks here means they are all aborted when this
    // future ends or is dropped (e.g. by `JoinHandle::abort`).
    let mut connections = JoinSet::new();
    loop {
        let socket = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(_) => {
                    // e.g. EMFILE; don't spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let service = Detached(service.clone(), Arc::clone(&faults), Arc::clone(&counters));
        connections.spawn(async move {
            let _ = ConnBuilder::new(TokioExecutor::new()).serve_connection(TokioIo::new(socket), service).await;
        });
    }
}

/// Runs each request's handler in its own task, so a client that disconnects
/// (or is killed) mid-request cannot cancel a write half-way. s3s-fs puts the
/// body in place and *then* writes its metadata; a cancelled handler left
/// objects without Content-Type, Cache-Control or user metadata, which real S3
/// never does (an object appears whole or not at all). A body that never fully
/// arrived still fails the write, as on S3. The task first waits out the
/// configured latency ([`Faults::latency_ms`]); when it is answered, its span
/// is recorded ([`Counters::spans`]).
#[derive(Clone)]
struct Detached(S3Service, Arc<Faults>, Arc<Counters>);

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Detached {
    type Response = <S3Service as hyper::service::Service<hyper::Request<hyper::body::Incoming>>>::Response;
    type Error = <S3Service as hyper::service::Service<hyper::Request<hyper::body::Incoming>>>::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let service = self.0.clone();
        let latency = Duration::from_millis(self.1.latency_ms.load(std::sync::atomic::Ordering::Relaxed));
        let counters = Arc::clone(&self.2);
        let arrived = std::time::Instant::now();
        let handler = tokio::spawn(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let response = hyper::service::Service::call(&service, req).await;
            let answered = std::time::Instant::now();
            let mut spans = counters.spans.lock().unwrap_or_else(PoisonError::into_inner);
            // In arrival order (the handler tasks finish in any order).
            let at = spans.partition_point(|(a, _)| *a <= arrived);
            spans.insert(at, (arrived, answered));
            response
        });
        Box::pin(async move { handler.await.expect("the S3 handler task panicked") })
    }
}

type KeyLock = Arc<tokio::sync::Mutex<()>>;

/// `s3s-fs` with per-key serialisation of writes; see the module docs.
struct Serialised {
    fs: FileSystem,
    root: PathBuf,
    locks: Mutex<HashMap<(String, String), KeyLock>>,
    conditional: Conditional,
    counters: Arc<Counters>,
    faults: Arc<Faults>,
}

impl Serialised {
    /// Runs `op` through fault injection (see [`Faults`]).
    async fn faulty<T>(&self, op: impl std::future::Future<Output = S3Result<T>>) -> S3Result<T> {
        match self.faults.roll() {
            None => op.await,
            Some(Fault::SlowDownBefore) => Err(s3_error!(SlowDown, "injected fault")),
            Some(Fault::InternalBefore) => Err(s3_error!(InternalError, "injected fault")),
            Some(Fault::InternalAfter) => {
                let _ = op.await;
                Err(s3_error!(InternalError, "injected fault after the operation ran"))
            }
            Some(Fault::Delay(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                op.await
            }
        }
    }

    async fn lock(&self, bucket: &str, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry((bucket.to_owned(), key.to_owned())).or_default())
        };
        lock.lock_owned().await
    }

    /// Locks several keys. Always in sorted order, so two multi-key callers
    /// cannot deadlock (single-key callers never wait while holding a lock).
    async fn lock_many(&self, mut keys: Vec<(String, String)>) -> Vec<OwnedMutexGuard<()>> {
        keys.sort();
        keys.dedup();
        let mut guards = Vec::with_capacity(keys.len());
        for (bucket, key) in keys {
            guards.push(self.lock(&bucket, &key).await);
        }
        guards
    }

    /// Evaluates `If-None-Match`/`If-Match` for a CopyObject destination.
    /// Caller must hold the destination key's lock.
    async fn check_copy_destination<T>(&self, req: &S3Request<T>, bucket: &str, key: &str) -> S3Result<()> {
        let parse = |name: &str| -> S3Result<Option<ETagCondition>> {
            req.headers
                .get(name)
                .map(|v| {
                    ETagCondition::parse_http_header(v.as_bytes())
                        .map_err(|e| s3_error!(InvalidArgument, "invalid {name} header: {e}"))
                })
                .transpose()
        };
        let if_none_match = parse("if-none-match")?;
        let if_match = parse("if-match")?;
        if if_none_match.is_none() && if_match.is_none() {
            return Ok(());
        }

        let current = match self.fs.head_object(head_probe(req, bucket, key)).await {
            Ok(resp) => Some(resp.output.e_tag),
            Err(e) if *e.code() == S3ErrorCode::NoSuchKey => None,
            Err(e) => return Err(e),
        };

        if let Some(cond) = &if_none_match {
            let matches = match (cond, &current) {
                (_, None) => false,
                (ETagCondition::Any, Some(_)) => true,
                (ETagCondition::ETag(want), Some(have)) => have.as_ref().is_some_and(|h| h.weak_cmp(want)),
            };
            if matches {
                return Err(s3_error!(PreconditionFailed, "Object already exists"));
            }
        }
        if let Some(cond) = &if_match {
            let matches = match (cond, &current) {
                (_, None) => false,
                (ETagCondition::Any, Some(_)) => true,
                (ETagCondition::ETag(want), Some(have)) => have.as_ref().is_some_and(|h| h.strong_cmp(want)),
            };
            if !matches {
                return Err(s3_error!(PreconditionFailed, "ETag does not match"));
            }
        }
        Ok(())
    }

    /// `s3s-fs` 0.14.1 `CompleteMultipartUpload` merges the new ETag into the
    /// key's previous internal record, so checksums of an overwritten object
    /// survive and `GetObject` advertises a checksum the new body does not
    /// have. Reset the record to just the (new) ETag. Caller holds the lock.
    async fn reset_internal_info(&self, probe: S3Request<HeadObjectInput>) -> S3Result<()> {
        let (bucket, key) = (probe.input.bucket.clone(), probe.input.key.clone());
        let head = self.fs.head_object(probe).await?;
        let Some(e_tag) = head.output.e_tag.as_ref().and_then(|e| e.as_strong()) else {
            return Ok(());
        };
        // Layout of `FileSystem::get_internal_info_path` in s3s-fs 0.14.1.
        let path = self.root.join(format!(
            ".bucket-{}.object-{}.internal.json",
            base64_url_no_pad(bucket.as_bytes()),
            base64_url_no_pad(key.as_bytes()),
        ));
        if !path.is_file() {
            return Ok(());
        }
        // ETags here are hex digits with an optional `-N`: no JSON escaping needed.
        tokio::fs::write(&path, format!("{{\"e_tag\":\"{e_tag}\"}}")).await.map_err(|e| s3_error!(e, InternalError))
    }
}

/// A `HeadObject` request for `bucket/key` carrying `req`'s identity.
fn head_probe<T>(req: &S3Request<T>, bucket: &str, key: &str) -> S3Request<HeadObjectInput> {
    S3Request {
        input: HeadObjectInput { bucket: bucket.to_owned(), key: key.to_owned(), ..Default::default() },
        method: req.method.clone(),
        uri: req.uri.clone(),
        headers: Default::default(),
        extensions: Default::default(),
        credentials: req.credentials.clone(),
        region: req.region.clone(),
        service: req.service.clone(),
        trailing_headers: None,
    }
}

/// URL-safe base64 without padding (what s3s-fs uses in sidecar file names).
fn base64_url_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[async_trait::async_trait]
impl S3 for Serialised {
    // --- buckets (not serialised) ---

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    // --- reads (serialised per key so they never see a half-done write) ---

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        self.counters.read();
        let _guard = self.lock(&req.input.bucket, &req.input.key).await;
        self.faulty(self.fs.get_object(req)).await
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.counters.read();
        let _guard = self.lock(&req.input.bucket, &req.input.key).await;
        self.faulty(self.fs.head_object(req)).await
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.counters.read();
        self.faulty(self.fs.list_objects_v2(req)).await
    }

    // --- writes (serialised per key) ---

    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        self.counters.write();
        let _guard = self.lock(&req.input.bucket, &req.input.key).await;
        if self.conditional == Conditional::Ignore {
            req.input.if_none_match = None;
            req.input.if_match = None;
        }
        self.faulty(self.fs.put_object(req)).await
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        self.counters.write();
        let dst = (req.input.bucket.clone(), req.input.key.clone());
        let mut keys = vec![dst.clone()];
        if let CopySource::Bucket { bucket, key, .. } = &req.input.copy_source {
            keys.push((bucket.to_string(), key.to_string()));
        }
        let _guards = self.lock_many(keys).await;
        if self.conditional == Conditional::Atomic {
            self.check_copy_destination(&req, &dst.0, &dst.1).await?;
        }
        self.faulty(self.fs.copy_object(req)).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.counters.write();
        let _guard = self.lock(&req.input.bucket, &req.input.key).await;
        self.faulty(self.fs.delete_object(req)).await
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.counters.write();
        let bucket = &req.input.bucket;
        let keys = req.input.delete.objects.iter().map(|o| (bucket.clone(), o.key.clone())).collect();
        let _guards = self.lock_many(keys).await;
        self.faulty(self.fs.delete_objects(req)).await
    }

    // --- multipart ---

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.counters.write();
        self.faulty(self.fs.create_multipart_upload(req)).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        self.counters.write();
        self.faulty(self.fs.upload_part(req)).await
    }

    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.counters.write();
        let _guard = self.lock(&req.input.bucket, &req.input.key).await;
        if self.conditional == Conditional::Ignore {
            req.input.if_none_match = None;
            req.input.if_match = None;
        }
        let probe = head_probe(&req, &req.input.bucket, &req.input.key);
        // s3s-fs does all the work before returning; the `future` in its
        // output only builds the response body.
        let resp = self.faulty(self.fs.complete_multipart_upload(req)).await?;
        self.reset_internal_info(probe).await?;
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.counters.write();
        self.faulty(self.fs.abort_multipart_upload(req)).await
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        self.counters.read();
        self.faulty(self.fs.list_parts(req)).await
    }
}
