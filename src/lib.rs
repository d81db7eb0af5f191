//! `sdk-cdn`: publish browser-SDK builds to immutable, versioned CDN paths,
//! promote them to `latest/`, and serve their SHA-384 Subresource Integrity
//! manifest. The binary (`src/main.rs`) is a thin shell over this library.
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod commands;
pub mod content_type;
pub(crate) mod headers;
pub mod https;
pub mod integrity;
pub mod layout;
pub mod logging;
pub mod manifest;
pub mod pause;
pub mod pin;
pub mod progress;
pub(crate) mod purge;
pub mod release;
pub mod serve;
pub mod signing;
pub mod store;
pub mod version;
