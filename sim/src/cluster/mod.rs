//! The local cluster's decisions: what a kubelet and the ReplicaSet and Deployment controllers do,
//! as pure state machines over what they watch and the time.
//!
//! A real cluster runs these as separate programs talking to the API server; so does khaos. The
//! decisions here have no I/O: they take objects (k8s-openapi's types) and a time in Unix
//! milliseconds and return what to do. Two shells run them:
//! - `khaos serve --cluster` runs pods as local processes (signals, a process group per pod, the
//!   output kept for `kubectl logs`), writing through the API as a kubelet does;
//! - the simulator runs them over simulated hosts, deterministically (`world::pods`): the
//!   controller manager's loop, [`manager`], is client code any shell can run, and each pod's
//!   process is a simulated host the world starts, stops gracefully or crashes as the kubelet asks.
//!
//! What they decide follows Kubernetes where the HA services can tell the difference:
//! - [`kubelet`]: a pod marked for deletion gets SIGTERM, then SIGKILL when its grace has run
//!   out (never sooner than 2 s after SIGTERM), and the object is removed once its processes are
//!   gone. A pod force-deleted (removed at once) is stopped by the kubelet's own rule: after the
//!   minimum 2 s, or, as many kubelet versions do, after its full
//!   `terminationGracePeriodSeconds` ([`kubelet::ForceDeleteGrace`]). `restartPolicy` with
//!   `restartCount`, back-off (10 s doubling to 5 min), `state` and `lastState` (exit code 137
//!   after a SIGKILL), the phase and the Ready condition.
//! - [`controller`]: a ReplicaSet counts only active pods (not finished, not being deleted), so a
//!   deleted pod's replacement is made at once, while the old process may still run: the window
//!   in which two candidates run and only fencing keeps the HA data safe. A Deployment owns one
//!   ReplicaSet per pod template (named by the template's hash) and scales the current one up and
//!   the others to zero.

pub mod controller;
pub mod kubelet;
pub mod manager;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Unix milliseconds of a Kubernetes time.
pub fn time_ms(time: &Time) -> i64 {
    time.0.as_millisecond()
}

/// A Kubernetes time (seconds precision on the wire) at `ms` Unix milliseconds.
pub fn time_at(ms: i64) -> Time {
    Time(Timestamp::from_millisecond(ms.div_euclid(1000) * 1000).unwrap_or(Timestamp::UNIX_EPOCH))
}
