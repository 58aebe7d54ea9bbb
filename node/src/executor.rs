//! The local executor (one per node): runs the actions the DC sends through
//! the resource agents ([`crate::agent`]), one action at a time per resource,
//! keeps recurring monitors running (reporting only when their result
//! changes), and records every result through Raft (batched: one
//! `RecordOps` entry for the results that finish together) before answering.
//!
//! A start, stop, promote, demote or migration is first recorded as pending
//! (Pacemaker's `PCMK_EXEC_PENDING`, so the scheduler counts it as possibly
//! active); refused if that cannot be committed. An action runs in its own
//! task: once started it runs to completion and its result is recorded even
//! when the caller (the DC's RPC) has gone. The executor lists what is in
//! flight (a new DC asks before it plans) and refuses requests of a DC older
//! than the newest it has seen (the DC's term is its fencing token).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ha_raft_store::{Command, OpUpdate};
use ha_scheduler::model::{Attrs, OpRecord};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::agent::{self, AgentEnv, AgentRequest, AgentSpec};

/// One action for one resource on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The resource as this node's history knows it (`rsc`, or `rsc:N` for
    /// globally-unique clone instances); the agent's `OCF_RESOURCE_INSTANCE`.
    pub key: String,
    pub class: String,
    pub provider: Option<String>,
    pub agent: String,
    /// `start`, `stop`, `monitor`, `promote`, `demote`, `migrate_to`,
    /// `migrate_from`, `notify`.
    pub action: String,
    /// Recurring monitor period; 0 for one-shot actions and probes.
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub params: Attrs,
    /// `OCF_RESKEY_CRM_meta_*` (names without the prefix).
    pub meta: Attrs,
    /// What the DC expects (0, 7 for probes, 8 for promoted monitors).
    pub expected_rc: i32,
    #[serde(default)]
    pub migrate_source: Option<String>,
    #[serde(default)]
    pub migrate_target: Option<String>,
    /// The Raft term of the DC that sent it (its fencing token); 0 for a
    /// caller that is not a DC.
    #[serde(default)]
    pub dc_term: u64,
}

/// A DC asks what is in flight (`Executor.InFlight`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightRequest {
    pub dc_term: u64,
}

/// What is in flight on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightReply {
    pub node: String,
    /// The newest DC term this executor has seen.
    pub dc_term: u64,
    pub ops: Vec<InFlightOp>,
}

/// Pacemaker's `PCMK_EXEC_PENDING`: the operation is running.
pub const OP_STATUS_PENDING: i32 = -1;
/// Pacemaker's `PCMK_OCF_UNKNOWN`: the rc of a pending operation.
pub const RC_UNKNOWN: i32 = 193;

/// An action this executor has accepted and not finished (its result not
/// recorded yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightOp {
    pub key: String,
    pub action: String,
    pub interval_ms: u64,
    /// The term of the DC that sent it (0: not a DC).
    pub dc_term: u64,
    /// When it was accepted (ms since the epoch).
    pub since_ms: i64,
}

impl ExecRequest {
    pub fn is_probe(&self) -> bool {
        self.action == "monitor" && self.interval_ms == 0
    }

    /// The history record's id, as Pacemaker names them.
    pub fn record_id(&self) -> String {
        if self.interval_ms > 0 {
            format!("{}_{}_{}", self.key, self.action, self.interval_ms)
        } else {
            format!("{}_last_0", self.key)
        }
    }

    /// Whether it changes what runs (and so ends the resource's recurring
    /// monitors, and is recorded as pending before the agent runs).
    fn changes_state(&self) -> bool {
        matches!(
            self.action.as_str(),
            "start" | "stop" | "promote" | "demote" | "migrate_to" | "migrate_from"
        )
    }
}

/// What the executor answers: the recorded result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecReply {
    pub op: OpRecord,
}

/// Writes commands through Raft from this node (locally on the leader,
/// forwarded otherwise); retries until committed or `deadline`.
pub trait Proposer: Send + Sync + 'static {
    fn propose(
        &self,
        cmd: Command,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>>;
}

type Pending = (OpUpdate, oneshot::Sender<Result<(), String>>);

/// The executor of this node.
pub struct Executor {
    node: String,
    env: AgentEnv,
    results: mpsc::Sender<Pending>,
    call_id: AtomicI64,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Running recurring monitors by (key, interval).
    monitors: Mutex<HashMap<(String, u64), tokio::task::JoinHandle<()>>>,
    metadata: agent::MetadataCache,
    /// The newest DC term seen in a request.
    dc_term: AtomicU64,
    /// Accepted, unfinished actions by sequence number.
    in_flight: Mutex<BTreeMap<u64, InFlightOp>>,
    in_flight_seq: AtomicU64,
    /// What each resource was started with; its stop uses them.
    stop_params: crate::stop_params::StopParams,
    /// This node's own `Joined` (sent at startup; it wipes the node's
    /// history and reboot-lifetime attributes) has been applied. Until then
    /// the DC's requests are refused: an action run before it would have
    /// its record and the attributes its agent set (promotion scores)
    /// wiped by it.
    joined: std::sync::atomic::AtomicBool,
}

/// Removes an in-flight entry when the action's task ends (or is aborted).
struct InFlightGuard {
    executor: Arc<Executor>,
    seq: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut m = self
            .executor
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.remove(&self.seq);
    }
}

impl Executor {
    /// Starts the executor and its result writer.
    pub fn start(node: String, env: AgentEnv, proposer: Arc<dyn Proposer>) -> Arc<Executor> {
        let (tx, rx) = mpsc::channel::<Pending>(1024);
        tokio::spawn(write_results(rx, proposer));
        // Call ids order a node's history: start above anything an earlier
        // run of this node recorded (milliseconds since the epoch).
        let first = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(1);
        Arc::new(Executor {
            node,
            results: tx,
            call_id: AtomicI64::new(first),
            locks: Mutex::default(),
            monitors: Mutex::default(),
            metadata: agent::MetadataCache::default(),
            dc_term: AtomicU64::new(0),
            in_flight: Mutex::default(),
            in_flight_seq: AtomicU64::new(0),
            stop_params: crate::stop_params::StopParams::new(env.state_dir.join("stop-params")),
            joined: std::sync::atomic::AtomicBool::new(false),
            env,
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// This node's own `Joined` was applied: the DC's requests are run from now on.
    pub fn set_joined(&self) {
        self.joined.store(true, Ordering::SeqCst);
    }

    fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    fn cancel_monitors(&self, key: &str, only: Option<u64>) {
        let mut m = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|(k, ms), task| {
            let hit = k == key && only.is_none_or(|o| o == *ms);
            if hit {
                task.abort();
            }
            !hit
        });
    }

    /// Cancels every recurring monitor (the node is stopping).
    pub fn cancel_all(&self) {
        let mut m = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        for (_, t) in m.drain() {
            t.abort();
        }
    }

    /// Keys and intervals of the recurring monitors running now.
    pub fn running_monitors(&self) -> Vec<(String, u64)> {
        let m = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, u64)> = m.keys().cloned().collect();
        v.sort();
        v
    }

    /// Runs `req` without recording it (this node has lost quorum: nothing
    /// can be committed); its recurring monitors end.
    pub async fn run_unrecorded(&self, req: ExecRequest) -> OpRecord {
        let lock = self.lock_of(&req.key);
        let _guard = lock.lock().await;
        self.cancel_monitors(&req.key, None);
        self.run_once(&req).await
    }

    /// The newest DC term seen in a request.
    pub fn dc_term(&self) -> u64 {
        self.dc_term.load(Ordering::SeqCst)
    }

    /// Accepts a request of the DC of `term` unless a newer DC has been
    /// seen (0: not a DC, always accepted).
    fn check_dc_term(&self, term: u64) -> Result<(), String> {
        if term == 0 {
            return Ok(());
        }
        let newest = self.dc_term.fetch_max(term, Ordering::SeqCst);
        if term < newest {
            return Err(format!(
                "refused: sent by the DC of term {term}, but the DC of term {newest} leads now"
            ));
        }
        Ok(())
    }

    /// The actions accepted and not finished, oldest first.
    pub fn in_flight(&self) -> Vec<InFlightOp> {
        let m = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        m.values().cloned().collect()
    }

    /// Answers a DC's `InFlight` question; remembers its term (requests of
    /// older DCs are refused from now on). Refused if a newer DC asked.
    pub fn in_flight_for(&self, req: &InFlightRequest) -> Result<InFlightReply, String> {
        self.check_dc_term(req.dc_term)?;
        Ok(InFlightReply {
            node: self.node.clone(),
            dc_term: self.dc_term(),
            ops: self.in_flight(),
        })
    }

    /// Runs `req`, records the result through Raft, and answers it. The
    /// action runs in its own task: dropping the returned future (the
    /// caller went away) does not stop it, its result is still recorded.
    pub async fn execute(self: &Arc<Self>, req: ExecRequest) -> Result<ExecReply, String> {
        self.check_dc_term(req.dc_term)?;
        if req.dc_term != 0 && !self.joined.load(Ordering::SeqCst) {
            return Err(
                "refused: this node's rejoin (its Joined, which wipes its history) is not applied yet"
                    .into(),
            );
        }
        let seq = self.in_flight_seq.fetch_add(1, Ordering::SeqCst);
        {
            let mut m = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            m.insert(
                seq,
                InFlightOp {
                    key: req.key.clone(),
                    action: req.action.clone(),
                    interval_ms: req.interval_ms,
                    dc_term: req.dc_term,
                    since_ms: crate::dc::now_ms(),
                },
            );
        }
        let guard = InFlightGuard {
            executor: Arc::clone(self),
            seq,
        };
        let me = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _guard = guard;
            me.execute_here(req).await
        });
        task.await
            .map_err(|e| format!("the action's task ended: {e}"))?
    }

    async fn execute_here(self: &Arc<Self>, req: ExecRequest) -> Result<ExecReply, String> {
        let lock = self.lock_of(&req.key);
        let _guard = lock.lock().await;
        // A newer DC may have been seen while this one waited for the lock.
        if req.dc_term != 0 && req.dc_term < self.dc_term() {
            return Err(format!(
                "refused: sent by the DC of term {}, but the DC of term {} leads now",
                req.dc_term,
                self.dc_term()
            ));
        }
        if req.changes_state() {
            self.cancel_monitors(&req.key, None);
            self.record_pending(&req).await?;
        }
        if req.action == "monitor" && req.interval_ms > 0 {
            self.cancel_monitors(&req.key, Some(req.interval_ms));
        }
        let op = self.run_once(&req).await;
        if req.action == "notify" {
            // Notifications say nothing about the resource's state.
            return Ok(ExecReply { op });
        }
        self.record(&req, op.clone()).await?;
        if req.action == "monitor" && req.interval_ms > 0 {
            let me = Arc::clone(self);
            let first = op.clone();
            let r = req.clone();
            let task = tokio::spawn(async move { me.recurring(r, first).await });
            let mut m = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
            m.insert((req.key.clone(), req.interval_ms), task);
        }
        Ok(ExecReply { op })
    }

    /// A recurring monitor: runs every interval, records only changes.
    async fn recurring(self: Arc<Self>, req: ExecRequest, first: OpRecord) {
        let mut last = (first.rc, first.op_status);
        let mut tick = tokio::time::interval(Duration::from_millis(req.interval_ms.max(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let lock = self.lock_of(&req.key);
            let op = {
                let _guard = lock.lock().await;
                self.run_once(&req).await
            };
            if (op.rc, op.op_status) != last {
                tracing::info!(
                    resource = %req.key, interval_ms = req.interval_ms, rc = op.rc,
                    op_status = op.op_status, reason = ?op.exit_reason,
                    "monitor result changed"
                );
                if self.record(&req, op.clone()).await.is_ok() {
                    last = (op.rc, op.op_status);
                }
            }
        }
    }

    async fn run_once(&self, req: &ExecRequest) -> OpRecord {
        let spec = AgentSpec {
            class: req.class.clone(),
            provider: req.provider.clone(),
            agent: req.agent.clone(),
        };
        let call_id = self.call_id.fetch_add(1, Ordering::SeqCst);
        let mut record = OpRecord {
            id: req.record_id(),
            operation: req.action.clone(),
            interval_ms: req.interval_ms,
            call_id,
            rc: 0,
            op_status: 0,
            expected_rc: Some(req.expected_rc),
            last_rc_change: Some(crate::dc::now_secs()),
            migrate_source: req.migrate_source.clone(),
            migrate_target: req.migrate_target.clone(),
            op_digest: None,
            exit_reason: None,
            completed_ms: None,
        };
        // Configured parameters are checked against the agent's meta-data
        // before it is started: a missing required one is "not configured".
        if req.action == "start" && req.class == "ocf" {
            if let Ok(md) = self.metadata.get(&self.env, &spec).await {
                let problems = agent::check_params(&md, &req.params);
                let missing: Vec<String> = problems
                    .iter()
                    .filter(|p| matches!(p, agent::ParamProblem::MissingRequired(_)))
                    .map(|p| p.to_string())
                    .collect();
                for p in &problems {
                    tracing::warn!(resource = %req.key, "{p}");
                }
                if !missing.is_empty() {
                    record.completed_ms = Some(crate::dc::now_ms());
                    record.rc = 6;
                    record.exit_reason = Some(missing.join("; "));
                    return record;
                }
            }
        }
        // A request built without the configuration (an orphan's stop or
        // demote) runs with the meta its start had.
        let mut meta = if req.meta.is_empty() {
            self.stop_params
                .get(&req.key)
                .map(|s| s.meta)
                .unwrap_or_default()
        } else {
            req.meta.clone()
        };
        meta.insert("interval".into(), req.interval_ms.to_string());
        meta.insert("timeout".into(), req.timeout_ms.to_string());
        // A stop runs with the parameters the resource was started with
        // (an orphan's request has none; a changed one has the new ones),
        // and so does an orphan's demote before it (no parameters).
        let orphan_demote = req.action == "demote" && req.params.is_empty();
        let params = match req.action.as_str() {
            _ if orphan_demote => self
                .stop_params
                .get(&req.key)
                .map(|s| s.params)
                .unwrap_or_default(),
            "stop" => match self.stop_params.get(&req.key).map(|s| s.params) {
                Some(p) => {
                    if p != req.params {
                        tracing::info!(resource = %req.key, "stopped with the parameters it was started with");
                    }
                    p
                }
                None => req.params.clone(),
            },
            _ => req.params.clone(),
        };
        let ar = AgentRequest {
            spec,
            instance: req.key.clone(),
            action: req.action.clone(),
            interval_ms: req.interval_ms,
            timeout: Duration::from_millis(req.timeout_ms.max(1)),
            params,
            meta,
        };
        let res = agent::run_agent(&self.env, &ar).await;
        if res.op_status == 0 {
            let started = || crate::stop_params::Started {
                class: req.class.clone(),
                provider: req.provider.clone(),
                agent: req.agent.clone(),
                params: req.params.clone(),
                meta: req
                    .meta
                    .iter()
                    .filter(|(k, _)| !k.starts_with("notify_"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            match (req.action.as_str(), res.rc) {
                ("start" | "migrate_from", 0) => self.stop_params.set(&req.key, &started()),
                // A probe that finds it running (after this daemon
                // restarted, or it was started by hand): what it runs
                // with now, unless a start said otherwise.
                ("monitor", 0 | 8)
                    if req.interval_ms == 0 && self.stop_params.get(&req.key).is_none() =>
                {
                    self.stop_params.set(&req.key, &started())
                }
                ("stop", 0) => self.stop_params.clear(&req.key),
                ("monitor", 7) if req.interval_ms == 0 => self.stop_params.clear(&req.key),
                _ => {}
            }
        }
        tracing::debug!(
            resource = %req.key, action = %req.action, interval_ms = req.interval_ms,
            rc = res.rc, op_status = res.op_status, ms = res.duration.as_millis() as u64,
            "agent finished"
        );
        if res.op_status != 0 || (res.rc != req.expected_rc && !req.is_probe()) {
            tracing::warn!(
                resource = %req.key, action = %req.action, rc = res.rc, op_status = res.op_status,
                reason = ?res.exit_reason, output = %res.output_tail.trim(),
                "action did not return what was expected ({})", req.expected_rc
            );
        }
        record.completed_ms = Some(crate::dc::now_ms());
        record.rc = res.rc;
        record.op_status = res.op_status;
        record.exit_reason = res.exit_reason;
        record
    }

    /// What this node started and has not stopped since (its own record,
    /// independent of the replicated history).
    pub fn started(&self) -> Vec<(String, crate::stop_params::Started)> {
        self.stop_params.all()
    }

    /// After this node rejoined (its history wiped): probes every resource
    /// it started and has not stopped since — an earlier run of the daemon
    /// included — and records what it finds, so the scheduler sees one that
    /// still runs (an orphan if it left the configuration meanwhile).
    /// The probes run at the same time (one per resource; each takes that
    /// resource's lock): one after the other they took 25 s for the NFS
    /// group's eight resources on the VM lab's guests.
    pub async fn probe_started(self: &Arc<Self>) {
        let mut probes = tokio::task::JoinSet::new();
        for (key, s) in self.stop_params.all() {
            let req = s.request(&key, "monitor", 7);
            let this = self.clone();
            probes.spawn(async move {
                match this.execute(req).await {
                    Ok(r) => {
                        tracing::info!(resource = %key, rc = r.op.rc, "probed what this node had started")
                    }
                    Err(e) => {
                        tracing::warn!(resource = %key, "probe of what this node had started: {e}")
                    }
                }
            });
        }
        while probes.join_next().await.is_some() {}
    }

    /// Records that `req` is about to run (op-status pending, rc unknown),
    /// under the id its result replaces; the action is not run without it.
    async fn record_pending(&self, req: &ExecRequest) -> Result<(), String> {
        let op = OpRecord {
            id: req.record_id(),
            operation: req.action.clone(),
            interval_ms: req.interval_ms,
            call_id: self.call_id.fetch_add(1, Ordering::SeqCst),
            rc: RC_UNKNOWN,
            op_status: OP_STATUS_PENDING,
            expected_rc: Some(req.expected_rc),
            last_rc_change: Some(crate::dc::now_secs()),
            migrate_source: req.migrate_source.clone(),
            migrate_target: req.migrate_target.clone(),
            op_digest: None,
            exit_reason: None,
            completed_ms: None,
        };
        self.record(req, op).await.map_err(|e| {
            format!(
                "{} {} not run: cannot record it as pending: {e}",
                req.action, req.key
            )
        })
    }

    async fn record(&self, req: &ExecRequest, op: OpRecord) -> Result<(), String> {
        let update = OpUpdate {
            node: self.node.clone(),
            resource: req.key.clone(),
            class: req.class.clone(),
            provider: req.provider.clone(),
            agent: req.agent.clone(),
            op,
        };
        let (tx, rx) = oneshot::channel();
        self.results
            .send((update, tx))
            .await
            .map_err(|_| "the result writer stopped".to_string())?;
        rx.await
            .map_err(|_| "the result writer stopped".to_string())?
    }
}

/// Collects results that finish together into one `RecordOps` entry (each
/// Raft append is an fsync).
async fn write_results(mut rx: mpsc::Receiver<Pending>, proposer: Arc<dyn Proposer>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (ops, waiters): (Vec<OpUpdate>, Vec<_>) = batch.into_iter().unzip();
        let n = ops.len();
        let result = proposer.propose(Command::RecordOps { ops }).await;
        if let Err(e) = &result {
            tracing::warn!("cannot record {n} operation results: {e}");
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// Losing quorum (the lease, [`crate::quorum`]): stop everything now.
impl Executor {
    /// Stops every resource in `stops` (stop requests) at once, in
    /// parallel, without recording (nothing commits without quorum) and
    /// without the per-resource locks (an action holding one may wait for a
    /// record that cannot commit). Every recurring monitor ends. A resource
    /// with another action in flight (a start the DC sent before quorum was
    /// lost) is probed every 200 ms while that action lasts and stopped
    /// again whenever it is found running, so a start that completes after
    /// the stop does not leave it running.
    pub async fn stop_all_now(
        self: &Arc<Self>,
        stops: Vec<ExecRequest>,
    ) -> Vec<(String, OpRecord)> {
        self.cancel_all();
        let mut set = tokio::task::JoinSet::new();
        for req in stops {
            let me = Arc::clone(self);
            set.spawn(async move {
                let mut op = me.run_once(&req).await;
                let probe = ExecRequest {
                    action: "monitor".into(),
                    interval_ms: 0,
                    expected_rc: 7,
                    ..req.clone()
                };
                // Bounded: an in-flight entry lasts as long as its record
                // is retried.
                let until = tokio::time::Instant::now() + Duration::from_secs(120);
                while me.other_action_in_flight(&req.key) && tokio::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let p = me.run_once(&probe).await;
                    if p.rc == 0 || p.rc == 8 {
                        tracing::warn!(resource = %req.key, "running again after an action in flight: stopping it again");
                        op = me.run_once(&req).await;
                    }
                }
                (req.key, op)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(v) => out.push(v),
                Err(e) => tracing::error!("a stop's task ended: {e}"),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether an action other than a stop or a notification is in flight
    /// for `key`.
    fn other_action_in_flight(&self, key: &str) -> bool {
        let m = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        m.values()
            .any(|o| o.key == key && !matches!(o.action.as_str(), "stop" | "notify"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits nothing: keeps what it was asked to record, in order.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<OpUpdate>>);

    impl Proposer for Recorder {
        fn propose(
            &self,
            cmd: Command,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>>
        {
            Box::pin(async move {
                if let Command::RecordOps { ops } = cmd {
                    self.0.lock().unwrap().extend(ops);
                }
                Ok(())
            })
        }
    }

    fn start(provider: &str, params: &[(&str, &str)], dc_term: u64) -> ExecRequest {
        ExecRequest {
            key: "d".into(),
            class: "ocf".into(),
            provider: Some(provider.into()),
            agent: "Dummy".into(),
            action: "start".into(),
            interval_ms: 0,
            timeout_ms: 20_000,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            meta: Default::default(),
            expected_rc: 0,
            migrate_source: None,
            migrate_target: None,
            dc_term,
        }
    }

    fn ocf_available(provider: &str) -> bool {
        std::path::Path::new("/usr/lib/ocf/resource.d")
            .join(provider)
            .join("Dummy")
            .exists()
    }

    #[tokio::test]
    async fn a_start_is_recorded_pending_first_and_older_dcs_are_refused() {
        if !ocf_available("heartbeat") {
            eprintln!("skipped: resource-agents (ocf:heartbeat:Dummy) is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let ex = Executor::start("n1".into(), AgentEnv::new("n1", dir.path()), rec.clone());
        ex.set_joined();
        let reply = ex.execute(start("heartbeat", &[], 5)).await.unwrap();
        assert_eq!((reply.op.rc, reply.op.op_status), (0, 0));
        let ops: Vec<(String, i32, i32)> = rec
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|u| (u.op.id.clone(), u.op.rc, u.op.op_status))
            .collect();
        assert_eq!(
            ops,
            [
                ("d_last_0".to_string(), RC_UNKNOWN, OP_STATUS_PENDING),
                ("d_last_0".to_string(), 0, 0)
            ]
        );
        assert_eq!(ex.dc_term(), 5);
        let e = ex.execute(start("heartbeat", &[], 4)).await.unwrap_err();
        assert!(e.contains("term 4") && e.contains("term 5"), "{e}");
        // A caller that is not a DC (term 0) is not refused; a newer DC
        // asking what is in flight raises the bar.
        assert!(ex.execute(start("heartbeat", &[], 0)).await.is_ok());
        let r = ex.in_flight_for(&InFlightRequest { dc_term: 7 }).unwrap();
        assert_eq!((r.dc_term, r.ops.len()), (7, 0));
        assert!(ex.execute(start("heartbeat", &[], 6)).await.is_err());
        assert!(ex.in_flight_for(&InFlightRequest { dc_term: 6 }).is_err());
    }

    #[tokio::test]
    async fn an_action_whose_caller_went_away_runs_to_completion_and_is_recorded() {
        if !ocf_available("pacemaker") {
            eprintln!("skipped: pacemaker-resource-agents (ocf:pacemaker:Dummy) is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let ex = Executor::start("n1".into(), AgentEnv::new("n1", dir.path()), rec.clone());
        ex.set_joined();
        let req = start("pacemaker", &[("op_sleep", "2")], 3);
        let call = {
            let ex = ex.clone();
            tokio::spawn(async move { ex.execute(req).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let inflight = ex.in_flight();
        assert_eq!(
            inflight
                .iter()
                .map(|o| (o.key.as_str(), o.action.as_str(), o.dc_term))
                .collect::<Vec<_>>(),
            [("d", "start", 3)]
        );
        call.abort(); // the DC's RPC is dropped
        let state = dir.path().join("run/Dummy-d.state");
        let t0 = std::time::Instant::now();
        while !ex.in_flight().is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(20), "still in flight");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(state.exists(), "the start did not complete");
        let last = rec.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            (last.op.operation.as_str(), last.op.rc, last.op.op_status),
            ("start", 0, 0)
        );
    }
}
