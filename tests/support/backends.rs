//! The stores every integration test runs against: the local directory, the
//! in-process S3 server (s3s-fs behind a per-key serialising wrapper) and,
//! when `SDK_CDN_TEST_S3_ENDPOINT` is set (CI starts moto), an independent
//! S3 server with a fresh bucket per backend.
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sdk_cdn::store::{Key, LocalStore, S3Store, Store};
use sha2::Digest;

use super::s3_server::{self, Conditional, S3Server};

/// Environment variable naming an external S3 endpoint (moto in CI).
pub const EXTERNAL_ENDPOINT_ENV: &str = "SDK_CDN_TEST_S3_ENDPOINT";

/// One store under test.
pub enum Backend {
    /// A local directory store.
    Local(tempfile::TempDir),
    /// The in-process S3 server.
    InProcess(S3Server),
    /// An external S3 server (moto), one fresh bucket.
    External { endpoint: String, bucket: String },
}

/// What a snapshot records per object: content hash and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub sha256: String,
    pub content_type: String,
    pub cache_control: String,
    pub sri: Option<String>,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Set (with `SDK_CDN_TEST_S3_ENDPOINT`) to run the suites against the
/// external server only: CI's second pass, after `cargo test` covered the others.
pub const EXTERNAL_ONLY_ENV: &str = "SDK_CDN_TEST_EXTERNAL_ONLY";

pub fn local() -> Backend {
    Backend::Local(tempfile::Builder::new().prefix("sdk-cdn-local-").tempdir().expect("tempdir"))
}

pub fn in_process() -> Backend {
    Backend::InProcess(s3_server::start_blocking(Conditional::Atomic))
}

/// A fresh bucket on the external server, if `SDK_CDN_TEST_S3_ENDPOINT` is set.
pub fn external() -> Option<Backend> {
    let endpoint = std::env::var(EXTERNAL_ENDPOINT_ENV).ok().filter(|e| !e.is_empty())?;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let bucket = format!("sdk-cdn-{}-{n}", std::process::id());
    let client = client_for(&endpoint);
    runtime().block_on(async {
        client.create_bucket().bucket(&bucket).send().await.expect("create bucket on the external S3 server");
    });
    Some(Backend::External { endpoint, bucket })
}

fn client_for(endpoint: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .http_client(sdk_cdn::https::aws_client().expect("TLS trust roots"))
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(s3_server::REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(s3_server::ACCESS_KEY, s3_server::SECRET_KEY, None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local(_) => "local",
            Backend::InProcess(_) => "s3s",
            Backend::External { .. } => "external-s3",
        }
    }

    /// Global CLI arguments selecting this store.
    pub fn args(&self) -> Vec<String> {
        match self {
            Backend::Local(dir) => vec!["--store".into(), dir.path().display().to_string()],
            Backend::InProcess(server) => {
                vec![
                    "--store".into(),
                    server.store_url(),
                    "--endpoint-url".into(),
                    server.endpoint.clone(),
                    "--path-style".into(),
                ]
            }
            Backend::External { endpoint, bucket } => {
                vec![
                    "--store".into(),
                    format!("s3://{bucket}"),
                    "--endpoint-url".into(),
                    endpoint.clone(),
                    "--path-style".into(),
                ]
            }
        }
    }

    /// Environment for the binary (credentials for the S3 servers).
    pub fn env(&self) -> Vec<(String, String)> {
        let creds = |dir: &Path| {
            vec![
                ("AWS_ACCESS_KEY_ID".to_string(), s3_server::ACCESS_KEY.to_string()),
                ("AWS_SECRET_ACCESS_KEY".to_string(), s3_server::SECRET_KEY.to_string()),
                ("AWS_REGION".to_string(), s3_server::REGION.to_string()),
                ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
                ("AWS_CONFIG_FILE".to_string(), dir.join(".no-aws-config").display().to_string()),
                ("AWS_SHARED_CREDENTIALS_FILE".to_string(), dir.join(".no-aws-creds").display().to_string()),
            ]
        };
        match self {
            Backend::Local(_) => Vec::new(),
            Backend::InProcess(server) => server.env(),
            Backend::External { .. } => creds(&std::env::temp_dir()),
        }
    }

    /// The store, through the library (for snapshots and direct checks).
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Local(dir) => Arc::new(LocalStore::new(dir.path().to_path_buf())),
            Backend::InProcess(server) => {
                let client = runtime().block_on(server.client());
                Arc::new(S3Store::from_client(client, &server.bucket, ""))
            }
            Backend::External { endpoint, bucket } => Arc::new(S3Store::from_client(client_for(endpoint), bucket, "")),
        }
    }

    /// Write requests seen by the in-process server (`None` elsewhere).
    pub fn writes(&self) -> Option<u64> {
        match self {
            Backend::InProcess(server) => Some(server.writes()),
            _ => None,
        }
    }

    /// A mark for [`Backend::round_trips_since`] (`None` but on the in-process server).
    pub fn span_mark(&self) -> Option<usize> {
        match self {
            Backend::InProcess(server) => Some(server.span_mark()),
            _ => None,
        }
    }

    /// Sequential round trips since `mark` (see [`S3Server::round_trips_since`]).
    pub fn round_trips_since(&self, mark: Option<usize>) -> Option<usize> {
        match (self, mark) {
            (Backend::InProcess(server), Some(mark)) => Some(server.round_trips_since(mark)),
            _ => None,
        }
    }

    /// Object requests seen by the in-process server (`None` elsewhere).
    pub fn requests(&self) -> Option<u64> {
        match self {
            Backend::InProcess(server) => Some(server.requests()),
            _ => None,
        }
    }

    /// Every object with its content hash and headers.
    pub fn snapshot(&self) -> BTreeMap<String, Snap> {
        let store = self.store();
        runtime().block_on(async move {
            let mut out = BTreeMap::new();
            for meta in store.list("").await.expect("list store") {
                let (bytes, meta) = store.get(&meta.key).await.expect("get").expect("listed object exists");
                let headers = meta.headers.unwrap_or_default();
                out.insert(
                    meta.key.to_string(),
                    Snap {
                        sha256: sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect(),
                        content_type: headers.content_type,
                        cache_control: headers.cache_control,
                        sri: headers.sri,
                    },
                );
            }
            out
        })
    }

    /// Deletes one object (an operator's or an attacker's hand in the bucket).
    pub fn delete(&self, key: &str) {
        let store = self.store();
        let key = Key::new(key).expect("valid key");
        runtime().block_on(async move { store.delete(&key).await.expect("delete") });
    }

    /// Writes one object as is, bypassing the tool (to stage a damaged store).
    pub fn put_raw(&self, key: &str, bytes: &[u8]) {
        let store = self.store();
        let key = Key::new(key).expect("valid key");
        let body = sdk_cdn::store::Body::Bytes(bytes.to_vec().into());
        let headers = sdk_cdn::store::Headers::default();
        runtime().block_on(async move {
            store.put(&key, body, &headers, sdk_cdn::store::PutMode::Overwrite).await.expect("put")
        });
    }

    /// One object's bytes, if present.
    pub fn read(&self, key: &str) -> Option<Vec<u8>> {
        let store = self.store();
        let key = Key::new(key).expect("valid key");
        runtime().block_on(async move { store.get(&key).await.expect("get").map(|(b, _)| b.to_vec()) })
    }
}

/// The stores a `backend_test!` variant can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A local directory store.
    Local,
    /// The in-process S3 server.
    S3,
    /// The external S3 server named by `SDK_CDN_TEST_S3_ENDPOINT` (moto in CI).
    External,
}

/// The backend one `backend_test!` variant runs against, or `None` when that
/// variant has nothing to run here: no external endpoint is configured, or
/// CI's external-only pass leaves the other two to the first `cargo test`.
pub fn of_kind(kind: Kind) -> Option<Backend> {
    let external_only = std::env::var_os(EXTERNAL_ONLY_ENV).is_some();
    match kind {
        Kind::Local if !external_only => Some(local()),
        Kind::S3 if !external_only => Some(in_process()),
        Kind::External => external(),
        Kind::Local | Kind::S3 => None,
    }
}

/// One named test per backend, like ripgrep's `rgtest!`:
/// `backend_test!(name, |backend| { … })` expands to a module `name` with the
/// tests `name::local`, `name::s3` and `name::external`, each running the body
/// on a fresh store of its own, so a failure names its backend and each can be
/// run alone (`cargo test --test publish name::s3`). A list restricts the
/// backends: `backend_test!(name, [local, s3], |backend| { … })`.
#[allow(unused_macros, reason = "suites without per-backend tests include this module too")]
macro_rules! backend_test {
    ($(#[$attr:meta])* $name:ident, |$backend:ident| $body:block) => {
        $crate::support::backends::backend_test!($(#[$attr])* $name, [local, s3, external], |$backend| $body);
    };
    ($(#[$attr:meta])* $name:ident, [$($kind:ident),+], |$backend:ident| $body:block) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run_on_backend($backend: $crate::support::backends::Backend) $body

            $($crate::support::backends::backend_test!(@variant $kind);)+
        }
    };
    (@variant local) => {
        #[test]
        fn local() {
            if let Some(backend) = $crate::support::backends::of_kind($crate::support::backends::Kind::Local) {
                run_on_backend(backend);
            }
        }
    };
    (@variant s3) => {
        #[test]
        fn s3() {
            if let Some(backend) = $crate::support::backends::of_kind($crate::support::backends::Kind::S3) {
                run_on_backend(backend);
            }
        }
    };
    (@variant external) => {
        #[test]
        fn external() {
            if let Some(backend) = $crate::support::backends::of_kind($crate::support::backends::Kind::External) {
                run_on_backend(backend);
            }
        }
    };
}
#[allow(unused_imports, reason = "suites without per-backend tests include this module too")]
pub(crate) use backend_test;
