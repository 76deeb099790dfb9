//! The simulated Kubernetes API server: a pure store and watch history, seeded faults, and an
//! HTTP front that serves them over simulated or real TCP.
//!
//! The same [`ApiServer`] runs inside turmoil ([`ApiServer::serve_simulated`]) and standalone
//! ([`ApiServer::serve_tcp`], behind `khaos serve`). `DESIGN.md` ("How close is it to kube-apiserver") says which
//! semantics it honours and where it knowingly differs; the conformance suite
//! ([`crate::conformance`]) is the proof, and runs against real servers too.

pub mod convert;
pub mod discovery;
pub mod faults;
pub mod http;
pub mod protobuf;
pub mod query;
pub mod resource;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;
pub mod time;
pub mod validation;

pub use faults::{
    Action, AmbiguousOutcome, AmbiguousRule, Decision, ErrorRule, Faults, LatencyRule, RequestInfo,
    RequestVerb, Rule, StaleReads, WatchFaults,
};
pub use http::{ApiServer, Clock, Journal, LogRequest, LogSource, ServerConfig};
pub use resource::Resource;
pub use status::{ApiError, Reason};
pub use store::{
    Commit, EventType, ObjectKey, PatchType, Preconditions, Propagation, Restored, Store, Verb,
    WatchFilter, WriteContext,
};
