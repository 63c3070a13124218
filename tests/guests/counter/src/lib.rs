//! Test fixture for hot swaps (see `wit/counter.wit`). Built three ways:
//! version 1, version 2 (`--features v2`) and a large version 1
//! (`--features big`).

ws_host_guest::generate!({ world: "counter" });

use std::cell::Cell;

use exports::test::counter::incoming::Guest as Incoming;
use exports::ws_host::server::state::Guest as State;
use test::counter::outgoing::heard;
use ws_host_guest::{ClientId, Target, host};

const VERSION: u32 = if cfg!(feature = "v2") { 2 } else { 1 };

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// 2 MiB of data that does not compress into nothing, kept in the binary.
#[cfg(feature = "big")]
static BALLAST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ballast.bin"));

struct Counter;

impl Incoming for Counter {
    fn bump(_from: ClientId, by: u32) -> String {
        // Referencing the ballast keeps it in the binary.
        #[cfg(feature = "big")]
        std::hint::black_box(BALLAST.as_ptr());
        COUNT.set(COUNT.get() + u64::from(by));
        format!("v{VERSION}:{}", COUNT.get())
    }

    fn enter(from: ClientId, room: String) {
        host::join(from, &room);
    }

    fn shout(_from: ClientId, room: String, text: String) {
        heard(&Target::Room(room), &text, VERSION);
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
