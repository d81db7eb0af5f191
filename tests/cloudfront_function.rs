//! Issue 19: behind S3 + CloudFront, the signature headers come back as
//! `x-amz-meta-*`; `deploy/cloudfront/signature-headers.js` (a viewer-response
//! CloudFront Function) turns them into the headers browsers check. Run here
//! in node, the way CloudFront calls it (`handler(event)` → response), on
//! the metadata a real `publish --sri-key` stored in the S3 server, and the
//! headers it produces are verified against the file's bytes.
//!
//! Needs `node` (Debian `nodejs`); without it the test is skipped with a
//! notice unless `SDK_CDN_REQUIRE_TOOLS=1` (CI), which makes it a failure.

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
    pub mod tools;
}

use std::path::Path;
use std::process::Command;

use sdk_cdn::signing::{PublicKey, SignedHeaders, sha512_of, verify_sri_headers};
use serde_json::{Value, json};
use support::backends::{self, Backend};
use support::cli::{build_dir, run, run_without_store};
use support::tools::tools_present;

const FUNCTION: &str = "deploy/cloudfront/signature-headers.js";

/// Loads the function file into a fresh context and calls `handler(event)`,
/// as CloudFront does.
const HARNESS: &str = r#"
const fs = require("fs"), vm = require("vm");
const context = {};
vm.createContext(context);
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), context);
process.stdout.write(JSON.stringify(context.handler(JSON.parse(process.argv[2]))));
"#;

fn run_function(event: &Value) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(FUNCTION);
    let out = Command::new("node").args(["-e", HARNESS]).arg(file).arg(event.to_string()).output().expect("run node");
    assert!(out.status.success(), "node failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the function returns the response")
}

/// A viewer-response event for a response with `headers` (lower-case names).
fn event(status: u16, headers: &[(String, String)]) -> Value {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(name, value)| (name.clone(), json!({ "value": value }))).collect();
    json!({
        "version": "1.0",
        "context": { "eventType": "viewer-response" },
        "request": { "method": "GET", "uri": "/sdk/latest/app.js", "headers": {} },
        "response": { "statusCode": status, "statusDescription": "OK", "headers": headers },
    })
}

fn header(response: &Value, name: &str) -> Option<String> {
    response["headers"][name]["value"].as_str().map(str::to_string)
}

#[test]
fn the_cloudfront_function_turns_stored_metadata_into_headers_that_verify() {
    if !tools_present(&["node"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let backend = backends::in_process();
    let Backend::InProcess(server) = &backend else { unreachable!() };
    let cwd = tempfile::tempdir().unwrap();
    run_without_store(cwd.path(), &["keygen", "--no-password", "--name", "sri"]).expect_code(0);
    let body = b"window.HaloAgents = { version: \"2.0.0\" };\n";
    let dist = build_dir(&[("app.js", body)]);
    let key = cwd.path().join("sri.key");
    run(
        &backend,
        cwd.path(),
        &["publish", dist.path().to_str().unwrap(), "--version", "2.0.0", "--sri-key", key.to_str().unwrap()],
    )
    .expect_code(0);

    // What S3 returns for the latest/ copy: user metadata, as x-amz-meta-* headers.
    let runtime = backends::runtime();
    let head = runtime.block_on(async {
        server.client().await.head_object().bucket(&server.bucket).key("sdk/latest/app.js").send().await.unwrap()
    });
    let mut headers: Vec<(String, String)> =
        head.metadata().unwrap().iter().map(|(k, v)| (format!("x-amz-meta-{k}"), v.clone())).collect();
    headers.push(("content-type".into(), "text/javascript; charset=utf-8".into()));

    let response = run_function(&event(200, &headers));
    let signed = SignedHeaders::from_pairs(|name| response["headers"][name]["value"].as_str())
        .expect("all three signature headers");
    let public = PublicKey::load(&cwd.path().join("sri.pub")).unwrap().ed25519();
    verify_sri_headers(&sha512_of(body), &signed, &public).expect("the headers verify over the file's bytes");
    assert_eq!(header(&response, "accept-ranges").as_deref(), Some("none"));
    assert_eq!(header(&response, "content-type").as_deref(), Some("text/javascript; charset=utf-8"), "others kept");
    for name in ["x-amz-meta-unencoded-digest", "x-amz-meta-signature-input", "x-amz-meta-signature"] {
        assert!(response["headers"].get(name).is_none(), "{name} is not passed on");
    }

    // Incomplete metadata: nothing is claimed (a pinned page then blocks).
    let partial: Vec<_> = headers.iter().filter(|(k, _)| k != "x-amz-meta-signature").cloned().collect();
    let response = run_function(&event(200, &partial));
    for name in ["unencoded-digest", "signature-input", "signature", "accept-ranges"] {
        assert_eq!(header(&response, name), None, "{name} sent with incomplete metadata");
    }
    // A range (206) never carries a signature over the whole body.
    let response = run_function(&event(206, &headers));
    assert_eq!(header(&response, "signature"), None, "a 206 carries no signature");
    // An unsigned file passes through untouched.
    let plain = vec![("content-type".to_string(), "text/css".to_string())];
    assert_eq!(run_function(&event(200, &plain))["headers"], json!({ "content-type": { "value": "text/css" } }));
}
