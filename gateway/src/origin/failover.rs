//! Which origins may be tried: a circuit breaker per origin, pure, with time as a parameter.
//!
//! ```text
//!            unreachable, or SERVER_ERRORS_TO_OPEN 5xx in a row
//!   Closed ─────────────────────────────────────────────────────► Open { until }
//!     ▲                                                              │ now >= until:
//!     │ the probe (or any request) succeeds                         ▼ one request is let through
//!     └──────────────────────────────────────────────────── Probing { expires }
//!                                 the probe fails: Open again ──────┘
//! ```
//!
//! Thresholds: an origin that cannot be reached (no connection, or no response head within the
//! timeout) opens its circuit at once. That is evidence about the host, not the request, and
//! each further try costs a client up to a full timeout before failing over. A 5xx answer is
//! weaker evidence: one object can fail on its own (a damaged blob gives 500) and a busy store
//! sheds load with an occasional 503, so [`SERVER_ERRORS_TO_OPEN`] consecutive ones are needed.
//! Any success in between resets the count, so a store that fails everything still opens within
//! three requests, while one bad key cannot turn the whole group over to the failover.

use std::time::{Duration, Instant};

/// Consecutive 5xx answers (with no success between) that open a closed circuit.
pub const SERVER_ERRORS_TO_OPEN: u32 = 3;

/// Why an attempt counts against its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No connection, or no response head in time: opens the circuit at once.
    Unreachable,
    /// A 5xx answer, or a connection that broke mid-exchange: opens it after
    /// [`SERVER_ERRORS_TO_OPEN`] in a row.
    Failing,
}

/// Whether an answer's status counts against the origin (and makes `fetch` fail over).
/// 501 does not: a store that does not implement an operation is healthy, and the next origin
/// would answer the same.
pub fn is_failure(status: http::StatusCode) -> bool {
    status.is_server_error() && status != http::StatusCode::NOT_IMPLEMENTED
}

/// What [`Circuit::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: requests flow.
    Pass,
    /// Open long enough: this request is the one probe.
    Probe,
    /// Open, or a probe is already in flight: skip this origin.
    Refuse,
}

/// A change of state worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Closed → open: requests go elsewhere for a while.
    Opened,
    /// Open or probing → closed: the origin answers again.
    Recovered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight. Should it never report (an upload sent through can take long), another
    /// may go after `expires`, so a circuit cannot stay shut on a lost probe.
    Probing {
        expires: Instant,
    },
}

/// One origin's circuit. Callers keep it behind a lock and never hold that across an await.
#[derive(Debug)]
pub struct Circuit {
    state: State,
}

impl Default for Circuit {
    fn default() -> Circuit {
        Circuit {
            state: State::Closed { failures: 0 },
        }
    }
}

impl Circuit {
    /// May a request go now? Claims the probe when the circuit has been open for its time;
    /// `probe_allowance` is how long that probe may take before another one is let through.
    pub fn admit(&mut self, now: Instant, probe_allowance: Duration) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Pass,
            State::Open { until } | State::Probing { expires: until } if now >= until => {
                self.state = State::Probing {
                    expires: now + probe_allowance,
                };
                Admission::Probe
            }
            State::Open { .. } | State::Probing { .. } => Admission::Refuse,
        }
    }

    /// An answer that does not count against the origin. Closes the circuit whatever its state:
    /// the origin just proved it serves.
    pub fn succeeded(&mut self) -> Option<Transition> {
        let was_closed = matches!(self.state, State::Closed { .. });
        self.state = State::Closed { failures: 0 };
        (!was_closed).then_some(Transition::Recovered)
    }

    /// An attempt that failed with `fault` at `now`; an open circuit stays open `retry_after`.
    pub fn failed(
        &mut self,
        fault: Fault,
        now: Instant,
        retry_after: Duration,
    ) -> Option<Transition> {
        let open = State::Open {
            until: now + retry_after,
        };
        match self.state {
            State::Closed { failures } => {
                let failures = failures + 1;
                if fault == Fault::Unreachable || failures >= SERVER_ERRORS_TO_OPEN {
                    self.state = open;
                    Some(Transition::Opened)
                } else {
                    self.state = State::Closed { failures };
                    None
                }
            }
            // A failed probe, or a request sent anyway because every circuit was open.
            State::Open { .. } | State::Probing { .. } => {
                self.state = open;
                None
            }
        }
    }

    /// The probe ended without telling anything about the origin (the caller went away, the
    /// client's body failed): the next request may probe at once.
    pub fn abandoned(&mut self, now: Instant) {
        if let State::Probing { .. } = self.state {
            self.state = State::Open { until: now };
        }
    }

    /// Open or probing: the origin has not proved itself since it last failed.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY_AFTER: Duration = Duration::from_secs(5);
    const PROBE: Duration = Duration::from_secs(10);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_unreachable_origin_opens_at_once_and_probes_once_after_retry_after() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        assert_eq!(c.admit(t0, PROBE), Admission::Pass);
        assert_eq!(
            c.failed(Fault::Unreachable, t0, RETRY_AFTER),
            Some(Transition::Opened)
        );
        assert!(c.is_open());
        assert_eq!(c.admit(t0 + secs(4), PROBE), Admission::Refuse);

        let t1 = t0 + RETRY_AFTER;
        assert_eq!(c.admit(t1, PROBE), Admission::Probe);
        assert_eq!(c.admit(t1, PROBE), Admission::Refuse, "one probe at a time");
        assert_eq!(
            c.failed(Fault::Unreachable, t1, RETRY_AFTER),
            None,
            "still down: no new log"
        );
        assert_eq!(
            c.admit(t1 + secs(1), PROBE),
            Admission::Refuse,
            "a failed probe reopens"
        );

        let t2 = t1 + RETRY_AFTER;
        assert_eq!(c.admit(t2, PROBE), Admission::Probe);
        assert_eq!(c.succeeded(), Some(Transition::Recovered));
        assert!(!c.is_open());
        assert_eq!(c.admit(t2, PROBE), Admission::Pass);
        assert_eq!(
            c.admit(t2, PROBE),
            Admission::Pass,
            "closed: everything passes"
        );
        assert_eq!(c.succeeded(), None, "no transition while closed");
    }

    #[test]
    fn server_errors_open_only_when_consecutive() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        for _ in 1..SERVER_ERRORS_TO_OPEN {
            assert_eq!(c.failed(Fault::Failing, t0, RETRY_AFTER), None);
        }
        assert_eq!(c.succeeded(), None, "a success resets the count");
        for _ in 1..SERVER_ERRORS_TO_OPEN {
            assert_eq!(c.failed(Fault::Failing, t0, RETRY_AFTER), None);
            assert!(!c.is_open());
        }
        assert_eq!(
            c.failed(Fault::Failing, t0, RETRY_AFTER),
            Some(Transition::Opened)
        );
        assert_eq!(c.admit(t0, PROBE), Admission::Refuse);
        // A half-open circuit reopens on one failure, whatever its kind.
        assert_eq!(c.admit(t0 + RETRY_AFTER, PROBE), Admission::Probe);
        assert_eq!(
            c.failed(Fault::Failing, t0 + RETRY_AFTER, RETRY_AFTER),
            None
        );
        assert_eq!(
            c.admit(t0 + RETRY_AFTER + secs(1), PROBE),
            Admission::Refuse
        );
    }

    #[test]
    fn a_lost_or_abandoned_probe_does_not_keep_the_circuit_shut() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        c.failed(Fault::Unreachable, t0, RETRY_AFTER);
        let t1 = t0 + RETRY_AFTER;
        assert_eq!(c.admit(t1, PROBE), Admission::Probe);
        assert_eq!(c.admit(t1 + PROBE - secs(1), PROBE), Admission::Refuse);
        assert_eq!(
            c.admit(t1 + PROBE, PROBE),
            Admission::Probe,
            "the first probe never reported"
        );

        c.abandoned(t1 + PROBE);
        assert!(c.is_open(), "abandoning proves nothing");
        assert_eq!(
            c.admit(t1 + PROBE, PROBE),
            Admission::Probe,
            "the next request probes"
        );
    }

    #[test]
    fn failures_while_open_push_the_probe_back_and_abandon_is_a_no_op_when_not_probing() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        c.abandoned(t0);
        assert_eq!(c.admit(t0, PROBE), Admission::Pass);
        c.failed(Fault::Unreachable, t0, RETRY_AFTER);
        // Sent anyway (every circuit open) and failed again later.
        assert_eq!(
            c.failed(Fault::Unreachable, t0 + secs(3), RETRY_AFTER),
            None
        );
        assert_eq!(c.admit(t0 + RETRY_AFTER, PROBE), Admission::Refuse);
        assert_eq!(c.admit(t0 + secs(3) + RETRY_AFTER, PROBE), Admission::Probe);
    }

    #[test]
    fn not_implemented_is_an_answer_not_a_failure() {
        assert!(is_failure(http::StatusCode::INTERNAL_SERVER_ERROR));
        assert!(is_failure(http::StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_failure(http::StatusCode::GATEWAY_TIMEOUT));
        assert!(!is_failure(http::StatusCode::NOT_IMPLEMENTED));
        assert!(!is_failure(http::StatusCode::NOT_FOUND));
        assert!(!is_failure(http::StatusCode::OK));
    }
}
