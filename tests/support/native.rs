//! The echo and fan-out contracts of `examples/guests/echo` and
//! `tests/guests/fanout`, written as a native Rust handler: the benchmarks'
//! no-sandbox baseline. `tests/handler.rs` checks it answers as the
//! components do, so the comparison compares like with like.

use std::sync::Arc;

use ws_host::NativeHandler;
use ws_host::codec::{Event, OutgoingEvent, Value};
use ws_host::registry::{ClientId, Registry, Target};

pub struct EchoFanout;

impl NativeHandler for EchoFanout {
    fn on_event(&mut self, clients: &Registry, client: ClientId, event: &Event) -> Result<Option<Vec<Value>>, String> {
        match (event.name.as_str(), event.args.as_slice()) {
            ("echo", [Value::String(_)]) | ("echoBytes", [Value::Bytes(_)]) => Ok(Some(event.args.clone())),
            ("join", [Value::String(room)]) => {
                clients.join(client, room);
                Ok(Some(vec![Value::Number(clients.members(room).len() as f64)]))
            }
            ("publish", [Value::String(room), seq @ Value::Number(_), payload @ Value::String(_)]) => {
                let event = OutgoingEvent::new("published", None, vec![seq.clone(), payload.clone()]);
                clients.deliver(&Target::Room(room.clone()), Arc::new(event));
                Ok(None)
            }
            (name, _) => Err(format!("{name}: unknown event or wrong arguments")),
        }
    }
}
