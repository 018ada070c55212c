//! For `cargo test` only: a throwaway `redis-server` on a free loopback port, and a client
//! connected to it. The server is killed when the handle drops; a test that needs one and finds
//! no `redis-server` on PATH fails, saying so.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::config::Settings;
use crate::core::connection::{runtime, EventSink};
use crate::core::{Client, Config, Level};

/// A running `redis-server`.
pub struct TestServer {
    child: Child,
    pub port: u16,
}

impl TestServer {
    pub fn start() -> TestServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (the core's lease tests start their own)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TestServer { child, port }
    }

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

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sink that drops log lines.
pub struct Quiet;

impl EventSink for Quiet {
    fn log(&self, _: Level, _: String) {}
}
