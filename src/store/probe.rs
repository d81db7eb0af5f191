//! Checking that a store is usable and honours conditional writes.
//!
//! Some S3-compatible stores accept `If-None-Match`/`If-Match` and silently
//! ignore them; trusting such a store would let two publishers overwrite each
//! other. `doctor` runs every check; `publish` runs the same probe before its
//! first asset write. The probe writes one scratch key and deletes it. On a
//! store that keeps temp files (the local directory), it also removes and
//! reports those that interrupted writes left behind.

use bytes::Bytes;
use serde::Serialize;

use super::{Body, Headers, Key, PutMode, StaleTemp, Store, StoreError};

/// Where probe objects are written (relative to the store root).
pub(crate) const PROBE_PREFIX: &str = "_sdk-cdn-probe/";

/// The check that reports (and removes) temp files of interrupted writes.
const TEMP_CHECK: &str = "temp files";

/// One named check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked (`list`, `write`, `create-only`, …).
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What happened, and what to fix when it failed.
    pub detail: String,
}

/// The overall outcome of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything works.
    Healthy,
    /// The store could not be reached or the credentials lack a permission.
    Unusable,
    /// The store accepts conditional writes but does not enforce them.
    IgnoresConditionalWrites,
}

/// Every check run, in order, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The store probed.
    pub store: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The checks, in the order they ran; the first failure ends the run.
    pub checks: Vec<Check>,
}

impl ProbeReport {
    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, ok: true, detail: detail.into() });
    }

    fn fail(mut self, name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Self {
        self.checks.push(Check { name, ok: false, detail: detail.into() });
        self.verdict = verdict;
        self
    }

    /// The first failed check, if any.
    pub fn failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.ok)
    }
}

/// Probes `store`: list, write, read, create-only, compare-and-swap, delete.
pub async fn probe_conditional_writes(store: &dyn Store) -> ProbeReport {
    let mut report = ProbeReport { store: store.describe(), verdict: Verdict::Healthy, checks: Vec::new() };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let Ok(key) = Key::new(format!("{PROBE_PREFIX}{}-{nanos}", std::process::id())) else {
        return report.fail("write", Verdict::Unusable, "could not form a probe key");
    };
    let headers = Headers { content_type: "text/plain".into(), cache_control: "no-store".into(), ..Headers::default() };
    // The permission hint only helps when the store said "denied".
    let unusable = |e: &StoreError, what: &str| match e {
        StoreError::Denied { .. } => format!("{e}; {what}"),
        _ => e.to_string(),
    };

    if let Err(e) = store.list(PROBE_PREFIX).await {
        return report.fail(
            "list",
            Verdict::Unusable,
            unusable(&e, "the credentials need list permission on the store prefix"),
        );
    }
    report.pass("list", "the store answers and listing is allowed");

    match store.remove_stale_temp_files().await {
        Ok(None) => {}
        Ok(Some(StaleTemp { files: 0, .. })) => report.pass(TEMP_CHECK, "no temp files left by interrupted writes"),
        Ok(Some(StaleTemp { files, bytes })) => report.pass(
            TEMP_CHECK,
            format!("removed {files} temp files ({bytes} bytes) left by interrupted writes (killed or crashed runs)"),
        ),
        Err(e) => {
            return report.fail(TEMP_CHECK, Verdict::Unusable, format!("{e}; the store directory must be writable"));
        }
    }

    let first = match store.put(&key, Body::Bytes(Bytes::from_static(b"one")), &headers, PutMode::Create).await {
        Ok(meta) => meta,
        Err(e) => {
            return report.fail("write", Verdict::Unusable, unusable(&e, "the credentials need write permission"));
        }
    };
    report.pass("write", format!("wrote {key}"));

    match store.get(&key).await {
        Ok(Some((bytes, _))) if bytes.as_ref() == b"one" => report.pass("read", "read back the bytes written"),
        Ok(_) => {
            return cleanup(store, &key, report.fail("read", Verdict::Unusable, "read back different bytes")).await;
        }
        Err(e) => {
            let detail = unusable(&e, "the credentials need read permission");
            return cleanup(store, &key, report.fail("read", Verdict::Unusable, detail)).await;
        }
    }

    match store.put(&key, Body::Bytes(Bytes::from_static(b"two")), &headers, PutMode::Create).await {
        Err(StoreError::AlreadyExists { .. }) => report.pass("create-only", "If-None-Match: * refused an existing key"),
        Ok(_) => {
            let detail = "a second create-only write (If-None-Match: *) replaced an existing object: this store ignores \
                          conditional writes, so concurrent publishers could overwrite published versions; use a store \
                          that supports them (AWS S3, Cloudflare R2, MinIO)";
            return cleanup(store, &key, report.fail("create-only", Verdict::IgnoresConditionalWrites, detail)).await;
        }
        Err(e) => {
            return cleanup(store, &key, report.fail("create-only", Verdict::Unusable, e.to_string())).await;
        }
    }

    let stale = PutMode::Update { etag: "\"00000000000000000000000000000000\"".into() };
    match store.put(&key, Body::Bytes(Bytes::from_static(b"three")), &headers, stale).await {
        Err(StoreError::Precondition { .. }) => {}
        Ok(_) => {
            let detail = "a write with a wrong If-Match etag succeeded: this store ignores conditional writes, so \
                          concurrent index updates could be lost; use a store that supports them";
            return cleanup(store, &key, report.fail("compare-and-swap", Verdict::IgnoresConditionalWrites, detail))
                .await;
        }
        Err(e) => return cleanup(store, &key, report.fail("compare-and-swap", Verdict::Unusable, e.to_string())).await,
    }
    let current = PutMode::Update { etag: first.etag.clone() };
    if let Err(e) = store.put(&key, Body::Bytes(Bytes::from_static(b"four")), &headers, current).await {
        let detail = format!("a write with the current etag was refused: {e}");
        return cleanup(store, &key, report.fail("compare-and-swap", Verdict::Unusable, detail)).await;
    }
    report.pass("compare-and-swap", "If-Match refused a stale etag and accepted the current one");

    cleanup(store, &key, report).await
}

async fn cleanup(store: &dyn Store, key: &Key, mut report: ProbeReport) -> ProbeReport {
    match store.delete(key).await {
        Ok(()) if report.verdict == Verdict::Healthy => report.pass("delete", format!("deleted {key}")),
        Ok(()) => {}
        Err(e) if report.verdict == Verdict::Healthy => {
            report = report.fail("delete", Verdict::Unusable, format!("{e}; the credentials need delete permission"));
        }
        Err(e) => tracing::warn!(%key, error = %e, "could not delete the probe object"),
    }
    report
}
