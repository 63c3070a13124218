//! Test fixture: not a valid handler (see `wit/bad-types.wit`).

ws_host_guest::generate!({ world: "bad-types" });

use exports::test::bad_types::incoming::{Guest, GuestTicket, TicketBorrow};

struct BadTypes;

struct Ticket;

impl GuestTicket for Ticket {
    fn new() -> Self {
        Ticket
    }
}

impl Guest for BadTypes {
    type Ticket = Ticket;

    fn redeem(_from: ws_host_guest::ClientId, _t: TicketBorrow<'_>) {}
}

export!(BadTypes);
