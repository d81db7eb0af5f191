//! `/healthz` (liveness, plus a report) and `/readyz` (readiness).
//!
//! `/healthz` status policy (documented in docs/SERVE.md):
//! - `200 {"status":"ok"}`: the last revalidation succeeded recently (also
//!   when nothing is published yet).
//! - `200 {"status":"degraded"}`: revalidation is failing (store outage,
//!   unparseable, oversized or vanished index), has not succeeded for three
//!   refresh intervals, or the index is missing while versions are sealed
//!   (`index.missing`, fix: `sdk-cdn reindex`); the service still answers
//!   from the last good state. Still 200 because the process is alive:
//!   restarting it would not help, and every replica reads the same store.
//! - `503 {"status":"unavailable"}`: nothing was ever loaded and the store
//!   does not answer; this instance has nothing to serve.
//!
//! `/readyz` is stricter, for taking an instance out of rotation: 200 only
//! when an index is loaded, was confirmed current against the store within
//! `ready_max_age`, and the stored index is not refused (too large);
//! otherwise 503 with `reason` naming what is wrong and the fix. An empty
//! store (nothing published) is not ready either: a wrong `--store` looks
//! exactly like that, and a service with nothing to serve gains nothing from
//! traffic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::NO_STORE;
use super::state::{Loaded, ServeState, missing_index};
use semver::Version;

/// How revalidation has been going.
#[derive(Debug, Clone, Default)]
pub(super) struct Health {
    pub(super) last_success: Option<Instant>,
    failing_since: Option<Instant>,
    pub(super) consecutive_failures: u32,
    last_error: Option<String>,
    /// The stored index is refused (not a transient failure): why.
    refused: Option<String>,
    /// The index is missing while versions are sealed: why it matters and the fix.
    pub(super) missing: Option<String>,
}

impl Health {
    pub(super) fn succeeded(&mut self) {
        self.last_success = Some(Instant::now());
        self.failing_since = None;
        self.consecutive_failures = 0;
        self.last_error = None;
        self.refused = None;
    }

    pub(super) fn failed(&mut self, error: String, refusal: bool) {
        self.failing_since.get_or_insert_with(Instant::now);
        self.consecutive_failures += 1;
        if refusal {
            self.refused = Some(error.clone());
        }
        self.last_error = Some(error);
    }

    fn fresh(&self, refresh: Duration) -> bool {
        self.consecutive_failures == 0
            && self.missing.is_none()
            && self.last_success.is_some_and(|at| at.elapsed() <= refresh * 3 + SLACK)
    }
}

/// Slack for a slow but successful revalidation before the index counts as stale.
const SLACK: Duration = Duration::from_secs(10);

fn seconds(at: Option<Instant>) -> Option<f64> {
    at.map(|t| (t.elapsed().as_secs_f64() * 10.0).round() / 10.0)
}

/// `GET /healthz`.
pub(super) async fn healthz(State(state): State<Arc<ServeState>>) -> Response {
    let health = state.health();
    let loaded = state.loaded();
    let (status, code) = match (&loaded, health.fresh(state.refresh_every)) {
        (_, true) => ("ok", StatusCode::OK),
        (Loaded::Index(_) | Loaded::NoIndex | Loaded::Missing { .. }, false) => ("degraded", StatusCode::OK),
        (Loaded::Nothing, false) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
    };
    let index = match &loaded {
        Loaded::Index(snapshot) => json!({
            "published": true,
            "latest": snapshot.index.version,
            "files": snapshot.index.files.len(),
            "etag": snapshot.identity().etag,
        }),
        Loaded::NoIndex => json!({ "published": false }),
        Loaded::Missing { sealed } => json!({
            "published": false,
            "missing": true,
            "sealed_versions": sealed,
            "error": health.missing,
        }),
        Loaded::Nothing => serde_json::Value::Null,
    };
    let body = json!({
        "status": status,
        "index": index,
        "refresh_seconds": state.refresh_every.as_secs_f64(),
        "last_success_seconds_ago": seconds(health.last_success),
        "consecutive_failures": health.consecutive_failures,
        "failing_for_seconds": seconds(health.failing_since),
        "last_error": health.last_error,
    });
    no_store((code, Json(body)).into_response())
}

/// `GET /readyz`.
pub(super) async fn readyz(State(state): State<Arc<ServeState>>) -> Response {
    let health = state.health();
    let loaded = state.loaded();
    let body = match readiness(&health, &loaded, state.ready_max_age) {
        Ok(latest) => (
            StatusCode::OK,
            Json(json!({ "ready": true, "latest": latest, "index_age_seconds": seconds(health.last_success) })),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason, "index_age_seconds": seconds(health.last_success) })),
        ),
    };
    no_store(body.into_response())
}

/// The `latest` version of the index in service when this instance should
/// get traffic, or why it should not.
fn readiness(health: &Health, loaded: &Loaded, max_age: Duration) -> Result<Option<Version>, String> {
    if let Some(refused) = &health.refused {
        return Err(refused.clone());
    }
    let age = health.last_success.map(|at| at.elapsed());
    let why_failing = || health.last_error.as_deref().unwrap_or("no revalidation succeeded").to_string();
    match loaded {
        Loaded::Nothing => Err(format!("no SRI index loaded yet: {}", why_failing())),
        Loaded::Missing { sealed } => Err(health.missing.clone().unwrap_or_else(|| missing_index(*sealed))),
        Loaded::NoIndex => Err("nothing is published at this store (no api/sdk/sri, no sealed version); \
             publish a version, or check --store"
            .into()),
        Loaded::Index(snapshot) => match age {
            Some(age) if age <= max_age => Ok(snapshot.index.version.clone()),
            _ => Err(format!(
                "the SRI index was last confirmed against the store {}s ago, over the {}s bound \
                 (--ready-max-age): {}",
                age.map_or(0, |a| a.as_secs()),
                max_age.as_secs(),
                why_failing()
            )),
        },
    }
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_index_or_an_old_confirmation_is_not_ready() {
        let bound = Duration::from_secs(60);
        let mut health = Health::default();
        assert!(readiness(&health, &Loaded::Nothing, bound).unwrap_err().starts_with("no SRI index"));
        health.succeeded();
        assert!(readiness(&health, &Loaded::NoIndex, bound).unwrap_err().contains("check --store"));
        health.failed("api/sdk/sri is 9 bytes, over".into(), true);
        assert!(readiness(&health, &Loaded::NoIndex, bound).unwrap_err().contains("9 bytes"));
        health.succeeded();
        health.missing = Some(missing_index(2));
        let reason = readiness(&health, &Loaded::Missing { sealed: 2 }, bound).unwrap_err();
        assert!(reason.contains("sdk-cdn reindex"), "{reason}");
        assert!(!health.fresh(Duration::from_secs(2)));
    }
}
