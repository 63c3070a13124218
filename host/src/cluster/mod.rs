//! Several ws-host nodes serving one application: rooms, broadcasts, client
//! lookups and disconnects reach clients on every node, through Redis
//! pub/sub (what the Socket.IO Redis adapter and Centrifugo use too).
//!
//! How it works, per handler (one Redis channel, `ws-host:<scope>`, where
//! the scope is the handler's name or, in `ws-host run`, its route):
//! - each node takes a number from Redis (`INCR ws-host:node`) when it joins
//!   and puts it in the high bits of its client ids, so ids are unique
//!   across the cluster and say which node holds a client;
//! - each node publishes every change of its own clients (connected,
//!   authenticated, context, rooms, gone) and keeps a view of the others'
//!   ([`crate::registry`]): `members`, `rooms`, `get-context`, `clients`
//!   and `is-authenticated` answer from memory for any client of the cluster;
//! - a delivery that reaches beyond this node (`all`, `all-except`, `room`,
//!   `room-except`, or clients of other nodes) is published once; every
//!   other node delivers it to its own clients, and a node ignores what it
//!   published itself, so each recipient gets it once;
//! - a `disconnect` of another node's client is published to that node;
//! - a node says hello with all its clients when it (re)subscribes, the
//!   others answer with theirs; a heartbeat every second keeps a node in
//!   the others' view, and a node silent for [`NODE_TIMEOUT`] (killed,
//!   partitioned) is forgotten with its clients.
//!
//! When Redis goes away every node keeps serving its own clients; notes it
//! cannot publish are counted as dropped (`ws_host_cluster_dropped_total`),
//! notes it did not receive as missed (gaps in the sender's sequence
//! numbers), and both connections retry with a capped exponential backoff.
//! Redis stores nothing but the node counter and one expiring key per live
//! node number.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use ws_host::cluster::Cluster;
//! use ws_host::{Config, Handler, Runtime};
//!
//! let config = Config::default();
//! let handler = Handler::load_file(&Runtime::new()?, "chat.wasm".as_ref(), &config)?;
//! // Before serving: client ids must carry this node's number.
//! let cluster = Cluster::join(&handler, "redis://127.0.0.1:6379").await?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! let stop = ws_host::server::shutdown_signal()?;
//! ws_host::server::serve(listener, handler, config, stop).await?;
//! cluster.leave().await;
//! # Ok(())
//! # }
//! ```

mod link;
mod note;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;

use crate::registry::{JoinError, MAX_NODE, NodeId, Peers, Update};
use crate::runtime::Handler;
use crate::runtime::metrics::ClusterCounters;
use note::Note;

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a silent node stays in the others' view.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// Notes waiting for Redis; beyond this they are dropped and counted.
const QUEUE: usize = 16 * 1024;

/// How long to wait for Redis when connecting or answering.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a handler could not join a cluster. Causes are part of the message,
/// as in [`crate::runtime::LoadError`].
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{url} is not a Redis URL ({cause}): expected e.g. redis://127.0.0.1:6379")]
    Url { url: String, cause: redis::RedisError },
    #[error("cannot reach the cluster's Redis at {url}: {cause}; start Redis there, or run without --cluster")]
    Unreachable { url: String, cause: redis::RedisError },
    #[error("handler {handler}: {cause}")]
    Join { handler: String, cause: JoinError },
}

/// A handler's membership in a cluster. Dropping it stops the traffic
/// abruptly (the others forget this node after [`NODE_TIMEOUT`]);
/// [`Cluster::leave`] says goodbye first.
pub struct Cluster {
    node: NodeId,
    queue: mpsc::Sender<Note>,
    publisher: Option<AbortOnDropHandle<()>>,
    _subscriber: AbortOnDropHandle<()>,
    _heartbeat: AbortOnDropHandle<()>,
}

impl Cluster {
    /// Joins `handler` to the cluster that meets at the Redis server `url`,
    /// scoped by the handler's name (the same on every node); returns once
    /// subscribed to the other nodes. Call it before the handler serves any
    /// client.
    pub async fn join(handler: &Handler, url: &str) -> Result<Cluster, ClusterError> {
        Cluster::join_scoped(handler, url, handler.name()).await
    }

    /// Joins as [`Cluster::join`] does, in the scope `scope`: handlers of the
    /// same scope on different nodes share rooms and broadcasts. Distinct
    /// scopes for two routes that serve the same file keep them apart.
    pub async fn join_scoped(handler: &Handler, url: &str, scope: &str) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(url).map_err(|cause| ClusterError::Url { url: url.into(), cause })?;
        let unreachable = |cause| ClusterError::Unreachable { url: url.into(), cause };
        let mut connection = link::connect(&client).await.map_err(unreachable)?;
        let node = claim_node(&mut connection).await.map_err(unreachable)?;

        let registry = handler.registry().clone();
        let counters = &registry.metrics().cluster;
        let (queue, outbox) = mpsc::channel(QUEUE);
        let peers = Arc::new(Outbox { queue: queue.clone(), metrics: registry.metrics().clone() });
        registry
            .join_cluster(node, peers)
            .map_err(|cause| ClusterError::Join { handler: handler.name().into(), cause })?;
        counters.node.store(u64::from(node), Ordering::Relaxed);

        let channel = format!("ws-host:{scope}");
        tracing::info!(handler = %handler.name(), node, %url, %channel, "joined the cluster");
        let link = Arc::new(link::Link::new(client, channel, node, registry));
        let (subscribed, ready) = oneshot::channel();
        let publisher = AbortOnDropHandle::new(tokio::spawn(link.clone().publish(outbox, connection)));
        let subscriber = AbortOnDropHandle::new(tokio::spawn(link.clone().subscribe(subscribed)));
        let heartbeat = AbortOnDropHandle::new(tokio::spawn(link.heartbeat(queue.clone())));
        // Serving before hearing the others would miss their first broadcasts.
        if !matches!(tokio::time::timeout(REDIS_TIMEOUT, ready).await, Ok(Ok(()))) {
            let source = std::io::Error::new(std::io::ErrorKind::TimedOut, "no subscription within 2 s");
            return Err(unreachable(source.into()));
        }
        Ok(Cluster { node, queue, publisher: Some(publisher), _subscriber: subscriber, _heartbeat: heartbeat })
    }

    /// This node's number: the high bits of its client ids.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Tells the other nodes this one is leaving, so they forget its clients
    /// at once, and waits (briefly) until that is published.
    pub async fn leave(mut self) {
        if self.queue.try_send(Note::Bye).is_ok()
            && let Some(publisher) = self.publisher.take()
        {
            // The publisher ends once the goodbye is out.
            let publisher = publisher.detach();
            let _ = tokio::time::timeout(REDIS_TIMEOUT, publisher).await;
        }
    }
}

/// How long a node's number stays taken without a heartbeat renewing it.
const CLAIM: Duration = Duration::from_secs(10);

/// The Redis key that says a node number is taken.
fn claim_key(node: NodeId) -> String {
    format!("ws-host:node:{node}")
}

/// Takes the next node number that no live node holds: the counter hands
/// out candidates, a key per live node (renewed by its heartbeats) says
/// which are taken. The key matters after the counter restarts, with Redis,
/// while older nodes still run.
async fn claim_node(redis: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<NodeId> {
    loop {
        let number: u64 = redis.incr("ws-host:node", 1).await?;
        let node = ((number - 1) % u64::from(MAX_NODE)) as NodeId + 1;
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(CLAIM.as_secs()));
        let claimed: Option<String> = redis.set_options(claim_key(node), "live", options).await?;
        if claimed.is_some() {
            return Ok(node);
        }
    }
}

/// The registry's side of the link: queues, never waits.
struct Outbox {
    queue: mpsc::Sender<Note>,
    metrics: Arc<crate::runtime::metrics::HandlerMetrics>,
}

impl Peers for Outbox {
    fn publish(&self, update: Update) {
        if self.queue.try_send(Note::Update(update)).is_err() {
            ClusterCounters::add(&self.metrics.cluster.dropped, 1);
        }
    }
}
