//! The software of the simulated hosts: a candidate runs the real elector and job master through
//! an unmodified `kube::Client` over simulated TCP; an observer follows the leader information.
//! Each reports what it does to the [`Recorder`].

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use khaos_elector::flaws::Flaws;
use khaos_elector::jobmaster::{Event, JobMaster, JobMasterConfig};
use khaos_elector::retrieval::{LeaderRetriever, leader_key};
use khaos_elector::store::{cluster_lock_name, cluster_map_name};
use khaos_elector::{Elector, ElectorConfig};
use khaos_reports::faults::{APISERVER, BLOBSTORE};
use khaos_reports::history::{HarnessEvent, Record};
use khaos_scenarios::Setup;

use super::BLOB_PORT;
use super::blobhost::RemoteBlobs;
use super::clock::{ClockState, SimClock};
use super::recorder::Recorder;
use crate::transport::{self, ClientConfig};

/// What the world controls in one node from outside.
#[derive(Clone)]
pub(super) struct Control {
    pub(super) clock: Arc<Mutex<ClockState>>,
    pub(super) stop: tokio::sync::watch::Sender<bool>,
    incarnation: Arc<AtomicU64>,
}

impl Control {
    pub(super) fn new() -> Control {
        Control {
            clock: Arc::default(),
            stop: tokio::sync::watch::Sender::new(false),
            incarnation: Arc::default(),
        }
    }
}

/// The software of one candidate host; turmoil runs it afresh after every crash or stop.
#[derive(Clone)]
pub(super) struct NodeSoftware {
    pub(super) identity: String,
    pub(super) setup: Setup,
    pub(super) flaws: Flaws,
    pub(super) seed: u64,
    pub(super) recorder: Recorder,
    pub(super) control: Control,
}

impl NodeSoftware {
    pub(super) async fn run(self) -> turmoil::Result {
        let incarnation = self.control.incarnation.fetch_add(1, Ordering::Relaxed);
        let identity = self.identity.as_str();
        let timing = self.setup.timing;
        // The client khaos node runs: nothing in it ends a hung request, so the election's
        // deadlines and the store's own bounds must.
        let client = transport::client(ClientConfig::production(
            format!("{APISERVER}:6443"),
            identity,
        ));
        let clock = Arc::new(SimClock {
            now_ms: Arc::clone(&self.recorder.now_ms),
            state: Arc::clone(&self.control.clock),
        });
        let blobs = Arc::new(RemoteBlobs::new(
            BLOBSTORE,
            BLOB_PORT,
            timing.renew_deadline().min(Duration::from_secs(5)),
        ));
        self.recorder.harness(identity, HarnessEvent::Started {});
        let events = {
            let recorder = self.recorder.clone();
            let identity = self.identity.clone();
            move |event: Event| recorder.push(&identity, Record::Job(event))
        };
        let mut job = self.setup.job.clone();
        job.address = format!("{identity}:8081");
        job.flaws = self.flaws;
        let master =
            JobMaster::with_clock(client.clone(), blobs, job, Arc::new(events), clock.clone());
        let lock = cluster_lock_name(&self.setup.job.cluster_id, self.setup.lock);
        let elector = ElectorConfig::new(
            identity,
            &self.setup.job.namespace,
            &lock,
            self.setup.lock,
            timing,
        )
        .seed(self.seed.wrapping_add(incarnation))
        .flaws(self.flaws);
        let handle = Elector::new(client, elector)
            .with_clock(clock)
            .with_contender(Arc::new(master))
            .spawn();
        let mut stop = self.control.stop.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
        self.recorder.harness(identity, HarnessEvent::Stopping {});
        handle.stop().await;
        self.recorder
            .harness(identity, HarnessEvent::Stopped { graceful: true });
        Ok(())
    }
}

pub(super) async fn observe(
    identity: String,
    job: JobMasterConfig,
    seed: u64,
    recorder: Recorder,
) -> turmoil::Result {
    let client = transport::client(ClientConfig::production(
        format!("{APISERVER}:6443"),
        &identity,
    ));
    let retriever = LeaderRetriever::new(
        client,
        &job.namespace,
        &cluster_map_name(&job.cluster_id),
        &leader_key(&job.component),
    )
    .with_flaws(job.flaws);
    let mut leader = retriever.spawn(seed);
    while leader.changed().await.is_ok() {
        let value = leader.borrow_and_update().as_ref().map(|l| l.to_value());
        recorder.harness(&identity, HarnessEvent::Leader { leader: value });
    }
    Ok(())
}
