//! The release pipeline: plan a build, publish it, promote it, keep the SRI
//! index right, and answer questions about what is published.
//!
//! Every operation here is written against [`crate::store::Store`] and holds
//! the invariants of DESIGN.md whatever runs concurrently: files are written
//! create-only, the seal (`manifests/<v>.json`) is written last and
//! create-only, and the pointer and index change only by compare-and-swap.

mod cas;
mod cdn_url;
mod channel;
mod error;
mod index;
mod intent;
mod maintain;
pub mod outputs;
pub mod plan;
mod promote;
mod publish;
mod query;
mod read;
pub mod select;
mod signatures;
pub mod sri;
mod verify;
mod verify_http;

pub use channel::{PromoteRule, converge};
pub use error::ReleaseError;
pub use index::update_index;
pub use maintain::{DiscardReport, ReindexReport, discard, reindex};
pub use plan::{LeftOutPath, Plan, PlanOptions, PlannedFile};
pub use promote::{PromoteOptions, PromoteReport, promote};
pub use publish::{PublishOptions, PublishOutcome, PublishReport, publish};
pub use query::{
    ListReport, VersionEntries, VersionState, VersionSummary, escape_html, list, snippet, sri_file, sri_index,
    sri_version, tag_for,
};
pub use read::{StoredIndex, StoredPointer, read_index, read_manifest, read_pointer, sealed_versions};
pub use signatures::Signing;
pub use verify::{Finding, Problem, Selection, VerifyOptions, VerifyReport, verify};
