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
    pub(crate) ok: bool,
    /// What happened, and what to fix when it failed.
    pub(crate) detail: String,
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
    pub(crate) store: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The checks, in the order they ran; the first failure ends the run.
    pub(crate) checks: Vec<Check>,
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

    report = temp_files(store, report, true).await;
    if report.failure().is_some() {
        return report;
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
            let fail = report.fail("create-only", Verdict::IgnoresConditionalWrites, IGNORED_CREATE);
            return cleanup(store, &key, fail).await;
        }
        Err(e) => {
            return cleanup(store, &key, report.fail("create-only", Verdict::Unusable, e.to_string())).await;
        }
    }

    let stale = PutMode::Update { etag: "\"00000000000000000000000000000000\"".into() };
    match store.put(&key, Body::Bytes(Bytes::from_static(b"three")), &headers, stale).await {
        Err(StoreError::Precondition { .. }) => {}
        Ok(_) => {
            let fail = report.fail("compare-and-swap", Verdict::IgnoresConditionalWrites, IGNORED_MATCH);
            return cleanup(store, &key, fail).await;
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

/// The write checks of [`probe_conditional_writes`] in three round trips
/// instead of six, for `publish`, whose reads already showed that the
/// store answers and may be listed: write the scratch key; then at once read
/// it back, create it again (expect 412), update it with a wrong etag
/// (expect 412) and with the right one (expect success); then delete it.
///
/// The three writes after the first send the same body as the first, so
/// whichever order the store applies them in, the object keeps its bytes
/// and its etag (a content hash on every store we know), and the read sees
/// them: each check proves the same thing it does in the sequential probe.
///
/// When every check passed, the scratch key is left for [`remove_probe`]
/// (with the report), so that its delete can run beside the caller's next
/// requests; after a failure it is deleted here and `None` is returned.
/// `report` is [`check_temp_files`]'s, which the caller ran first.
pub(crate) async fn probe_writes_at_once(store: &dyn Store, mut report: ProbeReport) -> (ProbeReport, Option<Key>) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let Ok(key) = Key::new(format!("{PROBE_PREFIX}{}-{nanos}", std::process::id())) else {
        return (report.fail("write", Verdict::Unusable, "could not form a probe key"), None);
    };
    let headers = Headers { content_type: "text/plain".into(), cache_control: "no-store".into(), ..Headers::default() };
    let body = || Body::Bytes(Bytes::from_static(b"one"));
    let first = match store.put(&key, body(), &headers, PutMode::Create).await {
        Ok(meta) => meta,
        Err(e) => {
            let detail = match e {
                StoreError::Denied { .. } => format!("{e}; the credentials need write permission"),
                _ => e.to_string(),
            };
            return (report.fail("write", Verdict::Unusable, detail), None);
        }
    };
    report.pass("write", format!("wrote {key}"));
    let stale = PutMode::Update { etag: "\"00000000000000000000000000000000\"".into() };
    let current = PutMode::Update { etag: first.etag };
    // A store may answer conditional writes racing on one key with 409
    // (ConcurrentWrite): that check alone is then repeated on its own.
    let (key, headers) = (&key, &headers);
    let put = |mode: PutMode| async move {
        let mut result = store.put(key, body(), headers, mode.clone()).await;
        for _ in 0..3 {
            if !matches!(result, Err(StoreError::ConcurrentWrite { .. })) {
                break;
            }
            result = store.put(key, body(), headers, mode.clone()).await;
        }
        result
    };
    let (read, again, stale, current) = tokio::join!(store.get(key), put(PutMode::Create), put(stale), put(current));
    let failed = match (read, again, stale, current) {
        (Ok(Some((bytes, _))), _, _, _) if bytes.as_ref() != b"one" => {
            Some(("read", Verdict::Unusable, "read back different bytes".to_string()))
        }
        (Ok(None), _, _, _) => Some(("read", Verdict::Unusable, "the object just written is missing".to_string())),
        (Err(e), _, _, _) => Some(("read", Verdict::Unusable, format!("{e}; the credentials need read permission"))),
        (_, Ok(_), _, _) => Some(("create-only", Verdict::IgnoresConditionalWrites, IGNORED_CREATE.to_string())),
        (_, Err(e), _, _) if !matches!(e, StoreError::AlreadyExists { .. }) => {
            Some(("create-only", Verdict::Unusable, e.to_string()))
        }
        (_, _, Ok(_), _) => Some(("compare-and-swap", Verdict::IgnoresConditionalWrites, IGNORED_MATCH.to_string())),
        (_, _, Err(e), _) if !matches!(e, StoreError::Precondition { .. }) => {
            Some(("compare-and-swap", Verdict::Unusable, e.to_string()))
        }
        (_, _, _, Err(e)) => {
            Some(("compare-and-swap", Verdict::Unusable, format!("a write with the current etag was refused: {e}")))
        }
        _ => None,
    };
    match failed {
        Some((name, verdict, detail)) => (cleanup(store, key, report.fail(name, verdict, detail)).await, None),
        None => {
            report.pass("read", "read back the bytes written");
            report.pass("create-only", "If-None-Match: * refused an existing key");
            report.pass("compare-and-swap", "If-Match refused a stale etag and accepted the current one");
            (report, Some(key.clone()))
        }
    }
}

/// The first, local part of a publish's probe, before anything is written
/// and without a request: what killed runs left behind goes, and the place
/// of this run's own copies is proven usable (S3: `TMPDIR`). Its report is
/// failed if not; else it goes on to [`probe_writes_at_once`].
pub(crate) async fn check_temp_files(store: &dyn Store) -> ProbeReport {
    let report = ProbeReport { store: store.describe(), verdict: Verdict::Healthy, checks: Vec::new() };
    temp_files(store, report, false).await
}

/// The `temp files` check, for `doctor` and a publish alike: the store
/// removes what killed runs left ([`Store::remove_stale_temp_files`]) and
/// the check says what it did; with `say_none`, also that there was nothing.
async fn temp_files(store: &dyn Store, mut report: ProbeReport, say_none: bool) -> ProbeReport {
    match store.remove_stale_temp_files().await {
        Ok(None) => report,
        Ok(Some(StaleTemp { files: 0, stuck: 0, .. })) => {
            if say_none {
                report.pass(TEMP_CHECK, "no temp files left by interrupted writes");
            }
            report
        }
        Ok(Some(StaleTemp { files, bytes, stuck })) => {
            let mut detail = format!(
                "removed {files} temp files ({bytes} bytes) left by interrupted writes (killed or crashed runs)"
            );
            if stuck > 0 {
                detail.push_str(&format!("; {stuck} could not be removed (each is named in a warning above)"));
            }
            report.pass(TEMP_CHECK, detail);
            report
        }
        Err(e) => report.fail(TEMP_CHECK, Verdict::Unusable, e.to_string()),
    }
}

/// Deletes the scratch key [`probe_writes_at_once`] left; a failed delete
/// fails the report (the credentials need delete permission).
pub(crate) async fn remove_probe(store: &dyn Store, key: &Key, report: ProbeReport) -> ProbeReport {
    cleanup(store, key, report).await
}

/// What a store that replaced an object on a second create-only write does wrong.
const IGNORED_CREATE: &str = "a second create-only write (If-None-Match: *) replaced an existing object: this store \
                              ignores conditional writes, so concurrent publishers could overwrite published \
                              versions; use a store that supports them (AWS S3, Cloudflare R2, MinIO)";

/// What a store that accepted a write with a stale etag does wrong.
const IGNORED_MATCH: &str = "a write with a wrong If-Match etag succeeded: this store ignores conditional writes, so \
                             concurrent index updates could be lost; use a store that supports them";

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
