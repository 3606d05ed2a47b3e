//! Outpost edge gateway: caches reads like a CDN edge and relays writes to the store.
//!
//! ```text
//!  client ─► server (the store's accept loop) ─► pipeline: limits ─► Host: a site? ─► site
//!                                                  │ (S3 face) route ─► auth (store rules)
//!     GET/HEAD object ─► cache: key ─► head (fresh? revalidate? stale?) ─► slices ◄─ fills
//!     UploadPart      ─► spool (fsync) ─► relay workers ───────────────────┐      │
//!     anything else   ─► relay ────────────────────────────────────────────┤      │
//!                                                                          ▼      ▼
//!                                                  origin group (pooled, SigV4, failover)
//! ```
//!
//! Modules: [`app`] (assembly + admin endpoints), [`config`], [`pipeline`] (the S3 face's
//! request path), [`respond`] (answers from the cache), [`relay`] (everything else, to the
//! origin) with [`upload`] (parts spooled at the edge, relayed in the background),
//! [`distribution`] (Host → site, path → behaviour), [`site`] (serving sites to browsers) with
//! [`website`] (static-website rules), [`cache`] (policy, keys, tiers, collapsing, reading),
//! [`origin`] (client toward the stores), [`compress`], [`metrics`].
//! Errors are the store's S3 error type: the edge speaks the same API.

pub mod app;
pub mod cache;
pub mod compress;
pub mod config;
pub mod distribution;
pub mod metrics;
pub mod origin;
pub mod pipeline;
pub mod relay;
pub mod respond;
pub mod site;
pub mod upload;
pub mod website;

pub use app::Edge;
pub use config::EdgeConfig;
