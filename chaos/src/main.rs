//! `khaos`: deterministic simulation and chaos testing for Kubernetes-native high availability.
//!
//! This file only parses flags; the work is in the `khaos` and `khaos-sim` libraries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use khaos::{bench, live, serve};
use khaos_sim::apiserver::Faults;
use khaos_sim::conformance::{self, Target};
use khaos_sim::race;

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
    /// Run the CAS race in the simulator: kube-rs clients racing compare-and-swap increments on one
    /// ConfigMap through the simulated API server, under faults drawn from the seed; then check
    /// that no acknowledged increment was lost.
    Sim {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim {
            seed,
            seeds,
            clients,
            increments,
            flaw,
            history,
        } => run_sim(seed, seeds, clients, increments, flaw, history),
        Command::Serve {
            addr,
            allow_remote,
            token,
            seed,
            faults,
            history,
            bookmark_interval_ms,
            watch_history_max,
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

fn run_sim(
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
        let running = serve::bind(config).await.map_err(|e| e.to_string())?;
        let url = format!("http://{}", running.addr);
        println!("khaos API server listening on {url}");
        println!("  try: kubectl --server {url} get configmaps -A");
        println!("  faults: curl {url}/khaos/v1/faults  (PUT a JSON body to change them)");
        running
            .run(serve::shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        println!("khaos API server stopped");
        Ok(())
    })
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
