//! The flags of `khaos`, every subcommand's: clap's derive, with each flag's help. What a flag
//! means is checked where it is used, in the libraries (`khaos::node::NodeOptions`,
//! `khaos::serve::ServeConfig`, `khaos::judge::JudgeConfig`, ...).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use khaos_elector::flaws::Flaw;
use khaos_sim::race;

#[derive(Parser)]
#[command(
    name = "khaos",
    version,
    about = "Deterministic simulation and chaos testing for Kubernetes-native high availability"
)]
pub struct Cli {
    #[command(subcommand)]
    /// The subcommand.
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The deterministic simulation: HA candidates against the simulated API server under
    /// faults drawn from a seed, judged by the checkers.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Serve the simulated API server on real TCP for kubectl and other real clients.
    Serve {
        /// Address to listen on (loopback unless --allow-remote).
        #[arg(long, default_value = "127.0.0.1:6443")]
        addr: SocketAddr,
        /// Serve these host names (or addresses) too: requests addressed to any other host, or sent
        /// by a web page of another origin, are refused. Needed for a non-loopback --addr.
        #[arg(long, value_name = "HOST", value_delimiter = ',')]
        allow_remote: Vec<String>,
        /// Require `Authorization: Bearer TOKEN` on every request.
        #[arg(long)]
        token: Option<String>,
        /// Seed of the fault decisions.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Faults to start with, as a JSON file (the format of GET /khaos/v1/faults).
        #[arg(long)]
        faults: Option<PathBuf>,
        /// Keep the store in DIR (every commit, written before its answer) and restore it on
        /// start: objects, revisions and the watch history survive a restart, as etcd's do.
        /// Without it the store lives in memory and a restart starts empty.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Serve HTTPS, with a certificate authority made at start (kubectl sends --token only
        /// over TLS); --write-kubeconfig writes the file that trusts it.
        #[arg(long)]
        tls: bool,
        /// Write a kubeconfig for this server to FILE (URL, the TLS authority, the token):
        /// `kubectl --kubeconfig FILE get configmaps`.
        #[arg(long, value_name = "FILE")]
        write_kubeconfig: Option<PathBuf>,
        /// Append every commit to this file as JSON lines, each before its answer is sent.
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
        /// Run a local cluster too: a kubelet whose pods are processes on this machine, and the
        /// ReplicaSet and Deployment controllers (`kubectl apply` a Deployment, `kubectl delete
        /// pod`, `kubectl logs`, `kubectl scale`).
        #[arg(long)]
        cluster: bool,
        /// With --cluster: the local program an image stands for (repeatable), e.g.
        /// --image khaos:dev=target/release/khaos.
        #[arg(long, value_name = "IMAGE=PATH", requires = "cluster", value_parser = khaos::cluster::parse_image)]
        image: Vec<(String, PathBuf)>,
        /// With --cluster: where each pod gets its working directory and output files
        /// [default: khaos-pods in the system's temporary directory].
        #[arg(long, value_name = "DIR", requires = "cluster")]
        pods_dir: Option<PathBuf>,
        /// With --cluster: the node's name, set as every pod's spec.nodeName.
        #[arg(long, default_value = "khaos-node", requires = "cluster")]
        node_name: String,
        /// With --cluster: how a force-deleted pod's processes are stopped: `minimum` (SIGKILL
        /// 2 s after SIGTERM, as recent kubelets do) or `full` (after the pod's whole
        /// terminationGracePeriodSeconds, as many kubelet versions do: the old process runs on
        /// beside its replacement).
        #[arg(long, default_value = "minimum", value_parser = ["minimum", "full"], requires = "cluster")]
        force_delete_grace: String,
        /// With --cluster: the back-off before a crashed container's second restart; it doubles
        /// up to 5 min (the first restart is immediate).
        #[arg(long, default_value = "10s", value_parser = duration, requires = "cluster")]
        restart_backoff: Duration,
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
    /// Pod chaos through the Kubernetes API only: the same code against kind, any cluster, and
    /// `khaos serve --cluster`.
    #[command(subcommand)]
    Chaos(ChaosCommand),
    /// Re-run a saved case (`DIR/case.json` of `khaos sim run --out DIR`, or a regression case of
    /// the corpus) and judge it again; exits non-zero if a checker fires.
    Replay {
        /// The case file, or a run directory holding one as case.json.
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
        /// Write the server's history to FILE as `khaos serve --history` does, to measure its
        /// cost.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
    },
    /// Judge the history in DIR/events.jsonl and write summary.json, junit.xml, timeline.txt
    /// and timeline.html beside it; with --from, first merge live logs into DIR/events.jsonl.
    Report(ReportArgs),
}

/// Flags of `khaos report`. The checker settings are for histories without a settings line
/// (live runs); each defaults to the first `khaos node` started line, then to `khaos node`'s
/// default.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// Merge this JSON-lines log into DIR/events.jsonl first (repeatable): `khaos serve
    /// --history` output, each `khaos node`'s stdout, an injector's log; all stamped from the
    /// same --epoch-ms.
    #[arg(long)]
    pub from: Vec<PathBuf>,
    /// The lock the nodes used: configmap or lease [default: the first started line's, else configmap].
    #[arg(long)]
    pub lock: Option<khaos_elector::LockKind>,
    /// The nodes' lease duration [default: the first started line's, else 15s].
    #[arg(long, value_parser = duration)]
    pub lease_duration: Option<Duration>,
    /// The nodes' renew deadline [default: the first started line's, else 10s].
    #[arg(long, value_parser = duration)]
    pub renew_deadline: Option<Duration>,
    /// The nodes' retry period [default: the first started line's, else 2s].
    #[arg(long, value_parser = duration)]
    pub retry_period: Option<Duration>,
    /// The nodes ran with --unchecked-timing (overlap is then a figure, not a violation).
    #[arg(long)]
    pub unchecked_timing: bool,
    /// The nodes' checkpoint interval [default: the first started line's, else 1s].
    #[arg(long, value_parser = duration)]
    pub checkpoint_interval: Option<Duration>,
    /// Namespace of the lock and the HA ConfigMaps [default: the first started line's, else default].
    #[arg(long)]
    pub namespace: Option<String>,
    /// The cluster id the nodes ran with [default: the first started line's].
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// The job's id [default: the first started line's, else 00000000000000000000000000000000].
    #[arg(long)]
    pub job_id: Option<String>,
}

#[derive(Subcommand)]
pub enum ChaosCommand {
    /// Hit one pod, chosen by role (the lock's holder, a standby, any), and print what was asked
    /// and what the API answered as one JSON line. Refuses system namespaces, namespaces without
    /// the opt-in annotation khaos.dev/chaos=enabled, pods no ReplicaSet controls, and a cluster
    /// with --max-down pods down already; --dry-run says what would be hit and changes nothing.
    Inject(InjectArgs),
}

/// The flags of `khaos chaos inject`.
#[derive(clap::Args)]
pub struct InjectArgs {
    /// The API server's URL (`khaos serve`), e.g. http://127.0.0.1:6443 [default: KUBECONFIG's
    /// current context].
    #[arg(long)]
    pub server: Option<String>,
    /// Bearer token for --server.
    #[arg(long, requires = "server")]
    pub token: Option<String>,
    /// Act on a cluster that is neither a kind cluster (a `kind-*` context) nor on this machine
    /// (a loopback server).
    #[arg(long)]
    pub allow_any_cluster: bool,
    /// The candidates' namespace (it must carry the annotation khaos.dev/chaos=enabled).
    #[arg(long)]
    pub namespace: String,
    /// The candidates' label selector, e.g. app=khaos-ha.
    #[arg(long)]
    pub selector: String,
    /// Whom to hit: `leader` (the pod named by the lock's holder), `standby` or `random`.
    #[arg(long, default_value = "leader", value_parser = ["leader", "standby", "random"])]
    pub target: String,
    /// Delete with this grace in seconds [default: the pod's own].
    #[arg(long, conflicts_with_all = ["force", "evict"])]
    pub grace: Option<u32>,
    /// Force delete: grace 0, removed at once (`kubectl delete --grace-period=0 --force`).
    #[arg(long, conflicts_with = "evict")]
    pub force: bool,
    /// Evict instead of delete (a graceful delete that disruption budgets may refuse).
    #[arg(long)]
    pub evict: bool,
    /// The candidates' cluster id, which names the lock (khaos node's --cluster-id).
    #[arg(long)]
    pub cluster_id: String,
    /// The lock kind the candidates use.
    #[arg(long, default_value = "configmap")]
    pub lock: khaos_elector::LockKind,
    /// Refuse while this many of the selected pods are down already.
    #[arg(long, default_value_t = 1)]
    pub max_down: usize,
    /// The seed that chooses among standbys or pods [default: drawn, and printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Say what would be hit; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand)]
pub enum SimCommand {
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
        #[arg(long, value_parser = jobs)]
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
        #[arg(long, value_parser = jobs)]
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
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
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

pub fn seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let bad = || format!("{text:?} is not a seed range: write A..B with A < B, e.g. 1..101");
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a >= b {
        return Err(bad());
    }
    Ok(a..b)
}

/// `--jobs N`: at least one.
pub fn jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err(
            "--jobs 0 would run nothing: give 1 or more (the default is the number of cores)"
                .into(),
        ),
        Ok(jobs) => Ok(jobs),
        Err(_) => Err(format!("{text:?} is not a number of parallel runs")),
    }
}

/// Flags of `khaos node`; each can also come from the environment variable shown.
#[derive(clap::Args)]
pub struct NodeArgs {
    /// The API server, e.g. http://127.0.0.1:6443 for `khaos serve`. Without it: KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account.
    #[arg(long, env = "KHAOS_SERVER")]
    pub server: Option<String>,
    /// Bearer token for --server.
    #[arg(long, env = "KHAOS_TOKEN", requires = "server")]
    pub token: Option<String>,
    /// Write the operational log (stderr) as JSON lines; `RUST_LOG` chooses what it shows
    /// [default: warnings and errors].
    #[arg(long, env = "KHAOS_LOG_JSON")]
    pub log_json: bool,
    /// Namespace of the lock and the HA ConfigMaps.
    #[arg(long, env = "KHAOS_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// The cluster id: every HA object is named after it ({cluster-id}-cluster-config-map, ...).
    #[arg(long, env = "KHAOS_CLUSTER_ID")]
    pub cluster_id: String,
    /// This candidate's identity, unique among candidates [default: $POD_NAME, else $HOSTNAME].
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Directory for checkpoint state, job graphs and job results (shared by all candidates).
    #[arg(long, env = "KHAOS_STORAGE_DIR")]
    pub storage_dir: PathBuf,
    /// How long a lease lasts without renewal before a standby may take over (`15s`, `1500ms`).
    #[arg(long, env = "KHAOS_LEASE_DURATION", default_value = "15s", value_parser = duration)]
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    #[arg(long, env = "KHAOS_RENEW_DEADLINE", default_value = "10s", value_parser = duration)]
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew (jittered while acquiring).
    #[arg(long, env = "KHAOS_RETRY_PERIOD", default_value = "2s", value_parser = duration)]
    pub retry_period: Duration,
    /// Accept timing that breaks `lease > renew deadline > 1.2 x retry period` (Flink's 15s/15s/5s
    /// does): two candidates may then believe they lead at once.
    #[arg(long)]
    pub unchecked_timing: bool,
    /// The lock: the ConfigMap annotation lock ({cluster-id}-cluster-config-map) or a
    /// coordination.k8s.io/v1 Lease ({cluster-id}-cluster-leader).
    #[arg(long, env = "KHAOS_LOCK", default_value = "configmap")]
    pub lock: khaos_elector::LockKind,
    /// The job's id.
    #[arg(long, default_value = "00000000000000000000000000000000")]
    pub job_id: String,
    /// Time between checkpoints.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub checkpoint_interval: Duration,
    /// Records processed between two checkpoints (the job's deterministic progress).
    #[arg(long, default_value_t = 100)]
    pub records_per_checkpoint: u64,
    /// Completed checkpoints retained.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub retained: u64,
    /// Finish the job (globally terminal, HA data cleaned up) once it has processed this many
    /// records; by default it runs until stopped.
    #[arg(long)]
    pub finish_after_records: Option<u64>,
    /// The address published as leader information [default: the identity].
    #[arg(long)]
    pub address: Option<String>,
    /// Seed of the retry jitter [default: a hash of the identity].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Unix milliseconds t_ms counts from; give every process of a run the same one so
    /// `khaos report --from` can merge their logs [default: this process's start].
    #[arg(long, env = "KHAOS_EPOCH_MS")]
    pub epoch_ms: Option<u64>,
}

pub fn duration(text: &str) -> Result<Duration, String> {
    khaos_elector::timing::parse_duration(text).map_err(|e| e.to_string())
}

/// A flaw by its name (`khaos sim list` shows them).
pub fn parse_flaw(name: &str) -> Result<Flaw, String> {
    name.parse()
}
