//! Fenced leader election for kube-rs programs, after the Kubernetes HA services Flink runs
//! (FLIP-144): a ConfigMap or Lease lock taken and renewed with resourceVersion compare-and-swap,
//! expiry judged on the candidate's own monotonic clock (client-go's rule), validated timing, a
//! step-down the moment the renew deadline passes, and a term that fences leader-only writes.
//!
//! It does not know whether it runs in a cluster or in khaos's simulator: its only doors to the
//! world are a `kube::Client`, a [`Clock`](clock::Clock) handle and the caller's
//! [`Contender`](elector::Contender).
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
//! - [`record`]: the lock record and the pure election decision.
//! - [`timing`]: lease / renew deadline / retry period and their validation.
//! - [`lock`]: the ConfigMap and Lease locks.
//! - [`elector`]: the async driver.
//! - [`clock`]: the time handle.

pub mod backoff;
pub mod blob;
pub mod clock;
pub mod elector;
pub mod jobmaster;
pub mod lock;
pub mod record;
pub mod retrieval;
pub mod store;
pub mod timing;

pub use elector::{Contender, Elector, ElectorConfig, ElectorHandle, Leadership};
pub use lock::LockKind;
pub use timing::Timing;
