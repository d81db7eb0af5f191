//! `/healthz`: is the index in service fresh?
//!
//! Status policy (documented in the README):
//! - `200 {"status":"ok"}`: the last revalidation succeeded recently (also
//!   when nothing is published yet).
//! - `200 {"status":"degraded"}`: revalidation is failing (store outage,
//!   unparseable or vanished index) or has not succeeded for three refresh
//!   intervals, but the service still answers from the last good state.
//!   Still 200 because every replica reads the same store: failing them all
//!   out of a load balancer would turn a store outage, during which the last
//!   good index is still served, into a total one. Alert on the body.
//! - `503 {"status":"unavailable"}`: nothing was ever loaded and the store
//!   does not answer; this instance has nothing to serve.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::NO_STORE;
use super::state::{Loaded, ServeState};

/// How revalidation has been going.
#[derive(Debug, Clone, Default)]
pub(super) struct Health {
    last_success: Option<Instant>,
    failing_since: Option<Instant>,
    pub(super) consecutive_failures: u32,
    last_error: Option<String>,
}

impl Health {
    pub(super) fn succeeded(&mut self) {
        self.last_success = Some(Instant::now());
        self.failing_since = None;
        self.consecutive_failures = 0;
        self.last_error = None;
    }

    pub(super) fn failed(&mut self, error: String) {
        self.failing_since.get_or_insert_with(Instant::now);
        self.consecutive_failures += 1;
        self.last_error = Some(error);
    }

    fn fresh(&self, refresh: Duration) -> bool {
        self.consecutive_failures == 0 && self.last_success.is_some_and(|at| at.elapsed() <= refresh * 3 + SLACK)
    }
}

/// Slack for a slow but successful revalidation before the index counts as stale.
const SLACK: Duration = Duration::from_secs(10);

/// `GET /healthz`.
pub(super) async fn healthz(State(state): State<Arc<ServeState>>) -> Response {
    let health = state.health();
    let loaded = state.loaded();
    let (status, code) = match (&loaded, health.fresh(state.refresh_every)) {
        (_, true) => ("ok", StatusCode::OK),
        (Loaded::Index(_) | Loaded::NoIndex, false) => ("degraded", StatusCode::OK),
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
        Loaded::Nothing => serde_json::Value::Null,
    };
    let seconds = |at: Option<Instant>| at.map(|t| (t.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    let body = json!({
        "status": status,
        "index": index,
        "refresh_seconds": state.refresh_every.as_secs_f64(),
        "last_success_seconds_ago": seconds(health.last_success),
        "consecutive_failures": health.consecutive_failures,
        "failing_for_seconds": seconds(health.failing_since),
        "last_error": health.last_error,
    });
    let mut response = (code, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    response
}
