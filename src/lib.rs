//! @app/redis: a Redis toolkit for Node.js whose core is Rust.
//!
//! `core` is pure Rust (no napi); `binding` turns it into the JS-facing `RedisService` class.
#![deny(clippy::unwrap_used, clippy::expect_used)]
// Every `unsafe` block says which invariant makes it sound.
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// Replies are many small allocations (one per value); mimalloc makes them cheaper than glibc's
/// malloc (measured: see the benchmark section of the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "node")]
pub mod binding;
pub mod core;
#[cfg(feature = "node")]
pub mod engine;
