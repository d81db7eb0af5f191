//! The SRI index merge a publish does (`update_index`): parse the stored
//! index, add one version's 20 files, point `latest/` at it, serialise.
//! Measured for stores of 0 to 10,000 published versions × 20 files, to show
//! how the cost grows with the index (the merge itself touches only the new
//! version; parsing and writing the whole document is what grows).
//!
//! `cargo bench --bench index_merge`; `SDK_CDN_BENCH_QUICK=1` stops at 1,000 versions.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sdk_cdn::integrity::Integrity;
use sdk_cdn::layout;
use sdk_cdn::manifest::{self, FileEntry, SriIndex, VersionManifest};
use semver::Version;

const FILES_PER_VERSION: usize = 20;

/// A version like a real SDK build: a bundle, its map, styles and chunks.
fn version_manifest(n: u64) -> VersionManifest {
    let version = Version::new(n / 100, n % 100, 0);
    let files = (0..FILES_PER_VERSION)
        .map(|i| {
            let path = match i {
                0 => "haloagents.umd.js".to_string(),
                1 => "haloagents.umd.js.map".to_string(),
                2 => "haloagents.css".to_string(),
                _ => format!("chunks/chunk-{i:02}-{n:08x}.js"),
            };
            let entry = FileEntry {
                integrity: Integrity::of_bytes(format!("{n}/{i}").as_bytes()),
                size: 4096,
                content_type: sdk_cdn::content_type::for_path(&path),
                signed: None,
            };
            (path, entry)
        })
        .collect::<BTreeMap<_, _>>();
    VersionManifest { version, files }
}

/// The stored index of a store with `versions` published versions, the newest on `latest`.
fn stored_index(versions: u64) -> Vec<u8> {
    let mut index = SriIndex::default();
    for n in 0..versions {
        index.add_version(&version_manifest(n));
    }
    if versions > 0 {
        index.set_latest(&version_manifest(versions - 1));
    }
    manifest::to_bytes(&index)
}

fn merge(c: &mut Criterion) {
    let sizes: &[u64] =
        if std::env::var_os("SDK_CDN_BENCH_QUICK").is_some() { &[0, 100, 1_000] } else { &[0, 100, 1_000, 10_000] };
    let key = layout::index();
    let mut group = c.benchmark_group("index_merge");
    group.sample_size(10).measurement_time(Duration::from_secs(3));
    for &versions in sizes {
        let stored = stored_index(versions);
        let next = version_manifest(versions);
        eprintln!("index of {versions} versions x {FILES_PER_VERSION} files: {} bytes", stored.len());
        group.throughput(Throughput::Bytes(stored.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse_add_serialise", versions), &stored, |b, stored| {
            b.iter(|| {
                let mut index: SriIndex = manifest::parse(&key, "SRI index", black_box(stored)).unwrap();
                index.add_version(&next);
                index.set_latest(&next);
                manifest::to_bytes(&index)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
