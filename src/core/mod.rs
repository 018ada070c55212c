//! Pure Rust core: configuration, connection, commands. Never imports napi.

pub mod cache;
pub mod closing;
pub mod cluster;
#[cfg(test)]
mod codec_tests;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod keys;
pub mod lock;
pub mod near_cache;
pub mod policy;
pub mod pubsub;
pub mod rate_limit;
pub mod reply;
pub mod resp;
pub mod script;
pub mod session;
pub mod stats;
#[cfg(test)]
pub mod test_server;
pub mod tls;
pub mod waiters;
pub mod wire;
pub mod work;

pub use config::Config;
pub use connection::{Client, ConnectionEvent, EventSink, Level};
pub use error::Error;

/// The client's wall clock in epoch milliseconds: for values shown to users (a session's
/// timestamps, the reset time of a rate limit answered without Redis), never for a decision
/// (decisions take the server's `TIME` inside their script).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
