//! Proves the in-process S3 test server (`tests/support/s3_server.rs`) behaves
//! the way the other integration tests assume.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod s3_server;
}

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;
use support::s3_server::{self, Conditional};

/// HTTP status of a failed SDK call (None for transport/construction errors).
fn http_status<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_only_puts_have_exactly_one_winner() {
    let server = s3_server::start(Conditional::Atomic).await;
    let client = server.client().await;

    for round in 0..5 {
        let key = format!("race/round-{round}.js");
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..20 {
            let client = client.clone();
            let bucket = server.bucket.clone();
            let key = key.clone();
            tasks.spawn(async move {
                let result = client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .if_none_match("*")
                    .body(ByteStream::from(format!("writer {writer}").into_bytes()))
                    .send()
                    .await;
                (writer, result.map_err(|e| (http_status(&e), format!("{e:?}"))))
            });
        }

        let mut winners = Vec::new();
        let mut rejected = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("task panicked") {
                (writer, Ok(_)) => winners.push(writer),
                (_, Err((Some(412), _))) => rejected += 1,
                (writer, Err((status, debug))) => {
                    panic!("round {round}: writer {writer} failed unexpectedly ({status:?}): {debug}")
                }
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(rejected, 19, "round {round}");

        // The stored body is the winner's.
        let body = client
            .get_object()
            .bucket(&server.bucket)
            .key(&key)
            .send()
            .await
            .expect("get winner")
            .body
            .collect()
            .await
            .expect("read body")
            .into_bytes();
        assert_eq!(body.as_ref(), format!("writer {}", winners[0]).as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_match_is_compare_and_swap() {
    let server = s3_server::start(Conditional::Atomic).await;
    let client = server.client().await;
    let key = "cas/index.json";

    let first = client
        .put_object()
        .bucket(&server.bucket)
        .key(key)
        .body(ByteStream::from_static(b"v1"))
        .send()
        .await
        .expect("initial put");
    let etag = first.e_tag().expect("etag on put").to_owned();

    let wrong = client
        .put_object()
        .bucket(&server.bucket)
        .key(key)
        .if_match("\"00000000000000000000000000000000\"")
        .body(ByteStream::from_static(b"v2-wrong"))
        .send()
        .await
        .expect_err("wrong etag must fail");
    assert_eq!(http_status(&wrong), Some(412), "{wrong:?}");

    let head = client.head_object().bucket(&server.bucket).key(key).send().await.expect("head after rejected write");
    assert_eq!(head.e_tag(), Some(etag.as_str()), "rejected write must not change the object");

    let second = client
        .put_object()
        .bucket(&server.bucket)
        .key(key)
        .if_match(&etag)
        .body(ByteStream::from_static(b"v2"))
        .send()
        .await
        .expect("right etag must succeed");
    let new_etag = second.e_tag().expect("etag on put").to_owned();
    assert_ne!(new_etag, etag);

    // The old ETag is now stale.
    let stale = client
        .put_object()
        .bucket(&server.bucket)
        .key(key)
        .if_match(&etag)
        .body(ByteStream::from_static(b"v3"))
        .send()
        .await
        .expect_err("stale etag must fail");
    assert_eq!(http_status(&stale), Some(412), "{stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ignore_mode_accepts_a_second_create_only_put() {
    let server = s3_server::start(Conditional::Ignore).await;
    let client = server.client().await;
    let key = "broken/store.txt";

    for body in [&b"first"[..], &b"second"[..]] {
        client
            .put_object()
            .bucket(&server.bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("Ignore mode accepts every create-only put");
    }
    let body = client
        .get_object()
        .bucket(&server.bucket)
        .key(key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("read body")
        .into_bytes();
    assert_eq!(body.as_ref(), b"second", "the second put silently overwrote the first");
}

const SRI: &str = "sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_headers_and_metadata_round_trip() {
    let server = s3_server::start(Conditional::Atomic).await;
    let client = server.client().await;
    let key = "sdk/1.2.3/sdk.min.js";

    client
        .put_object()
        .bucket(&server.bucket)
        .key(key)
        .content_type("text/javascript; charset=utf-8")
        .cache_control("public, max-age=31536000, immutable")
        .metadata("sri", SRI)
        .body(ByteStream::from_static(b"console.log(1);\n"))
        .send()
        .await
        .expect("put");

    let head = client.head_object().bucket(&server.bucket).key(key).send().await.expect("head");
    assert_eq!(head.content_type(), Some("text/javascript; charset=utf-8"));
    assert_eq!(head.cache_control(), Some("public, max-age=31536000, immutable"));
    assert_eq!(head.content_length(), Some(16));
    let metadata = head.metadata().expect("user metadata");
    assert_eq!(metadata.get("sri").map(String::as_str), Some(SRI));
    assert_eq!(metadata.len(), 1, "{metadata:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_with_replace_directive_replaces_all_attributes() {
    let server = s3_server::start(Conditional::Atomic).await;
    let client = server.client().await;

    client
        .put_object()
        .bucket(&server.bucket)
        .key("src.js")
        .content_type("text/javascript")
        .cache_control("no-cache")
        .metadata("sri", SRI)
        .metadata("other", "x")
        .body(ByteStream::from_static(b"abc"))
        .send()
        .await
        .expect("put source");

    client
        .copy_object()
        .bucket(&server.bucket)
        .key("dst.js")
        .copy_source(format!("{}/src.js", server.bucket))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/javascript")
        .cache_control("public, max-age=60")
        .metadata("sri", "sha384-replaced")
        .send()
        .await
        .expect("copy with REPLACE");

    let head = client.head_object().bucket(&server.bucket).key("dst.js").send().await.expect("head copy");
    assert_eq!(head.content_type(), Some("application/javascript"));
    assert_eq!(head.cache_control(), Some("public, max-age=60"));
    let metadata = head.metadata().expect("user metadata");
    assert_eq!(metadata.get("sri").map(String::as_str), Some("sha384-replaced"));
    assert!(!metadata.contains_key("other"), "REPLACE drops source metadata: {metadata:?}");

    // Destination conditions on CopyObject are enforced by the harness.
    let err = client
        .copy_object()
        .bucket(&server.bucket)
        .key("dst.js")
        .copy_source(format!("{}/src.js", server.bucket))
        .if_none_match("*")
        .send()
        .await
        .expect_err("copy onto an existing key with If-None-Match: * must fail");
    assert_eq!(http_status(&err), Some(412), "{err:?}");
}

#[test]
fn blocking_server_serves_and_stops_on_drop() {
    let server = s3_server::start_blocking(Conditional::Atomic);
    assert!(server.endpoint.starts_with("http://127.0.0.1:"));
    assert_eq!(server.store_url(), format!("s3://{}", server.bucket));
    let env = server.env();
    for name in
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED"]
    {
        assert!(env.iter().any(|(k, _)| k == name), "missing {name}");
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = server.client().await;
        client
            .put_object()
            .bucket(&server.bucket)
            .key("a/b.txt")
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await
            .expect("put via blocking server");
        let listed = client.list_objects_v2().bucket(&server.bucket).send().await.expect("list");
        let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, ["a/b.txt"]);
    });
    assert!(server.root.path().join(&server.bucket).join("a/b.txt").is_file());

    let endpoint = server.endpoint.clone();
    let addr = endpoint.trim_start_matches("http://").to_owned();
    drop(server);
    assert!(std::net::TcpStream::connect(&addr).is_err(), "server still accepting on {endpoint} after drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multipart_overwrite_is_readable_and_create_only_completion_is_atomic() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

    let server = s3_server::start(Conditional::Atomic).await;
    let client = server.client().await;
    let bucket = &server.bucket;
    let key = "mp/bundle.js";

    // A single-part object first: s3s-fs stores its CRC32 ...
    client.put_object().bucket(bucket).key(key).body(ByteStream::from_static(b"old")).send().await.expect("put");

    let upload = |if_none_match: bool| {
        let client = client.clone();
        async move {
            let created =
                client.create_multipart_upload().bucket(bucket).key(key).send().await.expect("create multipart");
            let id = created.upload_id().expect("upload id");
            let part = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .part_number(1)
                .body(ByteStream::from_static(b"new body"))
                .send()
                .await
                .expect("upload part");
            let mut complete =
                client.complete_multipart_upload().bucket(bucket).key(key).upload_id(id).multipart_upload(
                    CompletedMultipartUpload::builder()
                        .parts(CompletedPart::builder().part_number(1).e_tag(part.e_tag().expect("part etag")).build())
                        .build(),
                );
            if if_none_match {
                complete = complete.if_none_match("*");
            }
            complete.send().await
        }
    };

    // ... a create-only completion over it is rejected ...
    let err = upload(true).await.expect_err("key exists");
    assert_eq!(http_status(&err), Some(412), "{err:?}");

    // ... an unconditional one overwrites it, and the result must be readable
    // (the harness drops the stale CRC32 s3s-fs would otherwise keep).
    let done = upload(false).await.expect("complete");
    assert!(done.e_tag().expect("etag").ends_with("-1\""), "{:?}", done.e_tag());
    let body = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body must pass the SDK's checksum validation")
        .into_bytes();
    assert_eq!(body.as_ref(), b"new body");
}
