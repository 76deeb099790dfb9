//! `khaos bench`: the standalone server's throughput for compare-and-swap updates and its watch
//! event latency with many watchers, measured on loopback through the real kube-rs client.
//!
//! Client and server share this process (and the machine's cores), so the figures are a floor
//! for the server alone; compare runs made on the same machine side by side.

// A benchmark measures the real world: it reads the real monotonic clock on purpose.
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams, WatchEvent, WatchParams};

use crate::{live, serve};

/// Settings of a benchmark run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Concurrent clients in the CAS phases.
    pub clients: usize,
    /// How long each CAS phase runs.
    pub duration: Duration,
    /// Concurrent watchers in the watch phase.
    pub watchers: usize,
    /// Writes each watcher must see in the watch phase.
    pub events: usize,
    /// Write the server's history to this file, as `khaos serve --history` does.
    pub history: Option<std::path::PathBuf>,
}

/// The figures.
#[derive(Clone, Debug)]
pub struct BenchReport {
    config: BenchConfig,
    /// CAS updates per second, each client on its own ConfigMap.
    pub uncontended_per_second: f64,
    /// Successful CAS updates per second, all clients on one ConfigMap.
    pub contended_per_second: f64,
    /// 409s per successful update in the contended phase.
    pub conflicts_per_success: f64,
    /// Watch delivery latency percentiles (p50, p99, max), from the write's start.
    pub watch_latency: (Duration, Duration, Duration),
    /// Events delivered across all watchers.
    pub watch_events: usize,
    /// Events per second delivered across all watchers.
    pub watch_events_per_second: f64,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let (p50, p99, max) = self.watch_latency;
        writeln!(
            f,
            "khaos bench (loopback, kube-rs clients in the same process)"
        )?;
        writeln!(
            f,
            "  CAS updates, {} clients, own ConfigMap each:  {:>9.0} updates/s",
            c.clients, self.uncontended_per_second
        )?;
        writeln!(
            f,
            "  CAS updates, {} clients, one shared ConfigMap: {:>9.0} updates/s ({:.2} conflicts per success)",
            c.clients, self.contended_per_second, self.conflicts_per_success
        )?;
        write!(
            f,
            "  watch latency, {} watchers x {} writes:      p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} events, {:.0} events/s)",
            c.watchers,
            c.events,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            self.watch_events,
            self.watch_events_per_second
        )
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The settings are out of range.
    #[error("{0}")]
    Config(String),
    /// The server did not start.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// A client could not be built.
    #[error(transparent)]
    Client(#[from] live::ClientError),
    /// A request failed unexpectedly.
    #[error("request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A watcher did not see every write in time.
    #[error("a watcher saw {seen} of {expected} writes within 60 s")]
    WatchIncomplete {
        /// Writes seen.
        seen: usize,
        /// Writes made.
        expected: usize,
    },
}

/// Run the benchmark against a fresh in-process server on 127.0.0.1. Must be called from within
/// a multi-threaded tokio runtime.
pub async fn run(config: BenchConfig) -> Result<BenchReport, BenchError> {
    let out_of_range = |flag: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
        (!range.contains(&value)).then(|| {
            BenchError::Config(format!(
                "{flag} {value} is out of range: give {flag} from {} to {}",
                range.start(),
                range.end()
            ))
        })
    };
    if let Some(error) = out_of_range("--clients", config.clients, 1..=256)
        .or_else(|| out_of_range("--watchers", config.watchers, 1..=5000))
        .or_else(|| out_of_range("--events", config.events, 1..=100_000))
    {
        return Err(error);
    }
    if config.duration.is_zero() {
        return Err(BenchError::Config(
            "--seconds 0 measures nothing: give --seconds 1 or more".into(),
        ));
    }
    let running = serve::bind(serve::ServeConfig {
        addr: "127.0.0.1:0".parse().expect("a valid address"),
        allow_remote: Vec::new(),
        token: None,
        seed: 0,
        faults: Default::default(),
        history: config.history.clone(),
        data_dir: None,
        tls: false,
        write_kubeconfig: None,
        bookmark_interval: Duration::from_secs(60),
        watch_history_max: khaos_sim::apiserver::store::EVENTS_MAX_DEFAULT,
        epoch_ms: None,
    })
    .await?;
    let url = format!("http://{}", running.addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(running.run(async {
        let _ = stopped.await;
    }));

    let (uncontended, _) = cas_phase(&url, &config, false).await?;
    let (contended, conflicts) = cas_phase(&url, &config, true).await?;
    let (latencies, watch_elapsed) = watch_phase(&url, &config).await?;

    let _ = stop.send(());
    let _ = serving.await;
    let seconds = config.duration.as_secs_f64();
    let mut sorted = latencies;
    sorted.sort();
    let percentile = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    Ok(BenchReport {
        uncontended_per_second: uncontended as f64 / seconds,
        contended_per_second: contended as f64 / seconds,
        conflicts_per_success: conflicts as f64 / contended.max(1) as f64,
        watch_latency: (
            percentile(0.5),
            percentile(0.99),
            *sorted.last().expect("at least one event"),
        ),
        watch_events: sorted.len(),
        watch_events_per_second: sorted.len() as f64 / watch_elapsed.as_secs_f64(),
        config,
    })
}

fn configmap(name: &str, value: u64, resource_version: Option<String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            resource_version,
            ..ObjectMeta::default()
        },
        data: Some([("value".to_string(), value.to_string())].into()),
        ..ConfigMap::default()
    }
}

/// Each client loops read-then-CAS for the configured time; returns (successes, conflicts).
async fn cas_phase(
    url: &str,
    config: &BenchConfig,
    shared: bool,
) -> Result<(u64, u64), BenchError> {
    let setup: Api<ConfigMap> =
        Api::namespaced(live::client_for_url(url, "bench-setup", None)?, "default");
    let names: Vec<String> = (0..config.clients)
        .map(|i| {
            if shared {
                "bench-shared".into()
            } else {
                format!("bench-{i}")
            }
        })
        .collect();
    for name in &names {
        if setup.get_opt(name).await?.is_none() {
            setup
                .create(&PostParams::default(), &configmap(name, 0, None))
                .await?;
        }
    }
    let deadline = Instant::now() + config.duration;
    let mut tasks = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let api: Api<ConfigMap> = Api::namespaced(
            live::client_for_url(url, &format!("bench-{i}"), None)?,
            "default",
        );
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut conflicts) = (0u64, 0u64);
            while Instant::now() < deadline {
                let current = api.get(&name).await?;
                let value: u64 = current
                    .data
                    .as_ref()
                    .and_then(|d| d.get("value"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                match api
                    .replace(
                        &name,
                        &PostParams::default(),
                        &configmap(&name, value + 1, current.metadata.resource_version),
                    )
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(kube::Error::Api(status)) if status.code == 409 => conflicts += 1,
                    Err(error) => return Err(error),
                }
            }
            Ok::<_, kube::Error>((ok, conflicts))
        }));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        let (o, c) = task.await.expect("a bench task panicked")?;
        ok += o;
        conflicts += c;
    }
    Ok((ok, conflicts))
}

/// Every watcher follows one ConfigMap while a writer updates it; returns each delivery's latency
/// measured from the start of the write that caused it.
async fn watch_phase(
    url: &str,
    config: &BenchConfig,
) -> Result<(Vec<Duration>, Duration), BenchError> {
    let writer: Api<ConfigMap> =
        Api::namespaced(live::client_for_url(url, "bench-writer", None)?, "default");
    let created = writer
        .create(&PostParams::default(), &configmap("bench-watch", 0, None))
        .await?;
    let start_revision = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let origin = Instant::now();
    let mut watchers = Vec::new();
    let mut ready = Vec::new();
    for i in 0..config.watchers {
        let api: Api<ConfigMap> = Api::namespaced(
            live::client_for_url(url, &format!("bench-watcher-{i}"), None)?,
            "default",
        );
        let stream = api
            .watch(
                &WatchParams::default()
                    .fields("metadata.name=bench-watch")
                    .timeout(120),
                &start_revision,
            )
            .await?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rx);
        let expected = config.events;
        watchers.push(tokio::spawn(async move {
            let _ = tx.send(());
            let mut stream = std::pin::pin!(stream);
            let mut latencies = Vec::with_capacity(expected);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while latencies.len() < expected {
                match tokio::time::timeout_at(deadline, stream.try_next()).await {
                    Ok(Ok(Some(WatchEvent::Modified(cm)))) => {
                        let sent_ns: u64 = cm
                            .data
                            .as_ref()
                            .and_then(|d| d.get("value"))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        latencies.push(
                            origin
                                .elapsed()
                                .saturating_sub(Duration::from_nanos(sent_ns)),
                        );
                    }
                    Ok(Ok(Some(_))) => {}
                    _ => break,
                }
            }
            latencies
        }));
    }
    for rx in ready {
        let _ = rx.await;
    }
    let started = Instant::now();
    let mut current = created;
    for _ in 0..config.events {
        // The value written is the write's start time, so each watcher can compute its latency.
        let sent = origin.elapsed().as_nanos() as u64;
        current = writer
            .replace(
                "bench-watch",
                &PostParams::default(),
                &configmap(
                    "bench-watch",
                    sent,
                    current.metadata.resource_version.clone(),
                ),
            )
            .await?;
    }
    let mut latencies = Vec::new();
    for watcher in watchers {
        let got = watcher.await.expect("a watcher panicked");
        if got.len() < config.events {
            return Err(BenchError::WatchIncomplete {
                seen: got.len(),
                expected: config.events,
            });
        }
        latencies.extend(got);
    }
    let elapsed = started.elapsed();
    Ok((latencies, elapsed))
}
