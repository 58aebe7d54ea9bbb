//! Shared helpers of the fencing integration tests: simulated node processes, fake agents.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A "node": a `sleep 1000` child whose death stands for the power cut.
pub fn spawn_node() -> Child {
    Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep")
}

/// Wait until `child` has exited (reaping it); true if it did within `limit`.
pub fn wait_dead(child: &mut Child, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if child.try_wait().expect("try_wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Write an executable script.
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ha-fencing-test-")
        .tempdir()
        .expect("tempdir")
}

pub const T: Duration = Duration::from_secs(15);
