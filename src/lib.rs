//! @app/redis: a Redis toolkit for Node.js whose core is Rust.
//!
//! `core` is pure Rust (no napi); `binding` turns it into the JS-facing `RedisService` class.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod binding;
pub mod core;
