//! The time base of live logs: `t_ms` counted from a shared epoch, so the commit log of
//! `khaos serve --history` and the logs of several `khaos node`s merge into one history
//! (`khaos report DIR --from ...`).
//!
//! Without an epoch a process counts from its own start. With `--epoch-ms E` (or
//! `KHAOS_EPOCH_MS`), unix milliseconds, it counts from `E`: the host's wall clock, read once at
//! start, plus the monotonic time since, so `t_ms` never goes back within a process.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use khaos::timebase::TimeBase;
//! use khaos_elector::clock::TokioClock;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let start = TokioClock::with_wall_origin(SystemTime::UNIX_EPOCH + Duration::from_millis(5_000));
//! let time = TimeBase::new(Arc::new(start), Some(4_000)).unwrap();
//! assert!(time.t_ms() >= 1_000);
//! # });
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use khaos_elector::clock::Clock;
use khaos_elector::timing::millis;

/// An epoch that cannot be a run's start.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    /// The epoch is later than the host's clock.
    #[error(
        "--epoch-ms {epoch_ms} is {ahead_ms} ms in the future: pass the unix time in milliseconds at which the run started (e.g. $(date +%s%3N)), the same for every process of the run"
    )]
    InTheFuture {
        /// The epoch given.
        epoch_ms: u64,
        /// How far ahead of the host's clock it is.
        ahead_ms: u64,
    },
}

/// Where a live process's `t_ms` comes from.
#[derive(Clone)]
pub struct TimeBase {
    clock: Arc<dyn Clock>,
    epoch: Option<SystemTime>,
}

impl TimeBase {
    /// Count from `epoch_ms` (unix milliseconds) on `clock`'s wall time, or from the process's
    /// start (`clock`'s monotonic time) when `None`.
    pub fn new(clock: Arc<dyn Clock>, epoch_ms: Option<u64>) -> Result<TimeBase, EpochError> {
        let epoch = epoch_ms.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        if let (Some(epoch), Some(epoch_ms)) = (epoch, epoch_ms)
            && let Ok(ahead) = epoch.duration_since(clock.wall())
            && !ahead.is_zero()
        {
            return Err(EpochError::InTheFuture {
                epoch_ms,
                ahead_ms: millis(ahead).max(1),
            });
        }
        Ok(TimeBase { clock, epoch })
    }

    /// Milliseconds since the epoch (or the process's start) now.
    pub fn t_ms(&self) -> u64 {
        match self.epoch {
            Some(epoch) => millis(self.clock.wall().duration_since(epoch).unwrap_or_default()),
            None => millis(self.clock.monotonic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use khaos_elector::clock::TokioClock;

    fn at(unix_ms: u64) -> Arc<dyn Clock> {
        Arc::new(TokioClock::with_wall_origin(
            SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn t_ms_counts_from_the_epoch_or_from_the_start() {
        let shared = TimeBase::new(at(10_000), Some(7_500)).unwrap();
        let own = TimeBase::new(at(10_000), None).unwrap();
        assert_eq!((shared.t_ms(), own.t_ms()), (2_500, 0));
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!((shared.t_ms(), own.t_ms()), (2_540, 40));
    }

    #[tokio::test(start_paused = true)]
    async fn an_epoch_in_the_future_is_refused() {
        let Err(error) = TimeBase::new(at(10_000), Some(10_250)) else {
            panic!("accepted an epoch after now");
        };
        assert!(
            error
                .to_string()
                .starts_with("--epoch-ms 10250 is 250 ms in the future"),
            "{error}"
        );
        assert!(TimeBase::new(at(10_000), Some(10_000)).is_ok());
    }
}
