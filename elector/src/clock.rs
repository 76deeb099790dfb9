//! Time as the elector sees it: a monotonic clock for every decision, a wall clock only for the
//! timestamps written into lock records, and sleeping, all through one handle the caller provides.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use khaos_elector::clock::{Clock, TokioClock};
//! use std::time::Duration;
//! let clock = TokioClock::new();
//! let before = clock.monotonic();
//! clock.sleep(Duration::from_millis(1)).await;
//! assert!(clock.monotonic() > before);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// The elector's door to time. Implementations for simulation can skew, drift, jump and pause.
pub trait Clock: Send + Sync + 'static {
    /// Time since an arbitrary origin; never goes backwards. Every expiry decision uses this.
    fn monotonic(&self) -> Duration;
    /// Wall-clock time, written into lock records for humans and other clients; never used to
    /// decide whether a lease expired (client-go's rule: another node's clock is not ours).
    fn wall(&self) -> SystemTime;
    /// Sleep for `duration` of this clock's monotonic time.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The clock of the tokio runtime the elector runs on: the real clock in production, the
/// simulated one inside turmoil (which drives tokio's time).
#[derive(Clone, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    wall_origin: SystemTime,
}

impl TokioClock {
    /// A clock whose wall time starts at the host's wall clock. Must be called from within a
    /// tokio runtime.
    #[allow(clippy::disallowed_methods)] // The live default: the one wall-clock read.
    pub fn new() -> TokioClock {
        TokioClock::with_wall_origin(SystemTime::now())
    }

    /// A clock whose wall time starts at `wall_origin` (for simulations, so records are
    /// reproducible). Must be called from within a tokio runtime.
    pub fn with_wall_origin(wall_origin: SystemTime) -> TokioClock {
        TokioClock {
            origin: tokio::time::Instant::now(),
            wall_origin,
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall(&self) -> SystemTime {
        self.wall_origin + self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn monotonic(&self) -> Duration {
        (**self).monotonic()
    }
    fn wall(&self) -> SystemTime {
        (**self).wall()
    }
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        (**self).sleep(duration)
    }
}
