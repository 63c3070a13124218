//! The handler's `outgoing` interface, defined dynamically from its declared
//! types: each call turns its arguments into wire values, encodes the event
//! once and queues it for every client the target names.

use std::sync::Arc;

use wasmtime::bail;
use wasmtime::component::{Linker, Val};
use wasmtime::error::Context as _;

use super::host::HostState;
use super::schema::OutgoingEvent;
use crate::bridge::from_wit;
use crate::codec::{OutgoingEvent as Frame, Value};
use crate::registry::Target;

/// Defines every outgoing event of `interface` in `linker`.
pub fn add_to_linker(
    linker: &mut Linker<HostState>,
    interface: &str,
    events: &[OutgoingEvent],
) -> wasmtime::Result<()> {
    let mut instance = linker.instance(interface)?;
    for event in events {
        let event = Arc::new(event.clone());
        instance.func_new(&event.wit_name.clone(), move |mut store, _ty, params, _results| {
            let (target, args) = params.split_first().context("an outgoing event takes a target first")?;
            let target = target_from_val(target)?;
            let args: Vec<_> = args.iter().zip(&event.params).map(|(v, (_, ty))| from_wit(v, ty)).collect();
            let state = store.data_mut();
            let size = Value::size_hint_of(&args);
            state.sends.spend(size, format_args!("`{}`", event.wire_name))?;
            let frame = Arc::new(Frame::new(event.wire_name.clone(), None, args));
            state.registry.deliver(&target, frame);
            Ok(())
        })?;
    }
    Ok(())
}

/// Reads a `ws-host:server/types.target` value.
fn target_from_val(val: &Val) -> wasmtime::Result<Target> {
    let Val::Variant(case, payload) = val else { bail!("target is not a variant") };
    let payload = payload.as_deref();
    Ok(match (case.as_str(), payload) {
        ("client", Some(Val::U64(id))) => Target::Client(*id),
        ("clients", Some(Val::List(ids))) => {
            let mut ids: Vec<u64> =
                ids.iter().filter_map(|v| if let Val::U64(id) = v { Some(*id) } else { None }).collect();
            ids.sort_unstable();
            ids.dedup();
            Target::Clients(ids)
        }
        ("all", None) => Target::All,
        ("all-except", Some(Val::U64(id))) => Target::AllExcept(*id),
        ("room", Some(Val::String(room))) => Target::Room(room.clone()),
        ("room-except", Some(Val::Record(fields))) => {
            let room = fields.iter().find_map(|(n, v)| match (n.as_str(), v) {
                ("room", Val::String(room)) => Some(room.clone()),
                _ => None,
            });
            let except = fields.iter().find_map(|(n, v)| match (n.as_str(), v) {
                ("except", Val::U64(id)) => Some(*id),
                _ => None,
            });
            match (room, except) {
                (Some(room), Some(except)) => Target::RoomExcept { room, except },
                _ => bail!("room-except target without room or except"),
            }
        }
        (other, _) => bail!("unknown target case `{other}`"),
    })
}
