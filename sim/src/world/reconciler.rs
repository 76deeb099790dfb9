//! Faults applied by reconciliation: at every change the [`FaultReconciler`] computes what the
//! active faults ask for (links cut per direction or clogged, nodes crashed, stopped or paused,
//! clock rates and offsets, merged API server faults, blob faults) and applies only the
//! difference, so faults may overlap freely. Roles (`@leader`, `@standby`) are resolved when a
//! fault starts.

use std::collections::{BTreeMap, BTreeSet};

use khaos_elector::blob::{BlobFaults, MemoryBlobStore};
use khaos_reports::faults::server::Faults;
use khaos_reports::faults::{Fault, LEADER, STANDBY, Scheduled};
use khaos_reports::history::{FaultAction, HARNESS, HarnessEvent};

use super::hosts::Control;
use super::recorder::Recorder;
use crate::apiserver::ApiServer;

/// A node's state as the active faults want it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NodeState {
    Running,
    Paused,
    Stopped,
    Crashed,
}

/// What the world has applied so far, to apply only differences.
pub(super) struct FaultReconciler {
    nodes: Vec<String>,
    /// Every host of the simulation.
    hosts: Vec<String>,
    controls: BTreeMap<String, Control>,
    server: ApiServer,
    blobs: MemoryBlobStore,
    active: BTreeSet<usize>,
    /// Active faults with `@leader` and `@standby` resolved when they started.
    resolved: BTreeMap<usize, Fault>,
    cut: BTreeSet<(String, String)>,
    /// Clogged pairs of hosts (in name order): messages both ways are held until the clog ends.
    clogged: BTreeSet<(String, String)>,
    states: BTreeMap<String, NodeState>,
    server_faults: Faults,
    blob_faults: BlobFaults,
    /// Pods to delete, as faults asked (for the chaos client of a pods world).
    deletes: Vec<(String, Option<u32>)>,
}

impl FaultReconciler {
    pub(super) fn new(
        nodes: Vec<String>,
        hosts: Vec<String>,
        controls: BTreeMap<String, Control>,
        server: ApiServer,
        blobs: MemoryBlobStore,
    ) -> FaultReconciler {
        let states = nodes
            .iter()
            .map(|n| (n.clone(), NodeState::Running))
            .collect();
        FaultReconciler {
            nodes,
            hosts,
            controls,
            server,
            blobs,
            active: BTreeSet::new(),
            resolved: BTreeMap::new(),
            cut: BTreeSet::new(),
            clogged: BTreeSet::new(),
            states,
            server_faults: Faults::default(),
            blob_faults: BlobFaults::default(),
            deletes: Vec::new(),
        }
    }

    /// A pod's process started as a new candidate host.
    pub(super) fn add_node(&mut self, node: &str, control: Control) {
        self.nodes.push(node.to_owned());
        self.hosts.push(node.to_owned());
        self.controls.insert(node.to_owned(), control);
        self.states.insert(node.to_owned(), NodeState::Running);
    }

    /// A pod's process ended: no fault is aimed at it any more (its host stays, crashed or
    /// finished, and faults on its links still apply).
    pub(super) fn gone(&mut self, node: &str) {
        self.nodes.retain(|n| n != node);
    }

    /// SIGTERM to a pod's process that handles it: a graceful stop.
    pub(super) fn stop(&self, node: &str) {
        self.controls[node].stop.send_replace(true);
    }

    /// SIGKILL to a pod's process: its host crashes (a pause ends with it).
    pub(super) fn kill(&mut self, sim: &mut turmoil::Sim<'_>, node: &str, recorder: &Recorder) {
        self.isolated(sim, node, |sim| sim.crash(node));
        recorder.harness(node, HarnessEvent::Crashed {});
        self.gone(node);
    }

    /// A pod's process started again after it ended (its container restarted).
    pub(super) fn restart(&mut self, sim: &mut turmoil::Sim<'_>, node: &str) {
        self.controls[node].stop.send_replace(false);
        self.isolated(sim, node, |sim| sim.bounce(node));
        if !self.nodes.iter().any(|n| n == node) {
            self.nodes.push(node.to_owned());
        }
        self.states.insert(node.to_owned(), NodeState::Running);
    }

    /// The pod deletions faults asked for since the last call.
    pub(super) fn take_deletes(&mut self) -> Vec<(String, Option<u32>)> {
        std::mem::take(&mut self.deletes)
    }

    /// Make the world what the `active` faults ask for, recording each start and end.
    pub(super) fn reconcile(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        schedule: &[Scheduled],
        active: &BTreeSet<usize>,
        now_ms: u64,
        recorder: &Recorder,
    ) {
        if *active == self.active {
            return;
        }
        for ended in self.active.difference(active) {
            let fault = self
                .resolved
                .remove(ended)
                .expect("resolved when it started");
            let (action, id) = (FaultAction::End, *ended);
            recorder.harness(HARNESS, HarnessEvent::Fault { action, id, fault });
        }
        let started: Vec<usize> = active.difference(&self.active).copied().collect();
        for index in &started {
            let fault = self.resolve(&schedule[*index].fault, recorder);
            let (action, id) = (FaultAction::Start, *index);
            let started = fault.clone();
            recorder.harness(
                HARNESS,
                HarnessEvent::Fault {
                    action,
                    id,
                    fault: started,
                },
            );
            self.resolved.insert(*index, fault);
        }
        self.active = active.clone();
        let faults: Vec<Fault> = self.resolved.values().cloned().collect();

        // Instant faults act when they start.
        for index in &started {
            match &self.resolved[index] {
                Fault::ServerRestart => self.server.restart(),
                Fault::Reset { node } => self.server.reset_connections(node),
                Fault::Compact => {
                    self.server.compact();
                }
                Fault::DeletePod {
                    node,
                    grace_seconds,
                } => self.deletes.push((node.clone(), *grace_seconds)),
                _ => {}
            }
        }

        // Links: each direction is healthy, cut (messages lost) or, when its pair is clogged,
        // held (messages delivered when the clog ends); a cut wins over a clog.
        let mut cut = BTreeSet::new();
        let mut clogged = BTreeSet::new();
        for fault in &faults {
            match fault {
                // A role resolved to the host named on the other end: a link to itself is no link.
                Fault::Partition { a, b, .. } | Fault::Clog { a, b } if a == b => {}
                // A role no candidate holds (a pods world before its first pod): no link.
                Fault::Partition { a, b, .. } | Fault::Clog { a, b }
                    if !self.hosts.contains(a) || !self.hosts.contains(b) => {}
                Fault::Partition { a, b, oneway } => {
                    cut.insert((a.clone(), b.clone()));
                    if !oneway {
                        cut.insert((b.clone(), a.clone()));
                    }
                }
                Fault::Clog { a, b } => {
                    clogged.insert(pair(a, b));
                }
                _ => {}
            }
        }
        let changed: BTreeSet<(String, String)> = self
            .cut
            .symmetric_difference(&cut)
            .map(|(a, b)| pair(a, b))
            .chain(self.clogged.symmetric_difference(&clogged).cloned())
            .collect();
        for (a, b) in &changed {
            let (a, b) = (a.as_str(), b.as_str());
            let key = (a.to_owned(), b.to_owned());
            if clogged.contains(&key) {
                sim.hold(a, b);
            } else if self.clogged.contains(&key) {
                sim.release(a, b);
            } else {
                sim.repair_oneway(a, b);
                sim.repair_oneway(b, a);
            }
            for (from, to) in [(a, b), (b, a)] {
                if cut.contains(&(from.to_owned(), to.to_owned())) {
                    sim.partition_oneway(from, to);
                }
            }
        }
        self.cut = cut;
        self.clogged = clogged;

        // Clocks.
        for (node, control) in &self.controls {
            let ppm: i64 = faults
                .iter()
                .filter_map(|f| match f {
                    Fault::Drift { node: n, ppm } if n == node => Some(*ppm),
                    _ => None,
                })
                .sum::<i64>()
                // Overlapping drifts add up; a clock never stops or runs backwards.
                .clamp(-900_000, 900_000);
            let offset: i64 = faults
                .iter()
                .filter_map(|f| match f {
                    Fault::WallOffset { node: n, ms } if n == node => Some(*ms),
                    _ => None,
                })
                .sum();
            let mut clock = control.clock.lock().expect("not poisoned");
            if clock.ppm != ppm {
                clock.set_ppm(now_ms, ppm);
            }
            clock.wall_offset_ms = offset;
        }

        // The API server's and the blob store's faults.
        let mut server_faults = Faults::default();
        let mut blob_faults = BlobFaults::default();
        for fault in &faults {
            match fault {
                Fault::Server { faults } => merge(&mut server_faults, faults),
                Fault::Blob { faults } => blob_faults = *faults,
                _ => {}
            }
        }
        if server_faults != self.server_faults {
            self.server
                .set_faults(server_faults.clone())
                .expect("the schedule was validated");
            self.server_faults = server_faults;
        }
        if blob_faults != self.blob_faults {
            self.blobs
                .set_faults(blob_faults)
                .expect("the schedule was validated");
            self.blob_faults = blob_faults;
        }

        // Nodes.
        for node in self.nodes.clone() {
            let wanted = faults
                .iter()
                .map(|f| match f {
                    Fault::Crash { node: n } if *n == node => NodeState::Crashed,
                    Fault::Stop { node: n } if *n == node => NodeState::Stopped,
                    Fault::Pause { node: n } if *n == node => NodeState::Paused,
                    _ => NodeState::Running,
                })
                .max()
                .unwrap_or(NodeState::Running);
            let current = self.states[&node];
            if wanted != current {
                self.transition(sim, &node, current, wanted, recorder);
                self.states.insert(node, wanted);
            }
        }
    }

    /// Aim a fault at a role: `@leader` is the node that believes it leads now (the first such
    /// in name order; the first node if none does), `@standby` the first node that does not.
    fn resolve(&self, fault: &Fault, recorder: &Recorder) -> Fault {
        let leaders = recorder.leaders.lock().expect("not poisoned").clone();
        // With no candidate at all (a pods world before its first pod), a role stays a role,
        // which names no host.
        let first = || self.nodes.first().cloned();
        let role = |name: &str| -> String {
            match name {
                LEADER => leaders.iter().next().cloned().or_else(first),
                STANDBY => self
                    .nodes
                    .iter()
                    .find(|n| !leaders.contains(*n))
                    .cloned()
                    .or_else(first),
                other => Some(other.to_owned()),
            }
            .unwrap_or_else(|| name.to_owned())
        };
        let mut fault = fault.clone();
        match &mut fault {
            Fault::Partition { a, b, .. } | Fault::Clog { a, b } => {
                *a = role(a);
                *b = role(b);
            }
            Fault::Crash { node }
            | Fault::Stop { node }
            | Fault::Pause { node }
            | Fault::Drift { node, .. }
            | Fault::WallOffset { node, .. }
            | Fault::Reset { node }
            | Fault::DeletePod { node, .. } => *node = role(node),
            // Rules aimed at a role name the node that holds it now.
            Fault::Server { faults } => {
                for rule in faults.rules_mut() {
                    for client in &mut rule.clients {
                        *client = role(client);
                    }
                }
            }
            Fault::ServerRestart | Fault::Compact | Fault::Blob { .. } => {}
        }
        fault
    }

    fn transition(
        &self,
        sim: &mut turmoil::Sim<'_>,
        node: &str,
        from: NodeState,
        to: NodeState,
        recorder: &Recorder,
    ) {
        let control = &self.controls[node];
        // Leave the current state.
        match from {
            NodeState::Running => {}
            NodeState::Paused => sim.resume(node),
            NodeState::Stopped | NodeState::Crashed => {}
        }
        match to {
            NodeState::Running | NodeState::Paused => {
                if matches!(from, NodeState::Stopped | NodeState::Crashed) {
                    control.stop.send_replace(false);
                    self.isolated(sim, node, |sim| sim.bounce(node));
                }
                if to == NodeState::Paused {
                    sim.pause(node);
                }
            }
            NodeState::Stopped => {
                control.stop.send_replace(true);
            }
            NodeState::Crashed => {
                self.isolated(sim, node, |sim| sim.crash(node));
                recorder.harness(node, HarnessEvent::Crashed {});
            }
        }
    }
}

impl FaultReconciler {
    /// Run `f` (a crash or a restart) with `node` cut off from every host, then restore the links.
    ///
    /// Both drop the host's tokio runtime, which drops its tasks in an order that depends on
    /// tokio's process-wide task numbering, so on whatever else the process is doing (another
    /// sweep thread, another test). Whatever the dropped tasks send (a FIN, a reset) would reach
    /// the network in that order; cut off, it is lost, as from a machine that died, and the run
    /// stays a function of its seed alone.
    fn isolated(
        &self,
        sim: &mut turmoil::Sim<'_>,
        node: &str,
        f: impl FnOnce(&mut turmoil::Sim<'_>),
    ) {
        let mut cut_now = Vec::new();
        for other in self.hosts.iter().filter(|h| *h != node) {
            for (from, to) in [(node, other.as_str()), (other.as_str(), node)] {
                if !self.cut.contains(&(from.to_owned(), to.to_owned())) {
                    // Only what is sent during the crash is lost; what was already on the wire
                    // before it still arrives, as from a machine that died mid-flight.
                    sim.cut_oneway(from, to);
                    cut_now.push((from.to_owned(), to.to_owned()));
                }
            }
        }
        f(sim);
        for (from, to) in cut_now {
            sim.repair_oneway(from.as_str(), to.as_str());
        }
        // A repair clears a clog: hold again what was clogged, then cut again what is cut.
        for (a, b) in &self.clogged {
            if a == node || b == node {
                sim.hold(a.as_str(), b.as_str());
                for (from, to) in [(a, b), (b, a)] {
                    if self.cut.contains(&(from.clone(), to.clone())) {
                        sim.partition_oneway(from.as_str(), to.as_str());
                    }
                }
            }
        }
    }
}

/// A pair of hosts in name order.
fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// Add `more` to `into`: rule lists concatenate; the last watch or stale-read setting wins.
fn merge(into: &mut Faults, more: &Faults) {
    into.latency.extend(more.latency.iter().cloned());
    into.hang.extend(more.hang.iter().cloned());
    into.errors.extend(more.errors.iter().cloned());
    into.ambiguous.extend(more.ambiguous.iter().cloned());
    if more.watch != Faults::default().watch {
        into.watch = more.watch.clone();
    }
    if more.stale_reads.is_some() {
        into.stale_reads = more.stale_reads.clone();
    }
}
