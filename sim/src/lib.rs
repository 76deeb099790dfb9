//! The deterministic world of khaos: a simulated Kubernetes API server faithful enough that the
//! unmodified kube-rs client and kubectl cannot tell it from a real one (for the subset served),
//! and the transport that lets a `kube::Client` inside turmoil reach it over simulated TCP.
//!
//! - [`apiserver`]: the store, watch history, faults and HTTP front.
//! - [`transport`]: `kube::Client` over turmoil's TCP.

pub mod apiserver;
pub mod conformance;
pub mod race;
pub mod transport;
