//! The release pipeline: plan a build, publish it, promote it, keep the SRI
//! index right, and answer questions about what is published.
//!
//! Every operation here is written against [`crate::store::Store`] and holds
//! the invariants of DESIGN.md whatever runs concurrently: files are written
//! create-only, the seal (`manifests/<v>.json`) is written last and
//! create-only, and the pointer and index change only by compare-and-swap.

mod build_file;
mod cas;
mod cdn_url;
mod channel;
mod error;
mod index;
mod intent;
mod maintain;
pub(crate) mod outputs;
pub(crate) mod plan;
mod promote;
mod publish;
mod query;
mod read;
pub(crate) mod select;
mod signatures;
pub(crate) mod sri;
mod verify;
mod verify_http;

pub(crate) use channel::converge;
pub use error::ReleaseError;
pub(crate) use index::update_index;
pub(crate) use maintain::{DiscardReport, ReindexReport, discard, reindex};
pub(crate) use plan::PlannedFile;
pub use plan::{Plan, PlanOptions};
pub(crate) use promote::{PromoteOptions, PromoteReport, promote};
pub(crate) use publish::{PublishOptions, PublishOutcome, PublishReport, publish};
pub(crate) use query::{
    ListReport, VersionEntries, VersionState, escape_html, list, snippet, sri_file, sri_index, sri_version, tag_for,
};
pub(crate) use read::{StoredPointer, read_index, read_manifest, read_pointer, sealed_versions};
pub(crate) use signatures::Signing;
pub use verify::VerifyReport;
pub(crate) use verify::{Selection, VerifyOptions, verify};
// The reports' fields hold these; only tests outside `release` build reports.
#[cfg(test)]
pub(crate) use query::VersionSummary;
#[cfg(test)]
pub(crate) use verify::{Finding, Problem};

/// The first `most` of `items`, comma-separated, then "and N more": how a
/// refusal names many paths without growing with them.
fn listed<T: AsRef<str>>(items: &[T], most: usize) -> String {
    let mut text = items.iter().take(most).map(AsRef::as_ref).collect::<Vec<_>>().join(", ");
    if items.len() > most {
        text.push_str(&format!(" and {} more", items.len() - most));
    }
    text
}
