//! Fenced leader election for kube-rs programs, after the Kubernetes HA services Flink runs
//! (FLIP-144): a ConfigMap or Lease lock taken and renewed with resourceVersion compare-and-swap,
//! expiry judged on the candidate's own monotonic clock (client-go's rule), validated timing, a
//! step-down the moment the renew deadline passes, and a term that fences leader-only writes.
//!
//! It does not know whether it runs in a cluster or in khaos's simulator: its only doors to the
//! world are a `kube::Client`, a [`Clock`](clock::Clock) handle and the caller's
//! [`Contender`]. In khaos's pipeline (scenario -> executor -> history -> checkers -> reports)
//! it is what both executors run; no khaos crate is below it.
//!
//! The election's core is a pure function of plain data, runnable anywhere:
//!
//! ```
//! use std::time::Duration;
//! use khaos_elector::decision::{decide, Decision, Now};
//! use khaos_elector::Timing;
//! let now = Now { monotonic: Duration::from_secs(100), wall: "2026-11-21T00:00:00Z".into() };
//! // Nobody holds the lock: take it, at term 0.
//! let Decision::Write(record) = decide("pod-a", &Timing::default(), &now, None, &mut None) else {
//!     panic!("a free lock is taken")
//! };
//! assert_eq!((record.holder_identity.as_str(), record.leader_transitions), ("pod-a", 0));
//! ```
//!
//! The driver around it, against a cluster:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use khaos_elector::{Elector, ElectorConfig, LockKind, Timing};
//! let client = kube::Client::try_default().await?;
//! let config = ElectorConfig::new("pod-a", "default", "my-app-leader", LockKind::Lease, Timing::default());
//! let handle = Elector::new(client, config).spawn();
//! let mut leadership = handle.leadership();
//! leadership.wait_for(|l| l.is_some()).await?;
//! println!("leading in term {}", handle.current().map_or(0, |l| l.term));
//! handle.stop().await;
//! # Ok(()) }
//! ```
//!
//! Leader-only metadata goes through [`store`]: the new leader seals each data ConfigMap with its
//! term, and every write checks the seal inside the same compare-and-swap, so a stale leader's
//! write is refused even if it still believes it leads:
//!
//! ```no_run
//! # async fn example(client: kube::Client, handle: khaos_elector::ElectorHandle) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use khaos_elector::blob::FsBlobStore;
//! use khaos_elector::store::{Fence, JobStore};
//! let leader = handle.current().expect("leading");
//! let fence = Fence { term: leader.term, holder: leader.identity };
//! let blobs = Arc::new(FsBlobStore::new("/var/lib/ha")?);
//! let job = JobStore::new(client, blobs, "default", "my-cluster", "job-1");
//! job.seal(&fence).await?;                                  // before reading anything
//! let recovered = job.recover_latest().await?;              // from the store, never a cache
//! let id = job.next_checkpoint_id(&fence).await?;
//! job.add_checkpoint(&fence, id, "state".into()).await?;    // blob first, then the pointer
//! job.subsume(&fence, 1).await?;                            // older ones only after the commit
//! # let _ = recovered; Ok(()) }
//! ```
//!
//! - [`decision`]: the lock record and the pure election decision.
//! - [`timing`]: lease / renew deadline / retry period and their validation.
//! - [`lock`]: the ConfigMap and Lease locks.
//! - [`driver`]: the async driver.
//! - [`retrieval`]: following the leader by a watch that survives closes, 410s and restarts.
//! - [`store`]: the fenced HA metadata store (counter, checkpoints, job graph, registry,
//!   job results, cleanup, leader information).
//! - [`blob`]: where the state itself lives (a directory, or a faultable in-memory store).
//! - [`jobmaster`]: the reference contender that drives the store, as `khaos node` runs it.
//! - [`client`]: the kube client settings both worlds run, and the bound on each request.
//! - [`clock`] and [`backoff`]: time and randomness, only through handles the caller provides.
//! - [`flaws`]: known bugs that khaos's regression corpus switches on by name (never by default).

pub mod backoff;
pub mod blob;
pub mod client;
pub mod clock;
pub mod decision;
pub mod driver;
pub mod flaws;
pub mod jobmaster;
pub mod lock;
pub mod retrieval;
pub mod store;
pub mod timing;

pub use driver::{Contender, Elector, ElectorConfig, ElectorHandle, Leadership};
pub use lock::LockKind;
pub use timing::Timing;
