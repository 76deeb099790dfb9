//! The election driver: a thin async loop around [`decide`](crate::decision::decide) that acquires,
//! renews with per-request timeouts bounded by the renew deadline, steps down the moment the
//! deadline passes, competes again, and releases on a graceful stop.
//!
//! ```no_run
//! # async fn example(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use khaos_elector::{Elector, ElectorConfig, LockKind, Timing};
//! let config = ElectorConfig::new("pod-a", "default", "my-app-leader", LockKind::Lease, Timing::default());
//! let handle = Elector::new(client, config).spawn();
//! let mut leadership = handle.leadership();
//! while leadership.changed().await.is_ok() {
//!     match &*leadership.borrow() {
//!         Some(leader) => println!("leading in term {}", leader.term),
//!         None => println!("not leading: stop every leader-only action now"),
//!     }
//! }
//! handle.stop().await; // steps down first, then releases the lock for a fast hand-over
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{oneshot, watch};

use crate::clock::{Clock, TokioClock};
use crate::decision::{Decision, Now, Observed, decide_with};
use crate::flaws::{Flaw, Flaws};
use crate::lock::{Lock, LockError, LockKind, LockState};
use crate::timing::Timing;

/// How many times in a row a renew may lose a compare-and-swap before the leader reads the lock
/// anew after a pause (each conflict is followed by an immediate re-read).
const CONFLICTS_IN_A_ROW_MAX: usize = 8;

/// The shortest wait before a leader tries a failed renewal again (unless the retry period or
/// what is left of the deadline is shorter): within a renew deadline of `R` it makes at most
/// about `log2(R / 100 ms)` attempts once it is waiting half of what is left.
const RETRY_AFTER_FAILURE_MIN: Duration = Duration::from_millis(100);

/// A leadership as the elector granted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// This candidate's identity.
    pub identity: String,
    /// The term: the lock's transition count when this candidate acquired it. It is the fencing
    /// token: a later leader always has a higher term.
    pub term: u64,
    /// When leadership was granted, on the candidate's monotonic clock.
    pub granted_at: Duration,
}

/// What the elector tells the program it elects for, and waits on: `revoke` must return only once
/// every leader-only action has stopped, because a graceful release follows it.
pub trait Contender: Send + Sync + 'static {
    /// This candidate now leads.
    fn grant(&self, leadership: Leadership) -> BoxFuture<'static, ()>;
    /// This candidate no longer leads (lost, or stopping).
    fn revoke(&self) -> BoxFuture<'static, ()>;
}

/// A contender that does nothing: observers use [`ElectorHandle::leadership`] instead.
struct NoContender;

impl Contender for NoContender {
    fn grant(&self, _: Leadership) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    fn revoke(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Settings of one candidate.
#[derive(Clone, Debug)]
#[must_use]
pub struct ElectorConfig {
    /// This candidate's identity (the pod name in a cluster); must be unique among candidates.
    pub identity: String,
    /// The lock's namespace.
    pub namespace: String,
    /// The lock object's name.
    pub lock_name: String,
    /// The lock's kind.
    pub lock_kind: LockKind,
    /// Lease duration, renew deadline and retry period.
    pub timing: Timing,
    /// Seed of the retry jitter (draw one from the OS in production; the simulator passes its own).
    pub seed: u64,
    /// Known bugs to reproduce ([`crate::flaws`]); none unless named.
    pub flaws: Flaws,
}

impl ElectorConfig {
    /// A configuration with seed 0; see [`ElectorConfig::seed`].
    pub fn new(
        identity: &str,
        namespace: &str,
        lock_name: &str,
        lock_kind: LockKind,
        timing: Timing,
    ) -> ElectorConfig {
        ElectorConfig {
            identity: identity.to_owned(),
            namespace: namespace.to_owned(),
            lock_name: lock_name.to_owned(),
            lock_kind,
            timing,
            seed: 0,
            flaws: Flaws::NONE,
        }
    }

    /// Seed the retry jitter.
    pub fn seed(mut self, seed: u64) -> ElectorConfig {
        self.seed = seed;
        self
    }

    /// Reproduce these known bugs (the regression corpus only; see [`crate::flaws`]).
    pub fn flaws(mut self, flaws: Flaws) -> ElectorConfig {
        self.flaws = flaws;
        self
    }
}

/// One candidate, ready to run.
pub struct Elector {
    config: ElectorConfig,
    lock: Lock,
    clock: Arc<dyn Clock>,
    contender: Arc<dyn Contender>,
}

/// A running candidate.
pub struct ElectorHandle {
    leadership: watch::Receiver<Option<Leadership>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ElectorHandle {
    /// Follow this candidate's leadership: `Some` while it leads. Every change is sent before
    /// anything else happens (a revoke before any further request).
    pub fn leadership(&self) -> watch::Receiver<Option<Leadership>> {
        self.leadership.clone()
    }

    /// The leadership now.
    pub fn current(&self) -> Option<Leadership> {
        self.leadership.borrow().clone()
    }

    /// Stop gracefully: a leader revokes its contender first (and waits for it), then releases
    /// the lock so a standby takes over at its next attempt.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Stop at once, as a crash does: no revoke, no release; the lease expires on its own.
    pub fn abort(self) {
        self.task.abort();
    }
}

enum Attempt {
    /// The lock is ours at this term.
    Held(u64),
    /// Someone else holds it.
    Follow,
}

/// How a leadership ended.
enum End {
    /// A stop was asked for: release the lock.
    Stopped,
    /// The renew deadline passed or the lock was taken: compete again.
    Lost,
    /// The election task dies (only with [`Flaw::ErrorKillsElection`]).
    Killed,
}

struct Run {
    config: ElectorConfig,
    lock: Lock,
    clock: Arc<dyn Clock>,
    contender: Arc<dyn Contender>,
    observed: Option<Observed>,
    rng: ChaCha8Rng,
    leadership: watch::Sender<Option<Leadership>>,
}

impl Elector {
    /// A candidate using `client` and the runtime's clock. Must be called from within a tokio
    /// runtime.
    pub fn new(client: kube::Client, mut config: ElectorConfig) -> Elector {
        let lock = Lock::new(
            client,
            &config.namespace,
            &config.lock_name,
            config.lock_kind,
        )
        .with_flaws(config.flaws);
        if config.flaws.has(Flaw::RenewDeadlineIsLease) {
            let timing = config.timing;
            config.timing = Timing::unchecked(
                timing.lease_duration(),
                timing.lease_duration(),
                timing.retry_period(),
            );
        }
        Elector {
            config,
            lock,
            clock: Arc::new(TokioClock::new()),
            contender: Arc::new(NoContender),
        }
    }

    /// Use `clock` for all time (the simulator skews, drifts and pauses it).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Elector {
        self.clock = clock;
        self
    }

    /// Tell `contender` of grants and revokes, and wait for it.
    #[must_use]
    pub fn with_contender(mut self, contender: Arc<dyn Contender>) -> Elector {
        self.contender = contender;
        self
    }

    /// Start competing on the current tokio runtime.
    pub fn spawn(self) -> ElectorHandle {
        let (leadership, receiver) = watch::channel(None);
        let (stop, stopped) = oneshot::channel();
        let run = Run {
            rng: ChaCha8Rng::seed_from_u64(self.config.seed),
            config: self.config,
            lock: self.lock,
            clock: self.clock,
            contender: self.contender,
            observed: None,
            leadership,
        };
        let task = tokio::spawn(run.run(stopped));
        ElectorHandle {
            leadership: receiver,
            stop: Some(stop),
            task,
        }
    }
}

impl Run {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let flaws = self.config.flaws;
        loop {
            let Some((term, attempt_started)) = self.acquire(&mut stopped).await else {
                return;
            };
            let leadership = Leadership {
                identity: self.config.identity.clone(),
                term,
                granted_at: self.clock.monotonic(),
            };
            self.leadership.send_replace(Some(leadership.clone()));
            self.contender.grant(leadership).await;
            let end = if flaws.has(Flaw::ActsAfterLosingLock) {
                self.lead_regardless(&mut stopped).await
            } else {
                self.lead(&mut stopped, attempt_started).await
            };
            // Step down before anything else: observers and the contender first.
            self.leadership.send_replace(None);
            self.contender.revoke().await;
            match end {
                End::Stopped => {
                    self.release().await;
                    return;
                }
                End::Killed => return,
                // A candidate that lost must be able to win later (FLINK-34007).
                End::Lost if flaws.has(Flaw::NeverCompeteAfterLoss) => return,
                // Lost leadership: compete again.
                End::Lost => {}
            }
        }
    }

    /// Try every jittered retry period until the lock is ours: its term and when the winning
    /// attempt started (the belief's deadline counts from there); `None` when stopped first.
    async fn acquire(&mut self, stopped: &mut oneshot::Receiver<()>) -> Option<(u64, Duration)> {
        loop {
            let timeout = self.config.timing.renew_deadline();
            let started = self.clock.monotonic();
            match tokio::time::timeout(timeout, self.try_acquire_or_renew()).await {
                Ok(Ok(Attempt::Held(term))) => return Some((term, started)),
                Ok(Err(error))
                    if !error.is_conflict() && self.config.flaws.has(Flaw::ErrorKillsElection) =>
                {
                    return None;
                }
                Ok(Err(error)) if !error.is_conflict() => tracing::warn!(
                    identity = %self.config.identity,
                    lock = %self.config.lock_name,
                    %error,
                    "reading or taking the lock failed; trying again in a retry period"
                ),
                Err(_) => tracing::warn!(
                    identity = %self.config.identity,
                    lock = %self.config.lock_name,
                    "no answer within the renew deadline ({timeout:?}) while trying to take the lock; trying again"
                ),
                _ => {}
            }
            let wait = self
                .config
                .timing
                .jittered_retry(self.rng.random_range(0.0..1.0));
            tokio::select! {
                biased;
                _ = &mut *stopped => return None,
                () = self.clock.sleep(wait) => {}
            }
        }
    }

    /// Renew every retry period (at most half the renew deadline apart:
    /// [`Timing::renew_interval`](crate::Timing::renew_interval))
    /// until the renew deadline passes without a successful renewal or the lock is taken (lost),
    /// or a stop is asked for. `acquired_at` is when the attempt that won the lock started: a
    /// standby counts the lease from when it saw that write, never earlier, so the first
    /// deadline counts from there too, not from after the answer came back.
    async fn lead(&mut self, stopped: &mut oneshot::Receiver<()>, acquired_at: Duration) -> End {
        let timing = self.config.timing;
        let flaws = self.config.flaws;
        let mut renewed_at = acquired_at;
        loop {
            tokio::select! {
                biased;
                _ = &mut *stopped => return End::Stopped,
                () = self.clock.sleep(timing.renew_interval()) => {}
            }
            let mut conflicts = 0;
            loop {
                let elapsed = self.clock.monotonic().saturating_sub(renewed_at);
                let Some(budget) = timing
                    .renew_deadline()
                    .checked_sub(elapsed)
                    .filter(|b| !b.is_zero())
                else {
                    return End::Lost;
                };
                let started = self.clock.monotonic();
                // Every request gets at most what is left of the renew deadline.
                match tokio::time::timeout(budget, self.try_acquire_or_renew()).await {
                    Ok(Ok(Attempt::Held(_))) => {
                        renewed_at = started;
                        break;
                    }
                    Ok(Ok(Attempt::Follow)) => {
                        tracing::warn!(
                            identity = %self.config.identity,
                            lock = %self.config.lock_name,
                            "the lock names another holder: leadership lost"
                        );
                        return End::Lost;
                    }
                    // A lost CAS means "read again", never "I lead": re-read at once, a bounded
                    // number of times, then pause like any other failure.
                    Ok(Err(error)) if error.is_conflict() && conflicts < CONFLICTS_IN_A_ROW_MAX => {
                        conflicts += 1
                    }
                    Ok(Err(error))
                        if !error.is_conflict() && flaws.has(Flaw::ErrorKillsElection) =>
                    {
                        return End::Killed;
                    }
                    // One failed request must not end leadership early (fabric8 #4246, kubert
                    // #134): try again a retry period later, or sooner if that would be past the
                    // deadline: after half of what is left, so the next attempt has the other
                    // half (a retry period of 4.8 s with a 5.8 s deadline leaves less than one),
                    // but never sooner than RETRY_AFTER_FAILURE_MIN, so failures that come back
                    // at once make a few requests near the deadline, not a burst.
                    Ok(Err(error)) => {
                        tracing::warn!(
                            identity = %self.config.identity,
                            lock = %self.config.lock_name,
                            %error,
                            "renewing the lock failed; trying again within the renew deadline"
                        );
                        conflicts = 0;
                        let left = timing
                            .renew_deadline()
                            .saturating_sub(self.clock.monotonic().saturating_sub(renewed_at));
                        // The flaw waits out the whole deadline instead of a retry period.
                        let wait = if flaws.has(Flaw::RenewPoisoned) {
                            left
                        } else {
                            timing
                                .retry_period()
                                .min((left / 2).max(RETRY_AFTER_FAILURE_MIN))
                                .min(left)
                        };
                        tokio::select! {
                            biased;
                            _ = &mut *stopped => return End::Stopped,
                            () = self.clock.sleep(wait) => {}
                        }
                    }
                    Err(_) => {
                        tracing::warn!(
                            identity = %self.config.identity,
                            lock = %self.config.lock_name,
                            "no renewal within the renew deadline ({:?}): stepping down",
                            timing.renew_deadline()
                        );
                        return End::Lost;
                    }
                }
            }
        }
    }

    /// [`Flaw::ActsAfterLosingLock`]: renew every retry period as usual, but with no renew
    /// deadline, and treat a failed renewal, a lost compare-and-swap and a lock held by someone
    /// else alike: as something to retry while still leading. It never writes over another
    /// holder; it just never steps down. Only a stop ends it.
    async fn lead_regardless(&mut self, stopped: &mut oneshot::Receiver<()>) -> End {
        let timing = self.config.timing;
        loop {
            tokio::select! {
                biased;
                _ = &mut *stopped => return End::Stopped,
                () = self.clock.sleep(timing.retry_period()) => {}
            }
            let _ =
                tokio::time::timeout(timing.renew_deadline(), self.try_acquire_or_renew()).await;
        }
    }

    /// Read the lock and act on the decision.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LockError> {
        let state = self.lock.read().await?;
        let now = self.now();
        match decide_with(
            &self.config.identity,
            &self.config.timing,
            &now,
            state.record.as_ref(),
            &mut self.observed,
            self.config.flaws,
        ) {
            Decision::Follow { .. } => Ok(Attempt::Follow),
            Decision::Write(record) => {
                self.lock.write(&state, &record).await?;
                let term = u64::from(record.leader_transitions);
                self.observed = Some(Observed {
                    record,
                    at: now.monotonic,
                });
                Ok(Attempt::Held(term))
            }
        }
    }

    /// Write the released record with a CAS, if the lock is still ours. Best effort, bounded by
    /// one renew deadline: if it fails, the lease expires on its own.
    async fn release(&mut self) {
        let release = async {
            let state: LockState = self.lock.read().await?;
            match &state.record {
                Some(record) if record.holder_identity == self.config.identity => {
                    let released = record.released(&self.now());
                    self.lock.write(&state, &released).await.map(|_| ())
                }
                _ => Ok(()),
            }
        };
        let _ = tokio::time::timeout(self.config.timing.renew_deadline(), release).await;
    }

    fn now(&self) -> Now {
        Now {
            monotonic: self.clock.monotonic(),
            wall: wall_string(self.clock.wall()),
        }
    }
}

/// RFC 3339 with microseconds, which both a Lease's MicroTime and a ConfigMap record accept.
pub fn wall_string(time: SystemTime) -> String {
    Timestamp::try_from(time)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000000Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_have_microseconds_and_a_z() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_248_180_123_456);
        assert_eq!(wall_string(t), "2026-11-21T08:03:00.123456Z");
    }
}
