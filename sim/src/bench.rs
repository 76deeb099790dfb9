//! `khaos sim bench`: how fast the simulation runs. It prints simulated seconds per wall second
//! on one core for the reference world (3 candidates, validated default timing, swarm faults, 10
//! simulated minutes), and how many catalogue runs (the CI sweep's unit) finish per minute.

// A benchmark measures the real world: it reads the real monotonic clock on purpose.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use khaos_scenarios::CATALOGUE;

use crate::run::{self, Options};
use crate::world;

/// The figures of one benchmark.
pub struct SimBench {
    /// Per step length and reference seed: simulated time and wall time.
    pub reference: Vec<(Duration, u64, Duration, Duration)>,
    /// Catalogue runs done and the wall time they took.
    pub catalogue: (usize, Duration),
}

/// Run `reference_seeds` reference worlds and every scenario at `catalogue_seeds` seeds, one at a
/// time on this thread.
pub fn run(reference_seeds: u64, catalogue_seeds: u64) -> Result<SimBench, world::WorldError> {
    let swarm = khaos_scenarios::find("swarm").expect("the catalogue has a swarm");
    let mut reference = Vec::new();
    // The default step, and turmoil's 1 ms for comparison, side by side.
    // The swarm's seeds that draw three candidates and a job that never finishes (the swarm also
    // draws smaller worlds and finishing jobs, which would flatter the figure).
    let seeds: Vec<u64> = (1..)
        .filter(|seed| {
            let setup = swarm.setup(*seed);
            setup.nodes == 3 && setup.job.finish_at_records.is_none()
        })
        .take(usize::try_from(reference_seeds).unwrap_or(usize::MAX))
        .collect();
    for tick in [world::TICK_DEFAULT, Duration::from_millis(1)] {
        for &seed in &seeds {
            let mut setup = swarm.setup(seed);
            // Ten simulated minutes: the swarm's faults in the first half, healed in the second.
            setup.fault_phase_ms = 300_000;
            setup.healed_phase_ms = 300_000;
            let options = Options {
                tick,
                ..Options::default()
            };
            let started = Instant::now();
            let output = world::run(&setup, &options)?;
            reference.push((tick, seed, output.simulated, started.elapsed()));
        }
    }
    let started = Instant::now();
    let mut runs = 0;
    for scenario in CATALOGUE {
        for seed in 1..=catalogue_seeds {
            run::run(scenario, seed, &Options::default())?;
            runs += 1;
        }
    }
    Ok(SimBench {
        reference,
        catalogue: (runs, started.elapsed()),
    })
}

impl std::fmt::Display for SimBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "reference world (3 candidates, 15/10/2 s timing, swarm faults, 10 simulated minutes), one core:"
        )?;
        let mut ticks: Vec<Duration> = self.reference.iter().map(|r| r.0).collect();
        ticks.dedup();
        for tick in ticks {
            let (mut simulated, mut wall) = (Duration::ZERO, Duration::ZERO);
            for (_, seed, sim, took) in self.reference.iter().filter(|r| r.0 == tick) {
                writeln!(
                    f,
                    "  {} ms step, seed {seed}: {:.0} s simulated in {:.2} s = {:.0}x real time",
                    tick.as_millis(),
                    sim.as_secs_f64(),
                    took.as_secs_f64(),
                    sim.as_secs_f64() / took.as_secs_f64()
                )?;
                simulated += *sim;
                wall += *took;
            }
            writeln!(
                f,
                "  {} ms step overall: {:.0}x real time",
                tick.as_millis(),
                simulated.as_secs_f64() / wall.as_secs_f64().max(1e-9)
            )?;
        }
        let (runs, took) = self.catalogue;
        write!(
            f,
            "catalogue runs (the CI sweep's unit, 2 simulated minutes each): {runs} in {:.1} s = {:.0} runs per minute on one core",
            took.as_secs_f64(),
            runs as f64 * 60.0 / took.as_secs_f64().max(1e-9)
        )
    }
}
