//! What several suites share about a release: a build written as data, the
//! publish that sends it through the real binary, and the expectations a test
//! computes on its own (the SRI of some bytes, the cache policies a customer
//! relies on), so the suites check the crate instead of repeating it.
#![allow(dead_code, reason = "each suite compiles this module and uses a part of it")]

use std::path::Path;

use super::backends::Backend;
use super::cli::{Run, build_dir, run};

/// A build as data: `(path inside the build, bytes)`.
pub type Files = &'static [(&'static str, &'static [u8])];

/// `Cache-Control` of every versioned file (the install guide's promise).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of `latest/` files by default.
pub const LATEST: &str = "public, max-age=300";

/// SRI of `bytes`, computed independently of the crate (sha2 + base64 directly).
pub fn sri_of(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes)))
}

/// `sdk-cdn publish DIR --version V EXTRA…` from `cwd`.
pub fn publish_dir(backend: &Backend, cwd: &Path, dir: &Path, version: &str, extra: &[&str]) -> Run {
    let mut args = vec!["publish", dir.to_str().expect("UTF-8 build path"), "--version", version];
    args.extend_from_slice(extra);
    run(backend, cwd, &args)
}

/// Writes `files` as a build and publishes it from `cwd`.
pub fn publish_files(backend: &Backend, cwd: &Path, files: &[(&str, &[u8])], version: &str, extra: &[&str]) -> Run {
    let build = build_dir(files);
    publish_dir(backend, cwd, build.path(), version, extra)
}

/// Publishes `files` as `version` from a scratch directory; it must succeed.
pub fn published(backend: &Backend, files: &[(&str, &[u8])], version: &str) {
    let cwd = tempfile::tempdir().expect("tempdir");
    publish_files(backend, cwd.path(), files, version, &[]).expect_code(0);
}

/// Deterministic, incompressible-looking bytes.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
