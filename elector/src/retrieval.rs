//! Leader retrieval: follow the leader information a leader publishes in a ConfigMap, by a watch
//! on that object by name that survives everything an API server can do to a watch (a closed
//! stream, 410 Expired after compaction, a restart) by listing again and watching again, with a
//! seeded backoff between failures (FLINK-20417 is the bug of not doing so).
//!
//! ```no_run
//! # async fn example(client: kube::Client) {
//! use khaos_elector::retrieval::{LeaderRetriever, leader_key};
//! let retriever = LeaderRetriever::new(client, "default", "my-cluster-cluster-config-map", &leader_key("resourcemanager"));
//! let mut leader = retriever.spawn(7);
//! while leader.changed().await.is_ok() {
//!     println!("leader is now {:?}", *leader.borrow());
//! }
//! # }
//! ```

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::sync::watch;

use crate::backoff::SeededBackoff;
use crate::client;
use crate::flaws::{Flaw, Flaws};

/// The key under which a component's leader publishes itself (Flink's layout).
pub fn leader_key(component: &str) -> String {
    format!("org.apache.flink.k8s.leader.{component}")
}

/// A leader as published: `<session-id>,<address>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader's session id (a fresh one per leadership).
    pub session_id: String,
    /// Where to reach the leader.
    pub address: String,
}

impl LeaderInfo {
    /// Parse `<session-id>,<address>`; `None` for an empty or malformed value.
    pub fn parse(value: &str) -> Option<LeaderInfo> {
        let (session_id, address) = value.split_once(',')?;
        (!session_id.is_empty()).then(|| LeaderInfo {
            session_id: session_id.to_owned(),
            address: address.to_owned(),
        })
    }

    /// The published form.
    pub fn to_value(&self) -> String {
        format!("{},{}", self.session_id, self.address)
    }
}

/// How long one watch request may stay open before it is renewed (below kube's 295 s read
/// timeout).
const WATCH_TIMEOUT_SECONDS: u32 = 290;

/// A watch that lasts less than this without error counts as a failure, and is backed off.
const WATCH_LIFETIME_MIN: Duration = Duration::from_secs(1);

/// A watch that brings nothing (no event, no bookmark) for this long is presumed dead and made
/// again from a fresh list: a connection whose other end vanished behind a partition never
/// closes, and would leave the follower stale until the read timeout, minutes later.
const WATCH_IDLE_MAX: Duration = Duration::from_secs(30);

/// Why following stopped and must start again.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    /// A list or watch request failed, or the watch sent an ERROR (410 Expired among them).
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The watch ended almost as soon as it began.
    #[error("the watch closed within {WATCH_LIFETIME_MIN:?}")]
    ClosedEarly,
    /// The watch brought nothing for too long.
    #[error("the watch brought nothing for {WATCH_IDLE_MAX:?}")]
    Idle,
}

/// Follows one key of one ConfigMap.
#[derive(Clone)]
pub struct LeaderRetriever {
    api: Api<ConfigMap>,
    name: String,
    key: String,
    flaws: Flaws,
}

impl LeaderRetriever {
    /// Follow `key` in the ConfigMap `name` of `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: &str, key: &str) -> LeaderRetriever {
        LeaderRetriever {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            key: key.to_owned(),
            flaws: Flaws::NONE,
        }
    }

    /// Reproduce these known bugs ([`Flaw::RetrievalStopsOn410`]).
    #[must_use]
    pub fn with_flaws(mut self, flaws: Flaws) -> LeaderRetriever {
        self.flaws = flaws;
        self
    }

    /// Start following on the current tokio runtime; `seed` seeds the backoff. The receiver
    /// holds the latest leader seen (`None` when none is published or the object is gone).
    pub fn spawn(self, seed: u64) -> watch::Receiver<Option<LeaderInfo>> {
        let (sender, receiver) = watch::channel(None);
        tokio::spawn(self.run(sender, seed));
        receiver
    }

    async fn run(self, sender: watch::Sender<Option<LeaderInfo>>, seed: u64) {
        let mut backoff = SeededBackoff::new(seed);
        loop {
            match self.follow(&sender, &mut backoff).await {
                // Every receiver is gone: nobody is following any more.
                Ok(()) => return,
                // A quiet watch is presumed dead, not known to be: list again at once, or a
                // leader published meanwhile would wait out a backoff nothing asked for (with
                // the Lease lock the followed map is quiet for as long as the leader lasts).
                Err(FollowError::Idle) => backoff.reset(),
                Err(_) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(1));
                    tokio::select! {
                        biased;
                        () = sender.closed() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// List, then watch from the list's revision until the watch fails; returns `Ok` only when
    /// no one is listening any more.
    async fn follow(
        &self,
        sender: &watch::Sender<Option<LeaderInfo>>,
        backoff: &mut SeededBackoff,
    ) -> Result<(), FollowError> {
        let fields = format!("metadata.name={}", self.name);
        // The list and each watch's answer are bounded here: a user's client waits for ever.
        let list = client::bounded(
            client::REQUEST_TIMEOUT,
            self.api.list(&ListParams::default().fields(&fields)),
        )
        .await?;
        self.publish(sender, list.items.first());
        let mut revision = list.metadata.resource_version.unwrap_or_default();
        loop {
            let params = WatchParams::default()
                .fields(&fields)
                .timeout(WATCH_TIMEOUT_SECONDS);
            let opened = tokio::time::Instant::now();
            let stream =
                match client::bounded(client::REQUEST_TIMEOUT, self.api.watch(&params, &revision))
                    .await
                {
                    Err(kube::Error::Api(status))
                        if status.code == 410 && self.flaws.has(Flaw::RetrievalStopsOn410) =>
                    {
                        return Ok(());
                    }
                    stream => stream?,
                };
            let mut stream = std::pin::pin!(stream);
            loop {
                let next = tokio::select! {
                    biased;
                    () = sender.closed() => return Ok(()),
                    next = tokio::time::timeout(WATCH_IDLE_MAX, stream.try_next()) => {
                        next.map_err(|_| FollowError::Idle)??
                    }
                };
                match next {
                    // The stream ended (timeout, close): watch again from where it stood.
                    None => break,
                    Some(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                        revision = object.metadata.resource_version.clone().unwrap_or(revision);
                        self.publish(sender, Some(&object));
                        backoff.reset();
                    }
                    Some(WatchEvent::Deleted(object)) => {
                        revision = object.metadata.resource_version.clone().unwrap_or(revision);
                        self.publish(sender, None);
                    }
                    Some(WatchEvent::Bookmark(bookmark)) => {
                        revision = bookmark.metadata.resource_version
                    }
                    // The flaw: after 410 Expired the watch is never made again (FLINK-20417).
                    Some(WatchEvent::Error(status))
                        if status.code == 410 && self.flaws.has(Flaw::RetrievalStopsOn410) =>
                    {
                        return Ok(());
                    }
                    // 410 Expired and the like: list again (the caller backs off first).
                    Some(WatchEvent::Error(status)) => return Err(kube::Error::Api(status).into()),
                }
            }
            // A server that closes watches at once must not get a busy loop of new ones.
            if opened.elapsed() < WATCH_LIFETIME_MIN {
                return Err(FollowError::ClosedEarly);
            }
        }
    }

    fn publish(&self, sender: &watch::Sender<Option<LeaderInfo>>, object: Option<&ConfigMap>) {
        let info = object
            .and_then(|o| o.data.as_ref())
            .and_then(|data| data.get(&self.key))
            .and_then(|value| LeaderInfo::parse(value));
        sender.send_if_modified(|current| {
            let changed = *current != info;
            *current = info;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_info_round_trips_flinks_format() {
        let info =
            LeaderInfo::parse("5f0c,akka.tcp://flink@10.0.0.7:6123/user/rpc/jobmanager").unwrap();
        assert_eq!(info.session_id, "5f0c");
        assert_eq!(
            info.to_value(),
            "5f0c,akka.tcp://flink@10.0.0.7:6123/user/rpc/jobmanager"
        );
        assert_eq!(LeaderInfo::parse(""), None);
        assert_eq!(LeaderInfo::parse(",addr"), None);
        assert_eq!(
            leader_key("dispatcher"),
            "org.apache.flink.k8s.leader.dispatcher"
        );
    }
}
