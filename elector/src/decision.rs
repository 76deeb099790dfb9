//! The lock record and the election decision over it, as pure functions of plain data: what the
//! lock says, what this candidate observed and when on its own monotonic clock, and the time now.
//!
//! This is client-go's `tryAcquireOrRenew` without the I/O. The rule that matters: a lease held by
//! another candidate expires a full lease duration after *this* candidate last saw the record
//! change, measured on *its* monotonic clock. The record's own timestamps come from another
//! machine's wall clock and are never compared with ours.
//!
//! ```
//! use khaos_elector::decision::{decide, Decision, Now, Observed};
//! use khaos_elector::timing::Timing;
//! use std::time::Duration;
//! let timing = Timing::default();
//! let mut observed: Option<Observed> = None;
//! let now = Now { monotonic: Duration::from_secs(100), wall: "2026-11-21T00:00:00Z".into() };
//! // Nobody holds the lock: write a record naming ourselves, transition count 0.
//! let Decision::Write(record) = decide("a", &timing, &now, None, &mut observed) else { panic!() };
//! assert_eq!((record.holder_identity.as_str(), record.leader_transitions), ("a", 0));
//! // Candidate b sees a's fresh record: it must wait a whole lease from now.
//! let mut b_observed = None;
//! assert!(matches!(decide("b", &timing, &now, Some(&record), &mut b_observed), Decision::Follow { .. }));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flaws::{Flaw, Flaws};
use crate::timing::Timing;

/// The annotation a ConfigMap lock keeps its record in (client-go's and Flink's).
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// client-go's LeaderElectionRecord, as stored in the ConfigMap annotation (and mapped onto a
/// Lease's spec).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElectionRecord {
    /// Who holds the lock; empty when released.
    #[serde(default)]
    pub holder_identity: String,
    /// How long the holder's lease lasts, in seconds, as the holder wrote it.
    #[serde(default)]
    pub lease_duration_seconds: i32,
    /// When the holder acquired the lock (its wall clock; informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_time: Option<String>,
    /// When the holder last renewed (its wall clock; informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<String>,
    /// How many times the holder has changed: the leadership term, and the fencing token.
    #[serde(default)]
    pub leader_transitions: u32,
}

impl LeaderElectionRecord {
    /// The record a leader writes when it steps down gracefully: no holder and a one-second
    /// lease, so a standby takes over at its next attempt instead of a lease later.
    pub fn released(&self, now: &Now) -> LeaderElectionRecord {
        LeaderElectionRecord {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(now.wall.clone()),
            renew_time: Some(now.wall.clone()),
            leader_transitions: self.leader_transitions,
        }
    }
}

/// The time now, as the candidate's clock handle gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: all expiry decisions use this.
    pub monotonic: Duration,
    /// Wall time as RFC 3339, only written into the record.
    pub wall: String,
}

/// The last record this candidate saw change, and when (on its monotonic clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The record as last seen.
    pub record: LeaderElectionRecord,
    /// When it was first seen in this form.
    pub at: Duration,
}

/// What to do after reading the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write this record (create the lock if absent, else a compare-and-swap on the version
    /// just read). It names this candidate: a take-over, a first acquisition, or a renewal.
    Write(LeaderElectionRecord),
    /// Another candidate holds an unexpired lease; try again later.
    Follow {
        /// The holder.
        holder: String,
        /// How long until the lease expires as this candidate sees it.
        expires_in: Duration,
    },
}

/// Decide what `identity` does after reading `current` (`None` when the lock or its record is
/// absent). Updates `observed` when the record changed since it was last seen.
pub fn decide(
    identity: &str,
    timing: &Timing,
    now: &Now,
    current: Option<&LeaderElectionRecord>,
    observed: &mut Option<Observed>,
) -> Decision {
    decide_with(identity, timing, now, current, observed, Flaws::NONE)
}

/// [`decide`], with known bugs switched on ([`Flaw::ExpiryByWallClock`],
/// [`Flaw::ReleasedLockNeverTaken`]); with [`Flaws::NONE`] it is `decide`.
pub fn decide_with(
    identity: &str,
    timing: &Timing,
    now: &Now,
    current: Option<&LeaderElectionRecord>,
    observed: &mut Option<Observed>,
    flaws: Flaws,
) -> Decision {
    assert!(
        !identity.is_empty(),
        "a candidate needs a non-empty identity"
    );
    let Some(current) = current else {
        return Decision::Write(LeaderElectionRecord {
            holder_identity: identity.to_owned(),
            lease_duration_seconds: timing.lease_duration_seconds(),
            acquire_time: Some(now.wall.clone()),
            renew_time: Some(now.wall.clone()),
            leader_transitions: 0,
        });
    };
    if observed.as_ref().map(|o| &o.record) != Some(current) {
        *observed = Some(Observed {
            record: current.clone(),
            at: now.monotonic,
        });
    }
    let seen_at = observed.as_ref().expect("set above").at;
    let lease =
        Duration::from_secs(u64::try_from(current.lease_duration_seconds.max(0)).unwrap_or(0));
    if current.holder_identity.is_empty() && flaws.has(Flaw::ReleasedLockNeverTaken) {
        return Decision::Follow {
            holder: String::new(),
            expires_in: lease,
        };
    }
    let held_by_other = !current.holder_identity.is_empty() && current.holder_identity != identity;
    if held_by_other {
        let expires_in = if flaws.has(Flaw::ExpiryByWallClock) {
            wall_expiry(current, lease, now)
        } else {
            (seen_at + lease).checked_sub(now.monotonic)
        };
        if let Some(expires_in) = expires_in.filter(|e| !e.is_zero()) {
            return Decision::Follow {
                holder: current.holder_identity.clone(),
                expires_in,
            };
        }
    }
    let ours = current.holder_identity == identity;
    Decision::Write(LeaderElectionRecord {
        holder_identity: identity.to_owned(),
        lease_duration_seconds: timing.lease_duration_seconds(),
        acquire_time: if ours {
            current.acquire_time.clone()
        } else {
            Some(now.wall.clone())
        },
        renew_time: Some(now.wall.clone()),
        leader_transitions: if ours {
            current.leader_transitions
        } else {
            current.leader_transitions.saturating_add(1)
        },
    })
}

/// [`Flaw::ExpiryByWallClock`]: the holder's renewTime (its wall clock) plus the lease, against
/// this candidate's wall clock. An unreadable time counts as expired.
fn wall_expiry(current: &LeaderElectionRecord, lease: Duration, now: &Now) -> Option<Duration> {
    use k8s_openapi::jiff::Timestamp;
    let renewed: Timestamp = current.renew_time.as_deref()?.parse().ok()?;
    let now: Timestamp = now.wall.parse().ok()?;
    let left =
        renewed.as_millisecond() + i64::try_from(lease.as_millis()).ok()? - now.as_millisecond();
    Some(Duration::from_millis(u64::try_from(left).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Now {
        Now {
            monotonic: Duration::from_secs(seconds),
            wall: format!("wall-{seconds}"),
        }
    }

    fn held_by(holder: &str, transitions: u32) -> LeaderElectionRecord {
        LeaderElectionRecord {
            holder_identity: holder.into(),
            lease_duration_seconds: 15,
            acquire_time: Some("t0".into()),
            renew_time: Some("t0".into()),
            leader_transitions: transitions,
        }
    }

    #[test]
    fn an_absent_lock_is_acquired_at_term_zero() {
        let decision = decide("a", &Timing::default(), &at(5), None, &mut None);
        assert_eq!(
            decision,
            Decision::Write(LeaderElectionRecord {
                holder_identity: "a".into(),
                lease_duration_seconds: 15,
                acquire_time: Some("wall-5".into()),
                renew_time: Some("wall-5".into()),
                leader_transitions: 0,
            })
        );
    }

    #[test]
    fn another_holder_expires_a_lease_after_we_last_saw_it_change() {
        let timing = Timing::default();
        let mut observed = None;
        let record = held_by("b", 3);
        // First seen at 100: follow until 115 on our clock.
        assert!(
            matches!(decide("a", &timing, &at(100), Some(&record), &mut observed), Decision::Follow { expires_in, .. } if expires_in == Duration::from_secs(15))
        );
        assert!(matches!(
            decide("a", &timing, &at(114), Some(&record), &mut observed),
            Decision::Follow { .. }
        ));
        // Unchanged for a whole lease: take it over, one transition later, acquired now.
        let Decision::Write(taken) = decide("a", &timing, &at(115), Some(&record), &mut observed)
        else {
            panic!("not taken over")
        };
        assert_eq!(
            (taken.holder_identity.as_str(), taken.leader_transitions),
            ("a", 4)
        );
        assert_eq!(taken.acquire_time.as_deref(), Some("wall-115"));
    }

    #[test]
    fn a_renewal_resets_the_observed_time() {
        let timing = Timing::default();
        let mut observed = None;
        decide(
            "a",
            &timing,
            &at(100),
            Some(&held_by("b", 3)),
            &mut observed,
        );
        let mut renewed = held_by("b", 3);
        renewed.renew_time = Some("t1".into());
        // At 114 the record changed: the lease runs from 114 now, so at 120 it still holds.
        decide("a", &timing, &at(114), Some(&renewed), &mut observed);
        assert!(matches!(
            decide("a", &timing, &at(120), Some(&renewed), &mut observed),
            Decision::Follow { .. }
        ));
        assert!(matches!(
            decide("a", &timing, &at(129), Some(&renewed), &mut observed),
            Decision::Write(_)
        ));
    }

    #[test]
    fn the_records_wall_clock_times_never_decide_expiry() {
        // A renewTime far in the past (or future) by our wall clock changes nothing: only what we
        // observed, when, counts.
        let timing = Timing::default();
        for renew_time in ["1970-01-01T00:00:00Z", "2999-01-01T00:00:00Z"] {
            let mut record = held_by("b", 0);
            record.renew_time = Some(renew_time.into());
            let mut observed = None;
            assert!(
                matches!(
                    decide("a", &timing, &at(50), Some(&record), &mut observed),
                    Decision::Follow { .. }
                ),
                "{renew_time}"
            );
            assert!(
                matches!(
                    decide("a", &timing, &at(65), Some(&record), &mut observed),
                    Decision::Write(_)
                ),
                "{renew_time}"
            );
        }
    }

    #[test]
    fn a_holder_renews_keeping_its_acquire_time_and_term() {
        let Decision::Write(renewed) = decide(
            "a",
            &Timing::default(),
            &at(7),
            Some(&held_by("a", 2)),
            &mut None,
        ) else {
            panic!()
        };
        assert_eq!(renewed.acquire_time.as_deref(), Some("t0"));
        assert_eq!(renewed.renew_time.as_deref(), Some("wall-7"));
        assert_eq!(renewed.leader_transitions, 2);
    }

    #[test]
    fn a_released_lock_is_taken_at_once() {
        let released = held_by("b", 5).released(&at(10));
        assert_eq!(
            (
                released.holder_identity.as_str(),
                released.lease_duration_seconds
            ),
            ("", 1)
        );
        let Decision::Write(taken) =
            decide("a", &Timing::default(), &at(10), Some(&released), &mut None)
        else {
            panic!()
        };
        assert_eq!(taken.leader_transitions, 6);
    }

    #[test]
    fn the_record_serialises_as_client_go_writes_it() {
        let record = held_by("pod-a", 1);
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"holderIdentity":"pod-a","leaseDurationSeconds":15,"acquireTime":"t0","renewTime":"t0","leaderTransitions":1}"#
        );
        let parsed: LeaderElectionRecord =
            serde_json::from_str(r#"{"holderIdentity":"x"}"#).unwrap();
        assert_eq!(parsed.leader_transitions, 0);
    }

    proptest::proptest! {
        /// Whatever the history of observations, a candidate never takes over a lease that
        /// another holder's record has shown unchanged for less than the record's lease.
        #[test]
        fn no_take_over_inside_an_observed_lease(steps in proptest::collection::vec((0u64..20, 0u8..4), 1..40)) {
            let timing = Timing::default();
            let mut observed: Option<Observed> = None;
            let mut clock = 0u64;
            let records = [held_by("b", 1), held_by("c", 2), held_by("b", 3), held_by("", 4)];
            for (advance, which) in steps {
                clock += advance;
                let record = &records[usize::from(which)];
                let before = observed.clone();
                let decision = decide("a", &timing, &at(clock), Some(record), &mut observed);
                let seen_at = match &before {
                    Some(o) if &o.record == record => o.at,
                    _ => Duration::from_secs(clock),
                };
                let live = !record.holder_identity.is_empty() && Duration::from_secs(clock) < seen_at + Duration::from_secs(15);
                if live {
                    proptest::prop_assert!(matches!(decision, Decision::Follow { .. }), "took over a live lease at {clock}");
                }
                if let Decision::Write(written) = decision {
                    proptest::prop_assert_eq!(written.leader_transitions, record.leader_transitions + 1);
                }
            }
        }
    }
}
