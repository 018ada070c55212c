//! For `cargo test` only: a throwaway `redis-server` on a free loopback port (plain or TLS). The
//! server is killed when the handle drops; a test that needs one and finds no `redis-server` on
//! PATH fails, saying so. A client connected to it: `TestServer::client` (in
//! `connection::testing`, so this module depends on nothing else in the core).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct TestServer {
    child: Child,
    pub port: u16,
    /// A TLS server's certificates (removed on drop).
    dir: Option<std::path::PathBuf>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let port = free_port();
        Self::spawn(port, &["--port", &port.to_string()], None)
    }

    /// A TLS-only server whose certificate (for `127.0.0.1`) is signed by a throwaway CA, made
    /// with `openssl`; returns it with the CA's PEM.
    pub fn start_tls() -> (TestServer, Vec<u8>) {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("app-redis-core-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let f = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let ssl = |args: &[&str]| {
            let ok = Command::new("openssl")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "openssl {args:?} failed (openssl on PATH?)");
        };
        let subj = "/CN=test-ca";
        ssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            subj,
            "-keyout",
            &f("ca.key"),
            "-out",
            &f("ca.crt"),
        ]);
        std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext file");
        ssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=server",
            "-keyout",
            &f("server.key"),
            "-out",
            &f("server.csr"),
        ]);
        ssl(&[
            "x509",
            "-req",
            "-in",
            &f("server.csr"),
            "-CA",
            &f("ca.crt"),
            "-CAkey",
            &f("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &f("ext"),
            "-out",
            &f("server.crt"),
        ]);
        let port = free_port();
        let args = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &f("server.crt"),
            "--tls-key-file",
            &f("server.key"),
            "--tls-ca-cert-file",
            &f("ca.crt"),
            "--tls-auth-clients",
            "no",
        ];
        let ca = std::fs::read(dir.join("ca.crt")).expect("the CA certificate");
        (Self::spawn(port, &args, Some(dir.clone())), ca)
    }

    fn spawn(port: u16, args: &[&str], dir: Option<std::path::PathBuf>) -> TestServer {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (the core's lease tests start their own)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TestServer { child, port, dir }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
