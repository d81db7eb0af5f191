//! Shared test support: stores to run against and the binary to drive.
#![allow(dead_code)]

pub mod backends;
pub mod chromium;
pub mod cli;
pub mod s3_server;
pub mod serve;

/// SRI of `bytes`, computed independently of the crate (sha2 + base64 directly).
pub fn sri_of(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes)))
}
