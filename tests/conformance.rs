//! The `Store` conformance suite: every backend must behave the same.
//! Runs against the local directory, the in-process S3 server, and (when
//! `SDK_CDN_TEST_S3_ENDPOINT` is set, as in CI) an independent S3 server.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
}

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use sdk_cdn::store::{Body, Headers, Key, PutMode, Store, StoreError, Verdict, probe_conditional_writes};
use support::backends::{self, Backend, backend_test};
use support::s3_server::{self, Conditional};

/// Runs one async conformance check on `backend`'s store, named for messages.
fn on_store<F, Fut>(backend: &Backend, test: F)
where
    F: FnOnce(Arc<dyn Store>, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    backends::runtime().block_on(test(backend.store(), backend.name()));
}

/// A conformance test, one per backend: `store_test!(name, |store, name| async move { … })`.
macro_rules! store_test {
    ($(#[$attr:meta])* $name:ident, $test:expr) => {
        backend_test!($(#[$attr])* $name, |backend| {
            on_store(&backend, $test);
        });
    };
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn headers(ct: &str, cc: &str, sri: Option<&str>) -> Headers {
    Headers { content_type: ct.into(), cache_control: cc.into(), sri: sri.map(Into::into), signed: None }
}

fn bytes(s: &'static str) -> Body {
    Body::Bytes(Bytes::from_static(s.as_bytes()))
}

store_test!(create_only_refuses_an_existing_key, |store, name| async move {
    let k = key("sdk/1.0.0/a.js");
    let h = headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable", None);
    store.put(&k, bytes("first"), &h, PutMode::Create).await.unwrap();
    let err = store.put(&k, bytes("second"), &h, PutMode::Create).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{name}: {err:?}");
    let (body, _) = store.get(&k).await.unwrap().unwrap();
    assert_eq!(&body[..], b"first", "{name}: create-only must not overwrite");
});

store_test!(compare_and_swap_refuses_a_stale_etag, |store, name| async move {
    let k = key("api/sdk/sri");
    let h = headers("application/json", "public, max-age=60", None);
    let v1 = store.put(&k, bytes("{\"v\":1}"), &h, PutMode::Create).await.unwrap();
    let v2 = store.put(&k, bytes("{\"v\":2}"), &h, PutMode::Update { etag: v1.etag.clone() }).await.unwrap();
    assert_ne!(v1.etag, v2.etag, "{name}: a new body needs a new etag");
    let err = store.put(&k, bytes("{\"v\":3}"), &h, PutMode::Update { etag: v1.etag }).await.unwrap_err();
    assert!(matches!(err, StoreError::Precondition { .. }), "{name}: {err:?}");
    let (body, meta) = store.get(&k).await.unwrap().unwrap();
    assert_eq!(&body[..], b"{\"v\":2}", "{name}");
    assert_eq!(meta.etag, v2.etag, "{name}: get returns the etag a CAS needs");
    // A CAS on a missing key never creates it (S3 says 404, some servers 412).
    let missing = store.put(&key("nope"), bytes("x"), &h, PutMode::Update { etag: v2.etag }).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. } | StoreError::Precondition { .. }), "{name}: {missing:?}");
    assert!(store.head(&key("nope")).await.unwrap().is_none(), "{name}");
});

store_test!(metadata_round_trips_through_head_get_and_reader, |store, name| async move {
    let k = key("sdk/1.0.0/x.css");
    let sri = support::fixtures::sri_of(b"body{}");
    let h = headers("text/css; charset=utf-8", "public, max-age=31536000, immutable", Some(&sri));
    let put = store.put(&k, bytes("body{}"), &h, PutMode::Create).await.unwrap();
    let head = store.head(&k).await.unwrap().unwrap();
    assert_eq!(head.headers.as_ref(), Some(&h), "{name}: head");
    assert_eq!(head.size, 6, "{name}");
    assert_eq!(head.etag, put.etag, "{name}");
    let (_, got) = store.get(&k).await.unwrap().unwrap();
    assert_eq!(got.headers.as_ref(), Some(&h), "{name}: get");
    let (mut reader, _) = store.reader(&k).await.unwrap().unwrap();
    let mut buf = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut buf).await.unwrap();
    assert_eq!(buf, b"body{}", "{name}: reader");
    assert!(store.head(&key("sdk/1.0.0/missing.css")).await.unwrap().is_none(), "{name}");
    assert!(store.get(&key("sdk/1.0.0/missing.css")).await.unwrap().is_none(), "{name}");
});

store_test!(copy_keeps_bytes_and_sets_new_headers, |store, name| async move {
    let (from, to) = (key("sdk/1.0.0/a.js"), key("sdk/latest/a.js"));
    let sri = support::fixtures::sri_of(b"alert(1)");
    let immutable = headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable", Some(&sri));
    let short = headers("text/javascript; charset=utf-8", "public, max-age=300", Some(&sri));
    let old = headers("text/javascript; charset=utf-8", "public, max-age=300", None);
    store.put(&from, bytes("alert(1)"), &immutable, PutMode::Create).await.unwrap();
    store.put(&to, bytes("old latest"), &old, PutMode::Overwrite).await.unwrap();
    store.copy(&from, &to, &short).await.unwrap();
    let (body, meta) = store.get(&to).await.unwrap().unwrap();
    assert_eq!(&body[..], b"alert(1)", "{name}");
    assert_eq!(meta.headers.as_ref(), Some(&short), "{name}: copy replaces headers");
    let source = store.head(&from).await.unwrap().unwrap();
    assert_eq!(source.headers.as_ref(), Some(&immutable), "{name}: the source keeps its headers");
    // Copying again (same bytes) is harmless; copying a missing key is NotFound.
    store.copy(&from, &to, &short).await.unwrap();
    let err = store.copy(&key("sdk/1.0.0/none.js"), &to, &short).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{name}: {err:?}");
});

store_test!(list_filters_by_prefix_sorted_and_delete_removes, |store, name| async move {
    let h = headers("text/plain; charset=utf-8", "no-cache", None);
    for k in ["sdk/1.0.0/b.js", "sdk/1.0.0/a.js", "sdk/1.0.0/sub/c.js", "sdk/1.0.1/a.js", "manifests/1.0.0.json"] {
        store.put(&key(k), bytes("x"), &h, PutMode::Create).await.unwrap();
    }
    let listed: Vec<String> = store.list("sdk/1.0.0/").await.unwrap().into_iter().map(|m| m.key.to_string()).collect();
    assert_eq!(listed, ["sdk/1.0.0/a.js", "sdk/1.0.0/b.js", "sdk/1.0.0/sub/c.js"], "{name}");
    assert_eq!(store.list("sdk/").await.unwrap().len(), 4, "{name}");
    assert!(store.list("nothing/").await.unwrap().is_empty(), "{name}");
    store.delete(&key("sdk/1.0.0/sub/c.js")).await.unwrap();
    store.delete(&key("sdk/1.0.0/sub/c.js")).await.unwrap();
    assert!(store.head(&key("sdk/1.0.0/sub/c.js")).await.unwrap().is_none(), "{name}");
    assert_eq!(store.list("sdk/1.0.0/").await.unwrap().len(), 2, "{name}");
    // A deleted key can be created again.
    store.put(&key("sdk/1.0.0/sub/c.js"), bytes("y"), &h, PutMode::Create).await.unwrap();
});

backend_test!(a_multi_mib_file_streams_in_and_out, |backend| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.wasm");
    // 40 MiB: above the S3 multipart threshold, so parts are exercised too.
    let data: Vec<u8> = (0..40u32 * 1024 * 1024).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let expected = support::fixtures::sri_of(&data);
    on_store(&backend, |store, name| async move {
        let k = key("sdk/1.0.0/big.wasm");
        let h = headers("application/wasm", "public, max-age=31536000, immutable", Some(&expected));
        let meta = store.put(&k, Body::File(path.clone()), &h, PutMode::Create).await.unwrap();
        assert_eq!(meta.size, 40 * 1024 * 1024, "{name}");
        let err = store.put(&k, Body::File(path.clone()), &h, PutMode::Create).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{name}: create-only holds for large files: {err:?}");
        let (reader, meta) = store.reader(&k).await.unwrap().unwrap();
        assert_eq!(meta.headers.unwrap().sri.as_deref(), Some(expected.as_str()), "{name}");
        let (integrity, size) = sdk_cdn::integrity::Integrity::of_async_reader(reader).await.unwrap();
        assert_eq!(size, 40 * 1024 * 1024, "{name}");
        assert_eq!(integrity.to_string(), expected, "{name}: streamed bytes");
    });
});

store_test!(concurrent_create_only_writers_exactly_one_wins, |store, name| async move {
    for round in 0..5 {
        let k = key(&format!("race/{round}"));
        let writers = (0..16).map(|i| {
            let (store, k) = (Arc::clone(&store), k.clone());
            tokio::spawn(async move {
                let h = headers("text/plain; charset=utf-8", "no-cache", None);
                let body = Body::Bytes(Bytes::from(format!("writer {i}")));
                (i, store.put(&k, body, &h, PutMode::Create).await)
            })
        });
        let mut winners = Vec::new();
        for handle in writers.collect::<Vec<_>>() {
            match handle.await.unwrap() {
                (i, Ok(_)) => winners.push(i),
                (_, Err(StoreError::AlreadyExists { .. })) => {}
                (_, Err(e)) => panic!("{name}: unexpected error {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "{name} round {round}: winners {winners:?}");
        let (body, _) = store.get(&k).await.unwrap().unwrap();
        assert_eq!(body, format!("writer {}", winners[0]), "{name}: the winner's bytes are stored");
    }
});

store_test!(concurrent_compare_and_swap_loses_no_update, |store, name| async move {
    let k = key("counter");
    let h = headers("application/json", "no-cache", None);
    store.put(&k, bytes("0"), &h, PutMode::Create).await.unwrap();
    let workers = (0..6).map(|_| {
        let (store, k, h) = (Arc::clone(&store), k.clone(), h.clone());
        tokio::spawn(async move {
            for _ in 0..8 {
                loop {
                    let (body, meta) = store.get(&k).await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&body).unwrap().parse().unwrap();
                    let next = Body::Bytes(Bytes::from((n + 1).to_string()));
                    match store.put(&k, next, &h, PutMode::Update { etag: meta.etag }).await {
                        Ok(_) => break,
                        Err(StoreError::Precondition { .. }) => continue,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
        })
    });
    for w in workers.collect::<Vec<_>>() {
        w.await.unwrap();
    }
    let (body, _) = store.get(&k).await.unwrap().unwrap();
    assert_eq!(&body[..], b"48", "{name}: 6 writers x 8 increments");
});

/// Issue 12.1: the promise of `Headers::sri`. Local only on this branch:
/// the S3 backend's check is being written on another branch; when it
/// lands, this runs `each` like the rest of the suite.
#[test]
fn a_put_whose_bytes_do_not_hash_to_its_sri_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("a.js");
    std::fs::write(&source, b"changed after planning").unwrap();
    let source = Arc::new(source);
    let backend = backends::local();
    let (store, name) = (backend.store(), backend.name());
    backends::runtime().block_on(async move {
        let planned = support::fixtures::sri_of(b"as planned");
        let h = headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable", Some(&planned));
        for (k, body) in [("sdk/1.0.0/a.js", Body::File(source.to_path_buf())), ("sdk/1.0.0/b.js", bytes("other"))] {
            let k = key(k);
            let err = store.put(&k, body, &h, PutMode::Create).await.unwrap_err();
            match err {
                StoreError::ContentChanged { key, expected, actual, .. } => {
                    assert_eq!((key.as_str(), expected.as_str()), (k.as_str(), planned.as_str()), "{name}");
                    assert_ne!(actual, planned, "{name}");
                }
                other => panic!("{name}: expected ContentChanged, got {other:?}"),
            }
            assert!(store.head(&k).await.unwrap().is_none(), "{name}: nothing is stored under {k}");
        }
        assert!(store.list("").await.unwrap().is_empty(), "{name}");
    });
    let Backend::Local(dir) = &backend else { unreachable!() };
    let tmp = std::fs::read_dir(dir.path().join(".sdk-cdn/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "no temp file is left");
}

store_test!(
    /// Keys that are prefixes of each other, with and without suffixes, and
    /// 250-byte names: everything S3 holds, the local store holds too (issue
    /// 13.3/13.4). The in-process S3 server (s3s-fs) names a metadata file after
    /// the whole key, so it cannot take the long name; moto and the local store do.
    keys_that_are_prefixes_of_each_other_and_long_names_coexist,
    |store, name| async move {
        let long = format!("sdk/1.0.0/{}", "n".repeat(250));
        let mut keys = vec!["foo", "foo.json/bar.js", "a/b", "a/b.json", "a/b.jsonx"];
        if name != "s3s" {
            keys.push(&long);
        }
        for k in &keys {
            let h = headers("text/plain; charset=utf-8", "no-cache", Some(&support::fixtures::sri_of(k.as_bytes())));
            let put = store.put(&key(k), Body::Bytes(Bytes::from(k.to_string())), &h, PutMode::Create).await;
            put.unwrap_or_else(|e| panic!("{name}: {k}: {e:?}"));
            assert!(store.check_key(&key(k)).is_ok(), "{name}: {k}");
        }
        let last = keys[keys.len() - 1];
        let copied = key(&format!("copy/{last}"));
        let h = headers("text/plain; charset=utf-8", "public, max-age=300", Some(&support::fixtures::sri_of(last.as_bytes())));
        store.copy(&key(last), &copied, &h).await.unwrap();
        store.copy(&key(last), &copied, &h).await.unwrap();
        for k in &keys {
            let (body, meta) = store.get(&key(k)).await.unwrap().unwrap();
            assert_eq!(&body[..], k.as_bytes(), "{name}: {k}");
            assert_eq!(meta.headers.unwrap().sri, Some(support::fixtures::sri_of(k.as_bytes())), "{name}: {k}");
        }
        assert_eq!(store.head(&copied).await.unwrap().unwrap().headers, Some(h), "{name}");
        assert_eq!(store.list("").await.unwrap().len(), keys.len() + 1, "{name}");
    }
);

backend_test!(a_name_longer_than_a_filesystem_allows_is_refused_only_by_the_local_store, |backend| {
    let k = key(&format!("sdk/1.0.0-{}/a.js", "p".repeat(260)));
    let checked = backend.store().check_key(&k);
    match backend {
        Backend::Local(_) => assert!(checked.unwrap_err().contains("255 bytes per name")),
        _ => assert!(checked.is_ok(), "{}: {checked:?}", backend.name()),
    }
});

store_test!(doctor_probe_passes_on_every_honest_store, |store, name| async move {
    let report = probe_conditional_writes(store.as_ref()).await;
    assert_eq!(report.verdict, Verdict::Healthy, "{name}: {report:?}");
    assert!(store.list("_sdk-cdn-probe/").await.unwrap().is_empty(), "{name}: the probe cleans up");
});

#[test]
fn doctor_probe_detects_a_store_that_ignores_conditional_writes() {
    let server = s3_server::start_blocking(Conditional::Ignore);
    let rt = backends::runtime();
    let client = rt.block_on(server.client());
    let store = sdk_cdn::store::S3Store::from_client(client, &server.bucket, "");
    let report = rt.block_on(probe_conditional_writes(&store));
    assert_eq!(report.verdict, Verdict::IgnoresConditionalWrites, "{report:?}");
    assert_eq!(report.failure().unwrap().name, "create-only");
}

/// Child half of `local_create_only_holds_across_processes`: does nothing
/// unless the parent set `SDK_CDN_CHILD_ROOT`.
#[test]
fn child_create_only_writer() {
    let Ok(root) = std::env::var("SDK_CDN_CHILD_ROOT") else { return };
    let tag = std::env::var("SDK_CDN_CHILD_TAG").unwrap();
    let go = std::path::Path::new(&root).join("go");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !go.exists() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let store = sdk_cdn::store::LocalStore::new(std::path::PathBuf::from(&root).join("store"));
    let h = headers("text/plain; charset=utf-8", "no-cache", None);
    let result =
        backends::runtime().block_on(store.put(&key("race/key"), Body::Bytes(Bytes::from(tag)), &h, PutMode::Create));
    match result {
        Ok(_) => println!("RESULT=WON"),
        Err(StoreError::AlreadyExists { .. }) => println!("RESULT=LOST"),
        Err(e) => println!("RESULT=ERROR {e}"),
    }
}

#[test]
fn local_create_only_holds_across_processes() {
    for trial in 0..3 {
        let root = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..8)
            .map(|i| {
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "child_create_only_writer", "--nocapture", "--test-threads=1"])
                    .env("SDK_CDN_CHILD_ROOT", root.path())
                    .env("SDK_CDN_CHILD_TAG", format!("process {i}"))
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(root.path().join("go"), b"").unwrap();
        let outputs: Vec<String> =
            children.into_iter().map(|c| String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()).collect();
        let won = outputs.iter().filter(|o| o.contains("RESULT=WON")).count();
        let lost = outputs.iter().filter(|o| o.contains("RESULT=LOST")).count();
        assert_eq!((won, lost), (1, 7), "trial {trial}: {outputs:?}");
        let stored = std::fs::read_to_string(root.path().join("store/race/key")).unwrap();
        assert!(stored.starts_with("process "), "{stored}");
    }
}

#[test]
fn local_store_is_a_plain_browsable_tree() {
    let backend = backends::local();
    let Backend::Local(dir) = &backend else { unreachable!() };
    let store = backend.store();
    let h = headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable", None);
    backends::runtime().block_on(store.put(&key("sdk/1.0.0/a.js"), bytes("alert(1)"), &h, PutMode::Create)).unwrap();
    assert_eq!(std::fs::read(dir.path().join("sdk/1.0.0/a.js")).unwrap(), b"alert(1)");
    assert!(std::fs::read_dir(dir.path().join(".sdk-cdn/tmp")).unwrap().next().is_none(), "no temp file is left");
}

#[test]
fn an_s3_store_prefix_confines_every_key() {
    let server = s3_server::start_blocking(Conditional::Atomic);
    let rt = backends::runtime();
    let client = rt.block_on(server.client());
    let store = sdk_cdn::store::S3Store::from_client(client.clone(), &server.bucket, "team/cdn/");
    let h = headers("text/plain; charset=utf-8", "no-cache", None);
    rt.block_on(async {
        store.put(&key("sdk/1.0.0/a.js"), bytes("a"), &h, PutMode::Create).await.unwrap();
        store.copy(&key("sdk/1.0.0/a.js"), &key("sdk/latest/a.js"), &h).await.unwrap();
        store.put(&key("api/sdk/sri"), bytes("{}"), &h, PutMode::Create).await.unwrap();
        let listed: Vec<String> = store.list("").await.unwrap().into_iter().map(|m| m.key.to_string()).collect();
        assert_eq!(listed, ["api/sdk/sri", "sdk/1.0.0/a.js", "sdk/latest/a.js"], "keys are relative to the prefix");
        let raw = client.list_objects_v2().bucket(&server.bucket).send().await.unwrap();
        let raw: Vec<&str> = raw.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(raw, ["team/cdn/api/sdk/sri", "team/cdn/sdk/1.0.0/a.js", "team/cdn/sdk/latest/a.js"]);
        // A sibling prefix that merely starts with the same letters is not ours.
        client
            .put_object()
            .bucket(&server.bucket)
            .key("team/cdnx/evil")
            .body(Vec::from(&b"x"[..]).into())
            .send()
            .await
            .unwrap();
        assert_eq!(store.list("").await.unwrap().len(), 3);
        assert_eq!(store.max_key_len(), 1024 - "team/cdn/".len());
    });
}
