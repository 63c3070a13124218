//! The host-side registry of one handler's clients: their outbound queues,
//! authentication, contexts and rooms. It lives outside the guest so that it
//! survives a trap or a swap of the handler.
//!
//! In a cluster (see [`crate::cluster`]) it also holds a view of the other
//! nodes' clients (their authentication, context and rooms, as those nodes
//! announce them), so that reads stay local and instant, and it tells its
//! [`Peers`] every change of its own clients and every delivery that reaches
//! beyond this node. Only a client's own node changes it; others read it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

// Looked up by every delivery (foldhash: a fraction of SipHash's cost).
use foldhash::HashMap;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::codec::{Frame, Message, OutgoingEvent};
use crate::runtime::metrics::HandlerMetrics;

/// A connection's id, unique in this process, and across a cluster: the
/// high bits hold the node's number.
pub type ClientId = u64;

/// A cluster node's number (0 outside a cluster); [`node_of`] reads it back
/// from a client id.
pub type NodeId = u32;

/// Where the node number starts in a client id: 2^40 connections per
/// process, 2^24 nodes per cluster.
const NODE_SHIFT: u32 = 40;

/// The largest node number a client id can carry.
pub const MAX_NODE: NodeId = (1 << (64 - NODE_SHIFT)) - 1;

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// The node a client id was given out by.
pub fn node_of(id: ClientId) -> NodeId {
    (id >> NODE_SHIFT) as NodeId
}

/// Close code sent to a client whose outbound queue overflowed.
pub const CLOSE_SLOW_READER: u16 = 1008;

/// What the writer side of a connection sends. Pointer-sized variants: a
/// connection's queue allocates its first block of 32 slots up front, so
/// the size of this type is paid by every idle connection.
#[derive(Debug)]
pub enum Outbound {
    /// An event: the writer gives it the connection's next event id.
    Event(Arc<OutgoingEvent>),
    /// A control message (auth-ok, auth-rejected), which carries no id.
    Control(Box<Message>),
    /// A whole WebSocket message outside the protocol (raw handlers).
    Raw(Box<Frame>),
}

impl Outbound {
    /// Roughly the bytes it holds until written; the same whenever asked.
    fn size(&self) -> usize {
        match self {
            Outbound::Event(event) => event.size_hint(),
            Outbound::Control(message) => match &**message {
                Message::AuthRejected { reason } => reason.len(),
                _ => 0,
            },
            Outbound::Raw(frame) => frame.payload_len(),
        }
    }
}

/// Who an outgoing event goes to (the WIT `target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Client(ClientId),
    Clients(Vec<ClientId>),
    All,
    AllExcept(ClientId),
    Room(String),
    RoomExcept { room: String, except: ClientId },
}

/// The connection side's handle on a registered client: its queue, and the
/// close request the registry may make (guest `disconnect`, slow reader).
pub struct Connection {
    pub id: ClientId,
    pub outbox: Outbox,
    pub control: Arc<CloseRequest>,
}

/// The writer's end of a client's outbound queue: what it takes no longer
/// counts against the client's queued bytes.
pub struct Outbox {
    receiver: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// The next item; cancel safe, as `mpsc::Receiver::recv` is.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let item = self.receiver.recv().await?;
        self.taken(&item);
        Some(item)
    }

    pub fn try_recv(&mut self) -> Result<Outbound, mpsc::error::TryRecvError> {
        let item = self.receiver.try_recv()?;
        self.taken(&item);
        Ok(item)
    }

    fn taken(&self, item: &Outbound) {
        self.queued.fetch_sub(item.size(), Ordering::Relaxed);
    }
}

/// A request to close a connection, raised by anyone (the handler, the
/// registry, the reader), seen by both halves of the connection.
#[derive(Debug)]
pub struct CloseRequest {
    state: watch::Sender<Option<(u16, String)>>,
}

impl Default for CloseRequest {
    fn default() -> Self {
        CloseRequest { state: watch::Sender::new(None) }
    }
}

/// The longest close reason a close frame carries (a control frame's 125
/// bytes, less the code); a longer one is cut at a character boundary.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Whether a server may send `code` in a close frame (RFC 6455 7.4: not
/// 1004-1006, 1015, unassigned or out-of-range codes).
pub fn close_code_allowed(code: u16) -> bool {
    CloseCode::from(code).is_allowed()
}

impl CloseRequest {
    /// Asks for the connection to close; the first request wins. A code a
    /// server may not send becomes 1011 (with a warning), and the reason is
    /// cut to what a close frame holds: the peer gets a valid close either way.
    pub fn request(&self, code: u16, reason: impl Into<String>) {
        let mut reason = reason.into();
        reason.truncate(reason.floor_char_boundary(MAX_CLOSE_REASON_BYTES));
        let code = if close_code_allowed(code) {
            code
        } else {
            tracing::warn!("close code {code} may not be sent; closing with 1011 instead");
            1011
        };
        self.state.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some((code, reason));
            true
        });
    }

    /// The close asked for so far, if any.
    pub fn current(&self) -> Option<(u16, String)> {
        self.state.borrow().clone()
    }

    /// Waits until a close is requested, and says how.
    pub async fn requested(&self) -> (u16, String) {
        let mut watcher = self.state.subscribe();
        let request = watcher.wait_for(Option::is_some).await.expect("the sender lives in self");
        request.clone().expect("waited for some")
    }
}

/// What other nodes know of a client: all but its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientState {
    pub id: ClientId,
    pub authenticated: bool,
    pub context: Option<String>,
    pub rooms: BTreeSet<String>,
}

/// What a registry tells the other nodes of its cluster, and what it is
/// told by them.
#[derive(Debug, Clone)]
pub enum Update {
    /// A client as it is now: connected, or its auth, context or rooms changed.
    Client(ClientState),
    /// A client is gone.
    Gone(ClientId),
    /// Every client of a node. `hello` asks the others for theirs.
    Snapshot { clients: Vec<ClientState>, hello: bool },
    /// An event for the recipients of `target` on the other nodes.
    Deliver { target: Target, event: Arc<OutgoingEvent> },
    /// A request to close a client of another node.
    Disconnect { id: ClientId, code: u16, reason: String },
}

/// Carries a registry's updates to the other nodes (see [`crate::cluster`]).
/// Called with the registry locked, so updates leave in the order they
/// happened: it must only queue.
pub trait Peers: Send + Sync {
    fn publish(&self, update: Update);
}

/// The registry joined a cluster too late or twice.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the handler already serves clients: join the cluster before serving")]
    HasClients,
    #[error("the handler already belongs to a cluster")]
    AlreadyJoined,
}

struct Client {
    id: ClientId,
    outbox: mpsc::Sender<Outbound>,
    control: Arc<CloseRequest>,
    authenticated: bool,
    context: Option<String>,
    rooms: BTreeSet<String>,
    /// Bytes in `outbox` not yet taken by the writer.
    queued: Arc<AtomicUsize>,
}

impl Client {
    fn state(&self) -> ClientState {
        ClientState {
            id: self.id,
            authenticated: self.authenticated,
            context: self.context.clone(),
            rooms: self.rooms.clone(),
        }
    }
}

#[derive(Default)]
struct State {
    clients: HashMap<ClientId, Client>,
    /// Other nodes' clients, as last announced.
    remote: HashMap<ClientId, ClientState>,
    /// Members of each room, on every node.
    rooms: BTreeMap<String, BTreeSet<ClientId>>,
}

/// The clients of one handler.
pub struct Registry {
    state: Mutex<State>,
    queue_capacity: usize,
    queue_bytes: usize,
    metrics: Arc<HandlerMetrics>,
    /// This node's number, in the high bits of every id it gives out.
    id_base: AtomicU64,
    peers: OnceLock<Arc<dyn Peers>>,
}

impl Registry {
    /// A registry whose clients each queue at most `queue_capacity` outbound
    /// messages and `queue_bytes` bytes (but always one message); a client
    /// that falls further behind is disconnected.
    pub fn new(queue_capacity: usize, queue_bytes: usize) -> Arc<Self> {
        Arc::new(Registry {
            state: Mutex::default(),
            queue_capacity: queue_capacity.max(1),
            queue_bytes,
            metrics: Arc::default(),
            id_base: AtomicU64::new(0),
            peers: OnceLock::new(),
        })
    }

    /// Makes this registry node `node` of a cluster whose other nodes
    /// `peers` reaches. Only before the first client connects: ids given
    /// out before would not carry the node.
    pub fn join_cluster(&self, node: NodeId, peers: Arc<dyn Peers>) -> Result<(), JoinError> {
        let state = self.state();
        if !state.clients.is_empty() {
            return Err(JoinError::HasClients);
        }
        self.peers.set(peers).map_err(|_| JoinError::AlreadyJoined)?;
        self.id_base.store(u64::from(node.min(MAX_NODE)) << NODE_SHIFT, Ordering::Relaxed);
        Ok(())
    }

    /// This node's number (0 outside a cluster).
    pub fn node(&self) -> NodeId {
        (self.id_base.load(Ordering::Relaxed) >> NODE_SHIFT) as NodeId
    }

    fn is_local(&self, id: ClientId) -> bool {
        node_of(id) == self.node()
    }

    /// Tells the other nodes, if any; called with the state locked.
    fn tell(&self, update: impl FnOnce() -> Update) {
        if let Some(peers) = self.peers.get() {
            peers.publish(update());
        }
    }

    /// Tells the other nodes how a local client is now.
    fn announce(&self, client: &Client) {
        self.tell(|| Update::Client(client.state()));
    }

    /// The handler's counters (deliveries are counted here).
    pub fn metrics(&self) -> &Arc<HandlerMetrics> {
        &self.metrics
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves the maps half-updated: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new, unauthenticated client.
    pub fn connect(&self) -> Connection {
        let id = self.id_base.load(Ordering::Relaxed) | NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let control = Arc::new(CloseRequest::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let client = Client {
            id,
            outbox: tx,
            control: control.clone(),
            authenticated: false,
            context: None,
            rooms: BTreeSet::new(),
            queued: queued.clone(),
        };
        let mut state = self.state();
        self.announce(&client);
        state.clients.insert(id, client);
        Connection { id, outbox: Outbox { receiver: rx, queued }, control }
    }

    /// Forgets a client and takes it out of its rooms.
    pub fn remove(&self, id: ClientId) {
        let mut state = self.state();
        if let Some(client) = state.clients.remove(&id) {
            for room in client.rooms {
                leave_room(&mut state.rooms, &room, id);
            }
            self.tell(|| Update::Gone(id));
        }
    }

    /// Changes a local client and tells the other nodes; a client of
    /// another node is left alone, with a warning naming `what`.
    fn change(
        &self,
        id: ClientId,
        what: &str,
        change: impl FnOnce(&mut Client, &mut BTreeMap<String, BTreeSet<ClientId>>),
    ) {
        let mut state = self.state();
        let State { clients, rooms, .. } = &mut *state;
        match clients.get_mut(&id) {
            Some(client) => {
                change(client, rooms);
                self.announce(client);
            }
            None if !self.is_local(id) => tracing::warn!(
                client = id,
                node = node_of(id),
                "{what}: the client is connected to another node, and only its own node can change it"
            ),
            None => {}
        }
    }

    pub fn set_authenticated(&self, id: ClientId) {
        self.change(id, "set authenticated", |client, _| client.authenticated = true);
    }

    /// Whether a client of any node passed auth.
    pub fn is_authenticated(&self, id: ClientId) -> bool {
        let state = self.state();
        match state.clients.get(&id) {
            Some(client) => client.authenticated,
            None => state.remote.get(&id).is_some_and(|c| c.authenticated),
        }
    }

    /// A client's context, whichever node it is on.
    pub fn context(&self, id: ClientId) -> Option<String> {
        let state = self.state();
        match state.clients.get(&id) {
            Some(client) => client.context.clone(),
            None => state.remote.get(&id).and_then(|c| c.context.clone()),
        }
    }

    pub fn set_context(&self, id: ClientId, context: String) {
        self.change(id, "set-context", |client, _| client.context = Some(context));
    }

    pub fn join(&self, id: ClientId, room: &str) {
        self.change(id, "join", |client, rooms| {
            client.rooms.insert(room.to_owned());
            rooms.entry(room.to_owned()).or_default().insert(id);
        });
    }

    /// How many rooms a local client is in, and whether `room` is one.
    pub fn rooms_held(&self, id: ClientId, room: &str) -> (usize, bool) {
        self.state().clients.get(&id).map_or((0, false), |client| (client.rooms.len(), client.rooms.contains(room)))
    }

    pub fn leave(&self, id: ClientId, room: &str) {
        self.change(id, "leave", |client, rooms| {
            client.rooms.remove(room);
            leave_room(rooms, room, id);
        });
    }

    /// The members of a room on every node, in ascending order.
    pub fn members(&self, room: &str) -> Vec<ClientId> {
        self.state().rooms.get(room).map(|m| m.iter().copied().collect()).unwrap_or_default()
    }

    /// The rooms of a client, whichever node it is on.
    pub fn rooms_of(&self, id: ClientId) -> Vec<String> {
        let state = self.state();
        let rooms = match state.clients.get(&id) {
            Some(client) => &client.rooms,
            None => match state.remote.get(&id) {
                Some(client) => &client.rooms,
                None => return Vec::new(),
            },
        };
        rooms.iter().cloned().collect()
    }

    /// Every client of every node, in ascending order.
    pub fn clients(&self) -> Vec<ClientId> {
        let state = self.state();
        let mut ids: Vec<_> = state.clients.keys().chain(state.remote.keys()).copied().collect();
        ids.sort_unstable();
        ids
    }

    /// How many clients this node holds.
    pub fn len(&self) -> usize {
        self.state().clients.len()
    }

    /// How many clients have passed auth.
    pub fn authenticated_len(&self) -> usize {
        self.state().clients.values().filter(|c| c.authenticated).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks a client's connection to close, whichever node it is on (see
    /// [`CloseRequest::request`] for codes and reasons a close frame cannot
    /// carry).
    pub fn disconnect(&self, id: ClientId, code: u16, reason: &str) {
        let state = self.state();
        if let Some(client) = state.clients.get(&id) {
            client.control.request(code, reason);
        } else if !self.is_local(id) {
            self.tell(|| Update::Disconnect { id, code, reason: reason.to_owned() });
        }
    }

    /// Asks every connection to close (shutdown).
    pub fn close_all(&self, code: u16, reason: &str) {
        for client in self.state().clients.values() {
            client.control.request(code, reason);
        }
    }

    /// Queues a control message for one client, authenticated or not.
    pub fn send_control(&self, id: ClientId, message: Message) {
        if let Some(client) = self.state().clients.get(&id) {
            self.push(client, Outbound::Control(Box::new(message)));
        }
    }

    /// Queues an event for one client, authenticated or not: replies and
    /// errors go to whoever asked.
    pub fn send_to(&self, id: ClientId, event: Arc<OutgoingEvent>) {
        if let Some(client) = self.state().clients.get(&id)
            && let Some(slot) = self.reserve(client, event.size_hint())
        {
            self.metrics.event_out(event.name(), 1);
            // Handed over, not cloned: the writer, holding the only
            // reference, encodes it whole (`OutgoingEvent::into_frame`).
            slot.send(Outbound::Event(event));
        }
    }

    /// Queues a raw WebSocket message for one authenticated client of this
    /// node (raw messages do not cross nodes: the other node's handler
    /// answers its own clients).
    pub fn send_raw(&self, id: ClientId, frame: Frame) {
        if let Some(client) = self.state().clients.get(&id).filter(|c| c.authenticated) {
            self.push(client, Outbound::Raw(Box::new(frame)));
        } else if !self.is_local(id) {
            tracing::warn!(client = id, node = node_of(id), "send-raw: the client is connected to another node");
        }
    }

    /// Queues an event for every authenticated client `target` names, and
    /// hands it to the other nodes when it reaches beyond this one; returns
    /// how many clients of this node got it.
    pub fn deliver(&self, target: &Target, event: Arc<OutgoingEvent>) -> usize {
        let state = self.state();
        if self.peers.get().is_some() {
            let beyond = match target {
                Target::Client(id) => (!self.is_local(*id)).then(|| target.clone()),
                Target::Clients(ids) => {
                    let remote: Vec<_> = ids.iter().copied().filter(|id| !self.is_local(*id)).collect();
                    (!remote.is_empty()).then_some(Target::Clients(remote))
                }
                _ => Some(target.clone()),
            };
            if let Some(target) = beyond {
                self.tell(|| Update::Deliver { target, event: event.clone() });
            }
        }
        self.deliver_here(&state, target, event)
    }

    /// Delivers to the clients of this node only.
    fn deliver_here(&self, state: &State, target: &Target, event: Arc<OutgoingEvent>) -> usize {
        let recipients: Vec<ClientId> = match target {
            Target::Client(id) => vec![*id],
            Target::Clients(ids) => ids.clone(),
            Target::All => state.clients.keys().copied().collect(),
            Target::AllExcept(except) => state.clients.keys().copied().filter(|id| id != except).collect(),
            Target::Room(room) => state.rooms.get(room).map(|m| m.iter().copied().collect()).unwrap_or_default(),
            Target::RoomExcept { room, except } => {
                state.rooms.get(room).map(|m| m.iter().copied().filter(|id| id != except).collect()).unwrap_or_default()
            }
        };
        let (mut delivered, size) = (0, event.size_hint());
        for id in recipients {
            if let Some(client) = state.clients.get(&id).filter(|c| c.authenticated)
                && let Some(slot) = self.reserve(client, size)
            {
                slot.send(Outbound::Event(event.clone()));
                delivered += 1;
            }
        }
        self.metrics.event_out(event.name(), delivered);
        delivered
    }

    /// Applies what node `node` told: its clients' changes, its deliveries,
    /// its requests to close clients of this node. Claims about clients
    /// that are not `node`'s are ignored.
    pub fn apply(&self, node: NodeId, update: Update) {
        let mut state = self.state();
        match update {
            Update::Client(client) if node_of(client.id) == node => put_remote(&mut state, client),
            Update::Gone(id) if node_of(id) == node => forget_remote(&mut state, id),
            Update::Snapshot { clients, .. } => {
                forget_node(&mut state, node);
                for client in clients.into_iter().filter(|c| node_of(c.id) == node) {
                    put_remote(&mut state, client);
                }
            }
            Update::Deliver { target, event } => {
                self.deliver_here(&state, &target, event);
            }
            Update::Disconnect { id, code, reason } => {
                if let Some(client) = state.clients.get(&id) {
                    client.control.request(code, reason);
                }
            }
            Update::Client(_) | Update::Gone(_) => {
                tracing::warn!(node, "ignored a cluster update about a client of another node");
            }
        }
    }

    /// Forgets every client of a node that left or went silent; returns
    /// how many there were.
    pub fn forget_node(&self, node: NodeId) -> usize {
        forget_node(&mut self.state(), node)
    }

    /// Tells the other nodes every client of this one (`hello`: and asks
    /// for theirs). Under the lock, so no change can overtake it.
    pub fn announce_all(&self, hello: bool) {
        let state = self.state();
        self.tell(|| Update::Snapshot { clients: state.clients.values().map(Client::state).collect(), hello });
    }
}

fn put_remote(state: &mut State, client: ClientState) {
    forget_remote(state, client.id);
    for room in &client.rooms {
        state.rooms.entry(room.clone()).or_default().insert(client.id);
    }
    state.remote.insert(client.id, client);
}

fn forget_remote(state: &mut State, id: ClientId) {
    if let Some(old) = state.remote.remove(&id) {
        for room in &old.rooms {
            leave_room(&mut state.rooms, room, id);
        }
    }
}

fn forget_node(state: &mut State, node: NodeId) -> usize {
    let ids: Vec<_> = state.remote.keys().copied().filter(|id| node_of(*id) == node).collect();
    for &id in &ids {
        forget_remote(state, id);
    }
    ids.len()
}

impl Registry {
    /// Queues without waiting; see [`Self::reserve`].
    fn push(&self, client: &Client, item: Outbound) {
        if let Some(slot) = self.reserve(client, item.size()) {
            slot.send(item);
        }
    }

    /// A place in the client's queue for `bytes`, without waiting; a full
    /// queue (in messages or bytes) means a reader that does not keep up,
    /// and it is disconnected rather than let memory grow. Called with the
    /// state locked, so the bytes counted cannot race past the limit.
    fn reserve<'a>(&self, client: &'a Client, bytes: usize) -> Option<mpsc::Permit<'a, Outbound>> {
        let queued = client.queued.load(Ordering::Relaxed);
        let full = if queued != 0 && queued.saturating_add(bytes) > self.queue_bytes {
            format!("{queued} bytes queued")
        } else {
            match client.outbox.try_reserve() {
                Ok(slot) => {
                    client.queued.fetch_add(bytes, Ordering::Relaxed);
                    return Some(slot);
                }
                Err(mpsc::error::TrySendError::Full(())) => format!("{} messages queued", self.queue_capacity),
                Err(mpsc::error::TrySendError::Closed(())) => return None,
            }
        };
        if client.control.current().is_none() {
            tracing::warn!(
                client = client.id,
                "outbound queue full ({full}): disconnecting a client that does not read"
            );
        }
        client.control.request(CLOSE_SLOW_READER, "Outbound queue full");
        None
    }
}

fn leave_room(rooms: &mut BTreeMap<String, BTreeSet<ClientId>>, room: &str, id: ClientId) {
    if let Some(members) = rooms.get_mut(room) {
        members.remove(&id);
        if members.is_empty() {
            rooms.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Arc<OutgoingEvent> {
        Arc::new(OutgoingEvent::new("x", None, vec![]))
    }

    #[test]
    fn a_close_request_is_one_a_close_frame_can_carry() {
        let registry = Registry::new(8, usize::MAX);
        let (a, b) = (registry.connect(), registry.connect());
        registry.disconnect(a.id, 1006, &"ü".repeat(100));
        assert_eq!(a.control.current(), Some((1011, "ü".repeat(61))));
        registry.disconnect(b.id, 4000, "bye");
        assert_eq!(b.control.current(), Some((4000, "bye".into())));
    }

    #[test]
    fn only_authenticated_clients_receive_events() {
        let registry = Registry::new(8, usize::MAX);
        let mut a = registry.connect();
        let mut b = registry.connect();
        registry.set_authenticated(a.id);
        assert_eq!(registry.deliver(&Target::All, event()), 1);
        assert_eq!(registry.deliver(&Target::Client(b.id), event()), 0);
        assert!(a.outbox.try_recv().is_ok());
        assert!(b.outbox.try_recv().is_err());
    }

    #[test]
    fn a_reply_is_queued_whole_and_counted() {
        let registry = Registry::new(8, usize::MAX);
        let mut a = registry.connect();
        registry.send_to(a.id, event());
        match a.outbox.try_recv() {
            Ok(Outbound::Event(event)) => assert_eq!(Arc::strong_count(&event), 1),
            other => panic!("expected the event, got {other:?}"),
        }
        assert_eq!(registry.metrics().snapshot().events_out.get("x"), Some(&1));
    }

    #[test]
    fn rooms_follow_joins_leaves_and_removal() {
        let registry = Registry::new(8, usize::MAX);
        let a = registry.connect();
        let b = registry.connect();
        for c in [&a, &b] {
            registry.set_authenticated(c.id);
            registry.join(c.id, "lobby");
        }
        assert_eq!(registry.members("lobby"), vec![a.id, b.id]);
        let except = Target::RoomExcept { room: "lobby".into(), except: a.id };
        assert_eq!(registry.deliver(&except, event()), 1);
        registry.leave(a.id, "lobby");
        assert_eq!(registry.rooms_of(a.id), Vec::<String>::new());
        registry.remove(b.id);
        assert!(registry.members("lobby").is_empty());
    }

    /// Keeps what a registry tells the other nodes, to relay by hand.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Update>>);

    impl Peers for Recorder {
        fn publish(&self, update: Update) {
            self.0.lock().unwrap().push(update);
        }
    }

    impl Recorder {
        fn relay(&self, from: NodeId, to: &Registry) -> usize {
            let updates: Vec<_> = self.0.lock().unwrap().drain(..).collect();
            let count = updates.len();
            updates.into_iter().for_each(|update| to.apply(from, update));
            count
        }
    }

    fn two_nodes() -> (Arc<Registry>, Arc<Recorder>, Arc<Registry>, Arc<Recorder>) {
        let (a, b) = (Registry::new(8, usize::MAX), Registry::new(8, usize::MAX));
        let (from_a, from_b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        a.join_cluster(1, from_a.clone()).unwrap();
        b.join_cluster(2, from_b.clone()).unwrap();
        (a, from_a, b, from_b)
    }

    #[test]
    fn nodes_see_each_others_clients_and_deliver_once() {
        let (a, from_a, b, from_b) = two_nodes();
        let mut x = a.connect();
        let mut y = b.connect();
        assert_eq!((node_of(x.id), node_of(y.id)), (1, 2));
        a.set_authenticated(x.id);
        a.set_context(x.id, "ann".into());
        a.join(x.id, "r");
        b.set_authenticated(y.id);
        b.join(y.id, "r");
        from_a.relay(1, &b);
        from_b.relay(2, &a);
        assert_eq!((a.members("r"), b.members("r")), (vec![x.id, y.id], vec![x.id, y.id]));
        assert_eq!(
            (b.context(x.id), b.rooms_of(x.id), b.is_authenticated(x.id)),
            (Some("ann".into()), vec!["r".into()], true)
        );
        assert_eq!(b.clients(), vec![x.id, y.id]);
        assert_eq!(b.len(), 1, "only its own clients count as this node's");

        // Each node delivers to its own members; relayed deliveries are not
        // published again.
        assert_eq!(a.deliver(&Target::Room("r".into()), event()), 1);
        assert_eq!(from_a.relay(1, &b), 1);
        assert!(x.outbox.try_recv().is_ok() && y.outbox.try_recv().is_ok());
        assert!(x.outbox.try_recv().is_err() && y.outbox.try_recv().is_err());
        assert_eq!(from_b.0.lock().unwrap().len(), 0);
        // A delivery to this node's own client stays here.
        a.deliver(&Target::Clients(vec![x.id]), event());
        assert_eq!(from_a.0.lock().unwrap().len(), 0);

        // Changes are made on the client's own node only.
        b.join(x.id, "elsewhere");
        assert_eq!(from_b.0.lock().unwrap().len(), 0);
        // A disconnect reaches the other node.
        a.disconnect(y.id, 4000, "bye");
        from_a.relay(1, &b);
        assert_eq!(y.control.current(), Some((4000, "bye".into())));
        // Gone clients and forgotten nodes leave the rooms.
        b.remove(y.id);
        from_b.relay(2, &a);
        assert_eq!(a.members("r"), vec![x.id]);
        assert_eq!(b.forget_node(1), 1);
        assert!(b.members("r").is_empty() && b.clients().is_empty());
    }

    #[test]
    fn a_snapshot_replaces_what_was_known_of_a_node() {
        let (a, from_a, b, _) = two_nodes();
        let x = a.connect();
        a.join(x.id, "r");
        let gone = a.connect();
        from_a.relay(1, &b);
        a.remove(gone.id);
        from_a.0.lock().unwrap().clear(); // the news of its removal is lost...
        a.announce_all(true); // ...and a snapshot puts it right
        from_a.relay(1, &b);
        assert_eq!(b.clients(), vec![x.id]);
        assert_eq!(b.members("r"), vec![x.id]);
        // Claims about another node's clients are ignored.
        b.apply(3, Update::Gone(x.id));
        assert_eq!(b.clients(), vec![x.id]);
        assert!(matches!(a.join_cluster(5, from_a.clone()), Err(JoinError::HasClients)));
    }

    #[tokio::test]
    async fn a_full_queue_asks_for_a_close() {
        let registry = Registry::new(1, usize::MAX);
        let c = registry.connect();
        registry.set_authenticated(c.id);
        assert_eq!(registry.deliver(&Target::All, event()), 1);
        assert_eq!(registry.deliver(&Target::All, event()), 0);
        assert_eq!(c.control.requested().await, (CLOSE_SLOW_READER, "Outbound queue full".into()));
    }
}
