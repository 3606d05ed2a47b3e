//! PROTOCOL: HTTP, XML and SigV4. Never touches disk; calls the [`crate::engine`] API.

pub mod auth;
