//! What a handler declares, read from the component's own types: its
//! incoming events (exported `incoming` interface), its outgoing events
//! (imported `outgoing` interface) and the lifecycle hooks it exports.

// Looked up by every event (foldhash: a fraction of SipHash's cost; its
// seed is random per map, as std's is).
use foldhash::fast::RandomState;
use indexmap::IndexMap;

use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, Val};

use super::args::{Args, PlainArg, TypedCall};
use super::bindings::PACKAGE;
use super::metrics::{EventCounters, HandlerMetrics};
use crate::bridge::{Layout, Name, from_wit, to_wit};
use crate::codec::{Event, RESERVED_PREFIX, Value};

/// The event table of a handler.
#[derive(Debug)]
pub struct Schema {
    /// The exported `incoming` interface, full name (with version if any).
    pub incoming_interface: String,
    /// Incoming events by wire name.
    pub incoming: IncomingEvents,
    /// The imported `outgoing` interface and its events, if it imports one.
    pub outgoing: Option<(String, Vec<OutgoingEvent>)>,
    /// Export indices of the lifecycle hooks the handler has.
    pub lifecycle: Lifecycle,
}

/// A handler's incoming events by wire name, in a map that also numbers
/// them: an event checked on its connection's thread is found again on the
/// handler's by its [`EventIndex`], not by hashing its name a second time.
pub type IncomingEvents = IndexMap<String, IncomingEvent, RandomState>;

/// Where [`Schema::convert`] found an event among its schema's incoming
/// events; it means nothing to another schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventIndex(usize);

/// An event's arguments once [`Schema::convert`] checked them, and which
/// declared event they are for.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub event: EventIndex,
    pub args: Args,
}

/// One event a client may send.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    /// The WIT function name and the name on the wire (`echo-bytes`,
    /// `echoBytes`).
    pub name: Name,
    /// Whether the first parameter is `from: client-id`, filled by the host.
    pub takes_sender: bool,
    /// The parameters the client supplies, in order.
    pub params: Vec<(String, Layout)>,
    /// The results; empty means no reply.
    pub results: Vec<Layout>,
    pub export: ComponentExportIndex,
    /// Set when the signature has a typed call (see [`TypedCall`]).
    pub typed_call: Option<TypedCall>,
    /// This event's counts in `/metrics`, once [`Schema::count_into`] found them.
    pub counters: EventCounters,
}

impl IncomingEvent {
    /// How many parameters a client must supply: trailing `option`
    /// parameters may be left out, as in JavaScript.
    pub fn required_params(&self) -> usize {
        self.params.iter().rposition(|(_, layout)| !matches!(layout, Layout::Option(_))).map_or(0, |i| i + 1)
    }
}

/// One event the handler may send.
#[derive(Debug, Clone)]
pub struct OutgoingEvent {
    pub name: Name,
    /// The parameters after the leading `to: target`.
    pub params: Vec<(String, Layout)>,
    /// Set when the signature has a typed host function (see [`TypedCall`]).
    pub typed_call: Option<TypedCall>,
}

/// Lifecycle exports present in the component.
#[derive(Debug, Default, Clone)]
pub struct Lifecycle {
    pub on_auth: Option<ComponentExportIndex>,
    pub on_auth_ok: Option<ComponentExportIndex>,
    pub on_disconnect: Option<ComponentExportIndex>,
    /// State hand-over for hot swaps: `state.save` and `state.restore`.
    pub save_state: Option<ComponentExportIndex>,
    pub restore_state: Option<ComponentExportIndex>,
    /// `raw.on-message`: present in raw handlers only.
    pub on_message: Option<ComponentExportIndex>,
}

/// Why a component is not a valid handler.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "it exports no `incoming` interface (a handler exports `<your-package>/incoming` with one function per event, or `ws-host:server/raw`)"
    )]
    NoIncoming,
    #[error("it exports both an `incoming` interface and `ws-host:server/raw`: a handler is one or the other")]
    Both,
    #[error("it exports several `incoming` interfaces: {0}")]
    SeveralIncoming(String),
    #[error("{interface}: `{function}`: {reason}")]
    BadFunction { interface: String, function: String, reason: String },
    #[error("{0} exports no function")]
    Empty(String),
}

impl Schema {
    /// Reads the handler's declarations from its component type.
    pub fn read(engine: &Engine, component: &Component) -> Result<Schema, SchemaError> {
        let ty = component.component_type();

        let lifecycle = lifecycle(engine, component);
        let incoming: Vec<_> = ty
            .exports(engine)
            .filter(|(name, item)| is_own(name, "incoming") && matches!(item.ty, ComponentItem::ComponentInstance(_)))
            .map(|(name, item)| (name.to_owned(), item.ty))
            .collect();
        let (incoming_interface, events) = match (incoming.as_slice(), &lifecycle.on_message) {
            ([], None) => return Err(SchemaError::NoIncoming),
            // A raw handler: whole messages, no events.
            ([], Some(_)) => (format!("{PACKAGE}/raw"), IncomingEvents::default()),
            ([(name, ComponentItem::ComponentInstance(instance))], None) => {
                (name.clone(), incoming_events(engine, component, name, instance)?)
            }
            ([_], Some(_)) => return Err(SchemaError::Both),
            (many, _) => {
                return Err(SchemaError::SeveralIncoming(
                    many.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
                ));
            }
        };

        let mut outgoing = None;
        for (name, item) in ty.imports(engine) {
            if !is_own(name, "outgoing") {
                continue;
            }
            let ComponentItem::ComponentInstance(instance) = item.ty else { continue };
            let mut functions = Vec::new();
            for (fname, fitem) in instance.exports(engine) {
                let ComponentItem::ComponentFunc(func) = fitem.ty else { continue };
                let bad = |reason: String| SchemaError::BadFunction {
                    interface: name.to_owned(),
                    function: fname.to_owned(),
                    reason,
                };
                let (has_target, params) = split_leading(&func, "to", is_target);
                if !has_target {
                    return Err(bad("an outgoing event takes `to: target` first".into()));
                }
                if func.results().len() != 0 {
                    return Err(bad("an outgoing event returns nothing".into()));
                }
                let params = layouts(params).map_err(bad)?;
                functions.push(OutgoingEvent {
                    name: Name::of(fname),
                    typed_call: TypedCall::of(&params, &[]),
                    params,
                });
            }
            outgoing = Some((name.to_owned(), functions));
        }

        Ok(Schema { incoming_interface, incoming: events, outgoing, lifecycle })
    }

    /// The event's wire arguments checked against the declared types, as
    /// the call takes them; otherwise the message for the client's error
    /// reply. The arguments are moved out of `event`: a string or bytes
    /// argument goes into a typed call without a copy (a 16 KiB echo copied
    /// its text once more here).
    pub fn convert(&self, event: &mut Event) -> Result<Checked, String> {
        if event.name.starts_with(RESERVED_PREFIX) {
            return Err(format!("{:?} is a reserved event name", event.name));
        }
        let Some((index, _, declared)) = self.incoming.get_full(&event.name) else {
            let mut known: Vec<_> = self.incoming.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(format!("unknown event {:?} (this handler accepts: {})", event.name, known.join(", ")));
        };
        let params = &declared.params;
        let required = declared.required_params();
        if event.args.len() < required || event.args.len() > params.len() {
            let names: Vec<_> = params.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "{}: expected {} argument{} ({}), got {}",
                event.name,
                params.len(),
                if params.len() == 1 { "" } else { "s" },
                names.join(", "),
                event.args.len()
            ));
        }
        let mut args = std::mem::take(&mut event.args).into_iter();
        let mut next = || args.next().unwrap_or(Value::Undefined);
        let mistaken = |i: usize, name: &str, m: String| format!("{}: argument {} ({name}): {m}", event.name, i + 1);
        let found = EventIndex(index);
        // Loops, not `collect` into a `Result`: ~0.3k instructions fewer per
        // echo (callgrind).
        if let Some(call) = declared.typed_call {
            let mut plain = Vec::with_capacity(params.len());
            for (i, ((name, layout), &kind)) in params.iter().zip(call.params.kinds()).enumerate() {
                plain.push(PlainArg::from_wire(next(), kind, layout).map_err(|m| mistaken(i, name, m))?);
            }
            return Ok(Checked { event: found, args: Args::Plain(plain) });
        }
        let mut vals = Vec::with_capacity(params.len());
        for (i, (name, layout)) in params.iter().enumerate() {
            vals.push(match (next(), layout) {
                (Value::String(text), Layout::String) => Val::String(text),
                (value, layout) => to_wit(&value, layout).map_err(|m| mistaken(i, name, m.to_string()))?,
            });
        }
        Ok(Checked { event: found, args: Args::Vals(vals) })
    }

    /// The declared event [`convert`](Self::convert) checked arguments for.
    pub fn event(&self, index: EventIndex) -> &IncomingEvent {
        &self.incoming[index.0]
    }

    /// Has each declared event count in `metrics` (a swap's new version
    /// counts on where the old one left off).
    pub fn count_into(&mut self, metrics: &HandlerMetrics) {
        for event in self.incoming.values_mut() {
            event.counters = metrics.counters(&event.name.wire);
        }
    }

    /// Arguments [`convert`](Self::convert) checked, as wire values again:
    /// how an event checked by one version is checked by the next when a
    /// swap came in between. Trailing `null`s of optional parameters are
    /// left out, as a client may have.
    pub fn wire_args(&self, checked: &Checked) -> Vec<Value> {
        let declared = self.event(checked.event);
        let mut values: Vec<Value> = match &checked.args {
            Args::Vals(vals) => {
                vals.iter().zip(&declared.params).map(|(val, (_, layout))| from_wit(val, layout)).collect()
            }
            Args::Plain(plain) => plain.iter().map(PlainArg::to_wire).collect(),
        };
        while values.last() == Some(&Value::Null) {
            values.pop();
        }
        values
    }

    /// Whether this is a raw handler (whole messages, no ezez protocol).
    /// The table of a native handler: it declares nothing, and checks the
    /// events it gets itself.
    pub fn native() -> Schema {
        Schema {
            incoming_interface: "native".into(),
            incoming: IncomingEvents::default(),
            outgoing: None,
            lifecycle: Lifecycle::default(),
        }
    }

    pub fn is_raw(&self) -> bool {
        self.incoming.is_empty() && self.lifecycle.on_message.is_some()
    }

    /// The incoming event names, sorted.
    pub fn event_names(&self) -> Vec<&str> {
        let mut names: Vec<_> = self.incoming.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// The events of the handler's `incoming` interface, by wire name.
fn incoming_events(
    engine: &Engine,
    component: &Component,
    incoming_interface: &str,
    instance: &ComponentInstance,
) -> Result<IncomingEvents, SchemaError> {
    let (_, interface_index) = component.get_export(None, incoming_interface).ok_or(SchemaError::NoIncoming)?;
    let mut events = IncomingEvents::default();
    for (name, item) in instance.exports(engine) {
        // Resource constructors and methods (`[method]thing.go`) are not events.
        let ComponentItem::ComponentFunc(func) = item.ty else { continue };
        if name.starts_with('[') {
            continue;
        }
        let bad = |reason: String| SchemaError::BadFunction {
            interface: incoming_interface.to_owned(),
            function: name.to_owned(),
            reason,
        };
        let (takes_sender, params) = split_leading(&func, "from", |t| *t == Type::U64);
        let (_, export) =
            component.get_export(Some(&interface_index), name).ok_or_else(|| bad("export index not found".into()))?;
        let params = layouts(params).map_err(bad)?;
        let results = func
            .results()
            .map(|ty| Layout::of(&ty).map_err(|e| bad(format!("result: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let event = IncomingEvent {
            name: Name::of(name),
            takes_sender,
            typed_call: TypedCall::of(&params, &results),
            params,
            results,
            export,
            counters: EventCounters::default(),
        };
        events.insert(event.name.wire.clone(), event);
    }
    if events.is_empty() {
        return Err(SchemaError::Empty(incoming_interface.to_owned()));
    }
    Ok(events)
}

/// Finds the optional lifecycle exports of the host package.
fn lifecycle(engine: &Engine, component: &Component) -> Lifecycle {
    let ty = component.component_type();
    let find = |interface: &str, function: &str| {
        let (name, _) = ty.exports(engine).find(|(name, _)| unversioned(name) == format!("{PACKAGE}/{interface}"))?;
        let (_, instance) = component.get_export(None, name)?;
        component.get_export(Some(&instance), function).map(|(_, index)| index)
    };
    Lifecycle {
        on_auth: find("auth", "on-auth"),
        on_auth_ok: find("connected", "on-auth-ok"),
        on_disconnect: find("disconnected", "on-disconnect"),
        save_state: find("state", "save"),
        restore_state: find("state", "restore"),
        on_message: find("raw", "on-message"),
    }
}

/// Whether `ty` is the host's `target`: a variant with its cases, in order.
fn is_target(ty: &Type) -> bool {
    const CASES: [&str; 6] = ["client", "clients", "all", "all-except", "room", "room-except"];
    matches!(ty, Type::Variant(variant) if variant.cases().map(|case| case.name).eq(CASES))
}

/// Splits off a leading parameter the host fills in (`from` or `to`).
fn split_leading(func: &ComponentFunc, name: &str, fits: impl Fn(&Type) -> bool) -> (bool, Vec<(String, Type)>) {
    let mut params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_owned(), t)).collect();
    let leading = params.first().is_some_and(|(n, t)| n == name && fits(t));
    if leading {
        params.remove(0);
    }
    (leading, params)
}

/// The parameters' layouts; or which one cannot cross the wire, and why.
fn layouts(params: Vec<(String, Type)>) -> Result<Vec<(String, Layout)>, String> {
    params
        .into_iter()
        .map(|(name, ty)| match Layout::of(&ty) {
            Ok(layout) => Ok((name, layout)),
            Err(e) => Err(format!("parameter `{name}`: {e}")),
        })
        .collect()
}

/// `pkg:name/iface@1.0.0` -> `pkg:name/iface`.
pub fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(n, _)| n)
}

/// Whether `name` is the handler's own interface `iface` (not the host's).
fn is_own(name: &str, iface: &str) -> bool {
    let name = unversioned(name);
    !name.starts_with(&format!("{PACKAGE}/")) && name.rsplit_once('/').is_some_and(|(_, i)| i == iface)
}
