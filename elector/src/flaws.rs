//! Deliberate flaws: the sixteen real leader-election and HA-store bugs of khaos's regression
//! corpus (`docs/known-bugs.md`), each one switchable by name in this crate's own code so the
//! harness can show it finds them.
//!
//! Every flaw is off unless a caller names it: [`Flaws::default`] is empty, and nothing in this
//! crate turns one on. The simulator (`khaos sim run --flaw NAME`) is the only caller that does.
//!
//! ```
//! use khaos_elector::flaws::{Flaw, Flaws};
//! let flaws: Flaws = "renew-poisoned,counter-without-cas".parse().unwrap();
//! assert!(flaws.has(Flaw::CounterWithoutCas));
//! assert!(!Flaws::default().has(Flaw::CounterWithoutCas));
//! assert_eq!(flaws.to_string(), "renew-poisoned,counter-without-cas");
//! assert!("no-such-flaw".parse::<Flaws>().unwrap_err().contains("the known flaws are"));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One known bug, as a switch in khaos's own elector or store. The doc of each variant says what
/// the flawed code does differently; [`Flaw::row`] is its row in `docs/known-bugs.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flaw {
    /// A checkpoint pointer write whose answer was lost is treated as failed and its blob is
    /// discarded, although the pointer may have committed (FLINK-28265, FLINK-22494).
    DiscardAfterAmbiguousCommit,
    /// A checkpoint is removed by discarding its blob and then its key, without first marking the
    /// pointer; a failure between the two leaves a pointer to nothing (FLINK-26286).
    RemovalNotRepeatable,
    /// A candidate that lost leadership never competes again (FLINK-34007).
    NeverCompeteAfterLoss,
    /// One failed renew request stops renewing until the renew deadline passes (fabric8 #4246).
    RenewPoisoned,
    /// A leader whose renewals fail, or whose lock was taken (its renewal loses the
    /// compare-and-swap), keeps believing it leads and keeps acting: no renew deadline, and no
    /// step-down on a lost lock (kubernetes #23731).
    ActsAfterLosingLock,
    /// A new leader does not check the job's recorded result: a job that reached a globally
    /// terminal state runs again when leadership is revoked and regained (FLINK-39704).
    RestartFinishedJob,
    /// Losing leadership or stopping, which is not globally terminal, deletes the job's HA data
    /// (FLINK-25486).
    NonTerminalCleanup,
    /// The leader-retrieval watch stops for good after a 410 Expired (FLINK-20417).
    RetrievalStopsOn410,
    /// A take-over writes the lock without a resourceVersion, so two candidates can both take
    /// it (the kube-leader-election crate).
    TakeoverWithoutResourceVersion,
    /// Expiry is judged by the record's renewTime against the local wall clock (fabric8's
    /// LeaderElector).
    ExpiryByWallClock,
    /// The renew deadline is the lease duration (Flink's default timing, unvalidated).
    RenewDeadlineIsLease,
    /// The checkpoint counter is incremented by a read and then a write without
    /// resourceVersion, so the increments of two leaders can interleave.
    CounterWithoutCas,
    /// Older checkpoints are subsumed before the newer pointer is committed.
    SubsumeBeforeCommit,
    /// Recovery uses the checkpoint this process found at its first recovery instead of reading
    /// the store again.
    CachedCheckpointList,
    /// A released lock (no holder) is never taken over (fabric8 #6020).
    ReleasedLockNeverTaken,
    /// A request error other than a conflict ends the election task (kubert #134).
    ErrorKillsElection,
    /// The HA store trusts the elector alone: a leader-only write neither checks the map's seal
    /// nor carries the resourceVersion it read, so a leader that believes it still leads after
    /// another took over overwrites the new leader's data (client-go's leaderelection: "does not
    /// guarantee that only one client is acting as a leader (a.k.a. fencing)").
    UnfencedStore,
}

impl Flaw {
    /// Every flaw, in the order of the known-bugs table.
    pub const ALL: [Flaw; 17] = [
        Flaw::DiscardAfterAmbiguousCommit,
        Flaw::RemovalNotRepeatable,
        Flaw::NeverCompeteAfterLoss,
        Flaw::RenewPoisoned,
        Flaw::ActsAfterLosingLock,
        Flaw::RestartFinishedJob,
        Flaw::NonTerminalCleanup,
        Flaw::RetrievalStopsOn410,
        Flaw::TakeoverWithoutResourceVersion,
        Flaw::ExpiryByWallClock,
        Flaw::RenewDeadlineIsLease,
        Flaw::CounterWithoutCas,
        Flaw::SubsumeBeforeCommit,
        Flaw::CachedCheckpointList,
        Flaw::ReleasedLockNeverTaken,
        Flaw::ErrorKillsElection,
        Flaw::UnfencedStore,
    ];

    /// The flaw's name on command lines and in files.
    pub fn name(self) -> &'static str {
        match self {
            Flaw::DiscardAfterAmbiguousCommit => "discard-after-ambiguous-commit",
            Flaw::RemovalNotRepeatable => "removal-not-repeatable",
            Flaw::NeverCompeteAfterLoss => "never-compete-after-loss",
            Flaw::RenewPoisoned => "renew-poisoned",
            Flaw::ActsAfterLosingLock => "acts-after-losing-lock",
            Flaw::RestartFinishedJob => "restart-finished-job",
            Flaw::NonTerminalCleanup => "non-terminal-cleanup",
            Flaw::RetrievalStopsOn410 => "retrieval-stops-on-410",
            Flaw::TakeoverWithoutResourceVersion => "takeover-without-resource-version",
            Flaw::ExpiryByWallClock => "expiry-by-wall-clock",
            Flaw::RenewDeadlineIsLease => "renew-deadline-is-lease",
            Flaw::CounterWithoutCas => "counter-without-cas",
            Flaw::SubsumeBeforeCommit => "subsume-before-commit",
            Flaw::CachedCheckpointList => "cached-checkpoint-list",
            Flaw::ReleasedLockNeverTaken => "released-lock-never-taken",
            Flaw::ErrorKillsElection => "error-kills-election",
            Flaw::UnfencedStore => "unfenced-store",
        }
    }

    /// Its row (1-based) in `docs/known-bugs.md`.
    pub fn row(self) -> usize {
        Flaw::ALL
            .iter()
            .position(|f| *f == self)
            .expect("every flaw is listed")
            + 1
    }

    /// Where the bug was found.
    pub fn origin(self) -> &'static str {
        match self {
            Flaw::DiscardAfterAmbiguousCommit => "FLINK-28265, FLINK-22494",
            Flaw::RemovalNotRepeatable => "FLINK-26286",
            Flaw::NeverCompeteAfterLoss => "FLINK-34007",
            Flaw::RenewPoisoned => "fabric8 #4246",
            Flaw::ActsAfterLosingLock => "kubernetes #23731",
            Flaw::RestartFinishedJob => "FLINK-39704",
            Flaw::NonTerminalCleanup => "FLINK-25486",
            Flaw::RetrievalStopsOn410 => "FLINK-20417",
            Flaw::TakeoverWithoutResourceVersion => "kube-leader-election (Rust crate)",
            Flaw::ExpiryByWallClock => "fabric8 LeaderElector",
            Flaw::RenewDeadlineIsLease => "Flink's default timing",
            Flaw::CounterWithoutCas | Flaw::SubsumeBeforeCommit | Flaw::CachedCheckpointList => {
                "generic"
            }
            Flaw::ReleasedLockNeverTaken => "fabric8 #6020",
            Flaw::ErrorKillsElection => "kubert #134",
            Flaw::UnfencedStore => "client-go leaderelection (no fencing)",
        }
    }
}

impl fmt::Display for Flaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Flaw {
    type Err = String;

    fn from_str(name: &str) -> Result<Flaw, String> {
        Flaw::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Flaw::ALL.iter().map(|f| f.name()).collect();
                format!("no flaw {name:?}; the known flaws are {}", known.join(", "))
            })
    }
}

/// A set of flaws; empty by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flaws(u32);

impl Flaws {
    /// No flaw: production behaviour.
    pub const NONE: Flaws = Flaws(0);

    /// Only `flaw`.
    pub fn only(flaw: Flaw) -> Flaws {
        Flaws::NONE.with(flaw)
    }

    /// This set and `flaw`.
    #[must_use]
    pub fn with(self, flaw: Flaw) -> Flaws {
        Flaws(self.0 | 1 << flaw.row())
    }

    /// Whether `flaw` is on.
    pub fn has(self, flaw: Flaw) -> bool {
        self.0 & 1 << flaw.row() != 0
    }

    /// Whether no flaw is on.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flaws that are on, in table order.
    pub fn iter(self) -> impl Iterator<Item = Flaw> {
        Flaw::ALL.into_iter().filter(move |f| self.has(*f))
    }
}

impl FromIterator<Flaw> for Flaws {
    fn from_iter<I: IntoIterator<Item = Flaw>>(flaws: I) -> Flaws {
        flaws.into_iter().fold(Flaws::NONE, Flaws::with)
    }
}

impl fmt::Display for Flaws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Flaw::name).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Flaws {
    type Err = String;

    /// Names separated by commas (empty: none).
    fn from_str(names: &str) -> Result<Flaws, String> {
        names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(Flaw::from_str)
            .collect()
    }
}

impl Serialize for Flaws {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Flaw::name))
    }
}

impl<'de> Deserialize<'de> for Flaws {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flaws, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        names
            .iter()
            .map(|n| n.parse::<Flaw>())
            .collect::<Result<Flaws, String>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_rows_follow_the_table() {
        for (index, flaw) in Flaw::ALL.into_iter().enumerate() {
            assert_eq!(flaw.row(), index + 1);
            assert_eq!(flaw.name().parse::<Flaw>(), Ok(flaw));
            assert!(Flaws::only(flaw).has(flaw));
            assert!(!Flaws::default().has(flaw));
        }
        let all: Flaws = Flaw::ALL.into_iter().collect();
        assert_eq!(all.iter().count(), Flaw::ALL.len());
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<Flaws>(&json).unwrap(), all);
        assert!(serde_json::from_str::<Flaws>(r#"["nope"]"#).is_err());
        assert_eq!("".parse::<Flaws>(), Ok(Flaws::NONE));
    }
}
