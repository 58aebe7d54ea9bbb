//! Test lab (feature `lab`): a real simulated BMC (`ipmi_sim`) and a throwaway loopback `sshd` whose "power off" SIGKILLs a registered process.
//!
//! Both run on 127.0.0.1 with free ports, in a directory the caller owns
//! (one per test, so tests run in parallel). Nothing here touches the
//! machine's power: the BMC's chassis control and the ssh forced command
//! only kill the PID registered as the simulated node.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// BMC user and password of the simulated BMC.
pub const BMC_USER: &str = "admin";
pub const BMC_PASSWORD: &str = "secret";

fn write_exec(path: &Path, body: &str) -> io::Result<()> {
    fs::write(path, body)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

fn free_udp_port() -> io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_tcp_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn abs(dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    dir.canonicalize()
}

/// Is `pid` gone (no /proc entry, or a zombie)? Reads /proc, so it works
/// for processes that are not our children and for unreaped ones.
pub fn process_is_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
    }
}

/// A simulated IPMI BMC (`ipmi_sim`) on 127.0.0.1:PORT/udp, user
/// `admin`/`secret`. Power state lives in `DIR/power` ("1"/"0"); `set power
/// 0` and `set reset` SIGKILL the PID in `DIR/node.pid`.
pub struct Bmc {
    dir: PathBuf,
    port: u16,
    /// Where this process asks it.
    host: String,
    child: Child,
}

impl Bmc {
    /// Write lan.conf, bmc.emu and the chassis script into `dir`, start
    /// `ipmi_sim` and wait until `ipmitool chassis power status` answers.
    pub fn start(dir: &Path, pid_to_kill: Option<u32>) -> io::Result<Bmc> {
        Bmc::start_on(dir, pid_to_kill, "127.0.0.1")
    }

    /// [`Bmc::start`] listening on `listen`: an address of this namespace
    /// that nodes in other network namespaces reach through their gateway
    /// (bound to one address, its replies come from that address).
    pub fn start_on(dir: &Path, pid_to_kill: Option<u32>, listen: &str) -> io::Result<Bmc> {
        let dir = abs(dir)?;
        let ask = if listen == "0.0.0.0" {
            "127.0.0.1"
        } else {
            listen
        };
        fs::create_dir_all(dir.join("state"))?;
        fs::write(dir.join("power"), "1\n")?;
        let mut bmc_pid_file = String::new();
        if let Some(p) = pid_to_kill {
            bmc_pid_file = p.to_string();
        }
        fs::write(dir.join("node.pid"), bmc_pid_file)?;
        let d = dir.display();
        write_exec(
            &dir.join("chassis.sh"),
            &format!(
                r#"#!/bin/sh
# Called by ipmi_sim as: chassis.sh DEV get ITEM... | chassis.sh DEV set ITEM VALUE...
D='{d}'
echo "$*" >> "$D/calls"
kill_node() {{
    pid=$(cat "$D/node.pid" 2>/dev/null)
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; echo "$pid" >> "$D/killed"; fi
}}
op=$2
shift 2
case "$op" in
get)
    for item in "$@"; do
        case "$item" in
        power) printf 'power:%s\n' "$(cat "$D/power" 2>/dev/null || echo 1)";;
        esac
    done;;
set)
    while [ $# -ge 2 ]; do
        case "$1" in
        power)
            echo "$2" > "$D/power.tmp" && mv "$D/power.tmp" "$D/power"
            if [ "$2" = 0 ]; then kill_node; fi;;
        reset) kill_node;;
        esac
        shift 2
    done;;
esac
exit 0
"#
            ),
        )?;
        fs::write(
            dir.join("bmc.emu"),
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nsel_enable 0x20 50 0x0a\nmc_enable 0x20\n",
        )?;
        let mut last_err = io::Error::other("ipmi_sim did not start");
        for _ in 0..5 {
            let port = free_udp_port()?;
            fs::write(
                dir.join("lan.conf"),
                format!(
                    r#"name "bmc{port}"
set_working_mc 0x20
  startlan 1
    addr {listen} {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid {port:032x}
  endlan
  chassis_control "{d}/chassis.sh 0x20"
  user 2 true "{BMC_USER}" "{BMC_PASSWORD}" admin 10 none md2 md5 straight
"#
                ),
            )?;
            let log = fs::File::create(dir.join("ipmi_sim.log"))?;
            let child = Command::new("ipmi_sim")
                .args(["-n", "-c"])
                .arg(dir.join("lan.conf"))
                .arg("-f")
                .arg(dir.join("bmc.emu"))
                .arg("-s")
                .arg(dir.join("state"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            let mut bmc = Bmc {
                dir: dir.clone(),
                port,
                host: ask.to_string(),
                child,
            };
            match bmc.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(bmc),
                Err(e) => last_err = e, // Drop kills this one; try another port.
            }
        }
        Err(last_err)
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(st) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "ipmi_sim exited ({st}): {}",
                    fs::read_to_string(self.dir.join("ipmi_sim.log")).unwrap_or_default()
                )));
            }
            let out = Command::new("ipmitool")
                .args(["-I", "lanplus", "-C", "3", "-H", &self.host, "-p"])
                .arg(self.port.to_string())
                .args(["-U", BMC_USER, "-P", BMC_PASSWORD, "-N", "1", "-R", "1"])
                .args(["chassis", "power", "status"])
                .output()?;
            if out.status.success() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::other("ipmi_sim did not answer within the limit"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The power state the simulated chassis holds.
    pub fn power_is_on(&self) -> bool {
        fs::read_to_string(self.dir.join("power"))
            .map(|s| s.trim() != "0")
            .unwrap_or(true)
    }

    /// Set the chassis power state directly (test set-up).
    pub fn set_power(&self, on: bool) -> io::Result<()> {
        fs::write(self.dir.join("power"), if on { "1\n" } else { "0\n" })
    }

    /// Register the PID killed on the next power off (None: nothing).
    pub fn set_pid(&self, pid: Option<u32>) -> io::Result<()> {
        fs::write(
            self.dir.join("node.pid"),
            pid.map(|p| p.to_string()).unwrap_or_default(),
        )
    }

    /// PIDs the chassis script has SIGKILLed.
    pub fn killed(&self) -> Vec<u32> {
        read_lines(&self.dir.join("killed"))
            .iter()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// The chassis control calls ipmi_sim made ("0x20 set power 0", ...).
    pub fn calls(&self) -> Vec<String> {
        read_lines(&self.dir.join("calls"))
    }

    /// fence_ipmilan-style parameters for this BMC.
    pub fn params(&self) -> BTreeMap<String, String> {
        [
            ("ip", "127.0.0.1".to_string()),
            ("ipport", self.port.to_string()),
            ("username", BMC_USER.to_string()),
            ("password", BMC_PASSWORD.to_string()),
            ("lanplus", "1".to_string()),
            ("cipher", "3".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A throwaway sshd on 127.0.0.1:PORT that admits root with one key, whose
/// every command goes through a forced command.
///
/// The default forced command (`DIR/node.sh`) emulates a node: it appends
/// `$SSH_ORIGINAL_COMMAND` to `DIR/commands`; while the node is "down"
/// (`DIR/down` exists, or the registered PID is gone) it exits 255 like an
/// unreachable host; `true` exits 0; any other command SIGKILLs the PID in
/// `DIR/node.pid` and marks the node down. No real reboot ever runs.
pub struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Sshd {
    pub fn start(dir: &Path) -> io::Result<Sshd> {
        Self::start_with_command(dir, None)
    }

    /// `forced_command`: the `command="…"` of the key; `None` = the node
    /// emulation script described on [`Sshd`].
    pub fn start_with_command(dir: &Path, forced_command: Option<&str>) -> io::Result<Sshd> {
        let dir = abs(dir)?;
        fs::create_dir_all("/run/sshd")?;
        for k in ["host_key", "client_key"] {
            let p = dir.join(k);
            if !p.exists() {
                let st = Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(&p)
                    .stdin(Stdio::null())
                    .status()?;
                if !st.success() {
                    return Err(io::Error::other(format!("ssh-keygen failed: {st}")));
                }
            }
        }
        let d = dir.display();
        write_exec(
            &dir.join("node.sh"),
            &format!(
                r#"#!/bin/sh
D='{d}'
echo "$SSH_ORIGINAL_COMMAND" >> "$D/commands"
pid=$(cat "$D/node.pid" 2>/dev/null)
if [ -n "$pid" ]; then
    st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
    case "$st" in ''|Z|X) touch "$D/down";; esac
fi
if [ -e "$D/down" ]; then echo "simulated node is down" >&2; exit 255; fi
case "$SSH_ORIGINAL_COMMAND" in
''|true) exit 0;;
esac
if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; echo "$pid" >> "$D/killed"; fi
touch "$D/down"
exit 0
"#
            ),
        )?;
        let forced = forced_command
            .map(str::to_string)
            .unwrap_or_else(|| format!("{d}/node.sh"));
        let pubkey = fs::read_to_string(dir.join("client_key.pub"))?;
        fs::write(
            dir.join("authorized_keys"),
            format!("command=\"{forced}\",restrict {}\n", pubkey.trim()),
        )?;
        let mut last_err = io::Error::other("sshd did not start");
        for _ in 0..5 {
            let port = free_tcp_port()?;
            fs::write(
                dir.join("sshd_config"),
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                     AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n"
                ),
            )?;
            let child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-f")
                .arg(dir.join("sshd_config"))
                .arg("-E")
                .arg(dir.join("sshd.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let mut s = Sshd {
                dir: dir.clone(),
                port,
                child,
            };
            match s.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(s),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(st) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "sshd exited ({st}): {}",
                    fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
                )));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other("sshd did not listen within the limit"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The client private key admitted (with the forced command).
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    /// Register the simulated node's PID (None: none) and mark it up.
    pub fn set_pid(&self, pid: Option<u32>) -> io::Result<()> {
        fs::write(
            self.dir.join("node.pid"),
            pid.map(|p| p.to_string()).unwrap_or_default(),
        )?;
        self.revive()
    }

    /// Mark the simulated node up again.
    pub fn revive(&self) -> io::Result<()> {
        match fs::remove_file(self.dir.join("down")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Is the simulated node marked down?
    pub fn is_down(&self) -> bool {
        self.dir.join("down").exists()
    }

    /// Every `SSH_ORIGINAL_COMMAND` received, in order.
    pub fn commands(&self) -> Vec<String> {
        read_lines(&self.dir.join("commands"))
    }

    /// PIDs the forced command has SIGKILLed.
    pub fn killed(&self) -> Vec<u32> {
        read_lines(&self.dir.join("killed"))
            .iter()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Parameters of an `ssh` device that reaches this sshd.
    pub fn params(&self) -> BTreeMap<String, String> {
        [
            ("ssh_host", "127.0.0.1".to_string()),
            ("ssh_port", self.port.to_string()),
            ("ssh_user", "root".to_string()),
            ("ssh_key", self.key_path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
