//! Outpost store: an S3-compatible object store on local disk.
//!
//! ```text
//!  TCP ─► server.rs (hyper, lanes, limits) ─► s3/ (serve ─► context ─► ops) ─► engine/
//!                                              protocol, never touches disk     index + blobs
//! ```
//!
//! `s3::serve` (request id, errors, metrics, access log, panic guard) and `s3::context` (route
//! ─► authenticate ─► authorise ─► verified body) are the protocol kit: the edge answers
//! through the same two steps, with its own `s3::context::FrontEnd`.
//!
//! Modules: [`access`] (who may do what: the one access decision), [`admin`] (the admin API: keys and grants), [`app`] (assembly: engine + protocol + admin endpoints), [`config`], [`error`]
//! (the one S3 error type), [`feed`] (the change feed and invalidations, for edges), [`engine`] (storage: index + blobs, its own error kinds, durable
//! writes for the store and the edge), [`s3`] (protocol: routing, auth, operations, XML; the
//! engine's error kinds become S3 codes in `s3/engine_errors.rs`), [`server`] (accept loop,
//! lanes: a thread and event loop per core, connection caps),
//! [`metrics`], [`secret`] (a secret key that never prints), [`fuzzing`] (entry points of the fuzz targets and their CI smoke run).

pub mod access;
pub mod admin;
pub mod app;
pub mod config;
pub mod engine;
pub mod error;
pub mod feed;
pub mod fuzzing;
pub mod metrics;
pub mod s3;
pub mod secret;
pub mod server;
pub mod tls;

pub use app::{
    Store, credentials_path, root_credentials, saved_credentials, shell_exports, shell_quote,
};
pub use config::StoreConfig;
