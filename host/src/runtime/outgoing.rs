//! The handler's `outgoing` interface, defined from its declared types:
//! each call turns its arguments into wire values, encodes the event once
//! and queues it for every client the target names. Events of strings and
//! bytes (the shapes of [`TypedCall`](super::args::TypedCall)) take them typed; the others as
//! `Val`s, a `Val` per byte of a `list<u8>`.

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::bail;
use wasmtime::component::{Linker, LinkerInstance, Val};
use wasmtime::error::Context as _;

use super::args::Shape;
use super::bindings::WitTarget;
use super::host::HostState;
use super::schema::OutgoingEvent;
use crate::bridge::from_wit;
use crate::codec::{self, Value};
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
        match event.typed_call {
            Some(call) => define_typed(&mut instance, event, call.params)?,
            None => define_dynamic(&mut instance, event)?,
        }
    }
    Ok(())
}

fn define_typed(
    instance: &mut LinkerInstance<'_, HostState>,
    event: Arc<OutgoingEvent>,
    shape: Shape,
) -> wasmtime::Result<()> {
    let name = event.name.wit.clone();
    macro_rules! define {
        ($($arg:ident: $ty:ty => $wire:expr),*) => {
            instance.func_wrap(
                &name,
                move |mut store: StoreContextMut<'_, HostState>, (target, $($arg,)*): (WitTarget, $($ty,)*)| {
                    send(store.data_mut(), &event, &target_from_wit(target), vec![$($wire),*])
                },
            )
        };
    }
    match shape {
        Shape::Text => define!(text: String => Value::String(text)),
        Shape::TwoTexts => define!(text: String => Value::String(text), again: String => Value::String(again)),
        Shape::Bytes => define!(data: Vec<u8> => Value::Bytes(data.into())),
        Shape::TextAndBytes => {
            define!(text: String => Value::String(text), data: Vec<u8> => Value::Bytes(data.into()))
        }
    }
}

fn define_dynamic(instance: &mut LinkerInstance<'_, HostState>, event: Arc<OutgoingEvent>) -> wasmtime::Result<()> {
    instance.func_new(&event.name.wit.clone(), move |mut store, _ty, params, _results| {
        let (target, args) = params.split_first().context("an outgoing event takes a target first")?;
        let target = target_from_val(target)?;
        let args = args.iter().zip(&event.params).map(|(v, (_, layout))| from_wit(v, layout)).collect();
        send(store.data_mut(), &event, &target, args)
    })
}

/// Encodes the event once and queues it for every client `target` names,
/// within the call's send budget.
fn send(state: &mut HostState, event: &OutgoingEvent, target: &Target, args: Vec<Value>) -> wasmtime::Result<()> {
    let size = Value::size_hint_of(&args);
    state.sends.spend(size, format_args!("`{}`", event.name.wire))?;
    let outgoing = Arc::new(codec::OutgoingEvent::new(event.name.wire.clone(), None, args));
    state.registry.deliver(target, outgoing);
    Ok(())
}

/// Reads a typed `ws-host:server/types.target`.
fn target_from_wit(target: WitTarget) -> Target {
    match target {
        WitTarget::Client(id) => Target::Client(id),
        WitTarget::Clients(ids) => Target::clients(ids),
        WitTarget::All => Target::All,
        WitTarget::AllExcept(id) => Target::AllExcept(id),
        WitTarget::Room(room) => Target::Room(room),
        WitTarget::RoomExcept(at) => Target::RoomExcept { room: at.room, except: at.except },
    }
}

/// Reads a `ws-host:server/types.target` as a `Val`.
fn target_from_val(val: &Val) -> wasmtime::Result<Target> {
    let Val::Variant(case, payload) = val else { bail!("target is not a variant") };
    let payload = payload.as_deref();
    Ok(match (case.as_str(), payload) {
        ("client", Some(Val::U64(id))) => Target::Client(*id),
        ("clients", Some(Val::List(ids))) => {
            Target::clients(ids.iter().filter_map(|v| if let Val::U64(id) = v { Some(*id) } else { None }).collect())
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
