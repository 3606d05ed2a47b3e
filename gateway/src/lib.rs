//! Outpost edge gateway: caches reads like a CDN edge and accelerates uploads toward the store.
//!
//! Not built yet: the store comes first (see the issues). The crate exists so the workspace
//! layout matches the design card.
