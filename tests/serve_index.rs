//! `sdk-cdn serve`'s SRI index endpoints (`/api/sdk/sri`, `/api/sdk/sri/<version>`):
//! bytes, ETags, compression, caching and refresh, against every backend
//! (local, in-process S3, moto in CI), in process with `oneshot`.
/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod app;
    pub mod backends;
    pub mod cli;
    pub mod fixtures;
    pub mod s3_server;
}

use std::io::Read;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use sdk_cdn::serve::{self, Refreshed, ServeOptions, ServeState};
use sdk_cdn::store::{Body as StoreBody, Headers, Key, PutMode};
use serde_json::json;
use support::app::{
    V1, V2, assert_public_headers, entries, eventually, fast_refresh, get, health, loaded, send, stored,
};
use support::backends::{self, backend_test};
use support::fixtures::{IMMUTABLE, published as publish};

backend_test!(index_is_served_byte_for_byte_with_etag_cache_and_cors_headers, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let bytes = stored(&store, "api/sdk/sri").await;
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        let reply = get(&app, "/api/sdk/sri").await;
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.body, bytes, "{name}: the index is served exactly as stored");
        assert_eq!(reply.header("content-type"), "application/json", "{name}");
        assert_eq!(reply.header("cache-control"), "public, max-age=60", "{name}");
        assert_eq!(reply.header("vary"), "Accept-Encoding", "{name}");
        assert_eq!(reply.header("content-length"), bytes.len().to_string(), "{name}");
        assert_eq!(reply.header("content-encoding"), "", "{name}");
        assert_public_headers(&reply, name);
        let etag = reply.header("etag").to_string();
        assert!(etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'), "{name}: strong etag {etag}");

        let head = send(&app, Method::HEAD, "/api/sdk/sri", &[]).await;
        assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0), "{name}");
        for h in ["etag", "content-length", "content-type", "cache-control", "vary"] {
            assert_eq!(head.header(h), reply.header(h), "{name}: HEAD {h}");
        }

        for condition in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".into()] {
            let revalidated = send(&app, Method::GET, "/api/sdk/sri", &[("if-none-match", &condition)]).await;
            assert_eq!(revalidated.status, 304, "{name}: If-None-Match: {condition}");
            assert!(revalidated.body.is_empty(), "{name}");
            assert_eq!(revalidated.header("etag"), etag, "{name}");
            assert_eq!(revalidated.header("cache-control"), "public, max-age=60", "{name}");
            assert_eq!(revalidated.header("vary"), "Accept-Encoding", "{name}");
            assert_public_headers(&revalidated, name);
        }
        let changed = send(&app, Method::GET, "/api/sdk/sri", &[("if-none-match", "\"stale\"")]).await;
        assert_eq!((changed.status, changed.body), (StatusCode::OK, bytes), "{name}");
    });
});

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap(),
        "br" => brotli::Decompressor::new(body, 4096).read_to_end(&mut out).unwrap(),
        _ => return body.to_vec(),
    };
    out
}

backend_test!(index_is_compressed_on_request_with_a_distinct_etag_per_encoding, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        let identity = get(&app, "/api/sdk/sri").await;
        let mut etags = vec![identity.header("etag").to_string()];
        let mut by_coding = std::collections::HashMap::new();
        for (accept, coding) in [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br, zstd", "br"), ("deflate", "")] {
            let reply = send(&app, Method::GET, "/api/sdk/sri", &[("accept-encoding", accept)]).await;
            let what = format!("{name}: Accept-Encoding: {accept}");
            assert_eq!(reply.status, 200, "{what}");
            assert_eq!(reply.header("content-encoding"), coding, "{what}");
            assert_eq!(decode(coding, &reply.body), identity.body, "{what}: decodes to the stored bytes");
            assert_eq!(reply.header("content-length"), reply.body.len().to_string(), "{what}");
            assert_eq!(reply.header("vary"), "Accept-Encoding", "{what}");
            assert_public_headers(&reply, &what);
            let etag = reply.header("etag").to_string();
            if coding.is_empty() {
                assert_eq!(etag, etags[0], "{what}");
                continue;
            }
            assert!(reply.body.len() < identity.body.len(), "{what}: smaller");
            match by_coding.get(coding) {
                Some(seen) => assert_eq!(&etag, seen, "{what}: one etag per representation"),
                None => {
                    assert!(!etags.contains(&etag), "{what}: {etag} is shared with another representation");
                    etags.push(etag.clone());
                    by_coding.insert(coding, etag.clone());
                }
            }
            let conditional = [("accept-encoding", accept), ("if-none-match", etag.as_str())];
            assert_eq!(send(&app, Method::GET, "/api/sdk/sri", &conditional).await.status, 304, "{what}");
            // The identity etag does not validate the compressed representation.
            let stale = [("accept-encoding", accept), ("if-none-match", etags[0].as_str())];
            assert_eq!(send(&app, Method::GET, "/api/sdk/sri", &stale).await.status, 200, "{what}");
        }
    });
});

#[test]
fn index_cache_control_is_configurable() {
    let backend = backends::local();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let options = ServeOptions { index_cache_control: "public, max-age=5".into(), ..ServeOptions::default() };
        let (_, app) = loaded(&store, &options).await;
        assert_eq!(get(&app, "/api/sdk/sri").await.header("cache-control"), "public, max-age=5");
        assert_eq!(get(&app, "/api/sdk/sri/latest").await.header("cache-control"), "public, max-age=5");
        assert_eq!(get(&app, "/api/sdk/sri/0.1.0").await.header("cache-control"), IMMUTABLE);
    });
}

backend_test!(nothing_published_yet_is_a_json_404_and_healthz_is_ok, |backend| {
    let name = backend.name();
    let store = backend.store();
    backends::runtime().block_on(async {
        let state = ServeState::new(Arc::clone(&store), &ServeOptions::default()).unwrap();
        assert_eq!(state.refresh().await.unwrap(), Refreshed::NoIndex, "{name}");
        let app = serve::app(state);
        let reply = get(&app, "/api/sdk/sri").await;
        reply.assert_json_error(404);
        assert!(reply.json()["error"].as_str().unwrap().contains("nothing is published"), "{name}");
        assert_eq!(reply.header("cache-control"), "no-store", "{name}: a 404 must not be cached");
        assert_public_headers(&reply, name);
        assert_eq!(send(&app, Method::HEAD, "/api/sdk/sri", &[]).await.status, 404, "{name}");
        for target in ["/api/sdk/sri/latest", "/api/sdk/sri/0.1.0", "/sdk/0.1.0/haloagents.umd.js"] {
            get(&app, target).await.assert_json_error(404);
        }
        let health = get(&app, "/healthz").await;
        assert_eq!(health.status, 200, "{name}");
        assert_eq!(health.json()["status"], "ok", "{name}");
        assert_eq!(health.json()["index"], json!({ "published": false }), "{name}");
    });
});

backend_test!(version_entries_are_served_for_sealed_versions_with_a_long_cache, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    publish(&backend, V2, "0.2.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (_, app) = loaded(&store, &ServeOptions::default()).await;
        let reply = get(&app, "/api/sdk/sri/0.1.0").await;
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.json(), json!({ "version": "0.1.0", "files": entries("0.1.0", V1) }), "{name}");
        assert_eq!(reply.header("content-type"), "application/json", "{name}");
        assert_eq!(reply.header("cache-control"), IMMUTABLE, "{name}");
        assert_public_headers(&reply, name);
        let etag = reply.header("etag");
        assert_eq!(send(&app, Method::GET, "/api/sdk/sri/0.1.0", &[("if-none-match", etag)]).await.status, 304);
        let head = send(&app, Method::HEAD, "/api/sdk/sri/0.1.0", &[]).await;
        assert_eq!((head.status, head.body.len(), head.header("etag")), (StatusCode::OK, 0, etag), "{name}");

        let latest = get(&app, "/api/sdk/sri/latest").await;
        assert_eq!(latest.json(), json!({ "version": "0.2.0", "files": entries("latest", V2) }), "{name}");
        assert_eq!(latest.header("cache-control"), "public, max-age=60", "{name}: latest moves");

        get(&app, "/api/sdk/sri/9.9.9").await.assert_json_error(404);
        for malformed in ["v0.1.0", "0.1", "01.0.0", "1.0.0+build.1", "latest2"] {
            let reply = get(&app, &format!("/api/sdk/sri/{malformed}")).await;
            reply.assert_json_error(400);
            assert!(reply.json()["error"].as_str().unwrap().contains("not a valid version"), "{name}");
        }
        let hinted = get(&app, "/api/sdk/sri/v0.1.0").await.json();
        assert!(hinted["error"].as_str().unwrap().contains("drop the leading 'v'"), "{name}: {hinted}");
    });
});

backend_test!(a_publish_after_startup_appears_after_a_refresh, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (state, app) = loaded(&store, &fast_refresh()).await;
        let refresher = state.spawn_refresh();
        publish(&backend, V2, "0.2.0");
        let expected = stored(&store, "api/sdk/sri").await;
        eventually("the new index to be served", || async { get(&app, "/api/sdk/sri").await.body == expected }).await;
        assert_eq!(get(&app, "/api/sdk/sri").await.json()["version"], "0.2.0", "{name}");
        assert_eq!(get(&app, "/sdk/latest/haloagents.umd.js").await.body, V2[0].1, "{name}");
        refresher.abort();
    });
});

backend_test!(an_unparseable_index_is_refused_and_the_last_good_one_kept, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (state, app) = loaded(&store, &ServeOptions::default()).await;
        let good = get(&app, "/api/sdk/sri").await.body;
        let key = Key::new("api/sdk/sri").unwrap();
        let headers = Headers {
            content_type: "application/json".into(),
            cache_control: "public, max-age=60".into(),
            ..Default::default()
        };
        let garbage = StoreBody::Bytes(bytes::Bytes::from_static(b"{\"version\": \"0.1.0\", \"files\": "));
        store.put(&key, garbage, &headers, PutMode::Overwrite).await.unwrap();
        let error = state.refresh().await.unwrap_err();
        assert!(error.to_string().contains("not a valid SRI index"), "{name}: {error}");
        assert_eq!(get(&app, "/api/sdk/sri").await.body, good, "{name}: the last good index is kept");
        let (status, report) = health(&app).await;
        assert_eq!((status, &report["status"]), (StatusCode::OK, &json!("degraded")), "{name}: {report}");
        assert!(report["last_error"].as_str().unwrap().contains("not a valid SRI index"), "{name}: {report}");

        let restored = StoreBody::Bytes(bytes::Bytes::from(good.clone()));
        store.put(&key, restored, &headers, PutMode::Overwrite).await.unwrap();
        state.refresh().await.unwrap();
        assert_eq!(health(&app).await.1["status"], "ok", "{name}");
    });
});

backend_test!(a_version_s_entries_come_from_its_sealed_manifest_not_the_mutable_index, |backend| {
    let name = backend.name();
    publish(&backend, V1, "0.1.0");
    let store = backend.store();
    backends::runtime().block_on(async {
        let (state, app) = loaded(&store, &ServeOptions::default()).await;
        // A bad write to the index (it is mutable; the sealed, signed
        // manifest is not): one entry of 0.1.0 names other bytes.
        let bogus = format!("sha384-{}", "A".repeat(64));
        let mut index: serde_json::Value = serde_json::from_slice(&stored(&store, "api/sdk/sri").await).unwrap();
        index["files"]["0.1.0/haloagents.umd.js"] = json!(bogus);
        let headers = Headers { content_type: "application/json".into(), ..Default::default() };
        let body = StoreBody::Bytes(serde_json::to_vec(&index).unwrap().into());
        store.put(&Key::new("api/sdk/sri").unwrap(), body, &headers, PutMode::Overwrite).await.unwrap();
        state.refresh().await.unwrap();
        assert!(String::from_utf8(get(&app, "/api/sdk/sri").await.body).unwrap().contains(&bogus), "{name}");

        // Cached for a year, so it must be the sealed truth.
        let reply = get(&app, "/api/sdk/sri/0.1.0").await;
        assert_eq!(reply.header("cache-control"), IMMUTABLE, "{name}");
        assert_eq!(reply.json(), json!({ "version": "0.1.0", "files": entries("0.1.0", V1) }), "{name}");
        // The file itself is checked against the manifest too, and served whole.
        assert_eq!(get(&app, "/sdk/0.1.0/haloagents.umd.js").await.body, V1[0].1, "{name}");
    });
});
