//! Hashing: SHA-384 per core, a tree of many small files, one large file.
//!
//! `cargo bench --bench hashing` (scripts/bench.sh compares the same work
//! against `openssl dgst`). The inputs are generated in a temporary
//! directory; `SDK_CDN_BENCH_QUICK=1` shrinks them for a smoke run.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sdk_cdn::integrity::Integrity;
use sdk_cdn::progress::Progress;
use sdk_cdn::release::{Plan, PlanOptions};
use semver::Version;

/// Deterministic, incompressible-enough bytes (xorshift), so no test data is checked in.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn quick() -> bool {
    std::env::var_os("SDK_CDN_BENCH_QUICK").is_some()
}

/// `count` files of `size` bytes in 500-file directories, like a build with chunks.
fn tree(root: &Path, count: usize, size: usize) {
    for i in 0..count {
        let dir = root.join(format!("chunks{:02}", i / 500));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("c{i:05}.js")), bytes(i as u64, size)).unwrap();
    }
}

fn sha384_per_core(c: &mut Criterion) {
    let data = bytes(7, 8 << 20);
    let mut group = c.benchmark_group("sha384");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("in_memory_8MiB", |b| b.iter(|| Integrity::of_bytes(black_box(&data))));
    group.finish();
}

fn plan_tree(c: &mut Criterion) {
    let (count, size) = if quick() { (1_000, 4096) } else { (10_000, 4096) };
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), count, size);
    let version = Version::new(1, 0, 0);
    let mut group = c.benchmark_group("plan");
    group.sample_size(10).measurement_time(Duration::from_secs(if quick() { 1 } else { 5 }));
    group.throughput(Throughput::Bytes((count * size) as u64));
    group.bench_function(format!("tree_{count}x4KiB"), |b| {
        b.iter(|| Plan::build(dir.path(), &version, &PlanOptions::new(1024), Progress::hidden()).unwrap())
    });
    group.finish();
}

fn plan_large_file(c: &mut Criterion) {
    let size = if quick() { 16 << 20 } else { 256 << 20 };
    let dir = tempfile::tempdir().unwrap();
    let mut file = std::fs::File::create(dir.path().join("sdk.bin")).unwrap();
    for chunk in 0..size / (1 << 20) {
        file.write_all(&bytes(chunk as u64, 1 << 20)).unwrap();
    }
    drop(file);
    let version = Version::new(1, 0, 0);
    let mut group = c.benchmark_group("plan");
    group.sample_size(10).measurement_time(Duration::from_secs(if quick() { 1 } else { 8 }));
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function(format!("one_file_{}MiB", size >> 20), |b| {
        b.iter(|| Plan::build(dir.path(), &version, &PlanOptions::new(1024), Progress::hidden()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, sha384_per_core, plan_tree, plan_large_file);
criterion_main!(benches);
