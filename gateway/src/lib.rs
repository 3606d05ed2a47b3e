//! Outpost edge gateway: caches reads like a CDN edge, holds upload parts near the client and
//! forwards everything else to the store.
//!
//! ```text
//!  client ─► admin (router, accept loop) ─► /_outpost/*            (health, ready, metrics, ...)
//!               │
//!               ▼
//!            viewer: a distribution's viewer protocol policy (plain HTTP), HSTS (https)
//!               │
//!               ▼
//!            pipeline: kit's serve ─► Host: a site? ─► site ────────┐
//!               │ (S3 face) kit's context (route, auth, access) ─►   │
//!               │           dispatch                                 │
//!     GET/HEAD object ─► respond ◄───────────────────────────────────┘
//!                          │ cache: object ─► head (fresh? revalidate? stale?) ─► slices ◄─ fills
//!     UploadPart, ListParts, Complete, Abort ─► ops::multipart ─► spool (fsync) ─► workers ─┐
//!     PostObject (browser form, checked by the kit's s3::post) ─► ops::post (a PutObject) ─┤
//!     anything else ─► ops::forward ─────────────────────────────────────────────────────┤
//!                                                                                        ▼
//!                                          origin group (pooled, SigV4, failover) ◄── fills
//! ```
//!
//! Imports point down only: `admin` → `viewer` → `pipeline` → `site` / `respond` / `ops` → `edge` (the
//! shared context) → `cache` / `spool` / `distribution` / `metrics` → `origin` → `config`.
//!
//! Modules: [`access`] (the access decisions the edge makes for its clients, on what the
//! store publishes to its edge key), [`admin`] (router, `/_outpost/*` endpoints, serve),
//! [`viewer`] (viewer protocol policy and HSTS of distributions), [`pipeline`] (the S3 face's
//! request path and its one dispatch), [`respond`] (answers from cached heads and slices),
//! [`site`] (serving sites to browsers) with [`website`] (static-website rules), [`ops`]
//! ([`ops::multipart`]: the client side of uploads; [`ops::post`]: browser form uploads,
//! relayed as a PutObject; [`ops::forward`]: everything passed to the origin unchanged), [`edge`] (the shared context), [`spool`] (parts held on disk, pushed to
//! the store by its workers), [`cache`] (objects, outcomes, policy, keys, tiers, collapsing,
//! reading, and the records that keep the disk tier across restarts), [`distribution`] (Host → site, path → behaviour), [`origin`] (client toward the
//! stores), [`cors`] (buckets' CORS rules and preflight answers, learnt from the origin),
//! [`compress`], [`metrics`], [`config`]; [`feed`] follows each origin store's change feed
//! and drops exactly what changed; [`notifications`] takes S3 event notifications from
//! origins that are not Outpost stores and drops the same.
//!
//! Words: *forward* = pass a client's request to the origin as it is (re-signed); *spool* = the
//! upload parts held at the edge; the spool's workers *push* spooled parts to the store.
//! Errors are the store's S3 error type: the edge speaks the same API.

pub mod access;
pub mod admin;
pub mod cache;
pub mod compress;
pub mod config;
pub mod cors;
pub mod distribution;
pub mod edge;
pub mod feed;
pub mod metrics;
pub mod notifications;
pub mod ops;
pub mod origin;
pub mod pipeline;
pub mod respond;
pub mod site;
pub mod spool;
pub mod viewer;
pub mod website;

pub use config::EdgeConfig;
pub use edge::Edge;
