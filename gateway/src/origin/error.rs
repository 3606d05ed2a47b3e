//! Why a request got no answer from an origin, and what the edge's client is told of it (never
//! the origin's address or the cause: those stay in the edge's log).

use std::time::Duration;

use outpost_store::error::{Code, Error};

use super::client;
use super::failover::Fault;

/// Why a request got no answer from any origin.
#[derive(thiserror::Error, Debug)]
pub enum OriginError {
    /// Every origin tried failed without an answer; the last one tried and why.
    #[error("no origin answered; last tried {origin}: {cause}")]
    Unreachable { origin: String, cause: NoAnswer },
    /// The client's request body failed while it was being sent (the client went away, or
    /// the body failed the edge's checks: the error inside is the body's own). The origin is
    /// not to blame.
    #[error("the request body failed while being sent: {0}")]
    Body(axum::Error),
    /// The request could not be built or signed (a path or header the request cannot carry).
    #[error("could not build the origin request: {0}")]
    Invalid(String),
    /// The edge itself ran short (no file descriptor left for a connection): nothing is known
    /// about the origin, whose circuit is left as it was.
    #[error("the edge is short of local resources: {0}")]
    Local(String),
}

impl OriginError {
    /// The S3 error code the edge's client gets for this failure.
    pub fn code(&self) -> Code {
        match self {
            OriginError::Unreachable {
                cause: NoAnswer::Timeout(_),
                ..
            } => Code::GatewayTimeout,
            // The edge's own shortage: a client retrying shortly may well succeed.
            OriginError::Local(_) => Code::SlowDown,
            _ => Code::ServiceUnavailable,
        }
    }
}

impl OriginError {
    /// The error the edge's client gets: the client body's own failure when the body failed
    /// the edge's checks (chunk signature, payload hash), otherwise [`client_error`] of the
    /// code, with the origin's address and the cause kept in the log.
    pub fn into_client_error(self) -> Error {
        if let OriginError::Body(body) = self {
            // Body layers wrap it in axum errors, one per layer.
            let mut cause = body.into_inner();
            loop {
                cause = match cause.downcast::<Error>() {
                    Ok(checked) => return *checked,
                    Err(other) => match other.downcast::<axum::Error>() {
                        Ok(layer) => layer.into_inner(),
                        Err(other) => {
                            // Its text is a transport's (it may name addresses): logged only.
                            tracing::info!(error = %other, "client body failed");
                            return Error::new(Code::IncompleteBody);
                        }
                    },
                };
            }
        }
        tracing::warn!(error = %self, "origin request failed");
        client_error(self.code())
    }
}

/// What the edge's client is told about an origin failure of kind `code` (the origin's
/// address and the cause stay in the edge's log).
pub fn client_error(code: Code) -> Error {
    let message = match code {
        Code::GatewayTimeout => "The origin did not answer in time.",
        Code::SlowDown => {
            "The edge is short of resources (open connections); please retry shortly."
        }
        _ => "The origin is unreachable.",
    };
    Error::msg(code, message)
}

/// Why one origin gave no answer.
#[derive(thiserror::Error, Debug)]
pub enum NoAnswer {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no response head within {0:?}")]
    Timeout(Duration),
    /// The connection failed after the request started going out.
    #[error("the connection failed mid-request: {0}")]
    Broken(String),
    /// Not the origin's doing: see [`OriginError::Local`].
    #[error("no local resources: {0}")]
    Local(String),
}

impl NoAnswer {
    pub(super) fn of(e: &hyper_util::client::legacy::Error) -> NoAnswer {
        let described = client::describe(e);
        if client::is_local_shortage(e) {
            NoAnswer::Local(described)
        } else if e.is_connect() {
            NoAnswer::Connect(described)
        } else {
            NoAnswer::Broken(described)
        }
    }

    /// What this tells about the origin; None for the edge's own shortage.
    pub(super) fn fault(&self) -> Option<Fault> {
        match self {
            NoAnswer::Connect(_) | NoAnswer::Timeout(_) => Some(Fault::Unreachable),
            // It connected, so the host is there; often a pooled connection the origin closed
            // as the request went out.
            NoAnswer::Broken(_) => Some(Fault::Failing),
            NoAnswer::Local(_) => None,
        }
    }
}
