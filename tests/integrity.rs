//! Issue 12, "integrity end to end": what is sealed is exactly what is
//! stored, and no edge fails open. Each test reproduces one defect found
//! from outside and runs on every backend it applies to (local, in-process
//! S3, and moto in CI).

mod support;

use std::path::Path;

use serde_json::Value;
use support::backends::{self, Backend};
use support::cli::{Run, build_dir, run};
use support::sri_of;

type Files = &'static [(&'static str, &'static [u8])];

const V1: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:1};"), ("haloagents.css", b".a{color:red}")];
const V2: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:2};"), ("haloagents.css", b".a{color:blue}")];
const V3: Files = &[("haloagents.umd.js", b"window.HaloAgents={v:3};")];

fn publish(backend: &Backend, cwd: &Path, files: Files, version: &str, extra: &[&str]) -> Run {
    let build = build_dir(files);
    let mut args = vec!["publish", build.path().to_str().unwrap(), "--version", version];
    args.extend_from_slice(extra);
    run(backend, cwd, &args)
}

fn index_files(backend: &Backend) -> Vec<String> {
    let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").expect("index exists")).unwrap();
    index["files"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn a_lost_index_is_rebuilt_from_every_sealed_version_by_publish_and_promote() {
    for backend in backends::all() {
        let name = backend.name();
        let cwd = tempfile::tempdir().unwrap();
        publish(&backend, cwd.path(), V1, "0.1.0", &[]).expect_code(0);
        publish(&backend, cwd.path(), V2, "0.2.0", &[]).expect_code(0);

        backend.delete("api/sdk/sri");
        publish(&backend, cwd.path(), V3, "0.3.0", &[]).expect_code(0);
        let files = index_files(&backend);
        for version in ["0.1.0", "0.2.0"] {
            assert!(
                files.contains(&format!("{version}/haloagents.css")),
                "{name}: publish rebuilt the index without {version}: {files:?}"
            );
        }
        assert!(files.contains(&"0.3.0/haloagents.umd.js".to_string()), "{name}: {files:?}");

        backend.delete("api/sdk/sri");
        run(&backend, cwd.path(), &["promote", "0.2.0", "--allow-downgrade"]).expect_code(0);
        let files = index_files(&backend);
        for entry in ["0.1.0/haloagents.umd.js", "0.2.0/haloagents.css", "0.3.0/haloagents.umd.js"] {
            assert!(files.contains(&entry.to_string()), "{name}: promote rebuilt the index without {entry}: {files:?}");
        }
        let index: Value = serde_json::from_slice(&backend.read("api/sdk/sri").unwrap()).unwrap();
        assert_eq!(index["version"], "0.2.0", "{name}");
        assert_eq!(index["files"]["latest/haloagents.css"], sri_of(b".a{color:blue}"), "{name}");
        run(&backend, cwd.path(), &["verify"]).expect_code(0);
    }
}
