//! `tenfold serve` as a real process on a fixed port, for tests that kill
//! the server (`kill -9`) and start it again, or run two sharing Redis.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::jobs::process_env;
use crate::{TestApp, tenfold_binary};

/// A server process; killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

/// A port free now on loopback (the OS's choice, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl ServerProcess {
    /// Starts `tenfold serve` for `app`'s backends on `port` and waits until it answers.
    pub async fn start(app: &TestApp, port: u16) -> Self {
        let log = app.db.files_dir().join(format!("server-{port}-{}.log", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(app.db.files_dir()).unwrap();
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(tenfold_binary());
        cmd.arg("serve");
        process_env(app, &mut cmd);
        cmd.env("TENFOLD_LOG__LEVEL", std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .env("TENFOLD_SERVER__HOST", "127.0.0.1")
            .env("TENFOLD_SERVER__PORT", port.to_string())
            .env("TENFOLD_SERVER__WORKERS", "2")
            .env("TENFOLD_RATE_LIMITS__IP_PER_MINUTE", "100000000")
            .env("TENFOLD_RATE_LIMITS__ORG_PER_MINUTE", "100000000")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .stdin(Stdio::null());
        let child = cmd.spawn().unwrap();
        let mut server = Self { child, port, log };
        let url = format!("{}/healthz", server.address());
        for _ in 0..300 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(matches!(server.child.try_wait(), Ok(None)), "tenfold serve exited:\n{}", server.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tenfold serve did not answer on port {port}:\n{}", server.log_text());
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no shutdown, no flush, no goodbye.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}
