//! `/metrics`: what the service is doing, in the Prometheus/OpenMetrics
//! text format (`prometheus-client`: no HTTP server of its own, no
//! protobuf; the route is ours).
//!
//! Cardinality is bounded by construction: requests are labelled with the
//! route *template* (`/sdk/{*path}`, never the raw path), one of four
//! method names and the status code; the `latest` gauge has one series.
//! Values that are a function of time (index age) or of the loaded index
//! (`latest`, size) are computed when scraped, so they cannot go stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use super::error::NO_STORE;
use super::health::Health;
use super::state::{Loaded, ServeState};

/// `Content-Type` of `/metrics` (what `prometheus_client::encoding::text` writes).
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Store calls that failed while answering requests or revalidating, process-wide
/// (errors are raised where no state is at hand; one service runs per process).
static STORE_ERRORS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Counts one failed store call.
pub(super) fn store_error() {
    STORE_ERRORS.inc();
}

/// Files refused or aborted because their bytes, or what the store records
/// about them, do not match their published integrity (files.rs), process-wide.
static INTEGRITY_FAILURES: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Counts one file refused or aborted for not matching its integrity.
pub(super) fn integrity_failure() {
    INTEGRITY_FAILURES.inc();
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// Every metric of one service instance.
#[derive(Debug)]
pub(super) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Latency>,
    bytes_sent: Family<RouteLabels, Counter>,
    connections: Gauge,
    requests_in_flight: Gauge,
    index_age: Gauge<f64, AtomicU64>,
    index_bytes: Gauge,
    refreshes: Family<OutcomeLabels, Counter>,
    latest: Family<VersionLabels, Gauge>,
    /// Each route's series, looked up in the families once.
    routes: [OnceLock<(&'static str, RouteSeries)>; ROUTE_SLOTS],
}

/// Routes whose series are kept at hand (the service has 14 route labels;
/// any beyond are looked up in the families each time).
const ROUTE_SLOTS: usize = 16;

/// One route's series, taken from the families on first use and kept:
/// `Family::get_or_create` takes the family's lock and hashes the labels,
/// and every request made three such calls. The handles share their
/// counts with the families' (the families are never cleared), so
/// `/metrics` renders the same either way.
#[derive(Debug, Default)]
struct RouteSeries {
    latency: OnceLock<Latency>,
    bytes_sent: OnceLock<Counter>,
    /// `requests` for GET 200, GET 304, HEAD 200 and HEAD 304: nearly every request.
    common: [OnceLock<Counter>; 4],
}

/// Request latency by bucket, updated with atomics only.
///
/// prometheus-client's `Histogram` takes a mutex per observation; with
/// every request of both worker threads observing, that mutex was
/// contended (7,205 futex calls in two seconds of load against 616 for a
/// bare hyper server). Buckets: 0.5 ms to ~16 s, doubling, then `+Inf`.
///
/// A handle: clones share the counts (as prometheus-client's `Counter`
/// does), so a route's series can be kept beside its family.
#[derive(Debug, Default, Clone)]
struct Latency(Arc<LatencyCounts>);

#[derive(Debug, Default)]
struct LatencyCounts {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS + 1],
    sum_nanos: AtomicU64,
}

/// Finite latency buckets.
const LATENCY_BUCKETS: usize = 16;
/// The first bucket's upper bound, in seconds; each next one doubles it.
const FIRST_BUCKET: f64 = 0.0005;

impl Latency {
    /// The upper bound of bucket `i`, in seconds (`+Inf` for the last).
    fn bound(i: usize) -> f64 {
        if i < LATENCY_BUCKETS { FIRST_BUCKET * f64::from(1u32 << i) } else { f64::INFINITY }
    }

    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = (0..LATENCY_BUCKETS).find(|&i| seconds <= Self::bound(i)).unwrap_or(LATENCY_BUCKETS);
        self.0.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.0.sum_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> =
            self.0.buckets.iter().enumerate().map(|(i, n)| (Self::bound(i), n.load(Ordering::Relaxed))).collect();
        // The count is the buckets' sum, so `+Inf` and `_count` always agree.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(self.0.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl Metrics {
    pub(super) fn new() -> Self {
        let metrics = Metrics {
            registry: Registry::with_prefix("sdk_cdn"),
            requests: Family::default(),
            latency: Family::default(),
            bytes_sent: Family::default(),
            connections: Gauge::default(),
            requests_in_flight: Gauge::default(),
            index_age: Gauge::default(),
            index_bytes: Gauge::default(),
            refreshes: Family::default(),
            latest: Family::default(),
            routes: Default::default(),
        };
        let mut registry = metrics.registry;
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            metrics.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route template",
            metrics.latency.clone(),
        );
        registry.register(
            "http_response_body_bytes",
            "Response body bytes sent (Content-Length; none for HEAD and 304), by route template",
            metrics.bytes_sent.clone(),
        );
        registry.register("http_connections_open", "TCP connections being served", metrics.connections.clone());
        registry.register("http_requests_in_flight", "Requests being answered", metrics.requests_in_flight.clone());
        registry.register(
            "index_age_seconds",
            "Seconds since the in-memory SRI index was last confirmed current against the store (NaN: never)",
            metrics.index_age.clone(),
        );
        registry.register(
            "index_size_bytes",
            "Size of the SRI index in service (0: none)",
            metrics.index_bytes.clone(),
        );
        registry.register(
            "index_refreshes",
            "Revalidations of the SRI index against the store, by outcome (success, failure)",
            metrics.refreshes.clone(),
        );
        registry.register(
            "latest_version",
            "The version latest/ serves according to the index in service (value 1; label version)",
            metrics.latest.clone(),
        );
        registry.register("store_errors", "Store calls that failed (requests and revalidations)", STORE_ERRORS.clone());
        registry.register(
            "integrity_failures",
            "Files refused (502) or aborted mid-body because their bytes do not match their published integrity",
            INTEGRITY_FAILURES.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// One answered request.
    pub(super) fn request(&self, route: &'static str, method: &Method, status: u16, took: Duration, body_bytes: u64) {
        let labels = RequestLabels { route, method: method_label(method), status };
        let Some(series) = self.series(route) else {
            self.requests.get_or_create(&labels).inc();
            let route = RouteLabels { route };
            self.latency.get_or_create(&route).observe(took);
            self.bytes_sent.get_or_create(&route).inc_by(body_bytes);
            return;
        };
        let common = match (labels.method, status) {
            ("GET", 200) => Some(0),
            ("GET", 304) => Some(1),
            ("HEAD", 200) => Some(2),
            ("HEAD", 304) => Some(3),
            _ => None,
        };
        match common {
            Some(i) => kept(&series.common[i], &self.requests, &labels).inc(),
            None => self.requests.get_or_create(&labels).inc(),
        };
        let route = RouteLabels { route };
        kept(&series.latency, &self.latency, &route).observe(took);
        kept(&series.bytes_sent, &self.bytes_sent, &route).inc_by(body_bytes);
    }

    /// `route`'s kept series: its slot, or the first free one; `None` once all are taken by other routes.
    fn series(&self, route: &'static str) -> Option<&RouteSeries> {
        self.routes.iter().find_map(|slot| {
            let (claimed, series) = slot.get_or_init(|| (route, RouteSeries::default()));
            (*claimed == route).then_some(series)
        })
    }

    pub(super) fn refreshed(&self, ok: bool) {
        self.refreshes.get_or_create(&OutcomeLabels { outcome: if ok { "success" } else { "failure" } }).inc();
    }

    pub(super) fn connections(&self) -> &Gauge {
        &self.connections
    }

    pub(super) fn requests_in_flight(&self) -> &Gauge {
        &self.requests_in_flight
    }

    /// The text exposition, with the time- and index-dependent values as of now.
    pub(super) fn render(&self, health: &Health, loaded: &Loaded) -> String {
        self.index_age.set(health.last_success.map_or(f64::NAN, |at| at.elapsed().as_secs_f64()));
        let (size, latest) = match loaded {
            Loaded::Index(snapshot) => (
                snapshot.identity().bytes.len(),
                snapshot.index.version.as_ref().map_or_else(|| "none".to_string(), ToString::to_string),
            ),
            Loaded::Nothing | Loaded::NoIndex | Loaded::Missing { .. } => (0, "none".to_string()),
        };
        self.index_bytes.set(i64::try_from(size).unwrap_or(i64::MAX));
        self.latest.clear();
        self.latest.get_or_create(&VersionLabels { version: latest }).set(1);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<Arc<ServeState>>) -> Response {
    let text = state.metrics.render(&state.health(), &state.loaded());
    let mut response = text.into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    out.insert(header::CACHE_CONTROL, NO_STORE);
    response
}

/// Methods as a closed set of label values.
/// `slot`'s handle, taken from `family` the first time.
fn kept<'a, L, M>(slot: &'a OnceLock<M>, family: &Family<L, M>, labels: &L) -> &'a M
where
    L: Clone + std::hash::Hash + Eq,
    M: Clone + Default,
{
    slot.get_or_init(|| family.get_or_create(labels).clone())
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_template_and_rendered() {
        let metrics = Metrics::new();
        metrics.request("/sdk/{*path}", &Method::GET, 200, Duration::from_millis(3), 10);
        metrics.request("/sdk/{*path}", &Method::from_bytes(b"PROPFIND").unwrap(), 405, Duration::ZERO, 0);
        let text = metrics.render(&Health::default(), &Loaded::Nothing);
        assert!(
            text.contains(r#"sdk_cdn_http_requests_total{route="/sdk/{*path}",method="GET",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"method="other",status="405""#), "{text}");
        assert!(text.contains(r#"sdk_cdn_http_response_body_bytes_total{route="/sdk/{*path}"} 10"#), "{text}");
        assert!(text.contains("sdk_cdn_index_age_seconds NaN"), "{text}");
        assert!(text.contains(r#"sdk_cdn_latest_version{version="none"} 1"#), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// Each route's series are kept beside the families after their first
    /// use; what is counted through them must be what `/metrics` renders,
    /// also for more routes than there are slots.
    #[test]
    fn kept_series_count_into_the_rendered_families() {
        let metrics = Metrics::new();
        let routes: Vec<&'static str> =
            (0..ROUTE_SLOTS + 3).map(|n| &*Box::leak(format!("/route{n}").into_boxed_str())).collect();
        for _ in 0..3 {
            for route in &routes {
                metrics.request(route, &Method::HEAD, 304, Duration::from_millis(1), 7);
                metrics.request(route, &Method::GET, 404, Duration::from_secs(1), 5);
            }
        }
        let text = metrics.render(&Health::default(), &Loaded::Nothing);
        for route in [routes[0], routes[ROUTE_SLOTS + 2]] {
            let line = |l: &str| text.lines().any(|line| line == l);
            assert!(
                line(&format!(r#"sdk_cdn_http_requests_total{{route="{route}",method="HEAD",status="304"}} 3"#)),
                "{text}"
            );
            assert!(
                line(&format!(r#"sdk_cdn_http_requests_total{{route="{route}",method="GET",status="404"}} 3"#)),
                "{text}"
            );
            assert!(line(&format!(r#"sdk_cdn_http_request_duration_seconds_count{{route="{route}"}} 6"#)), "{text}");
            assert!(line(&format!(r#"sdk_cdn_http_response_body_bytes_total{{route="{route}"}} 36"#)), "{text}");
        }
    }

    /// Our lock-free latency histogram renders exactly as the library's
    /// own `Histogram` with the same buckets and observations would.
    #[test]
    fn latency_renders_like_the_library_histogram() {
        use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
        let render = |registry: Registry| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        };
        // First bucket, a bucket's exact bound, the middle, the last finite bucket, beyond it.
        let seen = [0, 1, 125, 250, 500, 16_384, 64_000].map(Duration::from_millis);
        let ours = Latency::default();
        let theirs = Histogram::new(exponential_buckets(FIRST_BUCKET, 2.0, LATENCY_BUCKETS as u16));
        for took in seen {
            ours.observe(took);
            theirs.observe(took.as_secs_f64());
        }
        let (mut a, mut b) = (Registry::default(), Registry::default());
        a.register("latency", "h", ours);
        b.register("latency", "h", theirs);
        let (ours, theirs) = (render(a), render(b));
        assert_eq!(ours, theirs);
        assert!(ours.contains(r#"latency_bucket{le="+Inf"} 7"#) && ours.contains("latency_count 7"), "{ours}");
    }
}
