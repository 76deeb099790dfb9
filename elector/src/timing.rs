//! Election timing: lease duration, renew deadline and retry period, validated the way client-go
//! validates them, plus the duration syntax flags use (`4s`, `1500ms`).
//!
//! ```
//! use khaos_elector::timing::{Timing, parse_duration};
//! use std::time::Duration;
//! let timing = Timing::new(parse_duration("15s")?, parse_duration("10s")?, parse_duration("2s")?)?;
//! assert_eq!(timing, Timing::default());
//! // Flink's defaults break client-go's rule; they are expressible only when asked for by name.
//! assert!(Timing::new(Duration::from_secs(15), Duration::from_secs(15), Duration::from_secs(5)).is_err());
//! let flink = Timing::unchecked(Duration::from_secs(15), Duration::from_secs(15), Duration::from_secs(5));
//! assert!(flink.is_unchecked());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

/// `duration` in whole milliseconds (saturating at `u64::MAX`): the unit of histories, settings
/// and flags.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// client-go's jitter factor: a candidate waits between one and 1 + 1.2 retry periods.
pub const JITTER_FACTOR: f64 = 1.2;

/// Why a timing was refused; each message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    /// A duration is zero.
    #[error("{name} must be greater than zero")]
    Zero {
        /// Which setting.
        name: &'static str,
    },
    /// The lease would expire before the leader gives up renewing, so two could lead.
    #[error(
        "lease duration {} must be greater than renew deadline {}: raise --lease-duration or lower --renew-deadline (or pass --unchecked-timing to run it anyway)",
        Show(*lease_duration),
        Show(*renew_deadline)
    )]
    LeaseNotAboveRenewDeadline {
        /// The lease duration.
        lease_duration: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
    },
    /// Too few retries fit in the renew deadline for one lost request to be survivable.
    #[error(
        "renew deadline {} must be greater than 1.2 x retry period ({}): raise --renew-deadline or lower --retry-period (or pass --unchecked-timing to run it anyway)",
        Show(*renew_deadline),
        Show(retry_period.mul_f64(1.2))
    )]
    RenewDeadlineNotAboveRetries {
        /// The renew deadline.
        renew_deadline: Duration,
        /// The retry period.
        retry_period: Duration,
    },
}

/// The three timing settings of an election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
    unchecked: bool,
}

impl Default for Timing {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            unchecked: false,
        }
    }
}

impl Timing {
    /// A validated timing: `lease_duration > renew_deadline > 1.2 x retry_period`, all non-zero.
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Timing, TimingError> {
        for (name, value) in [
            ("lease duration", lease_duration),
            ("renew deadline", renew_deadline),
            ("retry period", retry_period),
        ] {
            if value.is_zero() {
                return Err(TimingError::Zero { name });
            }
        }
        if lease_duration <= renew_deadline {
            return Err(TimingError::LeaseNotAboveRenewDeadline {
                lease_duration,
                renew_deadline,
            });
        }
        if renew_deadline <= retry_period.mul_f64(JITTER_FACTOR) {
            return Err(TimingError::RenewDeadlineNotAboveRetries {
                renew_deadline,
                retry_period,
            });
        }
        Ok(Timing {
            lease_duration,
            renew_deadline,
            retry_period,
            unchecked: false,
        })
    }

    /// A timing that skips validation (durations are still clamped to at least 1 ms), so that a
    /// harness can show what unsafe settings such as Flink's 15 s / 15 s / 5 s allow.
    pub fn unchecked(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Timing {
        let floor = |d: Duration| d.max(Duration::from_millis(1));
        Timing {
            lease_duration: floor(lease_duration),
            renew_deadline: floor(renew_deadline),
            retry_period: floor(retry_period),
            unchecked: true,
        }
    }

    /// Flink's defaults (15 s / 15 s / 5 s), which client-go's rule refuses.
    pub fn flink_defaults() -> Timing {
        Timing::unchecked(
            Duration::from_secs(15),
            Duration::from_secs(15),
            Duration::from_secs(5),
        )
    }

    /// How long a lease lasts without renewal.
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// How long other candidates wait for a lease to expire: the whole seconds the record
    /// carries ([`Timing::lease_duration_seconds`], rounded up), never less than the lease.
    pub fn lease_honoured(&self) -> Duration {
        let seconds = u64::try_from(self.lease_duration_seconds()).unwrap_or(0);
        self.lease_duration.max(Duration::from_secs(seconds))
    }

    /// How long a leader keeps trying to renew before it steps down.
    pub fn renew_deadline(&self) -> Duration {
        self.renew_deadline
    }

    /// How often candidates try to acquire and leaders renew.
    pub fn retry_period(&self) -> Duration {
        self.retry_period
    }

    /// How long a leader waits after a successful renewal before renewing again: the retry
    /// period, but at most half the renew deadline. A leader believes it leads only until the
    /// renew deadline, counted from the start of its last successful renewal (so its belief ends
    /// before a standby may take over); a renewal that waited a whole retry period would have
    /// only `renew deadline - retry period` left for its requests, which near the edge of the
    /// validated space (a deadline just above 1.2 retry periods) is less than an API server's
    /// round trips, and such a leader steps down with no fault at all.
    pub fn renew_interval(&self) -> Duration {
        self.retry_period.min(self.renew_deadline / 2)
    }

    /// Whether this timing skipped validation.
    pub fn is_unchecked(&self) -> bool {
        self.unchecked
    }

    /// The whole seconds written as `leaseDurationSeconds`, rounded up: other candidates honour
    /// what the record says, so rounding down (as client-go does) would shorten the lease below
    /// the renew deadline for sub-second settings such as 1500 ms / 1000 ms.
    pub fn lease_duration_seconds(&self) -> i32 {
        let seconds =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
    }

    /// The wait before the next acquire attempt: the retry period stretched by `unit` in [0, 1)
    /// times the jitter factor (client-go's `wait.Jitter`).
    pub fn jittered_retry(&self, unit: f64) -> Duration {
        assert!(
            (0.0..1.0).contains(&unit),
            "jitter unit {unit} is outside [0, 1)"
        );
        self.retry_period + self.retry_period.mul_f64(unit * JITTER_FACTOR)
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lease {} / renew deadline {} / retry {}{}",
            Show(self.lease_duration),
            Show(self.renew_deadline),
            Show(self.retry_period),
            if self.unchecked { " (unchecked)" } else { "" }
        )
    }
}

/// A duration shown as a flag would take it (`15s`, `1500ms`).
struct Show(Duration);

impl fmt::Display for Show {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_millis() == 0 && self.0.subsec_nanos() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}ms", self.0.as_millis())
        }
    }
}

/// Why a duration did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: write a whole number with a unit, like 4s, 1500ms or 1m, of at most {} hours",
    DURATION_MAX.as_secs() / 3600
)]
pub struct DurationError {
    /// What was given.
    pub input: String,
}

/// The longest duration [`parse_duration`] takes: a Lease holds its duration in whole seconds as
/// an int32, and a larger figure is a typo that would overflow a deadline.
pub const DURATION_MAX: Duration = Duration::from_secs(i32::MAX as u64);

/// Parse `1500ms`, `4s`, `2m` or `1h` (a whole number and a unit), at most [`DURATION_MAX`].
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        input: input.to_owned(),
    };
    let trimmed = input.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(error)?;
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| error())?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(error)?),
        "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(error)?),
        _ => return Err(error()),
    };
    if duration > DURATION_MAX {
        return Err(error());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn client_go_rule_table() {
        let cases: [(u64, u64, u64, bool); 7] = [
            (15, 10, 2, true),
            (15, 15, 5, false), // Flink's defaults: lease not above the deadline
            (16, 15, 5, true),
            (15, 10, 9, false),  // 10 <= 1.2 x 9
            (15, 10, 8, true),   // 10 > 9.6
            (15, 12, 10, false), // 12 == 1.2 x 10
            (0, 10, 2, false),
        ];
        for (lease, renew, retry, ok) in cases {
            assert_eq!(
                Timing::new(s(lease), s(renew), s(retry)).is_ok(),
                ok,
                "{lease}/{renew}/{retry}"
            );
        }
    }

    #[test]
    fn errors_say_what_to_change() {
        let error = Timing::new(s(15), s(15), s(5)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "lease duration 15s must be greater than renew deadline 15s: raise --lease-duration or lower --renew-deadline (or pass --unchecked-timing to run it anyway)"
        );
        let error = Timing::new(s(15), s(10), s(9)).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "renew deadline 10s must be greater than 1.2 x retry period (10800ms)"
            ),
            "{error}"
        );
        assert_eq!(
            Timing::new(s(15), Duration::ZERO, s(1))
                .unwrap_err()
                .to_string(),
            "renew deadline must be greater than zero"
        );
    }

    #[test]
    fn flink_defaults_are_expressible_only_unchecked() {
        let flink = Timing::flink_defaults();
        assert!(flink.is_unchecked());
        assert_eq!(
            (
                flink.lease_duration(),
                flink.renew_deadline(),
                flink.retry_period()
            ),
            (s(15), s(15), s(5))
        );
        assert!(!Timing::default().is_unchecked());
        assert_eq!(
            flink.to_string(),
            "lease 15s / renew deadline 15s / retry 5s (unchecked)"
        );
    }

    #[test]
    fn jitter_stays_within_client_go_bounds() {
        let timing = Timing::default();
        assert_eq!(timing.jittered_retry(0.0), s(2));
        let most = timing.jittered_retry(0.999_999);
        assert!(
            most < Duration::from_millis(4400) && most > Duration::from_millis(4399),
            "{most:?}"
        );
    }

    #[test]
    fn the_recorded_lease_is_never_shorter_than_the_configured_one() {
        let ms = Duration::from_millis;
        let seconds = |lease| {
            Timing::new(ms(lease), ms(1000), ms(200))
                .unwrap()
                .lease_duration_seconds()
        };
        assert_eq!(seconds(1500), 2);
        assert_eq!(seconds(2000), 2);
        assert_eq!(seconds(2001), 3);
    }

    #[test]
    fn durations_parse_like_flags() {
        assert_eq!(parse_duration("4s"), Ok(s(4)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        // A figure whose milliseconds wrap a u64 (this one wrapped to 384 ms).
        assert!(parse_duration("18446744073709552s").is_err());
        assert_eq!(parse_duration("2147483647s"), Ok(DURATION_MAX));
        assert!(parse_duration("2147483648s").is_err());
        assert_eq!(parse_duration("2m"), Ok(s(120)));
        assert_eq!(parse_duration("1h"), Ok(s(3600)));
        for bad in [
            "",
            "4",
            "s",
            "4 s",
            "-1s",
            "1.5s",
            "4sec",
            "99999999999999999999h",
        ] {
            let error = parse_duration(bad).unwrap_err();
            assert!(
                error.to_string().contains("like 4s, 1500ms or 1m"),
                "{bad}: {error}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn validated_timings_satisfy_the_rule(lease in 1u64..100_000, renew in 1u64..100_000, retry in 1u64..100_000) {
            let ms = Duration::from_millis;
            if let Ok(timing) = Timing::new(ms(lease), ms(renew), ms(retry)) {
                proptest::prop_assert!(timing.lease_duration() > timing.renew_deadline());
                proptest::prop_assert!(timing.renew_deadline().as_secs_f64() > timing.retry_period().as_secs_f64() * 1.2);
            }
        }
    }
}
