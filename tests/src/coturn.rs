//! A coturn TURN server for one test: 127.0.0.1 only, UDP and TCP on a free port,
//! TURN REST credentials (`use-auth-secret`), stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Coturn {
    child: Child,
    pub addr: SocketAddr,
    pub secret: String,
    _dir: tempfile::TempDir,
}

impl Coturn {
    /// Starts `turnserver` (Debian's coturn). `None` when it is not installed: the
    /// caller skips, except under CI, where `make test` installs it.
    pub fn start() -> Option<Coturn> {
        if Command::new("turnserver")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must test TURN: deploy/install-deps.sh installs coturn"
            );
            eprintln!("skipped: no turnserver (apt install coturn)");
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let secret = format!("test-secret-{}", std::process::id());
        let child = Command::new("turnserver")
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args(["--min-port=40000", "--max-port=40999"])
            .args(["--use-auth-secret", "--realm=kefu"])
            .arg(format!("--static-auth-secret={secret}"))
            // The SFU listens on loopback in tests; coturn refuses loopback peers
            // unless told otherwise.
            .args([
                "--allow-loopback-peers",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
            ])
            .arg(format!("--userdb={}", dir.path().join("turndb").display()))
            .arg(format!("--pidfile={}", dir.path().join("pid").display()))
            .args(["--log-file=stdout", "--simple-log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "turnserver did not listen in 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Coturn {
            child,
            addr,
            secret,
            _dir: dir,
        })
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 right now.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
