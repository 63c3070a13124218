//! The fan-out benchmark's handler (see `wit/fanout.wit`).

ws_host_guest::generate!({ world: "fanout" });

use bench::fanout::outgoing::published;
use exports::bench::fanout::incoming::Guest;
use ws_host_guest::{ClientId, Target, host};

struct Fanout;

impl Guest for Fanout {
    fn join(from: ClientId, room: String) -> u32 {
        host::join(from, &room);
        host::members(&room).len() as u32
    }

    fn publish(room: String, seq: u32, payload: String) {
        published(&Target::Room(room), seq, &payload);
    }
}

export!(Fanout);
