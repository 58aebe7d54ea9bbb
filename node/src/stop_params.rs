//! The parameters each resource on this node was started with, which its
//! stop uses (as Pacemaker's controller keeps a resource's `stop_params`):
//! a resource no longer configured (an orphan) or one whose parameters
//! changed is stopped as it was started, not with today's configuration —
//! an `IPaddr2` is stopped on the address it holds, a `Dummy` on the state
//! file it wrote. Kept in memory and in private files under the agents'
//! state directory (`stop-params/`), so a restarted daemon still knows them
//! — and knows what it had started: after it rejoins (its history wiped) it
//! probes each of them, so one removed from the configuration meanwhile is
//! seen and stopped as an orphan instead of running unnoticed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ha_scheduler::model::Attrs;
use serde::{Deserialize, Serialize};

/// What a resource was started with: its agent and parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub class: String,
    pub provider: Option<String>,
    pub agent: String,
    pub params: Attrs,
    /// The meta attributes of its start (clone-max, notify, ... without
    /// the per-notification `notify_*`): `ocf:linbit:drbd` refuses even a
    /// probe without them.
    #[serde(default)]
    pub meta: Attrs,
}

impl Started {
    /// A one-shot `action` on `key` as it was started (a stop of an orphan,
    /// a probe after a rejoin); not a DC's request (term 0), the default
    /// operation timeout.
    pub fn request(
        &self,
        key: &str,
        action: &str,
        expected_rc: i32,
    ) -> crate::executor::ExecRequest {
        crate::executor::ExecRequest {
            key: key.to_string(),
            class: self.class.clone(),
            provider: self.provider.clone(),
            agent: self.agent.clone(),
            action: action.to_string(),
            interval_ms: 0,
            timeout_ms: 20_000,
            params: self.params.clone(),
            meta: self.meta.clone(),
            expected_rc,
            migrate_source: None,
            migrate_target: None,
            dc_term: 0,
        }
    }
}

/// See the module documentation.
pub struct StopParams {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Started>>,
}

/// A file name for a resource key (ids may hold `:`; hex keeps any key safe).
fn file_name(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

impl StopParams {
    /// The store in `dir` (created on first write), with what an earlier
    /// run of the daemon left there read once; from then on memory is the
    /// truth and the files follow it.
    pub fn new(dir: impl Into<PathBuf>) -> StopParams {
        let dir = dir.into();
        let mut cache = HashMap::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let path = e.path();
                if path.extension().is_none_or(|x| x != "json") {
                    continue;
                }
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<(String, Started)>(&b).map_err(|e| e.to_string())
                    }) {
                    // Only a file under its own key's name counts.
                    Ok((key, started))
                        if path.file_name().is_some_and(|f| *f == *file_name(&key)) =>
                    {
                        cache.insert(key, started);
                    }
                    Ok(_) => {
                        tracing::warn!(path = %path.display(), "stop parameters under a foreign name, ignored")
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "unreadable stop parameters, ignored: {e}")
                    }
                }
            }
        }
        StopParams {
            dir,
            cache: Mutex::new(cache),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }

    /// What `key` was started with, if known.
    pub fn get(&self, key: &str) -> Option<Started> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Remembers what `key` runs with now.
    pub fn set(&self, key: &str, started: &Started) {
        let unchanged = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), started.clone())
            .is_some_and(|old| &old == started);
        if unchanged {
            return;
        }
        if let Err(e) = self.write(key, started) {
            // The memory copy still serves this run of the daemon.
            tracing::warn!(resource = %key, dir = %self.dir.display(), "cannot keep stop parameters on disk: {e}");
        }
    }

    fn write(&self, key: &str, started: &Started) -> std::io::Result<()> {
        ha_raft_store::private::create_dir(&self.dir)?;
        let bytes = serde_json::to_vec(&(key, started)).map_err(std::io::Error::other)?;
        ha_raft_store::private::write_file(&self.path(key), &bytes)
    }

    /// Forgets `key` (it was stopped); the disk is touched only if it was known.
    pub fn clear(&self, key: &str) {
        let known = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
            .is_some();
        if !known {
            return;
        }
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), "cannot remove stop parameters: {e}"),
        }
    }

    /// Every resource this node started and has not stopped since (an
    /// earlier run of the daemon included), by key.
    pub fn all(&self) -> Vec<(String, Started)> {
        let mut out: Vec<(String, Started)> = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Where the files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_outlive_the_process_and_go_with_the_stop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("stop-params");
        let p = Started {
            class: "ocf".into(),
            provider: Some("heartbeat".into()),
            agent: "IPaddr2".into(),
            params: [("ip".to_string(), "192.0.2.10".to_string())].into(),
            meta: [("clone_max".to_string(), "2".to_string())].into(),
        };
        let s = StopParams::new(&dir);
        assert_eq!(s.get("vip"), None);
        s.set("vip", &p);
        s.set("clone:1", &p);
        // Another process (a restarted daemon) reads them from disk.
        let again = StopParams::new(&dir);
        assert_eq!(again.get("vip"), Some(p.clone()));
        assert_eq!(again.get("clone:1"), Some(p.clone()));
        assert_eq!(
            again.all(),
            [("clone:1".to_string(), p.clone()), ("vip".to_string(), p)]
        );
        again.clear("vip");
        assert_eq!(StopParams::new(&dir).get("vip"), None);
        assert_eq!(StopParams::new(&dir).all().len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(file_name("clone:1")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
