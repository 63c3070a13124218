//! The host-side registry of one handler's clients: their outbound queues,
//! authentication, contexts and rooms. It lives outside the guest so that it
//! survives a trap or a swap of the handler.
//!
//! In a cluster (see [`crate::cluster`]) it also holds a view of the other
//! nodes' clients (their authentication, context and rooms, as those nodes
//! announce them), so that reads stay local and instant, and it tells its
//! [`Peers`] every change of its own clients and every delivery that reaches
//! beyond this node. Only a client's own node changes it; others read it.
//!
//! Its parts, one module each: every client's outbound queue (`outbound`,
//! read through an [`Outbox`]), what it shares with each connection (`control`,
//! [`Control`]: close requests, whether the peer was heard from, its places
//! in the handler's queue), the ping rounds (`heartbeat`), and the view of
//! the other nodes (`remote`, [`Update`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

// Looked up by every delivery (foldhash: a fraction of SipHash's cost).
use foldhash::HashMap;

use crate::codec::{Frame, Message, OutgoingEvent};
use crate::config::Config;
use crate::runtime::metrics::{EventCounters, HandlerMetrics};

mod control;
mod heartbeat;
mod outbound;
mod remote;

pub use control::{Control, MAX_CLOSE_REASON_BYTES, Place, close_code_allowed};
pub use heartbeat::CLOSE_SILENT;
pub use outbound::{CLOSE_SLOW_READER, Outbound, Outbox};
use outbound::{Full, Queue, Slot};
pub use remote::{ClientState, JoinError, Peers, Update};

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

impl Target {
    /// Several clients, each once, in order.
    pub fn clients(mut ids: Vec<ClientId>) -> Target {
        ids.sort_unstable();
        ids.dedup();
        Target::Clients(ids)
    }
}

/// The connection side's handle on a registered client: its queue, and the
/// close request the registry may make (guest `disconnect`, slow reader,
/// silent peer).
pub struct Connection {
    pub id: ClientId,
    pub outbox: Outbox,
    pub control: Arc<Control>,
}

struct Client {
    id: ClientId,
    queue: Queue,
    control: Arc<Control>,
    authenticated: bool,
    context: Option<String>,
    rooms: BTreeSet<String>,
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
    /// Places each client's events may hold in the handler's queue.
    places_per_client: usize,
    metrics: Arc<HandlerMetrics>,
    /// This node's number, in the high bits of every id it gives out.
    id_base: AtomicU64,
    peers: OnceLock<Arc<dyn Peers>>,
    /// Time between ping rounds, if any; the rounds start with the first
    /// connection.
    ping_every: Option<Duration>,
    pinging: OnceLock<()>,
    held_back: heartbeat::HeldBack,
}

impl Registry {
    /// A registry whose clients each queue at most `queue_capacity` outbound
    /// messages and `queue_bytes` bytes (but always one message); a client
    /// that falls further behind is disconnected. It sends no pings, and
    /// its clients' events are not limited in the handler's queue.
    pub fn new(queue_capacity: usize, queue_bytes: usize) -> Arc<Self> {
        Registry::build(queue_capacity, queue_bytes, usize::MAX, None)
    }

    /// A registry with `config`'s queue limits, which pings its clients every
    /// `ping_interval_ms` (never at 0).
    pub fn for_config(config: &Config) -> Arc<Self> {
        let (queue, queue_bytes) = (config.outbound_queue, config.outbound_queue_bytes);
        Registry::build(queue, queue_bytes, config.sandbox.event_queue_per_client, config.ping_interval())
    }

    fn build(
        queue_capacity: usize,
        queue_bytes: usize,
        places_per_client: usize,
        ping_every: Option<Duration>,
    ) -> Arc<Self> {
        Arc::new(Registry {
            state: Mutex::default(),
            queue_capacity: queue_capacity.max(1),
            queue_bytes,
            places_per_client,
            metrics: Arc::default(),
            id_base: AtomicU64::new(0),
            peers: OnceLock::new(),
            ping_every,
            pinging: OnceLock::new(),
            held_back: heartbeat::HeldBack::default(),
        })
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

    /// Registers a new, unauthenticated client. The first one starts the
    /// ping rounds, if any.
    pub fn connect(self: &Arc<Self>) -> Connection {
        if let Some(every) = self.ping_every {
            self.pinging.get_or_init(|| heartbeat::start(Arc::downgrade(self), every));
        }
        let id = self.id_base.load(Ordering::Relaxed) | NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let (queue, outbox) = outbound::queue(self.queue_capacity);
        let control = Arc::new(Control::new(self.places_per_client));
        let client =
            Client { id, queue, control: control.clone(), authenticated: false, context: None, rooms: BTreeSet::new() };
        let mut state = self.state();
        self.announce(&client);
        state.clients.insert(id, client);
        Connection { id, outbox, control }
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
    /// [`Control::request`] for codes and reasons a close frame cannot
    /// carry).
    pub fn disconnect(&self, id: ClientId, code: u16, reason: &str) {
        let state = self.state();
        if let Some(client) = state.clients.get(&id) {
            client.control.request(code, reason);
        } else if !self.is_local(id) {
            self.tell(|| Update::Disconnect { id, code, reason: reason.to_owned() });
        }
    }

    /// One ping round: pings every client heard from since the last round,
    /// and asks the others to close ([`CLOSE_SILENT`]), unless readers were
    /// held back meanwhile (see [`Self::wait_for_room`]).
    fn ping_round(&self) {
        let may_close = self.held_back.may_close();
        for client in self.state().clients.values() {
            if client.control.take_heard() || !may_close {
                self.push(client, Outbound::Ping);
            } else {
                client.control.request(CLOSE_SILENT.0, CLOSE_SILENT.1);
            }
        }
    }

    /// A reader's `wait` for room in the handler's queue (its places, the
    /// queue's bytes or slots). Boxed at once, so that its state is paid only
    /// while waiting, not in every connection's future (an awaited `send`
    /// made each connection ~500 bytes larger); and told to the ping rounds,
    /// which close nobody while a reader waits, as it reads no pongs.
    pub fn wait_for_room<'a, F: Future + 'a>(&'a self, wait: F) -> impl Future<Output = F::Output> + 'a {
        let held = self.held_back.start();
        let wait = Box::pin(wait);
        async move {
            let _held = held;
            wait.await
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
        self.send_one(id, event, |event| self.metrics.event_out(event.name(), 1));
    }

    /// [`send_to`](Self::send_to), counted in `counters` (a declared
    /// event's, found at load) instead of by name.
    pub fn send_counted(&self, id: ClientId, event: Arc<OutgoingEvent>, counters: &EventCounters) {
        self.send_one(id, event, |_| counters.sent(1));
    }

    fn send_one(&self, id: ClientId, event: Arc<OutgoingEvent>, count: impl FnOnce(&OutgoingEvent)) {
        if let Some(client) = self.state().clients.get(&id)
            && let Some(slot) = self.reserve(client, event.size_hint())
        {
            count(&event);
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
    fn reserve<'a>(&self, client: &'a Client, bytes: usize) -> Option<Slot<'a>> {
        let full = match client.queue.reserve(bytes, self.queue_bytes) {
            Ok(slot) => return Some(slot),
            Err(Full::Closed) => return None,
            Err(full) => full,
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
    fn a_disconnect_asks_for_a_close_a_close_frame_can_carry() {
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
        assert!(a.outbox.try_recv().is_some());
        assert!(b.outbox.try_recv().is_none());
    }

    #[test]
    fn a_reply_is_queued_whole_and_counted() {
        let registry = Registry::new(8, usize::MAX);
        let mut a = registry.connect();
        registry.send_to(a.id, event());
        match a.outbox.try_recv() {
            Some(Outbound::Event(event)) => assert_eq!(Arc::strong_count(&event), 1),
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

    #[test]
    fn a_ping_round_pings_who_was_heard_and_closes_who_was_not() {
        let registry = Registry::new(8, usize::MAX);
        let (mut quiet, mut talking) = (registry.connect(), registry.connect());
        registry.ping_round();
        for client in [&mut quiet, &mut talking] {
            assert!(matches!(client.outbox.try_recv(), Some(Outbound::Ping)), "new clients count as heard");
        }
        talking.control.heard();
        registry.ping_round();
        assert!(matches!(talking.outbox.try_recv(), Some(Outbound::Ping)));
        assert_eq!(talking.control.current(), None);
        assert!(quiet.outbox.try_recv().is_none(), "no second ping for a silent client");
        assert_eq!(quiet.control.current(), Some((CLOSE_SILENT.0, CLOSE_SILENT.1.into())));

        // While a reader waits for the handler, and in the round after, nobody is closed.
        let mut waiting = registry.connect();
        let held = registry.held_back.start();
        registry.ping_round();
        registry.ping_round();
        drop(held);
        registry.ping_round();
        assert_eq!(waiting.control.current(), None);
        registry.ping_round();
        assert_eq!(waiting.control.current(), Some((CLOSE_SILENT.0, CLOSE_SILENT.1.into())));
        assert!(waiting.outbox.try_recv().is_some());
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
