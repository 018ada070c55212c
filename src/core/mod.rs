//! Pure Rust core: configuration, connection, commands. Never imports napi.

pub mod cache;
pub mod closing;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod keys;
pub mod lock;
pub mod pubsub;
pub mod rate_limit;
pub mod reply;
pub mod resp;
pub mod script;
pub mod session;
pub mod wire;

pub use config::Config;
pub use connection::{Client, EventSink, Level};
pub use error::Error;
