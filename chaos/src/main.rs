//! `khaos`: deterministic simulation and chaos testing for Kubernetes-native high availability.
//!
//! This file only parses flags; the work is in the `khaos` and `khaos-sim` libraries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use khaos::{bench, live, node, report, serve};
use khaos_elector::flaws::Flaw;
use khaos_scenarios::corpus;
use khaos_sim::apiserver::Faults;
use khaos_sim::conformance::{self, Target};
use khaos_sim::race;
use khaos_sim::run::{self, Options, SimulatedRun};
use khaos_sim::sweep;

#[derive(Parser)]
#[command(
    name = "khaos",
    version,
    about = "Deterministic simulation and chaos testing for Kubernetes-native high availability"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The deterministic simulation: HA candidates against the simulated API server under
    /// faults drawn from a seed, judged by the checkers.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Serve the simulated API server on real TCP for kubectl and other real clients.
    Serve {
        /// Address to listen on (loopback unless --allow-remote).
        #[arg(long, default_value = "127.0.0.1:6443")]
        addr: SocketAddr,
        /// Allow a non-loopback address.
        #[arg(long)]
        allow_remote: bool,
        /// Require `Authorization: Bearer TOKEN` on every request.
        #[arg(long)]
        token: Option<String>,
        /// Seed of the fault decisions.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Faults to start with, as a JSON file (the format of GET /khaos/v1/faults).
        #[arg(long)]
        faults: Option<PathBuf>,
        /// Append every commit to this file as JSON lines.
        #[arg(long)]
        history: Option<PathBuf>,
        /// How often watches that ask for bookmarks get one, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        bookmark_interval_ms: u64,
        /// Watch events kept before the oldest are compacted away (a resume from before them
        /// gets 410 Expired).
        #[arg(long, default_value_t = khaos_sim::apiserver::store::EVENTS_MAX_DEFAULT)]
        watch_history_max: usize,
        /// Unix milliseconds the --history file's t_ms counts from; give every process of a run
        /// the same one so `khaos report --from` can merge their logs [default: this start].
        #[arg(long, env = "KHAOS_EPOCH_MS")]
        epoch_ms: Option<u64>,
    },
    /// Run the conformance suite through kube-rs: in the simulator (default), against a server
    /// URL, or against the cluster KUBECONFIG points at.
    Conformance {
        /// A server to test instead of the simulator (`http://127.0.0.1:6443`).
        #[arg(long, conflicts_with = "kubeconfig")]
        server: Option<String>,
        /// Bearer token for --server.
        #[arg(long, requires = "server")]
        token: Option<String>,
        /// The server's bookmark interval in milliseconds (for the bookmark fault case).
        #[arg(long, requires = "server")]
        bookmark_interval_ms: Option<u64>,
        /// Test the real cluster from KUBECONFIG (creates and deletes namespaces named
        /// khaos-conformance-*; fault cases are skipped).
        #[arg(long)]
        kubeconfig: bool,
        /// Seed of the simulated run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run only the cases whose name contains this.
        #[arg(long)]
        case: Option<String>,
    },
    /// Run one HA candidate: the elector and the reference job master against an API server
    /// (`--server URL`, else KUBECONFIG or the in-cluster service account), logging leadership
    /// changes and checkpoints as JSON lines. SIGTERM or SIGINT stops it gracefully.
    Node(NodeArgs),
    /// Re-run a saved case (`DIR/case.json` of `khaos sim run --out DIR`, or a regression case of
    /// the corpus) and judge it again; exits non-zero if a checker fires.
    Replay {
        /// The case file.
        file: PathBuf,
        /// Run it with no flaw switched on: the passing twin of a regression case.
        #[arg(long)]
        without_flaws: bool,
        /// Write the run's files here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the history (one JSON object a line).
        #[arg(long)]
        history: bool,
    },
    /// Benchmark the standalone server on loopback: CAS update throughput and watch latency.
    Bench {
        /// Concurrent clients doing CAS updates.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// How long the CAS phase runs, in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Concurrent watchers in the watch-latency phase.
        #[arg(long, default_value_t = 200)]
        watchers: usize,
        /// Writes observed by every watcher in the watch-latency phase.
        #[arg(long, default_value_t = 200)]
        events: usize,
    },
    /// Judge the history in DIR/events.jsonl and write summary.json, junit.xml, timeline.txt
    /// and timeline.html beside it; with --from, first merge live logs into DIR/events.jsonl.
    Report(ReportArgs),
}

/// Flags of `khaos report`. The checker settings are for histories without a settings line
/// (live runs); each defaults to the first `khaos node` started line, then to `khaos node`'s
/// default.
#[derive(clap::Args)]
struct ReportArgs {
    /// The run directory.
    dir: PathBuf,
    /// Merge this JSON-lines log into DIR/events.jsonl first (repeatable): `khaos serve
    /// --history` output, each `khaos node`'s stdout, an injector's log; all stamped from the
    /// same --epoch-ms.
    #[arg(long)]
    from: Vec<PathBuf>,
    /// The lock the nodes used: configmap or lease [default: configmap].
    #[arg(long)]
    lock: Option<khaos_elector::LockKind>,
    /// The nodes' lease duration [default: 15s].
    #[arg(long, value_parser = duration)]
    lease_duration: Option<Duration>,
    /// The nodes' renew deadline [default: 10s].
    #[arg(long, value_parser = duration)]
    renew_deadline: Option<Duration>,
    /// The nodes' retry period [default: 2s].
    #[arg(long, value_parser = duration)]
    retry_period: Option<Duration>,
    /// The nodes ran with --unchecked-timing (overlap is then a figure, not a violation).
    #[arg(long)]
    unchecked_timing: bool,
    /// The nodes' checkpoint interval [default: 1s].
    #[arg(long, value_parser = duration)]
    checkpoint_interval: Option<Duration>,
    /// Namespace of the lock and the HA ConfigMaps [default: default].
    #[arg(long)]
    namespace: Option<String>,
    /// The cluster id the nodes ran with.
    #[arg(long)]
    cluster_id: Option<String>,
    /// The job's id [default: 00000000000000000000000000000000].
    #[arg(long)]
    job_id: Option<String>,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Run one scenario at one seed, print its verdicts, and optionally write the run's files.
    Run {
        /// The scenario (`khaos sim list` shows them).
        #[arg(long, default_value = "swarm")]
        scenario: String,
        /// The seed. The same seed replays the same run, byte for byte.
        #[arg(long)]
        seed: u64,
        /// Write events.jsonl, summary.json, junit.xml, timeline.txt, timeline.html and
        /// case.json here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run twice and compare the histories' digests.
        #[arg(long)]
        check_determinism: bool,
        /// Print the history (one JSON object a line).
        #[arg(long)]
        history: bool,
        /// The simulation's step in milliseconds (messages are delivered at step boundaries).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
        tick_ms: u64,
        /// Replace the scenario's fault schedule with this one (JSON, as `khaos sim shrink`
        /// writes it).
        #[arg(long)]
        schedule: Option<PathBuf>,
        /// Switch on a known bug in every candidate (repeatable; `khaos sim list` names them):
        /// the regression corpus's flawed variants, never on by default.
        #[arg(long, value_parser = parse_flaw)]
        flaw: Vec<Flaw>,
    },
    /// Shrink a failing run's fault schedule to a minimal one that still fails, and write it
    /// (replay it with `khaos sim run --schedule FILE`).
    Shrink {
        /// The scenario.
        #[arg(long)]
        scenario: String,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the shrunk schedule.
        #[arg(long, default_value = "shrunk-schedule.json")]
        out: PathBuf,
        /// The simulation's step in milliseconds.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
        tick_ms: u64,
        /// Switch on a known bug in every candidate (repeatable; `khaos sim list` names them):
        /// the regression corpus's flawed variants, never on by default.
        #[arg(long, value_parser = parse_flaw)]
        flaw: Vec<Flaw>,
    },
    /// Run scenarios over a range of seeds: a progress line per run, a summary at the end, and
    /// for each failure the line that replays it.
    Sweep {
        /// Scenarios to run (repeatable); all of them by default.
        #[arg(long)]
        scenario: Vec<String>,
        /// Seeds as A..B (B excluded), e.g. 1..101.
        #[arg(long, default_value = "1..21", value_parser = seed_range)]
        seeds: std::ops::Range<u64>,
        /// Runs in parallel [default: the number of cores].
        #[arg(long)]
        jobs: Option<usize>,
        /// Run each seed twice and compare the histories' digests.
        #[arg(long)]
        check_determinism: bool,
        /// The simulation's step in milliseconds (messages are delivered at step boundaries).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
        tick_ms: u64,
        /// Switch on a known bug in every candidate (repeatable; `khaos sim list` names them):
        /// the regression corpus's flawed variants, never on by default.
        #[arg(long, value_parser = parse_flaw)]
        flaw: Vec<Flaw>,
    },
    /// List the scenarios and the regression corpus.
    List,
    /// The regression corpus: run every known bug's exposing schedule with its flaw (the named
    /// checker must fire) and without (everything must hold); with --write, shrink each to a
    /// minimal case and save it.
    Corpus {
        /// Only these flaws (repeatable); all of them by default.
        #[arg(long, value_parser = parse_flaw)]
        flaw: Vec<Flaw>,
        /// Shrink each case and write it to DIR/<flaw>.json (replay with `khaos replay FILE`).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// For each flaw, how many seeds of the default swarm sweep it takes to find it: the first
    /// seed whose run with the flaw on breaks a checker.
    SeedsToFind {
        /// Only these flaws (repeatable); all of them by default.
        #[arg(long, value_parser = parse_flaw)]
        flaw: Vec<Flaw>,
        /// Give up on a flaw after this many seeds.
        #[arg(long, default_value_t = 2_000)]
        max_seeds: u64,
        /// Runs in parallel [default: the number of cores].
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Measure the simulation's speed: simulated seconds per wall second for the reference world
    /// (3 candidates, default timing, swarm faults, 10 simulated minutes), and catalogue runs per
    /// minute, on one core. Build with --release for meaningful figures.
    Bench {
        /// Reference worlds to run.
        #[arg(long, default_value_t = 3)]
        reference_seeds: u64,
        /// Seeds of every scenario to run for the runs-per-minute figure.
        #[arg(long, default_value_t = 2)]
        catalogue_seeds: u64,
    },
    /// The CAS race: kube-rs clients racing compare-and-swap increments on one ConfigMap through
    /// the simulated API server under seeded faults; then check that no increment was lost.
    Race {
        /// The seed (drawn and printed when absent). The same seed replays the same run.
        #[arg(long)]
        seed: Option<u64>,
        /// How many seeds to run, starting at --seed.
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// Contending clients.
        #[arg(long, default_value_t = 3)]
        clients: usize,
        /// Increments each client attempts.
        #[arg(long, default_value_t = 20)]
        increments: usize,
        /// Switch on a deliberately faulty client to show the checker firing:
        /// `blind-writes` (replace without resourceVersion).
        #[arg(long)]
        flaw: Option<race::Flaw>,
        /// Print every commit of the history.
        #[arg(long)]
        history: bool,
    },
}

fn seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let bad = || format!("{text:?} is not a seed range: write A..B with A < B, e.g. 1..101");
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a >= b {
        return Err(bad());
    }
    Ok(a..b)
}

/// Flags of `khaos node`; each can also come from the environment variable shown.
#[derive(clap::Args)]
struct NodeArgs {
    /// The API server, e.g. http://127.0.0.1:6443 for `khaos serve`. Without it: KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account.
    #[arg(long, env = "KHAOS_SERVER")]
    server: Option<String>,
    /// Bearer token for --server.
    #[arg(long, env = "KHAOS_TOKEN", requires = "server")]
    token: Option<String>,
    /// Namespace of the lock and the HA ConfigMaps.
    #[arg(long, env = "KHAOS_NAMESPACE", default_value = "default")]
    namespace: String,
    /// The cluster id: every HA object is named after it ({cluster-id}-cluster-config-map, ...).
    #[arg(long, env = "KHAOS_CLUSTER_ID")]
    cluster_id: String,
    /// This candidate's identity, unique among candidates [default: $POD_NAME, else $HOSTNAME].
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Directory for checkpoint state, job graphs and job results (shared by all candidates).
    #[arg(long, env = "KHAOS_STORAGE_DIR")]
    storage_dir: PathBuf,
    /// How long a lease lasts without renewal before a standby may take over (`15s`, `1500ms`).
    #[arg(long, env = "KHAOS_LEASE_DURATION", default_value = "15s", value_parser = duration)]
    lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    #[arg(long, env = "KHAOS_RENEW_DEADLINE", default_value = "10s", value_parser = duration)]
    renew_deadline: Duration,
    /// Time between attempts to acquire or renew (jittered while acquiring).
    #[arg(long, env = "KHAOS_RETRY_PERIOD", default_value = "2s", value_parser = duration)]
    retry_period: Duration,
    /// Accept timing that breaks `lease > renew deadline > 1.2 x retry period` (Flink's 15s/15s/5s
    /// does): two candidates may then believe they lead at once.
    #[arg(long)]
    unchecked_timing: bool,
    /// The lock: the ConfigMap annotation lock ({cluster-id}-cluster-config-map) or a
    /// coordination.k8s.io/v1 Lease ({cluster-id}-cluster-leader).
    #[arg(long, env = "KHAOS_LOCK", default_value = "configmap")]
    lock: khaos_elector::LockKind,
    /// The job's id.
    #[arg(long, default_value = "00000000000000000000000000000000")]
    job_id: String,
    /// Time between checkpoints.
    #[arg(long, default_value = "1s", value_parser = duration)]
    checkpoint_interval: Duration,
    /// Records processed between two checkpoints (the job's deterministic progress).
    #[arg(long, default_value_t = 100)]
    records_per_checkpoint: u64,
    /// Completed checkpoints retained.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    retained: u64,
    /// Finish the job (globally terminal, HA data cleaned up) once it has processed this many
    /// records; by default it runs until stopped.
    #[arg(long)]
    finish_after_records: Option<u64>,
    /// The address published as leader information [default: the identity].
    #[arg(long)]
    address: Option<String>,
    /// Seed of the retry jitter [default: a hash of the identity].
    #[arg(long)]
    seed: Option<u64>,
    /// Unix milliseconds t_ms counts from; give every process of a run the same one so
    /// `khaos report --from` can merge their logs [default: this process's start].
    #[arg(long, env = "KHAOS_EPOCH_MS")]
    epoch_ms: Option<u64>,
}

fn duration(text: &str) -> Result<Duration, String> {
    khaos_elector::timing::parse_duration(text).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(command) => run_sim(command),
        Command::Serve {
            addr,
            allow_remote,
            token,
            seed,
            faults,
            history,
            bookmark_interval_ms,
            watch_history_max,
            epoch_ms,
        } => read_faults(faults).and_then(|faults| {
            run_serve(serve::ServeConfig {
                addr,
                allow_remote,
                token,
                seed,
                faults,
                history,
                bookmark_interval: Duration::from_millis(bookmark_interval_ms),
                watch_history_max,
                epoch_ms,
            })
        }),
        Command::Conformance {
            server,
            token,
            bookmark_interval_ms,
            kubeconfig,
            seed,
            case,
        } => run_conformance(server, token, bookmark_interval_ms, kubeconfig, seed, case),
        Command::Node(args) => run_node(args),
        Command::Replay {
            file,
            without_flaws,
            out,
            history,
        } => replay(&file, without_flaws, out, history),
        Command::Report(args) => run_report(args),
        Command::Bench {
            clients,
            seconds,
            watchers,
            events,
        } => runtime().and_then(|rt| {
            rt.block_on(bench::run(bench::BenchConfig {
                clients,
                duration: Duration::from_secs(seconds),
                watchers,
                events,
            }))
            .map(|report| println!("{report}"))
            .map_err(|e| e.to_string())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("khaos: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

fn run_sim(command: SimCommand) -> Result<(), String> {
    match command {
        SimCommand::Run {
            scenario,
            seed,
            out,
            check_determinism,
            history,
            tick_ms,
            schedule,
            flaw,
        } => sim_run(
            &scenario,
            seed,
            out,
            check_determinism,
            history,
            options(tick_ms, &flaw),
            schedule,
        ),
        SimCommand::Shrink {
            scenario,
            seed,
            out,
            tick_ms,
            flaw,
        } => sim_shrink(&scenario, seed, &out, options(tick_ms, &flaw)),
        SimCommand::Sweep {
            scenario,
            seeds,
            jobs,
            check_determinism,
            tick_ms,
            flaw,
        } => sim_sweep(
            &scenario,
            seeds,
            jobs,
            check_determinism,
            options(tick_ms, &flaw),
        ),
        SimCommand::Bench {
            reference_seeds,
            catalogue_seeds,
        } => {
            let report = khaos_sim::bench::run(reference_seeds, catalogue_seeds)
                .map_err(|e| e.to_string())?;
            println!("{report}");
            Ok(())
        }
        SimCommand::List => {
            for scenario in khaos_scenarios::CATALOGUE {
                println!("{:<20} {}", scenario.name, scenario.about);
            }
            println!();
            println!(
                "The regression corpus: run `khaos sim run --scenario bug/<flaw> --seed N --flaw <flaw>`"
            );
            println!("to see the bug found, and without --flaw to see the same schedule pass.");
            for case in corpus::CORPUS {
                println!(
                    "{:<36} row {:>2}, {}; {} must fire. {}",
                    case.scenario.name,
                    case.flaw.row(),
                    case.flaw.origin(),
                    case.checker,
                    case.scenario.about
                );
            }
            Ok(())
        }
        SimCommand::Race {
            seed,
            seeds,
            clients,
            increments,
            flaw,
            history,
        } => run_race(seed, seeds, clients, increments, flaw, history),
        SimCommand::Corpus { flaw, write } => sim_corpus(&flaw, write.as_deref()),
        SimCommand::SeedsToFind {
            flaw,
            max_seeds,
            jobs,
        } => sim_seeds_to_find(&flaw, max_seeds, jobs),
    }
}

fn options(tick_ms: u64, flaws: &[Flaw]) -> Options {
    Options {
        tick: Duration::from_millis(tick_ms),
        flaws: flaws.iter().copied().collect(),
    }
}

fn parse_flaw(name: &str) -> Result<Flaw, String> {
    name.parse()
}

fn sim_run(
    scenario: &str,
    seed: u64,
    out: Option<PathBuf>,
    check_determinism: bool,
    history: bool,
    options: Options,
    schedule: Option<PathBuf>,
) -> Result<(), String> {
    let scenario = khaos_scenarios::find(scenario).map_err(|e| e.to_string())?;
    let mut setup = scenario.setup(seed);
    if let Some(path) = &schedule {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading --schedule {}: {e}", path.display()))?;
        setup.schedule = serde_json::from_str(&text).map_err(|e| {
            format!(
                "--schedule {}: {e} (expected the JSON `khaos sim shrink` writes: {{\"faults\": [{{\"at_ms\": ..., \"for_ms\": ..., \"fault\": {{\"kind\": \"crash\", \"node\": \"node-a\"}}}}]}})",
                path.display()
            )
        })?;
    }
    let mut run = run::run_setup(scenario, setup, &options).map_err(|e| e.to_string())?;
    if let Some(path) = &schedule {
        run.set_replay(format!("{} --schedule {}", run.replay(), path.display()));
    }
    if history {
        print!("{}", run.jsonl);
    }
    print_verdicts(&run);
    if check_determinism {
        run::check_determinism(&run).map_err(|e| e.to_string())?;
        println!("  determinism    ok       history {} twice", run.digest());
    }
    finish(&run, out.as_deref())
}

/// Write the run's files if asked, then fail with the violations and the replay line if any.
fn finish(run: &SimulatedRun, out: Option<&std::path::Path>) -> Result<(), String> {
    if let Some(dir) = out {
        run.write(dir)
            .map_err(|e| format!("writing {}: {e}", dir.display()))?;
        println!(
            "  wrote {}/: events.jsonl, {}, case.json (khaos replay)",
            dir.display(),
            khaos_reports::render::FILES.join(", ")
        );
    }
    if run.ok() {
        Ok(())
    } else {
        print!("{}", run.judged.violations_text());
        Err(format!("violation; replay: {}", run.replay()))
    }
}

/// The summary line and one line per checker with its figures.
fn print_verdicts(run: &SimulatedRun) {
    println!("{}", run.summary());
    print!("{}", run.judged.verdict_lines());
}

fn replay(
    file: &std::path::Path,
    without_flaws: bool,
    out: Option<PathBuf>,
    history: bool,
) -> Result<(), String> {
    let case = khaos_scenarios::case::SavedCase::load(file).map_err(|e| e.to_string())?;
    let flaws = if without_flaws {
        khaos_elector::flaws::Flaws::NONE
    } else {
        case.flaws
    };
    println!(
        "replaying {}: {} seed {}{}, {} fault(s), saved by khaos {}",
        file.display(),
        case.scenario,
        case.seed,
        if flaws.is_empty() {
            String::new()
        } else {
            format!(" with flaw {flaws}")
        },
        case.schedule.faults.len(),
        case.khaos
    );
    let mut run = run::replay(&case, flaws).map_err(|e| e.to_string())?;
    run.set_replay(format!(
        "khaos replay {}{}",
        if without_flaws {
            "--without-flaws "
        } else {
            ""
        },
        file.display()
    ));
    if history {
        print!("{}", run.jsonl);
    }
    print_verdicts(&run);
    if !without_flaws {
        use khaos_scenarios::case::Replayed;
        match case.compare(&run.violated(), run.digest()) {
            Replayed::Same => println!(
                "  same verdicts and the same history ({}) as when saved",
                case.digest
            ),
            Replayed::SameVerdicts => println!(
                "  same verdicts as when saved, but another history ({} then, {} now): the code changed since",
                case.digest,
                run.digest()
            ),
            Replayed::OtherVerdicts => println!(
                "  verdicts differ from when saved: then violated [{}], now [{}]",
                case.violated.join(", "),
                run.violated().join(", ")
            ),
        }
    }
    finish(&run, out.as_deref())
}

fn chosen_flaws(flaws: &[Flaw]) -> Vec<Flaw> {
    if flaws.is_empty() {
        Flaw::ALL.to_vec()
    } else {
        flaws.to_vec()
    }
}

fn sim_corpus(flaws: &[Flaw], write: Option<&std::path::Path>) -> Result<(), String> {
    let mut failures = Vec::new();
    println!(
        "{:>3}  {:<34} {:<5} {:<14} {:<22} twin",
        "row", "flaw", "seed", "must fire", "with the flaw"
    );
    for flaw in chosen_flaws(flaws) {
        let bug = corpus::known_bug(flaw);
        let verified = khaos_sim::corpus::verify(bug).map_err(|e| e.to_string())?;
        println!(
            "{:>3}  {:<34} {:<5} {:<14} {:<22} {}",
            flaw.row(),
            flaw.name(),
            bug.seed,
            bug.checker,
            if verified.fired() {
                "fires"
            } else {
                "DOES NOT FIRE"
            },
            if verified.twin.ok() {
                "holds"
            } else {
                "VIOLATED"
            }
        );
        failures.extend(verified.problems());
        if let Some(dir) = write
            && verified.fired()
        {
            match khaos_sim::corpus::write_minimal(bug, dir) {
                Ok((case, path)) => println!(
                    "      shrunk to {} fault(s), written to {}",
                    case.schedule.faults.len(),
                    path.display()
                ),
                Err(error) => failures.push(error.to_string()),
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn sim_seeds_to_find(flaws: &[Flaw], max_seeds: u64, jobs: Option<usize>) -> Result<(), String> {
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    println!(
        "Seeds of the default swarm sweep (`khaos sim sweep --scenario swarm --seeds 1..N --flaw F`) until the flaw is found, at most {max_seeds}:"
    );
    println!(
        "{:>3}  {:<34} {:>6}  checkers that fired",
        "row", "flaw", "seeds"
    );
    let mut missing = Vec::new();
    for flaw in chosen_flaws(flaws) {
        let progress = |seed: u64| {
            if seed.is_multiple_of(100) {
                eprintln!("  {flaw}: seed {seed}...");
            }
        };
        match khaos_sim::corpus::seeds_to_find(flaw, max_seeds, jobs, progress)
            .map_err(|e| e.to_string())?
        {
            Some((seed, violated)) => println!(
                "{:>3}  {:<34} {:>6}  {}",
                flaw.row(),
                flaw.name(),
                seed,
                violated.join(", ")
            ),
            None => {
                println!(
                    "{:>3}  {:<34} {:>6}  not found in {max_seeds} seeds",
                    flaw.row(),
                    flaw.name(),
                    "-"
                );
                missing.push(flaw.name());
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not found within {max_seeds} seeds: {}",
            missing.join(", ")
        ))
    }
}

fn sim_shrink(
    scenario: &str,
    seed: u64,
    out: &std::path::Path,
    options: Options,
) -> Result<(), String> {
    let scenario = khaos_scenarios::find(scenario).map_err(|e| e.to_string())?;
    let progress = |faults: usize, of: usize| println!("  trying {faults} of {of} faults");
    let Some((shrunk, report)) =
        run::shrink(scenario, seed, &options, progress).map_err(|e| e.to_string())?
    else {
        println!("{} seed {seed} holds: nothing to shrink", scenario.name);
        return Ok(());
    };
    let text = serde_json::to_string_pretty(&shrunk.schedule).expect("a schedule serialises");
    std::fs::write(out, text + "\n").map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!(
        "shrunk to {} fault(s) in {} runs, written to {}:",
        shrunk.schedule.faults.len(),
        shrunk.tries,
        out.display()
    );
    for fault in &shrunk.schedule.faults {
        println!(
            "  at {} ms for {} ms: {}",
            fault.at_ms, fault.for_ms, fault.fault
        );
    }
    println!("{}", report.summary());
    print!("{}", report.judged.violations_text());
    println!("replay: {} --schedule {}", report.replay(), out.display());
    Ok(())
}

fn sim_sweep(
    names: &[String],
    seeds: std::ops::Range<u64>,
    jobs: Option<usize>,
    check_determinism: bool,
    options: Options,
) -> Result<(), String> {
    let chosen: Vec<&'static khaos_scenarios::Scenario> = if names.is_empty() {
        khaos_scenarios::CATALOGUE.iter().collect()
    } else {
        names
            .iter()
            .map(|n| khaos_scenarios::find(n))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
    };
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let total = chosen.len() * usize::try_from(seeds.end - seeds.start).unwrap_or(usize::MAX);
    println!(
        "sweep: {} scenario(s) x seeds {}..{} = {total} runs on {jobs} thread(s){}",
        chosen.len(),
        seeds.start,
        seeds.end,
        if check_determinism {
            ", each run twice"
        } else {
            ""
        }
    );
    let results = sweep::sweep(
        &chosen,
        seeds,
        jobs,
        check_determinism,
        &options,
        |done, total, run: &sweep::SweepRun| {
            let mark = if run.ok { "ok  " } else { "FAIL" };
            println!("[{done:>5}/{total}] {mark} {}", run.summary);
        },
    );
    let failed: Vec<&sweep::SweepRun> = results.iter().filter(|r| !r.ok).collect();
    println!();
    println!(
        "{} runs, {} ok, {} failed",
        results.len(),
        results.len() - failed.len(),
        failed.len()
    );
    for run in &failed {
        println!("\nFAILED {} seed {}", run.scenario, run.seed);
        print!("{}", run.detail);
        println!(
            "  replay: {}",
            run::replay_command(run.scenario, run.seed, &options)
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {} runs failed", failed.len(), results.len()))
    }
}

fn run_race(
    seed: Option<u64>,
    seeds: u64,
    clients: usize,
    increments: usize,
    flaw: Option<race::Flaw>,
    history: bool,
) -> Result<(), String> {
    let first = seed.unwrap_or_else(race::draw_seed);
    let config = race::RaceConfig {
        clients,
        increments,
        flaw,
    };
    config.validate()?;
    let mut failures = Vec::new();
    for seed in first..first.saturating_add(seeds.max(1)) {
        let report = race::run(seed, &config);
        if history {
            print!("{}", report.history);
        }
        println!("{}", report.summary());
        if let Err(violation) = &report.verdict {
            println!("  VIOLATION: {violation}");
            println!("  replay: {}", report.replay_command());
            failures.push(seed);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} seeds violated the checker: {failures:?}",
            failures.len(),
            seeds.max(1)
        ))
    }
}

fn read_faults(path: Option<PathBuf>) -> Result<Faults, String> {
    let Some(path) = path else {
        return Ok(Faults::default());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading --faults {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "--faults {}: {e} (see GET /khaos/v1/faults on a running server for the format)",
            path.display()
        )
    })
}

fn run_serve(config: serve::ServeConfig) -> Result<(), String> {
    if config.bookmark_interval.is_zero() {
        return Err("--bookmark-interval-ms must be at least 1".into());
    }
    if config.watch_history_max == 0 {
        return Err("--watch-history-max must be at least 1".into());
    }
    runtime()?.block_on(async {
        let shutdown = serve::shutdown_signal();
        let running = serve::bind(config).await.map_err(|e| e.to_string())?;
        let url = format!("http://{}", running.addr);
        println!("khaos API server listening on {url}");
        println!("  try: kubectl --server {url} get configmaps -A");
        println!("  faults: curl {url}/khaos/v1/faults  (PUT a JSON body to change them)");
        running.run(shutdown).await.map_err(|e| e.to_string())?;
        println!("khaos API server stopped");
        Ok(())
    })
}

fn run_node(args: NodeArgs) -> Result<(), String> {
    let identity = match args.identity.or_else(|| std::env::var("HOSTNAME").ok()) {
        Some(identity) if !identity.is_empty() => identity,
        _ => {
            return Err(
                "no identity: pass --identity NAME (or set POD_NAME or HOSTNAME); every candidate needs a unique one"
                    .into(),
            );
        }
    };
    let timing = if args.unchecked_timing {
        khaos_elector::Timing::unchecked(
            args.lease_duration,
            args.renew_deadline,
            args.retry_period,
        )
    } else {
        khaos_elector::Timing::new(args.lease_duration, args.renew_deadline, args.retry_period)
            .map_err(|e| e.to_string())?
    };
    for (flag, value) in [
        ("--cluster-id", &args.cluster_id),
        ("--job-id", &args.job_id),
    ] {
        check_name_part(flag, value)?;
    }
    if args.job_id == "cluster" {
        // {cluster}-cluster-config-map is the cluster's own map (the lock and leader
        // information); a job of that name would clean it up.
        return Err(
            "--job-id cluster would name the job's map after the cluster's own ({cluster-id}-cluster-config-map); choose another id"
                .into(),
        );
    }
    if args.checkpoint_interval.is_zero() {
        return Err("--checkpoint-interval must be greater than zero".into());
    }
    let mut job = khaos_elector::jobmaster::JobMasterConfig::new(&args.namespace, &args.cluster_id);
    job.job_id = args.job_id;
    job.address = args.address.unwrap_or_else(|| identity.clone());
    job.checkpoint_interval = args.checkpoint_interval;
    job.records_per_checkpoint = args.records_per_checkpoint;
    job.retained = usize::try_from(args.retained).unwrap_or(usize::MAX);
    job.finish_at_records = args.finish_after_records;
    let config = node::NodeConfig {
        server: args.server,
        token: args.token,
        namespace: args.namespace,
        cluster_id: args.cluster_id,
        seed: args
            .seed
            .unwrap_or_else(|| node::seed_from_identity(&identity)),
        identity,
        storage_dir: args.storage_dir,
        timing,
        lock: args.lock,
        job,
        epoch_ms: args.epoch_ms,
    };
    runtime()?.block_on(async {
        let shutdown = serve::shutdown_signal();
        node::run(config, shutdown).await.map_err(|e| e.to_string())
    })
}

fn run_report(args: ReportArgs) -> Result<(), String> {
    let config = report::ReportConfig {
        dir: args.dir,
        from: args.from,
        flags: report::ContextFlags {
            lock: args.lock,
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
            unchecked_timing: args.unchecked_timing,
            checkpoint_interval: args.checkpoint_interval,
            namespace: args.namespace,
            cluster_id: args.cluster_id,
            job_id: args.job_id,
        },
    };
    let outcome = report::run(&config).map_err(|e| e.to_string())?;
    println!(
        "{}: {} ({} history lines)",
        config.dir.display(),
        outcome.verdict,
        outcome.entries
    );
    for path in &outcome.written {
        println!("  wrote {}", path.display());
    }
    if outcome.ok {
        Ok(())
    } else {
        print!("{}", outcome.violations);
        Err(format!(
            "violation; see {}",
            config.dir.join("timeline.html").display()
        ))
    }
}

/// The cluster and job ids become part of ConfigMap names (`{cluster}-{job}-config-map`), so
/// they must be DNS-1123 labels; the API server would otherwise refuse every write, forever.
fn check_name_part(flag: &str, value: &str) -> Result<(), String> {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{flag} {value:?} cannot be part of a ConfigMap name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. my-cluster)"
        ))
    }
}

fn run_conformance(
    server: Option<String>,
    token: Option<String>,
    bookmark_interval_ms: Option<u64>,
    kubeconfig: bool,
    seed: u64,
    case: Option<String>,
) -> Result<(), String> {
    let print = |r: &conformance::CaseResult| println!("{r}");
    let results = match (server, kubeconfig) {
        (None, false) => {
            println!("conformance: simulated API server, seed {seed}");
            conformance::run_simulated(seed, case, print)
        }
        (Some(url), _) => runtime()?.block_on(async {
            // Check the URL and token once, before the suite, so a typo gets one clear error.
            live::client_for_url(&url, conformance::IDENTITY, token.as_deref())
                .map_err(|e| e.to_string())?;
            println!("conformance: {url}");
            let mut target = Target::new("standalone", true, move |identity| {
                live::client_for_url(&url, identity, token.as_deref()).expect("checked above")
            });
            if let Some(ms) = bookmark_interval_ms {
                target = target.with_bookmark_interval(Duration::from_millis(ms));
            }
            Ok::<_, String>(conformance::run(&target, case.as_deref(), print).await)
        })?,
        (None, true) => runtime()?.block_on(async {
            let probe = live::client_from_kubeconfig(conformance::IDENTITY)
                .await
                .map_err(|e| e.to_string())?;
            let version = probe
                .apiserver_version()
                .await
                .map_err(|e| format!("reaching the cluster: {e}"))?;
            println!(
                "conformance: cluster from KUBECONFIG ({})",
                version.git_version
            );
            let mut clients = Vec::new();
            for identity in [conformance::IDENTITY, conformance::FAULTY_IDENTITY] {
                clients.push((
                    identity,
                    live::client_from_kubeconfig(identity)
                        .await
                        .map_err(|e| e.to_string())?,
                ));
            }
            let target = Target::new("cluster", false, move |identity| {
                clients
                    .iter()
                    .find(|(i, _)| *i == identity)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_else(|| clients[0].1.clone())
            });
            Ok::<_, String>(conformance::run(&target, case.as_deref(), print).await)
        })?,
    };
    println!("{}", conformance::summary(&results));
    if results.is_empty() {
        return Err(format!(
            "no case matched; the cases are: {}",
            conformance::case_names().join(", ")
        ));
    }
    if results.iter().any(|r| r.outcome.is_failed()) {
        return Err("conformance failures".into());
    }
    Ok(())
}
