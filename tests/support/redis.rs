//! A real `redis-server` (Debian's package; `tests/run.sh` installs it) on a
//! free loopback port, for the cluster tests and benchmark. Nothing is
//! persisted; the process is killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a port the system says is free; returns once it accepts
    /// connections.
    pub fn start() -> RedisServer {
        // Redis cannot report a port it picked itself: take a free one and hand it over.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut server = RedisServer { port, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server: every connection to it breaks.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, empty; returns once it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let args = ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice"];
        let mut child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start redis-server: install Debian's redis-server package (tests/run.sh does)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut log = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("redis-server output");
            if line.contains("Ready to accept connections") {
                // Keep reading its log, so its writes never hit a closed pipe.
                std::thread::spawn(move || lines.for_each(drop));
                self.child = Some(child);
                return;
            }
            log.push(line);
        }
        let _ = child.wait();
        panic!("redis-server on port {port} stopped before it was ready:\n{}", log.join("\n"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
