//! The chat handler: the auth key is the nickname (kept in the client's
//! context), rooms live in the host, messages and their history in this
//! instance's memory.
//!
//! Build: `cargo build --release --target wasm32-wasip2 --manifest-path examples/guests/Cargo.toml`
//! Run:   `ws-host run examples/guests/target/wasm32-wasip2/release/chat.wasm --port 8080`

ws_host_guest::generate!({ world: "chat" });

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use example::chat::outgoing::{joined, left, said};
use example::chat::types::Message;
use exports::example::chat::incoming::Guest as Incoming;
use exports::ws_host::server::auth::Guest as Auth;
use exports::ws_host::server::disconnected::Guest as Disconnected;
use ws_host_guest::{ClientId, Request, RoomExcept, Target, host};

/// Messages kept per room for `history`.
const HISTORY: usize = 1000;

#[derive(Default)]
struct Room {
    seq: u32,
    /// Oldest first; a deque, so dropping the oldest does not shift the rest.
    messages: VecDeque<Message>,
}

thread_local! {
    static ROOMS: RefCell<HashMap<String, Room>> = RefCell::default();
}

fn nick(client: ClientId) -> String {
    host::get_context(client).unwrap_or_default()
}

fn others(room: &str, except: ClientId) -> Target {
    Target::RoomExcept(RoomExcept { room: room.to_owned(), except })
}

struct Chat;

impl Auth for Chat {
    fn on_auth(client: ClientId, key: String, _request: Request) -> Result<(), String> {
        if key.is_empty() {
            return Err("Invalid auth key".into());
        }
        host::set_context(client, &key);
        Ok(())
    }
}

impl Incoming for Chat {
    fn join(from: ClientId, room: String) -> Vec<String> {
        let already = host::rooms(from).contains(&room);
        host::join(from, &room);
        if !already {
            joined(&others(&room, from), &room, &nick(from));
        }
        let mut nicks: Vec<String> = host::members(&room).into_iter().map(nick).collect();
        nicks.sort();
        nicks
    }

    fn leave(from: ClientId, room: String) {
        if host::rooms(from).contains(&room) {
            host::leave(from, &room);
            left(&Target::Room(room.clone()), &room, &nick(from));
        }
    }

    fn say(from: ClientId, room: String, text: String) {
        if !host::rooms(from).contains(&room) {
            return;
        }
        let message = ROOMS.with_borrow_mut(|rooms| {
            let state = rooms.entry(room.clone()).or_default();
            state.seq += 1;
            let message = Message { room: room.clone(), author: nick(from), text, seq: state.seq };
            if state.messages.len() == HISTORY {
                state.messages.pop_front();
            }
            state.messages.push_back(message.clone());
            message
        });
        said(&Target::Room(room), &message);
    }

    fn history(_from: ClientId, room: String, limit: u32) -> Vec<Message> {
        ROOMS.with_borrow(|rooms| {
            let Some(messages) = rooms.get(&room).map(|r| &r.messages) else { return Vec::new() };
            messages.iter().skip(messages.len().saturating_sub(limit as usize)).cloned().collect()
        })
    }
}

impl Disconnected for Chat {
    fn on_disconnect(client: ClientId, _code: u16, _reason: String) {
        let nick = nick(client);
        for room in host::rooms(client) {
            host::leave(client, &room);
            left(&Target::Room(room.clone()), &room, &nick);
        }
    }
}

export!(Chat);
