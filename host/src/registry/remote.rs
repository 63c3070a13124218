//! What a registry knows of the other nodes of its cluster, and what it
//! tells them: each node announces its own clients, and applies what the
//! others announce of theirs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Client, ClientId, MAX_NODE, NODE_SHIFT, NodeId, Registry, State, Target, leave_room, node_of};
use crate::codec::OutgoingEvent;

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

impl Registry {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn event() -> Arc<OutgoingEvent> {
        Arc::new(OutgoingEvent::new("x", None, vec![]))
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
        assert!(x.outbox.try_recv().is_some() && y.outbox.try_recv().is_some());
        assert!(x.outbox.try_recv().is_none() && y.outbox.try_recv().is_none());
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
}
