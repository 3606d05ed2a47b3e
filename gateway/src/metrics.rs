//! Edge metrics: the store's request metrics under the `outpost_edge` prefix, plus cache
//! outcomes, origin requests, cache sizes and the change feed's followers.

use std::sync::Arc;
use std::time::Duration;

use outpost_store::metrics::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::cache::Cache;
use crate::cache::outcome::CacheOutcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OriginLabel {
    /// The follower's number (`feed.rs`): the S3 face's origins first, then the sites'.
    pub origin: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// The change feed's followers (`feed.rs`).
#[derive(Default)]
pub struct FeedMetrics {
    pub last_seq: Family<OriginLabel, Gauge>,
    pub saved_seq: Family<OriginLabel, Gauge>,
    pub lag_seconds: Family<OriginLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub applied: Family<KindLabel, Counter>,
    pub reconnects: Family<OriginLabel, Counter>,
    pub resyncs: Family<OriginLabel, Counter>,
}

pub struct EdgeMetrics {
    pub requests: Metrics,
    pub feed: FeedMetrics,
    outcomes: Family<OutcomeLabel, Counter>,
    bypasses: Family<ReasonLabel, Counter>,
    origin_requests: Family<StatusLabel, Counter>,
    origin_latency: Histogram,
    cache_bytes: Family<TierLabel, Gauge>,
    cache_entries: Family<TierLabel, Gauge>,
    fills: Gauge,
    /// Records of S3 event notifications, by outcome (`applied`, `ignored`).
    notification_records: Family<OutcomeLabel, Counter>,
}

impl EdgeMetrics {
    pub fn new(cache: &Cache) -> EdgeMetrics {
        let mut requests = Metrics::new("outpost_edge");
        let outcomes = Family::<OutcomeLabel, Counter>::default();
        let bypasses = Family::<ReasonLabel, Counter>::default();
        let origin_requests = Family::<StatusLabel, Counter>::default();
        let origin_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let cache_bytes = Family::<TierLabel, Gauge>::default();
        let cache_entries = Family::<TierLabel, Gauge>::default();
        let fills = Gauge::default();
        let r = requests.registry_mut();
        r.register(
            "cache_requests",
            "GET/HEAD requests by cache outcome (Hit, Miss, RefreshHit, Stale, Bypass)",
            outcomes.clone(),
        );
        r.register(
            "cache_bypasses",
            "Bypass outcomes by why the answer was not stored (no-store, private, status, ...)",
            bypasses.clone(),
        );
        r.register(
            "origin_requests",
            "Requests the edge sent to origins, by status (0 = no answer)",
            origin_requests.clone(),
        );
        r.register(
            "origin_duration_seconds",
            "Time to an origin's response head",
            origin_latency.clone(),
        );
        r.register(
            "cache_bytes",
            "Bytes held per cache tier",
            cache_bytes.clone(),
        );
        r.register(
            "cache_entries",
            "Entries per cache tier",
            cache_entries.clone(),
        );
        r.register("fills_in_flight", "Origin fills running", fills.clone());
        r.register(
            "cache_evictions",
            "Bodies dropped from a cache tier to make room",
            cache.evictions.clone(),
        );
        let feed = FeedMetrics::default();
        r.register(
            "feed_last_seq",
            "Last sequence number of an origin's change feed applied",
            feed.last_seq.clone(),
        );
        r.register(
            "feed_saved_seq",
            "Last sequence number of an origin's change feed saved with the disk cache (where a restart resumes)",
            feed.saved_seq.clone(),
        );
        r.register(
            "feed_lag_seconds",
            "How far behind an origin's commits the last event applied was",
            feed.lag_seconds.clone(),
        );
        r.register(
            "feed_events_applied",
            "Change feed events applied, by kind",
            feed.applied.clone(),
        );
        r.register(
            "feed_reconnects",
            "Change feed connections that ended and were opened again",
            feed.reconnects.clone(),
        );
        r.register(
            "feed_resyncs",
            "Times an origin's entries were marked for revalidation: events missed",
            feed.resyncs.clone(),
        );
        let notification_records = Family::<OutcomeLabel, Counter>::default();
        r.register(
            "notification_records",
            "Records of S3 event notifications (POST /_outpost/notifications), applied or ignored",
            notification_records.clone(),
        );
        EdgeMetrics {
            requests,
            feed,
            outcomes,
            bypasses,
            origin_requests,
            origin_latency,
            cache_bytes,
            cache_entries,
            fills,
            notification_records,
        }
    }

    /// One notification's records: `applied` purged their key, `ignored` named nothing to purge.
    pub fn notification_records(&self, applied: u64, ignored: u64) {
        for (outcome, n) in [("applied", applied), ("ignored", ignored)] {
            self.notification_records
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(n);
        }
    }

    pub fn outcome(&self, outcome: CacheOutcome) {
        self.outcomes
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
        if let Some(reason) = outcome.reason() {
            self.bypasses.get_or_create(&ReasonLabel { reason }).inc();
        }
    }

    pub fn origin(&self, status: Option<u16>, elapsed: Duration) {
        self.origin_requests
            .get_or_create(&StatusLabel {
                status: status.unwrap_or(0),
            })
            .inc();
        self.origin_latency.observe(elapsed.as_secs_f64());
    }

    /// Prometheus text, with cache sizes sampled now.
    pub fn render(&self, cache: &Arc<Cache>) -> String {
        for (tier, (entries, bytes)) in ["heads", "memory", "disk"].into_iter().zip(cache.sizes()) {
            let label = TierLabel { tier };
            self.cache_entries.get_or_create(&label).set(entries as i64);
            self.cache_bytes.get_or_create(&label).set(bytes as i64);
        }
        self.fills.set(cache.fills.len() as i64);
        self.requests.render()
    }
}
