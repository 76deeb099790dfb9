//! `khaos`: deterministic simulation and chaos testing for Kubernetes-native high availability.
//!
//! This file dispatches each subcommand to the libraries and prints what they return; the flags
//! are in `cli.rs`, the work in `khaos`, `khaos-sim`, `khaos-scenarios` and `khaos-reports`.

mod cli;

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use khaos::{bench, judge, live, node, serve};
use khaos_elector::flaws::{Flaw, Flaws};
use khaos_scenarios::case::{Replayed, SavedCase};
use khaos_scenarios::corpus;
use khaos_sim::conformance;
use khaos_sim::race;
use khaos_sim::run::{self, Options, SimulatedRun};
use khaos_sim::sweep;

use crate::cli::{ChaosCommand, Cli, Command, InjectArgs, NodeArgs, ReportArgs, SimCommand};

/// `println!`, except that a reader who has gone (`khaos sim list | head -3`) ends the process
/// quietly and successfully, as ripgrep does, where `println!` would panic on the broken pipe.
macro_rules! say {
    () => { say!("") };
    ($($arg:tt)*) => { stdout_write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` as [`say!`] is `println!`: for text that brings its own line ends.
macro_rules! say_raw {
    ($($arg:tt)*) => { stdout_write(format_args!($($arg)*)) };
}

fn stdout_write(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(error) = std::io::stdout().lock().write_fmt(text) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("khaos: writing to standard output: {error}");
        std::process::exit(1);
    }
}

/// What a subcommand returns: nothing, or the error `khaos:` prints before it exits non-zero.
type Done = Result<(), Box<dyn Error>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(command) => sim(command),
        Command::Serve {
            addr,
            allow_remote,
            token,
            seed,
            faults,
            history,
            data_dir,
            tls,
            write_kubeconfig,
            bookmark_interval_ms,
            watch_history_max,
            epoch_ms,
            cluster,
            image,
            pods_dir,
            node_name,
            force_delete_grace,
            restart_backoff,
        } => serve::read_faults(faults.as_deref())
            .map_err(Into::into)
            .and_then(|faults| {
                let cluster = cluster.then(|| khaos::cluster::ClusterConfig {
                    images: image,
                    pods_dir: pods_dir.unwrap_or_else(|| std::env::temp_dir().join("khaos-pods")),
                    kubelet: khaos_sim::cluster::kubelet::Config {
                        node: node_name,
                        force_delete: if force_delete_grace == "full" {
                            khaos_sim::cluster::kubelet::ForceDeleteGrace::Full
                        } else {
                            khaos_sim::cluster::kubelet::ForceDeleteGrace::Minimum
                        },
                        backoff_initial_ms: restart_backoff.as_millis() as i64,
                        ..khaos_sim::cluster::kubelet::Config::default()
                    },
                });
                run_serve(
                    cluster,
                    serve::ServeConfig {
                        addr,
                        allow_remote,
                        token,
                        seed,
                        faults,
                        history,
                        data_dir,
                        tls,
                        write_kubeconfig,
                        bookmark_interval: Duration::from_millis(bookmark_interval_ms),
                        watch_history_max,
                        epoch_ms,
                    },
                )
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
        Command::Chaos(ChaosCommand::Inject(args)) => run_inject(args),
        Command::Replay {
            file,
            without_flaws,
            out,
            history,
        } => replay(&file, without_flaws, out.as_deref(), history),
        Command::Report(args) => run_report(args),
        Command::Bench {
            clients,
            seconds,
            watchers,
            events,
            history,
        } => runtime().and_then(|runtime| {
            let report = runtime.block_on(bench::run(bench::BenchConfig {
                clients,
                duration: Duration::from_secs(seconds),
                watchers,
                events,
                history,
            }))?;
            say!("{report}");
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("khaos: {error}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Box<dyn Error>> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}").into())
}

fn sim(command: SimCommand) -> Done {
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
            out.as_deref(),
            check_determinism,
            history,
            options(tick_ms, &flaw),
            schedule.as_deref(),
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
            say!(
                "{}",
                khaos_sim::bench::run(reference_seeds, catalogue_seeds)?
            );
            Ok(())
        }
        SimCommand::List => {
            sim_list();
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

fn jobs_or_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

fn chosen_flaws(flaws: &[Flaw]) -> Vec<Flaw> {
    if flaws.is_empty() {
        Flaw::ALL.to_vec()
    } else {
        flaws.to_vec()
    }
}

fn sim_list() {
    for scenario in khaos_scenarios::CATALOGUE {
        say!("{:<20} {}", scenario.name, scenario.about);
    }
    say!();
    say!("The regression corpus: run `khaos sim run --scenario bug/<flaw> --seed N --flaw <flaw>`");
    say!("to see the bug found, and without --flaw to see the same schedule pass.");
    for bug in corpus::CORPUS {
        say!(
            "{:<36} row {:>2}, {}; {} must fire. {}",
            bug.scenario.name,
            bug.flaw.row(),
            bug.flaw.origin(),
            bug.checker,
            bug.scenario.about
        );
    }
}

fn sim_run(
    scenario: &str,
    seed: u64,
    out: Option<&Path>,
    check_determinism: bool,
    history: bool,
    options: Options,
    schedule: Option<&Path>,
) -> Done {
    let scenario = khaos_scenarios::find(scenario)?;
    if let Some(dir) = out {
        prepare_out(dir)?;
    }
    let mut setup = scenario.setup(seed);
    if let Some(path) = schedule {
        setup.schedule =
            khaos_scenarios::load_schedule(path).map_err(|e| format!("--schedule {e}"))?;
    }
    let mut run = run::run_setup(scenario, setup, &options)?;
    if let Some(path) = schedule {
        run.set_replay(format!("{} --schedule {}", run.replay(), path.display()));
    }
    if history {
        say_raw!("{}", run.jsonl);
    }
    print_verdicts(&run);
    if check_determinism {
        run::check_determinism(&run)?;
        say!("  determinism    ok       history {} twice", run.digest());
    }
    finish(&run, out)
}

/// Make `--out DIR` before the run, so a bad one fails at once: a new or empty directory, never
/// one holding another run's files.
fn prepare_out(dir: &Path) -> Done {
    if dir.is_file() {
        return Err(format!("--out {} is a file: give a directory", dir.display()).into());
    }
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(format!(
            "--out {} already holds files (another run's?): give a new directory, or delete this one first",
            dir.display()
        )
        .into());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--out {}: cannot create it: {e}", dir.display()))?;
    Ok(())
}

/// Write the run's files if asked, then fail with the violations and the replay line if any.
fn finish(run: &SimulatedRun, out: Option<&Path>) -> Done {
    if let Some(dir) = out {
        run.write(dir)
            .map_err(|e| format!("writing {}: {e}", dir.display()))?;
        say!(
            "  wrote {}/: events.jsonl, {}, case.json (khaos replay)",
            dir.display(),
            khaos_reports::render::FILES.join(", ")
        );
    }
    if run.ok() {
        Ok(())
    } else {
        say_raw!("{}", run.judged.violations_text());
        Err(format!("violation; replay: {}", run.replay()).into())
    }
}

/// The summary line and one line per checker with its figures.
fn print_verdicts(run: &SimulatedRun) {
    say!("{}", run.summary());
    say_raw!("{}", run.judged.verdict_lines());
}

fn replay(file: &Path, without_flaws: bool, out: Option<&Path>, history: bool) -> Done {
    let case = SavedCase::load(file)?;
    if let Some(dir) = out {
        prepare_out(dir)?;
    }
    let flaws = if without_flaws {
        Flaws::NONE
    } else {
        case.flaws
    };
    say!(
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
    let mut run = run::replay(&case, flaws)?;
    let twin = if without_flaws {
        "--without-flaws "
    } else {
        ""
    };
    run.set_replay(format!("khaos replay {twin}{}", file.display()));
    if history {
        say_raw!("{}", run.jsonl);
    }
    print_verdicts(&run);
    if !without_flaws {
        match case.compare(&run.violated(), run.digest()) {
            Replayed::Same => say!(
                "  same verdicts and the same history ({}) as when saved",
                case.digest
            ),
            Replayed::SameVerdicts => say!(
                "  same verdicts as when saved, but another history ({} then, {} now): the code changed since",
                case.digest,
                run.digest()
            ),
            Replayed::OtherVerdicts => say!(
                "  verdicts differ from when saved: then violated [{}], now [{}]",
                case.violated.join(", "),
                run.violated().join(", ")
            ),
        }
    }
    finish(&run, out)
}

fn sim_corpus(flaws: &[Flaw], write: Option<&Path>) -> Done {
    let mut failures = Vec::new();
    say!(
        "{:>3}  {:<34} {:<5} {:<14} {:<22} twin",
        "row",
        "flaw",
        "seed",
        "must fire",
        "with the flaw"
    );
    for flaw in chosen_flaws(flaws) {
        let bug = corpus::known_bug(flaw);
        let verified = khaos_sim::corpus::verify(bug)?;
        say!(
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
                Ok((case, path)) => say!(
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
        Err(failures.join("\n").into())
    }
}

fn sim_seeds_to_find(flaws: &[Flaw], max_seeds: u64, jobs: Option<usize>) -> Done {
    let jobs = jobs_or_cores(jobs);
    say!(
        "Seeds of the default swarm sweep (`khaos sim sweep --scenario swarm --seeds 1..N --flaw F`) until the flaw is found, at most {max_seeds}:"
    );
    say!(
        "(CPU seconds: the whole search, in batches of {} seeds, with each failure's confirming re-runs.)",
        jobs.max(1) * 4
    );
    say!(
        "{:>3}  {:<34} {:>6} {:>8}  checkers that fired",
        "row",
        "flaw",
        "seeds",
        "CPU s"
    );
    let mut missing = Vec::new();
    for flaw in chosen_flaws(flaws) {
        let progress = |seed: u64| {
            if seed.is_multiple_of(100) {
                eprintln!("  {flaw}: seed {seed}...");
            }
        };
        // Every thread's CPU time, user and system, over this flaw's search.
        let started = cpu_time::ProcessTime::now();
        let found = khaos_sim::corpus::seeds_to_find(flaw, max_seeds, jobs, progress)?;
        let cpu = started.elapsed().as_secs_f64();
        match found {
            Some((seed, violated)) => say!(
                "{:>3}  {:<34} {:>6} {:>8.1}  {}",
                flaw.row(),
                flaw.name(),
                seed,
                cpu,
                violated.join(", ")
            ),
            None => {
                say!(
                    "{:>3}  {:<34} {:>6} {:>8.1}  not found in {max_seeds} seeds",
                    flaw.row(),
                    flaw.name(),
                    "-",
                    cpu
                );
                missing.push(flaw.name());
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("not found within {max_seeds} seeds: {}", missing.join(", ")).into())
    }
}

fn sim_shrink(scenario: &str, seed: u64, out: &Path, options: Options) -> Done {
    let scenario = khaos_scenarios::find(scenario)?;
    let progress = |faults: usize, of: usize| say!("  trying {faults} of {of} faults");
    let Some((shrunk, run)) = run::shrink(scenario, seed, &options, progress)? else {
        say!("{} seed {seed} holds: nothing to shrink", scenario.name);
        return Ok(());
    };
    khaos_scenarios::save_schedule(out, &shrunk.schedule)?;
    say!(
        "shrunk to {} fault(s) in {} runs, written to {}:",
        shrunk.schedule.faults.len(),
        shrunk.tries,
        out.display()
    );
    for fault in &shrunk.schedule.faults {
        say!(
            "  at {} ms for {} ms: {}",
            fault.at_ms,
            fault.for_ms,
            fault.fault
        );
    }
    say!("{}", run.summary());
    say_raw!("{}", run.judged.violations_text());
    say!("replay: {} --schedule {}", run.replay(), out.display());
    Ok(())
}

/// A progress bar with an ETA when stdout is a terminal (and not under CI); `None` for plain
/// lines.
fn progress_bar(total: usize) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() || std::env::var_os("CI").is_some() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs  {elapsed_precise} elapsed, ETA {eta_precise}",
        )
        .expect("a valid template"),
    );
    Some(bar)
}

fn sim_sweep(
    names: &[String],
    seeds: std::ops::Range<u64>,
    jobs: Option<usize>,
    check_determinism: bool,
    options: Options,
) -> Done {
    let chosen: Vec<&'static khaos_scenarios::Scenario> = if names.is_empty() {
        khaos_scenarios::CATALOGUE.iter().collect()
    } else {
        names
            .iter()
            .map(|n| khaos_scenarios::find(n))
            .collect::<Result<_, _>>()?
    };
    let jobs = jobs_or_cores(jobs);
    let total = chosen.len() * usize::try_from(seeds.end - seeds.start).unwrap_or(usize::MAX);
    say!(
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
    let bar = progress_bar(total);
    let results = sweep::sweep(
        &chosen,
        seeds,
        jobs,
        check_determinism,
        &options,
        |done, total, run: &sweep::SweepRun| {
            let mark = if run.ok { "ok  " } else { "FAIL" };
            match &bar {
                // On a terminal: a bar with an ETA, and a line only for a failure.
                Some(bar) => {
                    if !run.ok {
                        bar.println(format!("[{done:>5}/{total}] {mark} {}", run.summary));
                    }
                    bar.inc(1);
                }
                // In CI and in files: a plain line per run.
                None => say!("[{done:>5}/{total}] {mark} {}", run.summary),
            }
        },
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let failed: Vec<&sweep::SweepRun> = results.iter().filter(|r| !r.ok).collect();
    say!();
    say!(
        "{} runs, {} ok, {} failed",
        results.len(),
        results.len() - failed.len(),
        failed.len()
    );
    for run in &failed {
        say!("\nFAILED {} seed {}", run.scenario, run.seed);
        say_raw!("{}", run.detail);
        say!(
            "  replay: {}",
            run::replay_command(run.scenario, run.seed, &options)
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {} runs failed", failed.len(), results.len()).into())
    }
}

fn run_race(
    seed: Option<u64>,
    seeds: u64,
    clients: usize,
    increments: usize,
    flaw: Option<race::Flaw>,
    history: bool,
) -> Done {
    let first = seed.unwrap_or_else(race::draw_seed);
    let config = race::RaceConfig {
        clients,
        increments,
        flaw,
    };
    config.validate()?;
    let Some(last) = first.checked_add(seeds - 1) else {
        return Err(format!(
            "--seed {first} --seeds {seeds} runs past the largest seed ({}): start lower or run fewer",
            u64::MAX
        )
        .into());
    };
    let mut failures = Vec::new();
    for seed in first..=last {
        let report = race::run(seed, &config);
        if history {
            say_raw!("{}", report.history);
        }
        say!("{}", report.summary());
        if let Err(violation) = &report.verdict {
            say!("  VIOLATION: {violation}");
            say!("  replay: {}", report.replay_command());
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
        )
        .into())
    }
}

fn run_serve(cluster: Option<khaos::cluster::ClusterConfig>, config: serve::ServeConfig) -> Done {
    if cluster.is_some() && !config.allow_remote.is_empty() && config.token.is_none() {
        // Whoever can create a pod runs a program on this machine.
        return Err("--cluster with --allow-remote needs --token: anyone who can reach the server could run any program here as you".into());
    }
    runtime()?.block_on(async {
        let signal = serve::shutdown_signal();
        let kubeconfig = config.write_kubeconfig.clone();
        let running = serve::bind(config).await?;
        let url = running.url.clone();
        say!("khaos API server listening on {url}");
        if running.restored > 0 {
            say!(
                "  restored {} commit(s) from the data directory, at revision {}",
                running.restored,
                running.server.revision()
            );
        }
        match kubeconfig {
            Some(path) => say!(
                "  try: kubectl --kubeconfig {} get configmaps -A",
                path.display()
            ),
            None => say!("  try: kubectl --server {url} get configmaps -A"),
        }
        say!("  faults: curl {url}/khaos/v1/faults  (PUT a JSON body to change them)");
        let cluster = match cluster {
            None => None,
            Some(config) => {
                let pods_dir = config.pods_dir.clone();
                let node = config.kubelet.node.clone();
                let cluster =
                    khaos::cluster::Cluster::start(&running.server, &running.kubeconfig, config)
                        .await?;
                say!(
                    "  local cluster: node {node}, pods in {}; try: kubectl --server {url} get pods -w",
                    pods_dir.display()
                );
                Some(cluster)
            }
        };
        // The pods stop first, while the server still answers them (a leader releases its lock).
        let shutdown = async {
            signal.await;
            if let Some(cluster) = cluster {
                say!("stopping the local cluster's pods");
                cluster.stop().await;
            }
        };
        running.run(shutdown).await?;
        say!("khaos API server stopped");
        Ok(())
    })
}

fn run_node(args: NodeArgs) -> Done {
    khaos::logging::init(args.log_json);
    let config = node::NodeOptions {
        server: args.server,
        token: args.token,
        namespace: args.namespace,
        cluster_id: args.cluster_id,
        identity: args.identity,
        storage_dir: args.storage_dir,
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
        unchecked_timing: args.unchecked_timing,
        lock: args.lock,
        job_id: args.job_id,
        checkpoint_interval: args.checkpoint_interval,
        records_per_checkpoint: args.records_per_checkpoint,
        retained: args.retained,
        finish_after_records: args.finish_after_records,
        address: args.address,
        seed: args.seed,
        epoch_ms: args.epoch_ms,
    }
    .config()?;
    runtime()?.block_on(async {
        let shutdown = serve::shutdown_signal();
        Ok(node::run(config, shutdown).await?)
    })
}

fn run_report(args: ReportArgs) -> Done {
    let config = judge::JudgeConfig {
        dir: args.dir,
        from: args.from,
        flags: judge::ContextFlags {
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
    let outcome = judge::run_dir(&config)?;
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    say!(
        "{}: {} ({} history lines)",
        config.dir.display(),
        outcome.verdict,
        outcome.entries
    );
    for path in &outcome.written {
        say!("  wrote {}", path.display());
    }
    if outcome.ok {
        Ok(())
    } else {
        say_raw!("{}", outcome.violations);
        Err(format!(
            "violation; see {}",
            config.dir.join("timeline.html").display()
        )
        .into())
    }
}

fn run_inject(args: InjectArgs) -> Done {
    use khaos::inject::{self, Action, Aim, LockRef, Scope};
    let aim = match args.target.as_str() {
        "standby" => Aim::Standby,
        "random" => Aim::Random,
        _ => Aim::Leader,
    };
    let action = if args.evict {
        Action::Evict
    } else if args.force {
        Action::Delete {
            grace_seconds: Some(0),
        }
    } else {
        Action::Delete {
            grace_seconds: args.grace,
        }
    };
    let seed = args.seed.unwrap_or_else(drawn_seed);
    let scope = Scope {
        namespace: args.namespace.clone(),
        selector: args.selector.clone(),
        max_down: args.max_down,
    };
    let lock = LockRef {
        kind: args.lock,
        name: khaos_elector::store::cluster_lock_name(&args.cluster_id, args.lock),
    };
    runtime()?.block_on(async {
        let client = match &args.server {
            Some(url) => {
                if !args.allow_any_cluster && !inject::context_is_local("", url) {
                    return Err(format!(
                        "{url} is not on this machine: pass --allow-any-cluster if chaos is meant there"
                    )
                    .into());
                }
                live::probe(url, args.token.as_deref()).await?;
                live::client_for_url(url, "khaos-chaos", args.token.as_deref())?
            }
            None => {
                inject::check_kubeconfig_context(args.allow_any_cluster)?;
                live::client_from_kubeconfig("khaos-chaos").await?
            }
        };
        // The production client ends no request on its own; an injector must never hang.
        let injected = tokio::time::timeout(
            Duration::from_secs(30),
            inject::inject(&client, &scope, &lock, aim, action, seed, args.dry_run),
        )
        .await
        .map_err(|_| {
            format!(
                "the API server did not answer within 30 s (seed {seed}); the injection may or may not have been applied: look at the pods"
            )
        })?
        .map_err(|refusal| format!("{refusal} (seed {seed})"))?;
        let mut line = serde_json::to_value(&injected)?;
        line["event"] = "injected".into();
        line["seed"] = seed.into();
        line["dry_run"] = args.dry_run.into();
        say!("{line}");
        if let inject::Answer::Refused { code, message } = &injected.answer {
            return Err(format!("the API refused ({code}): {message}").into());
        }
        Ok::<_, Box<dyn Error>>(())
    })
}

/// A seed for a live run when none is given: live timing never replays, but the choices do.
#[allow(
    clippy::disallowed_methods,
    reason = "a live injection's default seed; it is printed, so the choice can be made again"
)]
fn drawn_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn run_conformance(
    server: Option<String>,
    token: Option<String>,
    bookmark_interval_ms: Option<u64>,
    kubeconfig: bool,
    seed: u64,
    case: Option<String>,
) -> Done {
    let print = |r: &conformance::CaseResult| say!("{r}");
    let results = match (server, kubeconfig) {
        (None, false) => {
            say!("conformance: simulated API server, seed {seed}");
            conformance::run_simulated(seed, case, print)
        }
        (Some(url), _) => runtime()?.block_on(async {
            let bookmark_interval = bookmark_interval_ms.map(Duration::from_millis);
            let target =
                live::conformance_target_for_url(&url, token.as_deref(), bookmark_interval)?;
            live::probe(&url, token.as_deref()).await?;
            say!("conformance: {url}");
            Ok::<_, Box<dyn Error>>(conformance::run(&target, case.as_deref(), print).await)
        })?,
        (None, true) => runtime()?.block_on(async {
            let (target, version) = live::conformance_target_from_kubeconfig().await?;
            say!("conformance: cluster from KUBECONFIG ({version})");
            Ok::<_, Box<dyn Error>>(conformance::run(&target, case.as_deref(), print).await)
        })?,
    };
    say!("{}", conformance::summary(&results));
    if results.is_empty() {
        return Err(format!(
            "no case matched; the cases are: {}",
            conformance::case_names().join(", ")
        )
        .into());
    }
    if results.iter().any(|r| r.outcome.is_failed()) {
        return Err("conformance failures".into());
    }
    Ok(())
}
