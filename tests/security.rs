//! End-to-end tests of the holes found when the store and the edge were attacked as a hostile
//! client and an unlucky operator would (issue "Security and robustness"): each file reproduces
//! one attack against real `outpost` processes on 127.0.0.1 and asserts what the client sees
//! and that nothing acknowledged is lost. Fault injection (full disks on tmpfs, origins that
//! hang or answer garbage, fragmented and trickling clients) lives here too.
//!
//! Run: `cargo test --test security`. Tests that need to mount a small filesystem run as root
//! and skip with a message where mounting is not possible.

#[path = "common/mod.rs"]
mod common;

#[path = "security/fuzz_findings.rs"]
mod fuzz_findings;
