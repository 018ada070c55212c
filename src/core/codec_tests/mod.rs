//! For `cargo test` only: the fast path's RESP codec proven against the `redis` crate and a real
//! server (see issue "The hand-written RESP codec, proven").
//!
//! - `decode`: differential property tests of the decoder against the crate's parser, every
//!   frame type, every way of splitting a stream into reads, and the limits (depth, length).
//! - `inflight`: a model-based test of the queue that matches replies to jobs.
//! - `encode`: commands with binary, empty and large arguments through a real `redis-server`.
//! - `gen`: the frame generator and its server-side encoding.
//!
//! The fuzz target over the same code is in `fuzz/` (run by `scripts/fuzz.js`).

mod decode;
mod encode;
mod gen;
mod inflight;
