//! Native IPMI device: `ipmitool chassis power …` over LAN, with off verified by reading the power status back.
//!
//! The password goes to ipmitool through `-E` and the `IPMI_PASSWORD`
//! environment variable, never on the command line (`ps` shows command
//! lines to every user; `/proc/PID/environ` only to root and the owner).

use std::time::Duration;

use tokio::process::Command;

use crate::agent::{AgentMetadata, ParamInfo};
use crate::config::{DeviceConfig, FenceAction};
use crate::device::{truthy, Call, Outcome, PowerState};
use crate::error::FenceError;
use crate::process::{self, last_lines};

/// An IPMI BMC driven by ipmitool. One BMC fences one node, so there is no plug.
#[derive(Debug)]
pub struct IpmiDevice {
    cfg: DeviceConfig,
    address: String,
    port: u16,
    user: Option<String>,
    lanplus: bool,
    cipher: String,
    privlvl: Option<String>,
    method_cycle: bool,
    ipmitool: String,
    /// `-N`: seconds per ipmitool network try.
    net_timeout: u32,
    /// `-R`: ipmitool retries.
    retries: u32,
    /// Pause between power status reads while verifying.
    poll: Duration,
    /// Wait after a power command before the first status read.
    power_wait: Duration,
}

impl IpmiDevice {
    /// Accepts fence_ipmilan spellings (`ip`/`ipaddr`, `ipport`,
    /// `username`/`login`, `password`/`passwd`, `lanplus`, `cipher`,
    /// `privlvl`, `method`, `power_wait`, `ipmitool_path`, `ipmitool_timeout`)
    /// and external/ipmi ones (`ipaddr`, `userid`, `passwd`,
    /// `interface`=lan|lanplus, `ipport`; `hostname` is the node it fences).
    pub fn new(cfg: DeviceConfig) -> Result<IpmiDevice, FenceError> {
        let bad = |param: &str, value: &str, reason: &str| FenceError::BadParam {
            device: cfg.id.clone(),
            param: param.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let address = cfg
            .param(&["ip", "ipaddr"])
            .ok_or_else(|| FenceError::MissingParam {
                device: cfg.id.clone(),
                param: "ip (or ipaddr)".into(),
            })?
            .trim()
            .to_string();
        let port = match cfg.param(&["ipport", "port_ipmi"]) {
            None => 623,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .map_err(|_| bad("ipport", p, "not a UDP port"))?,
        };
        let lanplus = match cfg.param(&["interface"]) {
            Some(i) => match i.trim().to_ascii_lowercase().as_str() {
                "lanplus" => true,
                "lan" => false,
                _ => return Err(bad("interface", i, "expected lan or lanplus")),
            },
            // Native default: lanplus (IPMI 2.0, encrypted), unless lanplus=0 is said.
            None => cfg.param(&["lanplus"]).map(truthy).unwrap_or(true),
        };
        let cipher = cfg.param(&["cipher"]).unwrap_or("3").trim().to_string();
        if cipher.parse::<u8>().is_err() {
            return Err(bad(
                "cipher",
                &cipher,
                "expected a cipher suite number (e.g. 3)",
            ));
        }
        let method_cycle = match cfg.param(&["method"]) {
            None => false,
            Some(m) => match m.trim().to_ascii_lowercase().as_str() {
                "onoff" => false,
                "cycle" => true,
                _ => return Err(bad("method", m, "expected onoff or cycle")),
            },
        };
        let secs = |name: &str, default: f64| -> Result<Duration, FenceError> {
            match cfg.param(&[name]) {
                None => Ok(Duration::from_secs_f64(default)),
                Some(v) => {
                    crate::delay::parse_duration(v).ok_or_else(|| bad(name, v, "not a duration"))
                }
            }
        };
        let power_wait = secs("power_wait", 0.0)?;
        let poll = secs("stonith_status_sleep", 0.2)?.max(Duration::from_millis(50));
        let net_timeout = match cfg.param(&["ipmitool_timeout"]) {
            None => 1,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| bad("ipmitool_timeout", v, "seconds expected"))?
                .max(1),
        };
        let retries = match cfg.param(&["ipmitool_retries"]) {
            None => 2,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| bad("ipmitool_retries", v, "a count expected"))?,
        };
        Ok(IpmiDevice {
            address,
            port,
            user: cfg
                .param(&["username", "login", "userid"])
                .map(str::to_string),
            lanplus,
            cipher,
            privlvl: cfg.param(&["privlvl"]).map(str::to_string),
            method_cycle,
            ipmitool: cfg
                .param(&["ipmitool_path"])
                .unwrap_or("ipmitool")
                .to_string(),
            net_timeout,
            retries,
            poll,
            power_wait,
            cfg,
        })
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// The ipmitool arguments (no password: that goes via `-E`).
    pub fn args(&self, power_cmd: &str) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-I".into(),
            if self.lanplus { "lanplus" } else { "lan" }.into(),
        ];
        if self.lanplus {
            a.push("-C".into());
            a.push(self.cipher.clone());
        }
        a.extend([
            "-H".into(),
            self.address.clone(),
            "-p".into(),
            self.port.to_string(),
        ]);
        if let Some(u) = &self.user {
            a.extend(["-U".into(), u.clone()]);
        }
        if let Some(l) = &self.privlvl {
            a.extend(["-L".into(), l.to_ascii_uppercase()]);
        }
        if self.password().is_some() {
            a.push("-E".into());
        }
        a.extend([
            "-N".into(),
            self.net_timeout.to_string(),
            "-R".into(),
            self.retries.to_string(),
            // Verbose: the auth failure reason ("RAKP 2 HMAC is invalid") is only printed with -v.
            "-v".into(),
            "chassis".into(),
            "power".into(),
            power_cmd.into(),
        ]);
        a
    }

    fn password(&self) -> Option<&str> {
        self.cfg.param(&["password", "passwd"])
    }

    /// One ipmitool call; returns stdout on success, a classified error otherwise.
    async fn ipmitool(&self, call: &Call<'_>, power_cmd: &str) -> Result<String, FenceError> {
        let remaining = call.remaining();
        if remaining.is_zero() {
            return Err(call.timeout());
        }
        let mut cmd = Command::new(&self.ipmitool);
        cmd.args(self.args(power_cmd)).env_remove("IPMI_PASSWORD");
        if let Some(p) = self.password() {
            cmd.env("IPMI_PASSWORD", p);
        }
        let out = process::run(cmd, None, remaining)
            .await
            .map_err(|e| call.run_error(&self.ipmitool, e))?;
        if out.code == Some(0) {
            return Ok(out.stdout);
        }
        Err(classify(call, out.code, &out.stderr, &out.stdout))
    }

    async fn status(&self, call: &Call<'_>) -> Result<PowerState, FenceError> {
        let out = self.ipmitool(call, "status").await?;
        parse_power(&out).ok_or_else(|| {
            call.failed(
                Some(0),
                &format!("unexpected ipmitool output: {}", last_lines(&out, 2)),
            )
        })
    }

    /// Read the power status until it is `want` (bounded by the call's deadline).
    async fn wait_for(&self, call: &Call<'_>, want: PowerState) -> Result<usize, FenceError> {
        if !self.power_wait.is_zero() {
            tokio::time::sleep(self.power_wait.min(call.remaining())).await;
        }
        let mut reads = 0usize;
        let mut last = String::from("no status read");
        loop {
            match self.status(call).await {
                Ok(s) if s == want => return Ok(reads + 1),
                Ok(s) => last = format!("power status still {s:?}"),
                Err(FenceError::Timeout { .. }) => {}
                Err(e) => last = e.to_string(),
            }
            reads += 1;
            let remaining = call.remaining();
            if remaining.is_zero() {
                return Err(call.not_confirmed(&format!(
                    "waited {:.1} s for power {want:?}: {last}",
                    call.started.elapsed().as_secs_f64()
                )));
            }
            tokio::time::sleep(self.poll.min(remaining)).await;
        }
    }

    pub(crate) async fn run(&self, call: &Call<'_>) -> Result<Outcome, FenceError> {
        match call.action {
            FenceAction::Status => {
                let s = self.status(call).await?;
                let mut o = Outcome::new(call.action, format!("power is {s:?}"));
                o.power = Some(s);
                Ok(o)
            }
            FenceAction::Monitor => {
                let s = self.status(call).await?;
                let mut o = Outcome::new(
                    call.action,
                    format!("BMC {}:{} answers, power is {s:?}", self.address, self.port),
                );
                o.power = Some(s);
                Ok(o)
            }
            FenceAction::List => Err(call.unsupported()),
            FenceAction::Off => {
                self.ipmitool(call, "off").await?;
                let reads = self.wait_for(call, PowerState::Off).await?;
                let mut o = Outcome::new(
                    call.action,
                    format!(
                        "power off confirmed by status read-back ({reads} read(s), {:.2} s)",
                        call.started.elapsed().as_secs_f64()
                    ),
                );
                o.power = Some(PowerState::Off);
                o.confirmed = true;
                Ok(o)
            }
            FenceAction::On => {
                self.ipmitool(call, "on").await?;
                self.wait_for(call, PowerState::On).await?;
                let mut o = Outcome::new(call.action, "power on confirmed by status read-back");
                o.power = Some(PowerState::On);
                o.confirmed = true;
                Ok(o)
            }
            FenceAction::Reboot if self.method_cycle => {
                // A cycle keeps the power off for about a second, too short to
                // read back: the BMC's acknowledgement is the confirmation.
                if self.status(call).await? == PowerState::Off {
                    self.ipmitool(call, "on").await?;
                    let mut o = Outcome::new(call.action, "power was already off; powered on");
                    o.confirmed = true;
                    return Ok(o);
                }
                self.ipmitool(call, "cycle").await?;
                let mut o = Outcome::new(
                    call.action,
                    "power cycle acknowledged by the BMC (method=cycle)",
                );
                o.confirmed = true;
                Ok(o)
            }
            FenceAction::Reboot => {
                // method=onoff: off, verified off, then on. Once off is
                // verified the node is fenced; a failing "on" is reported, not fatal.
                self.ipmitool(call, "off").await?;
                self.wait_for(call, PowerState::Off).await?;
                let off_secs = call.started.elapsed().as_secs_f64();
                let on = match self.ipmitool(call, "on").await {
                    Ok(_) => "powered on again".to_string(),
                    Err(e) => format!("but power on failed: {e}"),
                };
                let mut o = Outcome::new(
                    call.action,
                    format!("power off confirmed after {off_secs:.2} s, {on}"),
                );
                o.confirmed = true;
                Ok(o)
            }
        }
    }
}

/// "Chassis Power is on|off" → state.
pub(crate) fn parse_power(stdout: &str) -> Option<PowerState> {
    let l = stdout.to_ascii_lowercase();
    if l.contains("power is on") {
        Some(PowerState::On)
    } else if l.contains("power is off") {
        Some(PowerState::Off)
    } else {
        None
    }
}

/// Lines of `ipmitool -v` that say nothing about the failure.
fn is_noise(line: &str) -> bool {
    let l = line.trim();
    l.starts_with("Loading IANA PEN Registry")
        || l.starts_with("Running Get VSO Capabilities")
        || l.starts_with("Discovered IPMB")
        || l.starts_with("Invalid completion code received: Invalid command")
}

/// Turn ipmitool's failure output into an error with a clear cause.
///
/// Measured with ipmi_sim: a wrong password prints "RAKP 2 HMAC is
/// invalid" (lanplus, with -v) or "Activate Session command failed" (lan);
/// a wrong user "RAKP 2 message indicates an error : unauthorized name"; an
/// unreachable BMC "Get Auth Capabilities error". All of them also print
/// "Unable to establish ... session", so the auth markers are checked first.
fn classify(call: &Call<'_>, code: Option<i32>, stderr: &str, stdout: &str) -> FenceError {
    let useful: String = stderr
        .lines()
        .filter(|l| !is_noise(l))
        .map(|l| l.trim_start_matches("> "))
        .collect::<Vec<_>>()
        .join("\n");
    let detail = {
        let d = last_lines(&useful, 3);
        if d.is_empty() {
            last_lines(stdout, 2)
        } else {
            d
        }
    };
    let l = useful.to_ascii_lowercase();
    // The BMC never answered the first request: nothing was authenticated yet.
    const NO_ANSWER: [&str; 4] = [
        "get auth capabilities error",
        "error issuing get channel authentication capabilities",
        "no response",
        "address lookup",
    ];
    const AUTH: [&str; 8] = [
        "rakp 2 hmac is invalid",
        "unauthorized name",
        "activate session command failed",
        "invalid user name",
        "authentication failed",
        "password",
        "insufficient privilege",
        "requested privilege level",
    ];
    const UNREACHABLE: [&str; 2] = ["connection refused", "unable to establish"];
    if NO_ANSWER.iter().any(|m| l.contains(m)) {
        call.unreachable(&detail)
    } else if AUTH.iter().any(|m| l.contains(m)) {
        call.auth(&detail)
    } else if UNREACHABLE.iter().any(|m| l.contains(m)) {
        call.unreachable(&detail)
    } else {
        call.failed(code, &detail)
    }
}

pub(crate) fn builtin_metadata() -> AgentMetadata {
    let p = |name: &str, required: bool, shortdesc: &str| ParamInfo {
        name: name.into(),
        required,
        shortdesc: shortdesc.into(),
        content_type: "string".into(),
        default: None,
        deprecated: false,
    };
    AgentMetadata {
        name: "external/ipmi".into(),
        shortdesc: "IPMI over LAN with ipmitool (native)".into(),
        longdesc:
            "Powers the node off through its BMC and reads the power status back until it says off."
                .into(),
        parameters: vec![
            p("ip", true, "BMC address (also ipaddr)"),
            p("ipport", false, "BMC UDP port (default 623)"),
            p("username", false, "BMC user (also login, userid)"),
            p(
                "password",
                false,
                "BMC password (also passwd); passed via IPMI_PASSWORD",
            ),
            p(
                "lanplus",
                false,
                "use IPMI 2.0 lanplus (default 1; or interface=lan|lanplus)",
            ),
            p("cipher", false, "cipher suite for lanplus (default 3)"),
            p("privlvl", false, "privilege level"),
            p(
                "method",
                false,
                "reboot method: onoff (default, verified) or cycle",
            ),
            p(
                "power_wait",
                false,
                "wait after a power command before reading the status",
            ),
            p("hostname", false, "external/ipmi: the node this BMC fences"),
        ],
        actions: ["on", "off", "reboot", "status", "monitor", "metadata"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_not_in_args() {
        let cfg = DeviceConfig::new("ipmi-n1", "external/ipmi")
            .with("ipaddr", "10.0.0.9")
            .with("userid", "admin")
            .with("passwd", "hunter2")
            .with("interface", "lanplus");
        let d = IpmiDevice::new(cfg).unwrap();
        let a = d.args("off").join(" ");
        assert!(!a.contains("hunter2"), "{a}");
        assert!(a.contains("-E"), "{a}");
        assert!(
            a.contains("-I lanplus -C 3 -H 10.0.0.9 -p 623 -U admin"),
            "{a}"
        );
        assert!(!format!("{d:?}").contains("hunter2"));
    }

    #[test]
    fn lan_has_no_cipher() {
        let cfg = DeviceConfig::new("x", "fence_ipmilan")
            .with("ip", "h")
            .with("lanplus", "0");
        let a = IpmiDevice::new(cfg).unwrap().args("status").join(" ");
        assert!(a.starts_with("-I lan -H h"), "{a}");
    }

    #[test]
    fn bad_params_name_the_device() {
        let cfg = DeviceConfig::new("ipmi-x", "external/ipmi")
            .with("ipaddr", "h")
            .with("ipport", "99999");
        let e = IpmiDevice::new(cfg).unwrap_err().to_string();
        assert!(e.contains("ipmi-x") && e.contains("ipport"), "{e}");
        let e = IpmiDevice::new(DeviceConfig::new("ipmi-y", "external/ipmi"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ipmi-y") && e.contains("ip"), "{e}");
    }

    #[test]
    fn power_parsing() {
        assert_eq!(parse_power("Chassis Power is on\n"), Some(PowerState::On));
        assert_eq!(parse_power("Chassis Power is off\n"), Some(PowerState::Off));
        assert_eq!(parse_power("garbage"), None);
    }
}
