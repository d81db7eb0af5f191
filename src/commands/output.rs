//! What a command hands `main`: its text and JSON on success, or why it
//! failed (each kind becomes one exit code in `main`).

use serde::Serialize;
use serde_json::{Value, json};

use super::check::{DoctorText, VerifyText};
use crate::release::{ReleaseError, VerifyReport};
use crate::store::{self, ProbeReport, StoreError};

/// What a command prints on success.
#[derive(Debug)]
pub struct Output {
    /// For people.
    pub text: String,
    /// For machines (`--json`).
    pub json: Value,
    /// Whether `text` is the data asked for (`sri`, `snippet`, `list`, …:
    /// printed even with `-q`) or a status report (`publish`, `verify`, …:
    /// `-q` silences it, the exit code says how it went).
    pub(crate) kind: Kind,
}

/// See [`Output::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The data the command was run for.
    Data,
    /// A report of what the command did.
    Status,
}

impl Output {
    /// A status report (silenced by `-q`).
    pub(crate) fn status(text: String, json: Value) -> Self {
        Output { text, json, kind: Kind::Status }
    }

    /// The data the command was run for (printed even with `-q`).
    pub(crate) fn data(text: String, json: Value) -> Self {
        Output { text, json, kind: Kind::Data }
    }

    /// Whether `-q` silences the text.
    pub fn is_status(&self) -> bool {
        self.kind == Kind::Status
    }
}

/// Why a command failed; `main` maps each kind to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--store` URL is malformed.
    #[error(transparent)]
    StoreUrl(#[from] store::StoreUrlError),
    /// A release operation failed.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// `verify` found problems.
    #[error("{}", VerifyText(.0))]
    Verify(Box<VerifyReport>),
    /// `doctor` found a problem.
    #[error("{}", DoctorText(.0))]
    Doctor(Box<ProbeReport>),
    /// `serve` could not start.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    /// A key or signature problem (`keygen`, `pin --pubkey`).
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// `pin` refused.
    #[error(transparent)]
    Pin(#[from] crate::pin::PinError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Release(e.into())
    }
}

impl Error {
    /// The error as JSON for `--json`, with its exit code.
    pub fn to_json(&self, code: u8) -> Value {
        let mut value = json!({ "ok": false, "exit_code": code, "error": self.to_string() });
        match self {
            Error::Doctor(report) => value["report"] = to_value(report),
            Error::Verify(report) => value["report"] = to_value(report),
            Error::Release(ReleaseError::Conflict { diff, .. }) => value["diff"] = to_value(diff),
            _ => {}
        }
        value
    }
}

/// `n noun` or `n nouns`.
pub(super) fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `n` as a count (`usize` always fits in `u64` on supported targets).
pub(super) fn count_of(n: usize, noun: &str) -> String {
    count(u64::try_from(n).unwrap_or(u64::MAX), noun)
}

pub(super) fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_pluralised() {
        assert_eq!(count(0, "file"), "0 files");
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count_of(2, "published version"), "2 published versions");
    }
}
