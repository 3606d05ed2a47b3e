//! Outpost store: an S3-compatible object store on local disk.
//!
//! ```text
//!  TCP ─► server.rs (hyper, limits, timeouts) ─► s3/ (route ─► auth ─► ops) ─► engine/
//!                                                 protocol, never touches disk   index + blobs
//! ```
//!
//! Modules: [`error`] (the one error type), [`engine`] (storage), [`s3`] (protocol).

pub mod engine;
pub mod error;
pub mod s3;
