//! Engines a fault test stops and starts: a PostgreSQL server of its own, and the
//! S3 gateway of the suite's Ceph radosgw (deploy/radosgw.sh stop-gateway).

use std::path::PathBuf;
use std::process::Command;

/// A throwaway PostgreSQL server (as deploy/with-postgres.sh starts one) that a test
/// may restart. Its tools refuse to run as root, so they run as `postgres` there.
#[derive(Debug)]
pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(program: PathBuf) -> Command {
    // `id -u`, as the scripts ask.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl OwnPostgres {
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries (deploy/install-deps.sh installs them)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new()
            .prefix("kefu-fault-pg")
            .tempdir()
            .expect("dir");
        run(
            Command::new("chmod").arg("777").arg(dir.path()),
            "chmod the data folder",
        );
        let port = crate::cluster::free_port();
        let pg = Self { bin, dir, port };
        let mut initdb = as_postgres(pg.bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(pg.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        run(&mut initdb, "initdb");
        pg.pg_ctl("start");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, action: &str) {
        let mut c = as_postgres(self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-m", "fast", "-o"])
            .arg(format!(
                "-h 127.0.0.1 -p {} -k {} -c fsync=off",
                self.port,
                self.dir.path().display()
            ))
            .arg(action);
        run(&mut c, &format!("pg_ctl {action}"));
    }

    /// A fast restart, as an operator's `systemctl restart postgresql` does: open
    /// connections are cut, the server is back once it accepts new ones.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let mut c = as_postgres(self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"]);
        let _ = c.output();
    }
}

/// The S3 gateway of the suite's radosgw (`TEST_RADOSGW_DIR`, set by
/// deploy/with-radosgw.sh): stopped, the store is down; the cluster behind it and its
/// objects stay.
#[derive(Debug)]
pub struct Gateway {
    dir: String,
    down: bool,
}

impl Gateway {
    pub fn of_suite() -> Self {
        Self {
            dir: std::env::var("TEST_RADOSGW_DIR")
                .expect("TEST_RADOSGW_DIR (deploy/with-radosgw.sh sets it)"),
            down: false,
        }
    }

    fn script(&self, action: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/radosgw.sh");
        run(
            Command::new("bash").args([script, action, &self.dir]),
            &format!("radosgw.sh {action}"),
        );
    }

    pub fn stop(&mut self) {
        self.script("stop-gateway");
        self.down = true;
    }

    /// Starts it again; returns once it listens.
    pub fn start(&mut self) {
        self.script("start-gateway");
        self.down = false;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // Whatever the test did, the suite's next test needs the store (no panic here:
        // this may run while a failed test unwinds).
        if self.down {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/radosgw.sh");
            let started = Command::new("bash")
                .args([script, "start-gateway", &self.dir])
                .status();
            if !started.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("the radosgw gateway could not be started again: {started:?}");
            }
        }
    }
}
