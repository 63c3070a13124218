//! One live instance of a handler: its own `Store`, entered one call at a
//! time. A trap poisons the store, so recovery is a fresh instance from the
//! cached `InstancePre` (tens of microseconds).

use std::any::Any;
use std::sync::Arc;

use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower, TypedFunc, Val,
};
use wasmtime::error::Context as _;
use wasmtime::{Store, Trap, WasmBacktrace};

use super::args::{Args, Plain, PlainArg, Shape, TypedCall};
use super::bindings::{RawMessage, Request};
use super::epoch::{self, Running, Ticker};
use super::host::HostState;
use super::limiter;
use super::schema::{IncomingEvent, Lifecycle};
use crate::bridge::{Layout, from_wit};
use crate::codec::Value;
use crate::config::Config;
use crate::registry::{ClientId, Registry};

pub struct Live {
    store: Store<HostState>,
    instance: Instance,
    limits: CallLimits,
    ticker: Ticker,
    /// Each export's typed function, found and type-checked on its first
    /// call: a `TypedFunc<P, R>` per export and signature it was called
    /// with. A list: handlers export a handful of functions.
    typed: Vec<(ComponentExportIndex, Box<dyn Any + Send>)>,
}

impl Live {
    /// Instantiates the handler in a fresh store with the sandbox's limits.
    pub fn start(
        pre: &InstancePre<HostState>,
        ticker: &Ticker,
        handler: Arc<str>,
        registry: Arc<Registry>,
        config: &Config,
    ) -> wasmtime::Result<Live> {
        let sandbox = &config.sandbox;
        let state = HostState::new(handler, registry, config);
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        let limits = CallLimits {
            deadline: sandbox.event_deadline(),
            fuel: sandbox.fuel,
            hostcall_fuel: limiter::hostcall_fuel(config.max_payload_bytes),
        };
        store.set_hostcall_fuel(limits.hostcall_fuel);
        let running = limits.begin(&mut store, ticker)?;
        let instance = pre.instantiate(&mut store).map_err(|e| limits.explain(&mut store, e))?;
        drop(running);
        Ok(Live { store, instance, limits, ticker: ticker.clone(), typed: Vec::new() })
    }

    /// Calls an incoming event's function; returns the reply's wire values
    /// (none when the function returns nothing).
    pub fn call_event(&mut self, event: &IncomingEvent, sender: ClientId, args: Args) -> wasmtime::Result<Vec<Value>> {
        let args = match (args, event.typed_call) {
            (Args::Plain(args), Some(call)) => return self.call_plain(event, call, sender, args),
            (Args::Vals(args), None) => args,
            _ => wasmtime::bail!("the arguments of {} were not converted for its kind of call", event.name.wit),
        };
        let func = self.instance.get_func(&mut self.store, event.export).context("event function not found")?;
        let mut params = Vec::with_capacity(args.len() + 1);
        if event.takes_sender {
            params.push(Val::U64(sender));
        }
        params.extend(args);
        let mut results = vec![Val::Bool(false); event.results.len()];
        let _running = self.limits.begin(&mut self.store, &self.ticker)?;
        func.call(&mut self.store, &params, &mut results).map_err(|e| self.limits.explain(&mut self.store, e))?;
        Ok(reply_args(&results, &event.results))
    }

    /// A [`TypedCall`]: the same results as the dynamic call.
    fn call_plain(
        &mut self,
        event: &IncomingEvent,
        call: TypedCall,
        sender: ClientId,
        args: Vec<PlainArg>,
    ) -> wasmtime::Result<Vec<Value>> {
        type Iter = std::vec::IntoIter<PlainArg>;
        let args = &mut args.into_iter();
        let wrong = |other: Option<PlainArg>| {
            let kind = match other {
                Some(PlainArg::Text(_)) => "a string",
                Some(PlainArg::Bytes(_)) => "bytes",
                None => "missing",
            };
            wasmtime::format_err!(
                "an argument of {} is {kind}, which its signature does not take there",
                event.name.wit
            )
        };
        let text = |args: &mut Iter| match args.next() {
            Some(PlainArg::Text(text)) => Ok(text),
            other => Err(wrong(other)),
        };
        let bytes = |args: &mut Iter| match args.next() {
            Some(PlainArg::Bytes(bytes)) => Ok(bytes),
            other => Err(wrong(other)),
        };
        let (index, what) = (&event.export, event.name.wit.as_str());
        macro_rules! call {
            ($($param:ty),* ; $params:expr) => {
                match call.reply {
                    None => {
                        self.call_typed::<($($param,)*), ()>(index, what, $params)?;
                        Vec::new()
                    }
                    Some(Plain::Text) => {
                        let (reply,) = self.call_typed::<($($param,)*), (String,)>(index, what, $params)?;
                        vec![Value::String(reply)]
                    }
                    Some(Plain::Bytes) => {
                        let (reply,) = self.call_typed::<($($param,)*), (Vec<u8>,)>(index, what, $params)?;
                        vec![Value::Bytes(reply.into())]
                    }
                }
            };
        }
        Ok(match (event.takes_sender, call.params) {
            (true, Shape::Text) => call!(u64, String; (sender, text(args)?)),
            (true, Shape::TwoTexts) => call!(u64, String, String; (sender, text(args)?, text(args)?)),
            (true, Shape::Bytes) => call!(u64, Vec<u8>; (sender, bytes(args)?)),
            (true, Shape::TextAndBytes) => call!(u64, String, Vec<u8>; (sender, text(args)?, bytes(args)?)),
            (false, Shape::Text) => call!(String; (text(args)?,)),
            (false, Shape::TwoTexts) => call!(String, String; (text(args)?, text(args)?)),
            (false, Shape::Bytes) => call!(Vec<u8>; (bytes(args)?,)),
            (false, Shape::TextAndBytes) => call!(String, Vec<u8>; (text(args)?, bytes(args)?)),
        })
    }

    /// `on-auth`: `Ok(Err(reason))` is a rejection, `Err` a failure.
    pub fn on_auth(
        &mut self,
        lifecycle: &Lifecycle,
        client: ClientId,
        key: String,
        request: Request,
    ) -> wasmtime::Result<Result<(), String>> {
        let Some(index) = &lifecycle.on_auth else { return Ok(Ok(())) };
        let (verdict,) = self.call_typed(index, "on-auth", (client, key, request))?;
        Ok(verdict)
    }

    pub fn on_auth_ok(&mut self, lifecycle: &Lifecycle, client: ClientId) -> wasmtime::Result<()> {
        let Some(index) = &lifecycle.on_auth_ok else { return Ok(()) };
        self.call_typed(index, "on-auth-ok", (client,))
    }

    pub fn on_disconnect(
        &mut self,
        lifecycle: &Lifecycle,
        client: ClientId,
        code: u16,
        reason: String,
    ) -> wasmtime::Result<()> {
        let Some(index) = &lifecycle.on_disconnect else { return Ok(()) };
        self.call_typed(index, "on-disconnect", (client, code, reason))
    }

    /// `state.save` of the running version.
    pub fn save_state(&mut self, lifecycle: &Lifecycle) -> wasmtime::Result<Vec<u8>> {
        let index = lifecycle.save_state.as_ref().context("no state.save export")?;
        let (state,) = self.call_typed(index, "state.save", ())?;
        Ok(state)
    }

    /// `state.restore` of a new version, before it gets any event.
    pub fn restore_state(&mut self, lifecycle: &Lifecycle, state: Vec<u8>) -> wasmtime::Result<()> {
        let index = lifecycle.restore_state.as_ref().context("no state.restore export")?;
        self.call_typed(index, "state.restore", (state,))
    }

    /// `raw.on-message` of a raw handler.
    pub fn on_message(&mut self, lifecycle: &Lifecycle, client: ClientId, message: RawMessage) -> wasmtime::Result<()> {
        let index = lifecycle.on_message.as_ref().context("not a raw handler")?;
        self.call_typed(index, "raw.on-message", (client, message))
    }

    /// Calls an export with its typed signature, after refilling the call's
    /// deadline, fuel and send budget.
    fn call_typed<Params, Results>(
        &mut self,
        index: &ComponentExportIndex,
        what: &str,
        params: Params,
    ) -> wasmtime::Result<Results>
    where
        Params: ComponentNamedList + Lower + Send + 'static,
        Results: ComponentNamedList + Lift + Send + 'static,
    {
        let func = self.typed_func::<Params, Results>(index, what)?;
        let _running = self.limits.begin(&mut self.store, &self.ticker)?;
        func.call(&mut self.store, params).map_err(|e| self.limits.explain(&mut self.store, e))
    }

    /// The export's typed function from the cache, or found and checked
    /// now: looking it up and checking its type cost about as much as a
    /// third of a small call.
    fn typed_func<Params, Results>(
        &mut self,
        index: &ComponentExportIndex,
        what: &str,
    ) -> wasmtime::Result<TypedFunc<Params, Results>>
    where
        Params: ComponentNamedList + Lower + Send + 'static,
        Results: ComponentNamedList + Lift + Send + 'static,
    {
        let cached = self.typed.iter().filter(|(i, _)| i == index).find_map(|(_, f)| f.downcast_ref());
        if let Some(func) = cached {
            return Ok(*func);
        }
        let func = self
            .instance
            .get_typed_func::<Params, Results>(&mut self.store, index)
            .with_context(|| format!("{what} has the wrong signature"))?;
        self.typed.push((*index, Box::new(func)));
        Ok(func)
    }
}

/// An error and its causes on one line: without the wasm backtrace (see
/// [`backtrace`]), and with multi-line messages (wasmparser prints byte
/// arrays over several lines) folded.
pub fn one_line(error: &wasmtime::Error) -> String {
    let backtrace = backtrace(error).map(ToString::to_string);
    let messages: Vec<String> =
        error.chain().map(ToString::to_string).filter(|m| Some(m) != backtrace.as_ref()).collect();
    messages.join(": ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where in the guest a call failed, when wasmtime knows: frame by frame,
/// over several lines (logged at debug level, apart from the failure).
pub fn backtrace(error: &wasmtime::Error) -> Option<&WasmBacktrace> {
    error.downcast_ref::<WasmBacktrace>()
}

/// A reply's wire values: the result, or the items of a returned tuple.
fn reply_args(results: &[Val], layouts: &[Layout]) -> Vec<Value> {
    match (results, layouts) {
        ([Val::Tuple(items)], [Layout::Tuple(layouts)]) => {
            items.iter().zip(layouts).map(|(v, layout)| from_wit(v, layout)).collect()
        }
        _ => results.iter().zip(layouts).map(|(v, layout)| from_wit(v, layout)).collect(),
    }
}

/// What bounds each call into the guest (instantiation included).
struct CallLimits {
    deadline: std::time::Duration,
    fuel: Option<u64>,
    /// Bytes of values one call may hand the host.
    hostcall_fuel: usize,
}

impl CallLimits {
    /// Gives the next call its full deadline, fuel and send budget; the
    /// deadline counts while the guard lives.
    fn begin<'t>(&self, store: &mut Store<HostState>, ticker: &'t Ticker) -> wasmtime::Result<Running<'t>> {
        let ticks = (self.deadline.as_millis() / epoch::TICK.as_millis()).max(1) as u64 + 1;
        store.set_epoch_deadline(ticks);
        if let Some(fuel) = self.fuel {
            store.set_fuel(fuel).context("a fuel limit needs a runtime with fuel enabled (`RuntimeOptions::fuel`)")?;
        }
        let state = store.data_mut();
        state.limits.refused = None;
        state.sends.left = state.sends.per_call;
        state.deadline = std::time::Instant::now() + self.deadline;
        Ok(ticker.running())
    }

    /// Names the limit a call was stopped by and the setting that sets it:
    /// wasmtime itself only says `interrupt` or `all fuel consumed`, and a
    /// guest refused memory fails in its own way (most abort). A stray memory
    /// access gets the likeliest cause.
    fn explain(&self, store: &mut Store<HostState>, error: wasmtime::Error) -> wasmtime::Error {
        let limits = &mut store.data_mut().limits;
        if let Some(wanted) = limits.refused.take() {
            return error.context(format!(
                "its memory (linear memories and tables together) was refused growth to {wanted} bytes, over the limit of {} bytes (raise it with `--memory-limit`)",
                limits.budget()
            ));
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => error.context(format!(
                "stopped at the deadline of {} ms per call (raise it with `--event-deadline-ms`)",
                self.deadline.as_millis()
            )),
            Some(Trap::OutOfFuel) => error.context(format!(
                "stopped when it had used its {} units of fuel per call (raise them with `--fuel`)",
                self.fuel.unwrap_or_default()
            )),
            // Compiled guests (Rust, C) keep their stack in linear memory:
            // wasmtime sees an overflow of it as a stray access.
            Some(Trap::MemoryOutOfBounds) => error.context(
                "it accessed memory outside its linear memory, as a guest whose stack overflowed does \
                 (deep or unbounded recursion)",
            ),
            _ => match limiter::counts_exceeded(&error)
                .or_else(|| limiter::hostcall_fuel_exhausted(&error, self.hostcall_fuel))
            {
                Some(why) => error.context(why),
                None => error,
            },
        }
    }
}
