//! A circuit breaker per origin, with time as a parameter.
//!
//! One failure opens it: for an edge a failed origin costs every request a connect timeout,
//! and the next origin is usually healthy, so waiting for several failures only adds latency.
//! After `retry_after` one probe is let through (half-open); its success closes the circuit,
//! its failure opens it again.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Circuit {
    /// Set while open: when a probe may go.
    open_until: Option<Instant>,
    /// A probe is in flight (half-open): others keep away until it reports.
    probing: bool,
}

impl Circuit {
    /// Whether a request may be sent now; claims the probe slot when half-open.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.open_until {
            None => true,
            Some(until) if now >= until && !self.probing => {
                self.probing = true;
                true
            }
            Some(_) => false,
        }
    }

    pub fn record(&mut self, ok: bool, now: Instant, retry_after: Duration) {
        self.probing = false;
        self.open_until = if ok { None } else { Some(now + retry_after) };
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.open_until
            .is_some_and(|until| now < until || self.probing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY_AFTER: Duration = Duration::from_secs(5);

    #[test]
    fn opens_on_failure_probes_once_and_closes_on_success() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        assert!(c.allow(t0));
        c.record(false, t0, RETRY_AFTER);
        assert!(c.is_open(t0));
        assert!(!c.allow(t0 + Duration::from_secs(1)));
        let later = t0 + RETRY_AFTER;
        assert!(c.allow(later), "one probe after the pause");
        assert!(!c.allow(later), "only one");
        c.record(false, later, RETRY_AFTER);
        assert!(
            !c.allow(later + Duration::from_secs(1)),
            "a failed probe reopens"
        );
        let later = later + RETRY_AFTER;
        assert!(c.allow(later));
        c.record(true, later, RETRY_AFTER);
        assert!(!c.is_open(later));
        assert!(
            c.allow(later) && c.allow(later),
            "closed: everything passes"
        );
    }
}
