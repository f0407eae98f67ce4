//! The versioned-routing lab's tools, apart from the gateway itself: what `switchyard demo`,
//! `switchyard echo` and `switchyard token` run, and what the tests and benches use to stand up
//! the lab on loopback.
//!
//! - [`demo`]: the lab end to end: echo apps, the gateway, the seven requests, the table.
//! - [`echo`]: the versioned echo app, a backend that answers with what it was sent.
//! - [`token`]: minting signed tokens for the lab's requests.

pub mod demo;
pub mod echo;
pub mod token;
