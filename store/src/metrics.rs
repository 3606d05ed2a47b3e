//! Prometheus metrics for one server instance (a registry per instance, no globals, so several
//! servers in one process keep their own counts).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResumedLabel {
    resumed: bool,
}

/// TLS handshakes a server completed, by whether they resumed an earlier session: how often
/// clients pay a full handshake (a handle the accept loop counts into).
#[derive(Clone, Default)]
pub struct TlsHandshakes(Family<ResumedLabel, Counter>);

impl TlsHandshakes {
    pub fn count(&self, resumed: bool) {
        self.0.get_or_create(&ResumedLabel { resumed }).inc();
    }
}

pub struct Metrics {
    registry: Registry,
    tls_handshakes: TlsHandshakes,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabel, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    feed_subscribers: Gauge,
    feed_events: Gauge,
}

impl Metrics {
    /// Metrics named `<prefix>_requests_total`, `<prefix>_request_duration_seconds`,
    /// `<prefix>_bytes_received_total`, `<prefix>_bytes_sent_total`,
    /// `<prefix>_feed_subscribers`, `<prefix>_feed_events_retained`,
    /// `<prefix>_tls_handshakes_total{resumed}`.
    pub fn new(prefix: &str) -> Self {
        let mut registry = Registry::with_prefix(prefix);
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OperationLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        registry.register(
            "requests",
            "Requests by operation and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to response headers by operation",
            latency.clone(),
        );
        registry.register(
            "bytes_received",
            "Request body bytes received",
            bytes_in.clone(),
        );
        registry.register("bytes_sent", "Response body bytes sent", bytes_out.clone());
        let (feed_subscribers, feed_events) = (Gauge::default(), Gauge::default());
        registry.register(
            "feed_subscribers",
            "Readers of the change feed connected now",
            feed_subscribers.clone(),
        );
        registry.register(
            "feed_events_retained",
            "Events the change feed keeps",
            feed_events.clone(),
        );
        let tls_handshakes = TlsHandshakes::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes completed, by whether they resumed a session",
            tls_handshakes.0.clone(),
        );
        Metrics {
            registry,
            tls_handshakes,
            requests,
            latency,
            bytes_in,
            bytes_out,
            feed_subscribers,
            feed_events,
        }
    }

    /// The change feed's state, set as a page is rendered.
    pub fn set_feed(&self, subscribers: usize, retained: u64) {
        self.feed_subscribers.set(subscribers as i64);
        self.feed_events.set(retained as i64);
    }

    /// Operation names are static (AWS operation names): labels cost no allocation.
    pub fn observe(&self, operation: &'static str, status: u16, elapsed: Duration, bytes_out: u64) {
        self.requests
            .get_or_create(&RequestLabels { operation, status })
            .inc();
        self.latency
            .get_or_create(&OperationLabel { operation })
            .observe(elapsed.as_secs_f64());
        self.bytes_out.inc_by(bytes_out);
    }

    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.inc_by(n);
    }

    /// The received-bytes counter itself, for a body stream that outlives a borrow.
    pub fn bytes_in(&self) -> Counter {
        self.bytes_in.clone()
    }

    /// The handshake counter, for the accept loop ([`crate::server::serve`]).
    pub fn tls_handshakes(&self) -> TlsHandshakes {
        self.tls_handshakes.clone()
    }

    /// The registry for components that add their own metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Prometheus text exposition format.
    /// The page in OpenMetrics text (it ends in `# EOF`), served as [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The content type of every `/_outpost/metrics` page (store and edge): what the encoder
/// writes is OpenMetrics text, and Prometheus reads it as such.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
