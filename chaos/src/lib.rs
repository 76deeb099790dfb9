//! The live side of khaos's pipeline, and the `khaos` command line on top of every crate: the
//! standalone API server (`khaos serve`), one HA candidate as a process (`khaos node`), the
//! clients and conformance targets for live servers, the server benchmark, and the judging of a
//! run directory (`khaos report`, which merges live logs and renders them with
//! `khaos-reports`).
//!
//! - [`serve`]: the simulated API server on real TCP, its history file.
//! - [`cluster`]: `khaos serve --cluster`, a local cluster whose pods are processes.
//! - [`inject`]: the pod-chaos injector, through the Kubernetes API only, with its guards.
//! - [`node`]: one candidate process, its options checked ([`node::NodeOptions`]).
//! - [`live`]: kube-rs clients for live servers, conformance targets.
//! - [`judge`]: a run directory judged again (settings from the history, or from flags for
//!   merged live logs).
//! - [`timebase`]: the shared epoch live logs are stamped from.
//! - [`tls`]: `khaos serve --tls`, its certificates and the kubeconfig it writes.
//! - [`logging`]: operational logs on stderr through `tracing`, apart from the history.
//! - [`bench`](mod@bench): CAS throughput and watch latency of the standalone server.
//!
//! The binary (`src/main.rs`, flags in `src/cli.rs`) dispatches and prints; the work is here and
//! in the other crates.
//!
//! ```
//! use std::time::Duration;
//! use khaos::node::{NodeConfigError, NodeOptions};
//! let options = NodeOptions {
//!     server: Some("http://127.0.0.1:6443".into()),
//!     token: None,
//!     namespace: "default".into(),
//!     cluster_id: "My_Cluster".into(),
//!     identity: Some("node-a".into()),
//!     storage_dir: "/tmp/ha".into(),
//!     lease_duration: Duration::from_secs(15),
//!     renew_deadline: Duration::from_secs(10),
//!     retry_period: Duration::from_secs(2),
//!     unchecked_timing: false,
//!     lock: khaos_elector::LockKind::Lease,
//!     job_id: "00000000000000000000000000000000".into(),
//!     checkpoint_interval: Duration::from_secs(1),
//!     records_per_checkpoint: 100,
//!     retained: 1,
//!     finish_after_records: None,
//!     address: None,
//!     seed: None,
//!     epoch_ms: None,
//! };
//! // A cluster id must be part of a ConfigMap name; the error names the flag and the fix.
//! let error = options.clone().config().unwrap_err();
//! assert!(matches!(error, NodeConfigError::NamePart { flag: "--cluster-id", .. }));
//! assert!(error.to_string().contains("lowercase letters"));
//! let config = NodeOptions { cluster_id: "my-cluster".into(), ..options }.config()?;
//! assert_eq!(config.job.address, "node-a");
//! # Ok::<(), NodeConfigError>(())
//! ```

pub mod bench;
pub mod cluster;
pub mod inject;
pub mod judge;
pub mod live;
pub mod logging;
pub mod node;
pub mod serve;
pub mod timebase;
pub mod tls;
