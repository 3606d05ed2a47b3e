//! What the cache did for a request ([`CacheOutcome`]: the `X-Cache` header, a log field and a
//! metric label) and why an answer was not stored ([`NotCacheable`]).

/// What happened to a request: the `X-Cache` header, a log field and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Served fresh from the cache.
    Hit,
    /// Answered from the origin: not stored, or the stored copy had changed.
    Miss,
    /// Expired, revalidated with the origin (304), served from the cache.
    RefreshHit,
    /// Served expired: within stale-while-revalidate, or the origin failed (stale-if-error).
    Stale,
    /// Not cacheable, for this reason: answered from the origin and not stored. (CloudFront
    /// says `Miss from cloudfront` for these too; we name them apart, so an operator sees at
    /// once which answers never will be hits, and why: the access log's `cache_reason` and
    /// the `outpost_edge_cache_bypasses_total{reason}` metric.)
    Bypass(NotCacheable),
}

impl CacheOutcome {
    /// The bare name, for logs and metric labels: `Hit`, `Miss`, `RefreshHit`, `Stale`,
    /// `Bypass`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "Hit",
            CacheOutcome::Miss => "Miss",
            CacheOutcome::RefreshHit => "RefreshHit",
            CacheOutcome::Stale => "Stale",
            CacheOutcome::Bypass(_) => "Bypass",
        }
    }

    /// Why the answer was not stored, for a Bypass (log field, metric label).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            CacheOutcome::Bypass(reason) => Some(reason.as_str()),
            _ => None,
        }
    }

    /// The `X-Cache` header value, as CloudFront words it: `Hit from outpost`.
    pub fn x_cache(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "Hit from outpost",
            CacheOutcome::Miss => "Miss from outpost",
            CacheOutcome::RefreshHit => "RefreshHit from outpost",
            CacheOutcome::Stale => "Stale from outpost",
            CacheOutcome::Bypass(_) => "Bypass from outpost",
        }
    }
}

/// Why a response is not stored. Shown in logs and used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCacheable {
    /// `Cache-Control: no-store` (RFC 9111 5.2.2.5).
    NoStore,
    /// `Cache-Control: private`, with or without field names: we do not strip single fields,
    /// so the safe reading is the whole response (RFC 9111 5.2.2.7).
    Private,
    /// `Vary: *`: no later request could ever match it (RFC 9111 4.1).
    VaryAll,
    /// A 206 is one client's range. Fills store ranges they asked for as parts of the 200.
    PartialContent,
    /// No `Content-Length`: the size a stored body must have is not known.
    UnknownLength,
    /// A status we never store: 5xx and everything not listed on [`freshness`].
    Status(u16),
    /// Stale on arrival, with no stale grace and no validator to revalidate it with: a stored
    /// copy could never answer a request.
    ZeroTtl,
}

impl NotCacheable {
    /// A fixed label for logs and metrics (the status code is left out to bound cardinality).
    pub fn as_str(self) -> &'static str {
        match self {
            NotCacheable::NoStore => "no-store",
            NotCacheable::Private => "private",
            NotCacheable::VaryAll => "vary-all",
            NotCacheable::PartialContent => "partial-content",
            NotCacheable::Status(_) => "status",
            NotCacheable::UnknownLength => "unknown-length",
            NotCacheable::ZeroTtl => "zero-ttl",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_and_reason_names() {
        let outcomes = [
            (CacheOutcome::Hit, "Hit"),
            (CacheOutcome::Miss, "Miss"),
            (CacheOutcome::RefreshHit, "RefreshHit"),
            (CacheOutcome::Stale, "Stale"),
            (CacheOutcome::Bypass(NotCacheable::NoStore), "Bypass"),
        ];
        for (outcome, name) in outcomes {
            assert_eq!(outcome.as_str(), name);
            assert_eq!(outcome.x_cache(), format!("{name} from outpost"));
        }
        assert_eq!(NotCacheable::Status(500).as_str(), "status");
        assert_eq!(NotCacheable::NoStore.as_str(), "no-store");
    }
}
