//! A jittered exponential backoff drawn from a seed, for watch re-creation and retries (the
//! default watcher backoff of kube-runtime draws from an unseeded source, which breaks replays).

use std::time::Duration;

/// The largest delay of [`SeededBackoff::new`] (before jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// The jitter of [`SeededBackoff::new`]: each delay within this fraction either way.
pub const JITTER: f64 = 0.1;

/// A jittered exponential backoff drawn from a seed, for watch re-creation and retries inside the
/// simulation (kube-runtime's default watcher backoff draws from an unseeded source, which breaks
/// replays). It is an `Iterator<Item = Duration>`: call `next()` before each retry, `reset()`
/// after a success.
///
/// ```
/// use khaos_elector::backoff::SeededBackoff;
/// use std::time::Duration;
/// let a: Vec<Duration> = SeededBackoff::new(7).take(5).collect();
/// let b: Vec<Duration> = SeededBackoff::new(7).take(5).collect();
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct SeededBackoff {
    rng: rand_chacha::ChaCha8Rng,
    next: Duration,
    /// The first delay (before jitter).
    pub initial: Duration,
    /// The largest delay (before jitter).
    pub max: Duration,
    /// Each delay is drawn uniformly in `[d * (1 - jitter), d * (1 + jitter)]`.
    pub jitter: f64,
}

impl SeededBackoff {
    /// client-go's reflector shape: 800 ms doubling to 30 s, with 10 % jitter.
    pub fn new(seed: u64) -> SeededBackoff {
        use rand::SeedableRng;
        SeededBackoff {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            next: Duration::from_millis(800),
            initial: Duration::from_millis(800),
            max: MAX_DELAY,
            jitter: JITTER,
        }
    }

    /// Start again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Iterator for SeededBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        use rand::Rng;
        let base = self.next.min(self.max);
        self.next = (base * 2).min(self.max);
        let factor = 1.0 + self.rng.random_range(-self.jitter..=self.jitter);
        Some(base.mul_f64(factor.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_bound_and_replays_from_its_seed() {
        let delays: Vec<Duration> = SeededBackoff::new(1).take(12).collect();
        assert!(
            delays[0] >= Duration::from_millis(720) && delays[0] <= Duration::from_millis(880),
            "{delays:?}"
        );
        assert!(delays.windows(2).take(4).all(|w| w[1] > w[0]), "{delays:?}");
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(33)),
            "{delays:?}"
        );
        assert_eq!(delays, SeededBackoff::new(1).take(12).collect::<Vec<_>>());
        assert_ne!(delays, SeededBackoff::new(2).take(12).collect::<Vec<_>>());
        let mut backoff = SeededBackoff::new(3);
        backoff.nth(5);
        backoff.reset();
        assert!(backoff.next().unwrap() <= Duration::from_millis(880));
    }
}
