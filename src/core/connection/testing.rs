//! For `cargo test` only: a client connected to a [`TestServer`], and a sink that drops log
//! lines.

use std::sync::Arc;

use crate::core::config::Settings;
use crate::core::connection::{runtime, EventSink};
use crate::core::test_server::TestServer;
use crate::core::{Client, Config, Level};

impl TestServer {
    /// A connected client of this server, under `f`'s settings.
    pub fn client(&self, f: impl FnOnce(&mut Settings)) -> Arc<Client> {
        let mut s = Settings {
            host: Some("127.0.0.1".into()),
            port: Some(self.port),
            ..Settings::default()
        };
        f(&mut s);
        let cfg = Config::resolve(s).expect("settings");
        let client = Client::new(cfg, Arc::new(Quiet)).expect("client");
        runtime()
            .expect("runtime")
            .block_on(client.connect())
            .expect("connected");
        client
    }
}

/// A sink that drops log lines.
pub struct Quiet;

impl EventSink for Quiet {
    fn log(&self, _: Level, _: String) {}
}
