//! A sweep: every chosen scenario over a range of seeds on several threads, with progress, in
//! (scenario, seed) order whatever the threads did.
//!
//! ```
//! use khaos_sim::run::Options;
//! use khaos_sim::sweep::sweep;
//! let scenario = khaos_scenarios::find("leader-crash")?;
//! let runs = sweep(&[scenario], 1..3, 2, false, &Options::default(), |_, _, _| {});
//! assert_eq!(runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [1, 2]);
//! assert!(runs.iter().all(|r| r.ok), "{:?}", runs);
//! # Ok::<(), khaos_scenarios::UnknownScenario>(())
//! ```

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use khaos_scenarios::Scenario;

use crate::run::{self, Options};

/// The outcome of one run of a sweep (histories are not kept).
#[derive(Clone, Debug)]
pub struct SweepRun {
    /// The scenario.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// Its summary line.
    pub summary: String,
    /// Whether every checker held and (if asked) the run was deterministic.
    pub ok: bool,
    /// The violations (or the error), for the report.
    pub detail: String,
}

/// Run every scenario over `seeds` on `jobs` threads; `progress` is called after each run with
/// (done, total, that run). Results come back in (scenario, seed) order whatever the threads did.
/// With `determinism`, each run is done twice and the digests compared.
pub fn sweep(
    scenarios: &[&'static Scenario],
    seeds: Range<u64>,
    jobs: usize,
    determinism: bool,
    options: &Options,
    progress: impl Fn(usize, usize, &SweepRun) + Sync,
) -> Vec<SweepRun> {
    let work: Vec<(&'static Scenario, u64)> = scenarios
        .iter()
        .flat_map(|s| seeds.clone().map(move |seed| (*s, seed)))
        .collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, SweepRun)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((scenario, seed)) = work.get(index).copied() else {
                        return;
                    };
                    let run = sweep_one(scenario, seed, determinism, options);
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(finished, work.len(), &run);
                    results.lock().expect("not poisoned").push((index, run));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("not poisoned");
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, run)| run).collect()
}

fn sweep_one(
    scenario: &'static Scenario,
    seed: u64,
    determinism: bool,
    options: &Options,
) -> SweepRun {
    match run::run(scenario, seed, options) {
        Err(error) => SweepRun {
            scenario: scenario.name,
            seed,
            summary: format!("{} seed {seed}: ERROR {error}", scenario.name),
            ok: false,
            detail: error.to_string(),
        },
        Ok(report) => {
            let mut ok = report.ok();
            let mut detail = report.judged.violations_text();
            if determinism && let Err(error) = run::check_determinism(&report) {
                ok = false;
                detail.push_str(&format!("  determinism: {error}\n"));
            }
            SweepRun {
                scenario: scenario.name,
                seed,
                summary: report.summary(),
                ok,
                detail,
            }
        }
    }
}
