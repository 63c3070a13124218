//! Version 3 of the counter fixture: `bump` takes its amount as a string,
//! so frames that fitted versions 1 and 2 no longer do.

ws_host_guest::generate!({ world: "counter" });

use std::cell::Cell;

use exports::test::counter_v3::incoming::Guest as Incoming;
use exports::ws_host::server::state::Guest as State;
use test::counter_v3::outgoing::heard;
use ws_host_guest::{ClientId, Target, host};

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

struct Counter;

impl Incoming for Counter {
    fn bump(_from: ClientId, by: String) -> String {
        COUNT.set(COUNT.get() + by.parse::<u64>().unwrap_or(0));
        format!("v3:{}", COUNT.get())
    }

    fn enter(from: ClientId, room: String) {
        host::join(from, &room);
    }

    fn shout(_from: ClientId, room: String, text: String) {
        heard(&Target::Room(room), &text, 3);
    }
}

impl State for Counter {
    fn save() -> Vec<u8> {
        ws_host_guest::state::encode(&COUNT.get())
    }

    fn restore(state: Vec<u8>) {
        COUNT.set(ws_host_guest::state::decode(&state).unwrap_or_default());
    }
}

export!(Counter);
