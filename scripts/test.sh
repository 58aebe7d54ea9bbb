#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run).
#
# Usage: scripts/test.sh
#
# Stages: system packages -> cargo fmt --check -> clippy -D warnings ->
# cargo test -> controller purity -> simulator (scenarios, random schedules) ->
# release build -> fetch Pacemaker's regression cases -> conformance check ->
# differential test against crm_simulate -> the namespace lab (mysql-vip,
# firewall-pair; HA_NETNS=0 skips it) -> the VM lab (HA_LAB=0 skips it;
# HA_LAB_SCENARIO / HA_LAB_ARGS choose what it runs).
# Every stage runs even when an earlier one failed (unless it needs that one's
# output), so one run shows everything that is wrong; the exit status is
# nonzero if any stage failed. Figures are held to scheduler/CONFORMANCE.md.
#
# Meant for a Debian 12 machine with rust/cargo and python3: as root it
# apt-get installs what is missing (pacemaker-cli-utils for crm_simulate,
# dpkg-dev for `apt-get source`, time, python3). Honours CARGO_TARGET_DIR and
# HA_CACHE_DIR (downloads and crm_simulate outputs, reused between runs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=SCRIPTDIR/../scheduler/conformance/common.sh
. "$root/scheduler/conformance/common.sh"

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
run_start=$SECONDS
results=()   # "name|status|seconds"
failed=0

stage() { # stage NAME COMMAND...: runs COMMAND under a header, records its outcome
  local name=$1 start rc=0
  shift
  echo
  echo "==================== $name ===================="
  start=$SECONDS
  "$@" || rc=$?
  local took=$((SECONDS - start))
  if [ "$rc" -eq 0 ]; then
    echo "---- $name: ok (${took}s)"
    results+=("$name|ok|$took")
  else
    echo "---- $name: FAILED (exit $rc, ${took}s)"
    results+=("$name|FAILED|$took")
    failed=$((failed + 1))
  fi
  return "$rc"
}

skip() { # skip NAME REASON
  echo
  echo "==================== $1 ===================="
  echo "---- $1: skipped ($2)"
  results+=("$1|skipped|0")
  failed=$((failed + 1))
}

# --------------------------------------------------------------------------
# System packages, installed only when missing.
ensure_packages() {
  local missing=()
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  command -v crm_simulate >/dev/null 2>&1 || missing+=(pacemaker-cli-utils)
  command -v dpkg-source >/dev/null 2>&1 || missing+=(dpkg-dev)
  [ -x /usr/bin/time ] || missing+=(time)
  command -v sha256sum >/dev/null 2>&1 || missing+=(coreutils)
  # The real parts the integration tests drive (see node/README.md, fencing/README.md).
  [ -x /usr/lib/ocf/resource.d/heartbeat/Dummy ] || missing+=(resource-agents)
  [ -x /usr/lib/ocf/resource.d/pacemaker/Stateful ] || missing+=(pacemaker-resource-agents)
  # ocf:linbit:drbd and drbdadm (no kernel module here: the VM lab runs DRBD).
  [ -x /usr/lib/ocf/resource.d/linbit/drbd ] || missing+=(drbd-utils)
  command -v ipmi_sim >/dev/null 2>&1 || missing+=(openipmi)
  command -v ipmitool >/dev/null 2>&1 || missing+=(ipmitool)
  command -v fence_ipmilan >/dev/null 2>&1 || missing+=(fence-agents)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v pkill >/dev/null 2>&1 || missing+=(procps)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "all present: python3 crm_simulate dpkg-source /usr/bin/time, agents, ipmi_sim, ipmitool, fence-agents, sshd"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

cargo_versions() {
  cargo --version && rustc --version && cargo fmt --version && cargo clippy --version
}

# The controller is pure: no async runtime, RPC, Raft or storage crate.
controller_is_pure() {
  local deps
  deps=$(cargo tree -p ha-controller -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
  echo "ha-controller depends on: $(echo "$deps" | tr '\n' ' ')"
  if echo "$deps" | grep -qxE 'tokio|tonic|openraft|sled'; then
    echo "error: ha-controller depends on an I/O crate" >&2
    return 1
  fi
}
# Random schedules of the simulator (seeds 1..N): any invariant violation
# fails the stage, and names the seed to replay.
sim_random() {
  scripts/sim.sh "${HA_SIM_SCHEDULES:-10000}"
}

conf_log=$(mktemp)
diff_log=$(mktemp)
trap 'rm -f "$conf_log" "$diff_log" "${lab_log:-}"' EXIT
conformance() { scheduler/conformance/check.sh | tee "$conf_log"; }
differential() { scheduler/differential/run.sh | tee "$diff_log"; }

# --------------------------------------------------------------------------
echo "ha test suite: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?') on $(nproc) CPUs," \
  "target dir $(ha_target_dir), cache $(ha_cache_dir)"

stage "system packages" ensure_packages || true
stage "toolchain" cargo_versions || true
stage "cargo fmt --check" cargo fmt --all -- --check || true
stage "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings || true
stage "cargo test" cargo test --workspace --no-fail-fast || true
stage "controller is pure" controller_is_pure || true
stage "simulator scenarios" scripts/sim.sh --scenarios || true
stage "simulator random schedules" sim_random || true

built=0
if stage "release build of ha-node and hactl" cargo build --release -p ha-node; then built=1; fi
fetched=0
if stage "fetch conformance cases" scheduler/conformance/fetch-cases.sh; then fetched=1; fi

if [ "$built" = 1 ] && [ "$fetched" = 1 ]; then
  stage "conformance" conformance || true
else
  skip "conformance" "needs the release build and the fetched cases"
fi
if [ "$built" = 1 ] && command -v crm_simulate >/dev/null 2>&1; then
  stage "differential vs crm_simulate" differential || true
else
  skip "differential vs crm_simulate" "needs the release build and crm_simulate"
fi

# The namespace lab (deploy/lab/README.md, deploy/lab/netns.sh): MySQL behind
# a floating IP and the firewall pair with Debian's real MariaDB, conntrackd,
# dnsmasq and IPaddr2, each node a network namespace with an ipmi_sim BMC
# whose power-off kills it (~1 min each; `scripts/lab.sh mysql-vip` is the
# full 5-cut run). HA_NETNS=0 skips it.
if [ "${HA_NETNS:-1}" = 0 ]; then
  echo; echo "==================== namespace lab ===================="
  echo "---- namespace lab: not run (HA_NETNS=0)"
elif [ "$built" = 1 ]; then
  stage "namespace lab (mysql-vip --cuts 3)" scripts/lab.sh mysql-vip --cuts 3 || true
  stage "namespace lab (firewall-pair)" scripts/lab.sh firewall-pair || true
else
  skip "namespace lab" "needs the release build"
fi

# The VM lab (deploy/lab/README.md): Debian 12 guests under QEMU with the
# real kernel DRBD, BMCs that cut the power. The image is built once and
# cached; where it cannot be built (no Debian mirror, no QEMU package) the
# stage says so and why, and the run goes on. HA_LAB=0 skips it on purpose.
lab_log=$(mktemp)
lab_tier() {
  if ! scripts/lab.sh build >"$lab_log" 2>&1; then
    tail -n 30 "$lab_log"
    echo "VM lab SKIPPED: the guest image could not be built on this machine (log above);" \
      "run scripts/lab.sh build to see why"
    return 0
  fi
  tail -n 3 "$lab_log"
  # shellcheck disable=SC2086
  scripts/lab.sh "${HA_LAB_SCENARIO:-$lab_default}" ${HA_LAB_ARGS-$lab_default_args}
}
# nfs-failover with 1 power cut and failback (the whole NFS/Samba-on-DRBD setup,
# ~8 min; `scripts/lab.sh nfs-failover --cuts 5` is the full run);
# HA_LAB_SCENARIO=smoke HA_LAB_ARGS= for the quick check of the parts.
lab_default=nfs-failover
lab_default_args="--cuts 1"
if [ "${HA_LAB:-1}" = 0 ]; then
  echo; echo "==================== VM lab ===================="
  echo "---- VM lab: not run (HA_LAB=0)"
elif [ "$built" = 1 ]; then
  stage "VM lab (${HA_LAB_SCENARIO:-$lab_default} ${HA_LAB_ARGS-$lab_default_args})" lab_tier || true
else
  skip "VM lab" "needs the release build"
fi

# --------------------------------------------------------------------------
echo
echo "==================== summary ===================="
for r in "${results[@]}"; do
  IFS='|' read -r name status took <<<"$r"
  printf '  %-32s %-8s %5ss\n' "$name" "$status" "$took"
done
grep -h '^conformance: \|^differential: [0-9]' "$conf_log" "$diff_log" 2>/dev/null | sed 's/^/  /' || true
echo "  total: $((SECONDS - run_start))s"
if [ "$failed" -gt 0 ]; then
  echo "test.sh: $failed stage(s) failed or skipped"
  exit 1
fi
echo "test.sh: all stages passed"
