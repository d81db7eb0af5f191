//! The commands that read what is published: `sri`, `snippet`, `list`, and
//! how their results read.

use std::fmt;

use serde_json::{Value, json};

use super::open_store;
use super::output::{Error, Output, to_value};
use crate::cli::{GlobalArgs, SnippetArgs, SriArgs};
use crate::layout;
use crate::release::{self, ListReport, ReleaseError, VersionState};

pub(super) async fn sri(global: &GlobalArgs, args: &SriArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    match (&args.version, &args.file) {
        (None, _) => {
            // Text: the stored bytes exactly. --json: the same JSON value on one
            // line (read_index has parsed it already; this cannot fail unnoticed).
            let bytes = release::sri_index(store.as_ref()).await?;
            let json: Value = serde_json::from_slice(&bytes)
                .map_err(|source| ReleaseError::IndexNotJson { store: store.describe(), source })?;
            Ok(Output::data(String::from_utf8_lossy(&bytes).into_owned(), json))
        }
        (Some(version), None) => {
            let entries = release::sri_version(store.as_ref(), version).await?;
            let json = to_value(&entries);
            Ok(Output::data(format!("{}\n", serde_json::to_string_pretty(&json).unwrap_or_default()), json))
        }
        (Some(version), Some(file)) => {
            let integrity = release::sri_file(store.as_ref(), version, file).await?;
            let json = json!({ "file": layout::index_entry(version, file), "integrity": integrity });
            Ok(Output::data(format!("{integrity}\n"), json))
        }
    }
}

pub(super) async fn snippet(global: &GlobalArgs, args: &SnippetArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let tag =
        release::snippet(store.as_ref(), &args.version, args.file.as_deref(), &args.base_url, args.signed).await?;
    Ok(Output::data(format!("{tag}\n"), json!({ "version": args.version, "html": tag })))
}

pub(super) async fn list(global: &GlobalArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let report = release::list(store.as_ref()).await?;
    Ok(Output::data(ListText(&report).to_string(), to_value(&report)))
}

/// How a listing reads: one version a line, the partial ones with what to do.
struct ListText<'a>(&'a ListReport);

impl fmt::Display for ListText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if r.versions.is_empty() {
            writeln!(f, "nothing is published in {}", r.store)?;
        }
        for v in &r.versions {
            let state = match v.state {
                VersionState::Sealed => "published",
                VersionState::Partial => "partial (never sealed: rerun its publish, or discard it)",
            };
            let latest = if v.latest { "  <- latest" } else { "" };
            writeln!(f, "{:<24} {state}{latest}", v.version.to_string())?;
        }
        if r.latest.is_some() && !r.latest_synced {
            writeln!(
                f,
                "warning: latest/ is not fully synced (a promotion is running or was interrupted); rerun `sdk-cdn promote`"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::VersionSummary;

    #[test]
    fn a_listing_reads_one_version_a_line() {
        let v = |s: &str| s.parse::<semver::Version>().unwrap();
        let empty = ListReport { store: "./cdn".into(), latest: None, latest_synced: true, versions: vec![] };
        assert_eq!(ListText(&empty).to_string(), "nothing is published in ./cdn\n");
        let report = ListReport {
            store: "./cdn".into(),
            latest: Some(v("1.0.0")),
            latest_synced: false,
            versions: vec![
                VersionSummary { version: v("1.0.0"), state: VersionState::Sealed, latest: true },
                VersionSummary { version: v("1.1.0"), state: VersionState::Partial, latest: false },
            ],
        };
        let text = ListText(&report).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{:<24} published  <- latest", "1.0.0"));
        assert!(lines[1].starts_with("1.1.0") && lines[1].contains("partial"), "{text}");
        assert!(lines[2].starts_with("warning: latest/ is not fully synced"), "{text}");
    }
}
