//! The host-side registry of one handler's clients: their outbound queues,
//! authentication, contexts and rooms. It lives outside the guest so that it
//! survives a trap or a swap of the handler.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

use crate::codec::{Frame, Message, OutgoingEvent};
use crate::runtime::metrics::HandlerMetrics;

/// A connection's id, unique in this process.
pub type ClientId = u64;

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

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
    pub outbox: mpsc::Receiver<Outbound>,
    pub control: Arc<CloseRequest>,
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

impl CloseRequest {
    /// Asks for the connection to close; the first request wins.
    pub fn request(&self, code: u16, reason: impl Into<String>) {
        let reason = reason.into();
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

struct Client {
    id: ClientId,
    outbox: mpsc::Sender<Outbound>,
    control: Arc<CloseRequest>,
    authenticated: bool,
    context: Option<String>,
    rooms: BTreeSet<String>,
}

#[derive(Default)]
struct State {
    clients: HashMap<ClientId, Client>,
    rooms: BTreeMap<String, BTreeSet<ClientId>>,
}

/// The clients of one handler.
pub struct Registry {
    state: Mutex<State>,
    queue_capacity: usize,
    metrics: Arc<HandlerMetrics>,
}

impl Registry {
    /// A registry whose clients each queue at most `queue_capacity` outbound
    /// messages; a client that falls further behind is disconnected.
    pub fn new(queue_capacity: usize) -> Arc<Self> {
        Arc::new(Registry { state: Mutex::default(), queue_capacity: queue_capacity.max(1), metrics: Arc::default() })
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
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let control = Arc::new(CloseRequest::default());
        let client = Client {
            id,
            outbox: tx,
            control: control.clone(),
            authenticated: false,
            context: None,
            rooms: BTreeSet::new(),
        };
        self.state().clients.insert(id, client);
        Connection { id, outbox: rx, control }
    }

    /// Forgets a client and takes it out of its rooms.
    pub fn remove(&self, id: ClientId) {
        let mut state = self.state();
        if let Some(client) = state.clients.remove(&id) {
            for room in client.rooms {
                leave_room(&mut state.rooms, &room, id);
            }
        }
    }

    pub fn set_authenticated(&self, id: ClientId) {
        if let Some(client) = self.state().clients.get_mut(&id) {
            client.authenticated = true;
        }
    }

    pub fn is_authenticated(&self, id: ClientId) -> bool {
        self.state().clients.get(&id).is_some_and(|c| c.authenticated)
    }

    pub fn context(&self, id: ClientId) -> Option<String> {
        self.state().clients.get(&id).and_then(|c| c.context.clone())
    }

    pub fn set_context(&self, id: ClientId, context: String) {
        if let Some(client) = self.state().clients.get_mut(&id) {
            client.context = Some(context);
        }
    }

    pub fn join(&self, id: ClientId, room: &str) {
        let mut state = self.state();
        let Some(client) = state.clients.get_mut(&id) else { return };
        client.rooms.insert(room.to_owned());
        state.rooms.entry(room.to_owned()).or_default().insert(id);
    }

    pub fn leave(&self, id: ClientId, room: &str) {
        let mut state = self.state();
        if let Some(client) = state.clients.get_mut(&id) {
            client.rooms.remove(room);
        }
        leave_room(&mut state.rooms, room, id);
    }

    pub fn members(&self, room: &str) -> Vec<ClientId> {
        self.state().rooms.get(room).map(|m| m.iter().copied().collect()).unwrap_or_default()
    }

    pub fn rooms_of(&self, id: ClientId) -> Vec<String> {
        self.state().clients.get(&id).map(|c| c.rooms.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn clients(&self) -> Vec<ClientId> {
        let mut ids: Vec<_> = self.state().clients.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

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

    /// Asks a client's connection to close.
    pub fn disconnect(&self, id: ClientId, code: u16, reason: &str) {
        if let Some(client) = self.state().clients.get(&id) {
            client.control.request(code, reason);
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
            push(client, Outbound::Control(Box::new(message)));
        }
    }

    /// Queues an event for one client, authenticated or not: replies and
    /// errors go to whoever asked.
    pub fn send_to(&self, id: ClientId, event: Arc<OutgoingEvent>) {
        if let Some(client) = self.state().clients.get(&id)
            && push(client, Outbound::Event(event.clone()))
        {
            self.metrics.event_out(event.name(), 1);
        }
    }

    /// Queues a raw WebSocket message for one authenticated client.
    pub fn send_raw(&self, id: ClientId, frame: Frame) {
        if let Some(client) = self.state().clients.get(&id).filter(|c| c.authenticated) {
            push(client, Outbound::Raw(Box::new(frame)));
        }
    }

    /// Queues an event for every authenticated client `target` names; returns
    /// how many got it.
    pub fn deliver(&self, target: &Target, event: Arc<OutgoingEvent>) -> usize {
        let state = self.state();
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
        let mut delivered = 0;
        for id in recipients {
            if let Some(client) = state.clients.get(&id).filter(|c| c.authenticated) {
                delivered += usize::from(push(client, Outbound::Event(event.clone())));
            }
        }
        self.metrics.event_out(event.name(), delivered);
        delivered
    }
}

/// Queues without waiting; a full queue means a reader that does not keep
/// up, and it is disconnected rather than let memory grow.
fn push(client: &Client, item: Outbound) -> bool {
    match client.outbox.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            if client.control.current().is_none() {
                tracing::warn!(client = client.id, "outbound queue full: disconnecting a client that does not read");
            }
            client.control.request(CLOSE_SLOW_READER, "Outbound queue full");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
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
    fn only_authenticated_clients_receive_events() {
        let registry = Registry::new(8);
        let mut a = registry.connect();
        let mut b = registry.connect();
        registry.set_authenticated(a.id);
        assert_eq!(registry.deliver(&Target::All, event()), 1);
        assert_eq!(registry.deliver(&Target::Client(b.id), event()), 0);
        assert!(a.outbox.try_recv().is_ok());
        assert!(b.outbox.try_recv().is_err());
    }

    #[test]
    fn rooms_follow_joins_leaves_and_removal() {
        let registry = Registry::new(8);
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

    #[tokio::test]
    async fn a_full_queue_asks_for_a_close() {
        let registry = Registry::new(1);
        let c = registry.connect();
        registry.set_authenticated(c.id);
        assert_eq!(registry.deliver(&Target::All, event()), 1);
        assert_eq!(registry.deliver(&Target::All, event()), 0);
        assert_eq!(c.control.requested().await, (CLOSE_SLOW_READER, "Outbound queue full".into()));
    }
}
