//! A node's clock: simulated time run fast or slow by the drift the schedule sets, with a wall
//! clock offset. Sleeps are scaled by the same rate, so a drifting node's timers drift too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use khaos_elector::clock::Clock;

use super::EPOCH_SECONDS;

/// A node's clock: simulated time, run fast or slow by the drift the schedule sets, with a wall
/// clock offset. Sleeps are scaled by the same rate, so a drifting node's timers drift too.
#[derive(Clone)]
pub(super) struct SimClock {
    pub(super) now_ms: Arc<AtomicU64>,
    pub(super) state: Arc<Mutex<ClockState>>,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ClockState {
    /// Global simulated time of the last rate change.
    pub(super) anchor_ms: u64,
    /// This clock's reading then, in microseconds.
    pub(super) anchor_us: u64,
    /// The rate since then.
    pub(super) ppm: i64,
    /// Wall clock offset.
    pub(super) wall_offset_ms: i64,
}

impl ClockState {
    pub(super) fn reading_us(&self, now_ms: u64) -> u64 {
        let elapsed_us = now_ms.saturating_sub(self.anchor_ms) * 1000;
        let scaled = elapsed_us as f64 * (1.0 + self.ppm as f64 / 1e6);
        self.anchor_us + scaled as u64
    }

    pub(super) fn set_ppm(&mut self, now_ms: u64, ppm: i64) {
        self.anchor_us = self.reading_us(now_ms);
        self.anchor_ms = now_ms;
        self.ppm = ppm;
    }
}

impl Clock for SimClock {
    fn monotonic(&self) -> Duration {
        let now = self.now_ms.load(Ordering::Relaxed);
        Duration::from_micros(self.state.lock().expect("not poisoned").reading_us(now))
    }

    fn wall(&self) -> SystemTime {
        let state = *self.state.lock().expect("not poisoned");
        let now = self.now_ms.load(Ordering::Relaxed);
        let reading = Duration::from_micros(state.reading_us(now));
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECONDS) + reading;
        let offset = Duration::from_millis(state.wall_offset_ms.unsigned_abs());
        if state.wall_offset_ms >= 0 {
            wall + offset
        } else {
            wall - offset
        }
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let ppm = self.state.lock().expect("not poisoned").ppm;
        Box::pin(tokio::time::sleep(duration.div_f64(1.0 + ppm as f64 / 1e6)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drifting_clock_keeps_its_reading_across_rate_changes() {
        let mut state = ClockState::default();
        assert_eq!(state.reading_us(1_000), 1_000_000);
        state.set_ppm(1_000, 100_000); // 10 % fast from t = 1 s
        assert_eq!(state.reading_us(2_000), 2_100_000);
        state.set_ppm(2_000, 0);
        assert_eq!(state.reading_us(3_000), 3_100_000);
    }
}
