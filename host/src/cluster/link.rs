//! The three tasks that carry one handler's notes through Redis: the
//! publisher (batches the queue into pipelined `PUBLISH`es), the subscriber
//! (applies what the other nodes publish to the registry) and the heartbeat
//! (says this node is alive, forgets nodes that went silent). Each
//! reconnects on its own with a capped exponential backoff.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{AsyncConnectionConfig, RedisResult};
use tokio::sync::{mpsc, oneshot};

use super::note::{self, Note, Received};
use super::{CLAIM, HEARTBEAT, NODE_TIMEOUT, REDIS_TIMEOUT, claim_key};
use crate::registry::{NodeId, Registry, Update};
use crate::runtime::metrics::ClusterCounters;

/// Notes published in one pipelined round trip, at most.
const BATCH: usize = 256;

/// A connection for commands, with timeouts so a dead Redis is noticed.
pub async fn connect(client: &redis::Client) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    client.get_multiplexed_async_connection_with_config(&config).await
}

pub struct Link {
    client: redis::Client,
    channel: String,
    node: NodeId,
    registry: Arc<Registry>,
    /// The other nodes heard from: when last, and their last sequence number.
    peers: Mutex<HashMap<NodeId, Peer>>,
}

struct Peer {
    seen: Instant,
    seq: u64,
}

impl Link {
    pub fn new(client: redis::Client, channel: String, node: NodeId, registry: Arc<Registry>) -> Link {
        Link { client, channel, node, registry, peers: Mutex::default() }
    }

    fn counters(&self) -> &ClusterCounters {
        &self.registry.metrics().cluster
    }

    /// Publishes queued notes until a goodbye is out. While Redis is
    /// unreachable, notes are dropped and counted, not held back: a late
    /// broadcast is worse than a missing one, and memory stays bounded.
    pub async fn publish(self: Arc<Self>, mut outbox: mpsc::Receiver<Note>, connection: MultiplexedConnection) {
        let mut connection = Some(connection);
        let mut backoff = Backoff::default();
        let mut seq = 0;
        let mut batch = Vec::with_capacity(BATCH);
        // Renew the claim on this node's number at once after reconnecting:
        // Redis may have restarted empty, and a new node could take it.
        let mut renew = false;
        while outbox.recv_many(&mut batch, BATCH).await > 0 {
            let leaving = batch.iter().any(|note| matches!(note, Note::Bye));
            if connection.is_none() && backoff.due() {
                match connect(&self.client).await {
                    Ok(reconnected) => {
                        tracing::info!(channel = %self.channel, "publishing to the other nodes again");
                        connection = Some(reconnected);
                        renew = true;
                        backoff.reset();
                    }
                    Err(error) => backoff.failed(&self.channel, "publish", &error),
                }
            }
            let count = batch.len() as u64;
            match connection.as_mut() {
                None => ClusterCounters::add(&self.counters().dropped, count),
                Some(redis) => match self.send(redis, &batch, seq, std::mem::take(&mut renew)).await {
                    Ok(()) => {
                        seq += count;
                        ClusterCounters::add(&self.counters().published, count);
                    }
                    Err(error) => {
                        tracing::warn!(
                            channel = %self.channel,
                            dropped = count,
                            "lost the cluster's Redis while publishing ({error}): serving this node's clients only, reconnecting"
                        );
                        ClusterCounters::add(&self.counters().dropped, count);
                        connection = None;
                        backoff.failed(&self.channel, "publish", &error);
                    }
                },
            }
            batch.clear();
            if leaving {
                return;
            }
        }
    }

    /// Publishes `batch` (numbered from `seq + 1`) in one pipelined round
    /// trip. Heartbeats (and `renew`) renew this node's claim on its number;
    /// the goodbye gives it back.
    async fn send(&self, redis: &mut MultiplexedConnection, batch: &[Note], seq: u64, renew: bool) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        if renew || batch.iter().any(|note| matches!(note, Note::Heartbeat)) {
            pipe.set_ex(claim_key(self.node), "live", CLAIM.as_secs()).ignore();
        }
        for (n, note) in (1..).zip(batch) {
            pipe.publish(&self.channel, note::encode(self.node, seq + n, note)).ignore();
        }
        if batch.iter().any(|note| matches!(note, Note::Bye)) {
            pipe.del(claim_key(self.node)).ignore();
        }
        pipe.query_async(redis).await
    }

    /// Applies what the other nodes publish, resubscribing whenever the
    /// subscription breaks or falls silent (this node's own heartbeat comes
    /// back every second while everything works).
    pub async fn subscribe(self: Arc<Self>, subscribed: oneshot::Sender<()>) {
        let mut subscribed = Some(subscribed);
        let mut backoff = Backoff::default();
        loop {
            match self.subscribed().await {
                Ok(mut messages) => {
                    backoff.reset();
                    self.counters().connected.store(true, Ordering::Relaxed);
                    tracing::info!(channel = %self.channel, node = self.node, "subscribed to the other nodes");
                    // Tells the others every client here, and asks for theirs.
                    self.registry.announce_all(true);
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(());
                    }
                    loop {
                        match tokio::time::timeout(NODE_TIMEOUT, messages.next()).await {
                            Ok(Some(message)) => self.receive(message.get_payload_bytes()),
                            Ok(None) => break,
                            Err(_) => {
                                tracing::warn!(channel = %self.channel, "nothing from Redis for {NODE_TIMEOUT:?}, not even this node's heartbeat: resubscribing");
                                break;
                            }
                        }
                    }
                    self.counters().connected.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        channel = %self.channel,
                        "lost the subscription to the other nodes: serving this node's clients only, reconnecting"
                    );
                }
                Err(error) => backoff.failed(&self.channel, "subscribe", &error),
            }
            tokio::time::sleep(backoff.delay()).await;
        }
    }

    async fn subscribed(&self) -> RedisResult<PubSubStream> {
        let timed_out = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let mut pubsub =
            tokio::time::timeout(REDIS_TIMEOUT, self.client.get_async_pubsub()).await.map_err(|_| timed_out())??;
        pubsub.subscribe(&self.channel).await?;
        Ok(pubsub.into_on_message())
    }

    fn receive(&self, bytes: &[u8]) {
        let Received { node, seq, note } = match note::decode(bytes) {
            Ok(received) => received,
            Err(error) => return tracing::warn!(channel = %self.channel, "{error}"),
        };
        if node == self.node {
            return;
        }
        ClusterCounters::add(&self.counters().received, 1);
        let known = self.heard_from(node, seq);
        match note {
            Note::Heartbeat => {}
            Note::Bye => {
                self.peers.lock().unwrap_or_else(|e| e.into_inner()).remove(&node);
                let clients = self.registry.forget_node(node);
                tracing::info!(channel = %self.channel, node, clients, "a node left the cluster");
                return;
            }
            Note::Update(update) => {
                let state = matches!(update, Update::Snapshot { .. });
                let hello = matches!(update, Update::Snapshot { hello: true, .. });
                self.registry.apply(node, update);
                if hello {
                    self.registry.announce_all(false);
                }
                if state {
                    return;
                }
            }
        }
        if !known {
            // A node whose clients this one never heard of (its hello was
            // missed): exchange snapshots.
            self.registry.announce_all(true);
        }
    }

    /// Notes that `node` is alive; counts the notes of its it never got.
    /// Returns whether the node was already known.
    fn heard_from(&self, node: NodeId, seq: u64) -> bool {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let known = match peers.get_mut(&node) {
            Some(peer) => {
                if seq > peer.seq + 1 {
                    ClusterCounters::add(&self.counters().missed, seq - peer.seq - 1);
                }
                peer.seen = Instant::now();
                peer.seq = seq;
                true
            }
            None => {
                tracing::info!(channel = %self.channel, node, "heard from a node");
                peers.insert(node, Peer { seen: Instant::now(), seq });
                false
            }
        };
        self.counters().nodes.store(peers.len() as u64, Ordering::Relaxed);
        known
    }

    /// Says this node is alive every [`HEARTBEAT`]; forgets the nodes not
    /// heard from for [`NODE_TIMEOUT`].
    pub async fn heartbeat(self: Arc<Self>, queue: mpsc::Sender<Note>) {
        let mut ticks = tokio::time::interval(HEARTBEAT);
        loop {
            ticks.tick().await;
            if queue.try_send(Note::Heartbeat).is_err() {
                ClusterCounters::add(&self.counters().dropped, 1);
            }
            let silent: Vec<NodeId> = {
                let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let silent: Vec<NodeId> =
                    peers.iter().filter(|(_, p)| now - p.seen > NODE_TIMEOUT).map(|(node, _)| *node).collect();
                // The same list leaves the view and is forgotten: no node in between.
                for node in &silent {
                    peers.remove(node);
                }
                self.counters().nodes.store(peers.len() as u64, Ordering::Relaxed);
                silent
            };
            for node in silent {
                let clients = self.registry.forget_node(node);
                tracing::warn!(channel = %self.channel, node, clients, "a node went silent: forgetting its clients");
            }
        }
    }
}

/// Capped exponential backoff: 100 ms, doubling, at most 5 s. Only the first
/// failure of a run is a warning; retries log at debug.
struct Backoff {
    failures: u32,
    next_try: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { failures: 0, next_try: Instant::now() }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn delay(&self) -> Duration {
        Self::FIRST.saturating_mul(1 << self.failures.min(6)).min(Self::MAX)
    }

    fn due(&self) -> bool {
        Instant::now() >= self.next_try
    }

    fn failed(&mut self, channel: &str, what: &str, error: &redis::RedisError) {
        if self.failures == 0 {
            tracing::warn!(channel = %channel, "cannot {what} through the cluster's Redis ({error}): retrying with backoff");
        } else {
            tracing::debug!(
                channel = %channel,
                attempt = self.failures + 1,
                "cannot {what} through the cluster's Redis ({error})"
            );
        }
        self.failures += 1;
        self.next_try = Instant::now() + self.delay();
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}
