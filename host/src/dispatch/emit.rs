//! Emitting events on a generation: argument checks, then every callback in dispatch
//! order, each behind its plugin's breaker.

use std::time::Instant;

use abi_stable::std_types::RResult;
use switchboard_plugin_api::abi::{status, ArgsRaw};
use switchboard_plugin_api::{Error as PluginError, Value};

use super::args::{arrange, check_positional};
use super::breaker::{Admission, Breaker};
use super::context::{CallCtx, Frame};
use super::generation::{Generation, Instance, Route};
use super::isolated::Isolated;
use super::outcome::{CallOutcome, Outcomes};
use super::registry::{Callback, CallbackId, Event, EventId};
use super::step::{skipped, Step};
use crate::error::EmitError;
use crate::event_id::EventTag;
use crate::manifest::{ErrorPolicy, ResultPolicy};

/// How deep lists and maps in a callback's result, or in a plugin's nested emit, may nest.
/// A result line nests the value three levels down (line, results, call), and common JSON
/// parsers (serde_json among them) stop at 128 levels: 100 leaves every line readable.
pub const MAX_VALUE_DEPTH: usize = 100;

impl Generation {
    /// Emits `event` with arguments in the order the manifest declares them, and returns
    /// every callback's outcome. Arguments are checked against the schema first; a
    /// mismatch runs no callback.
    ///
    /// Arguments may borrow (`Value::borrowed`): every callback reads the same memory.
    pub fn emit(&self, event: EventId, args: &[Value<'_>]) -> Result<Outcomes, EmitError> {
        let mut outcomes = Outcomes::new();
        self.emit_into(event, args, &mut outcomes)?;
        self.counters.record(&outcomes);
        Ok(outcomes)
    }

    /// Like [`Generation::emit`], but reuses `outcomes` (cleared first), so that a loop of
    /// emits whose callbacks return nothing allocates nothing. The hot path: it does not
    /// count; hand the outcomes to [`Generation::record`] or a [`Tally`](crate::dispatch::Tally)
    /// for that.
    pub fn emit_into(
        &self,
        event: EventId,
        args: &[Value<'_>],
        outcomes: &mut Outcomes,
    ) -> Result<(), EmitError> {
        let decl = self.registry.event(event)?;
        self.begin(outcomes)?;
        check_positional(decl, args)?;
        self.dispatch_root(decl, args, outcomes);
        Ok(())
    }

    /// Emits by event name with named arguments, in any order; optional arguments may be
    /// left out.
    pub fn emit_named<'v>(
        &self,
        event: &str,
        args: impl IntoIterator<Item = (&'v str, Value<'v>)>,
    ) -> Result<Outcomes, EmitError> {
        let decl = self.registry.event(self.event(event)?)?;
        let values = arrange(decl, args.into_iter().map(|(k, v)| (k, Ok(v))))?;
        self.emit_arranged(decl, &values)
    }

    /// Emits by event name with a JSON object of arguments (as `switchboard emit --json`
    /// and `switchboard run` do). Ints widen to floats and number lists to bytes where the
    /// schema says so.
    pub fn emit_json(
        &self,
        event: &str,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Outcomes, EmitError> {
        let mut outcomes = Outcomes::new();
        self.emit_json_into(event, args, &mut outcomes)?;
        self.counters.record(&outcomes);
        Ok(outcomes)
    }

    /// [`Generation::emit_json`] into a reused list, without counting (see
    /// [`Generation::emit_into`]).
    pub fn emit_json_into(
        &self,
        event: &str,
        args: &serde_json::Map<String, serde_json::Value>,
        outcomes: &mut Outcomes,
    ) -> Result<(), EmitError> {
        let (decl, values) = self.json_event(event, args)?;
        self.begin(outcomes)?;
        self.dispatch_root(decl, &values, outcomes);
        Ok(())
    }

    /// The declaration of the event called `event` (with a did-you-mean when it is not
    /// declared).
    pub fn declared(&self, event: &str) -> Result<&Event, EmitError> {
        self.registry.event(self.event(event)?)
    }

    /// The declared event called `event`, with `args` (a JSON object) arranged and
    /// checked against it, as the `emit_json*` methods read them: also for callers that
    /// hand an event on instead of dispatching it.
    pub fn json_event(
        &self,
        event: &str,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(&Event, Vec<Value<'static>>), EmitError> {
        let decl = self.registry.event(self.event(event)?)?;
        Ok((decl, decl.json_args(args)?))
    }

    fn emit_arranged(&self, decl: &Event, values: &[Value<'_>]) -> Result<Outcomes, EmitError> {
        let mut outcomes = Outcomes::new();
        self.begin(&mut outcomes)?;
        self.dispatch_root(decl, values, &mut outcomes);
        self.counters.record(&outcomes);
        Ok(outcomes)
    }

    /// Starts an outermost emit: refused once the generation is shut down, otherwise into
    /// `outcomes` emptied for this generation.
    #[inline]
    pub(super) fn begin(&self, outcomes: &mut Outcomes) -> Result<(), EmitError> {
        if self.is_shut_down() {
            return Err(EmitError::ShutDown);
        }
        outcomes.reset(self.number());
        Ok(())
    }

    /// Runs an emit a plugin makes with named arguments: nested in the emit of `parent`
    /// from inside a callback, or outermost (no parent) from a handle the plugin kept.
    pub(crate) fn emit_nested(
        &self,
        event: &str,
        args: &[switchboard_plugin_api::Entry<'_>],
        parent: Option<&Frame<'_>>,
    ) -> Result<Outcomes, EmitError> {
        let decl = self.registry.event(self.event(event)?)?;
        let mut frame = Frame {
            event: &decl.name,
            depth: parent.map_or(1, |p| p.depth + 1),
            parent,
            // A nested emit carries the id of the event that caused it.
            id: parent.map_or(EventTag::Made(0), |p| p.id),
        };
        let max_depth = self.manifest.host().max_depth;
        if frame.depth > max_depth {
            return Err(EmitError::TooDeep {
                chain: frame.chain(),
                max_depth,
            });
        }
        if let Some(deep) = args
            .iter()
            .find(|e| e.value().nests_deeper_than(MAX_VALUE_DEPTH))
        {
            return Err(EmitError::WrongType {
                event: decl.name.clone(),
                arg: deep.key().to_owned(),
                reason: format!("nested deeper than {MAX_VALUE_DEPTH} levels"),
            });
        }
        let values = arrange(decl, args.iter().map(|e| (e.key(), Ok(e.value().clone()))))?;
        let mut outcomes = Outcomes::new();
        if parent.is_none() {
            self.begin(&mut outcomes)?;
            frame.id = EventTag::Made(outcomes.request);
        } else {
            outcomes.reset(self.number());
        }
        self.dispatch(decl, &values, &frame, &mut outcomes);
        self.record_own(&decl.name, &outcomes);
        Ok(outcomes)
    }

    /// Dispatches an outermost emit, its callbacks seeing the event id `out` holds.
    #[inline(always)]
    fn dispatch_root(&self, event: &Event, args: &[Value<'_>], out: &mut Outcomes) {
        if out.event_id.is_none() {
            // The common case in an application: nothing to lend the frame.
            let frame = Frame::root(&event.name, EventTag::Made(out.request));
            return self.dispatch(event, args, &frame, out);
        }
        let id = out.event_id.take();
        let frame = Frame::root(&event.name, EventTag::of(id.as_deref(), out.request));
        self.dispatch(event, args, &frame, out);
        out.event_id = id;
    }

    #[inline]
    fn dispatch(&self, event: &Event, args: &[Value<'_>], frame: &Frame<'_>, out: &mut Outcomes) {
        if out.timed {
            self.dispatch_calls::<true, false>(event, args, frame, out, 0);
        } else {
            self.dispatch_calls::<false, false>(event, args, frame, out, 0);
        }
    }

    /// The dispatch loop: one indirect call per callback, straight into the plugin's entry
    /// point for it. `TIMED` (a sampled emit) also records each call's duration, and costs
    /// the untimed loop nothing.
    ///
    /// `PAUSE` (a batch of events, see `isolated`) starts at target `from` and stops before
    /// an isolated callback, returning its index, so that the batch's calls to a worker
    /// travel together; failures are then reported by the batch, once the event is done.
    /// Without it the loop runs every target (`from` is ignored) and returns `None`.
    pub(super) fn dispatch_calls<const TIMED: bool, const PAUSE: bool>(
        &self,
        event: &Event,
        args: &[Value<'_>],
        frame: &Frame<'_>,
        out: &mut Outcomes,
        from: usize,
    ) -> Option<usize> {
        let raw = ArgsRaw {
            event: event.name.as_str().into(),
            names: event.schema.names.as_slice().into(),
            values: args.into(),
            request: out.request,
        };
        // C callbacks read the event's id from the call (`sb_call.event_id`), not from a
        // host handle, and share the arguments lowered once: a frame published for them,
        // only where there are some.
        let mut c_frame = crate::load::FrameSlot::new();
        let published = if self.has_c_callbacks.get(event.index as usize) == Some(&true) {
            Some(crate::load::CFrame::publish(&mut c_frame, &raw, frame.id))
        } else {
            None
        };
        let c_view = published.as_ref().map(crate::load::Published::frame);
        let first = out.len();
        let mut any_failed = false;
        let mut slot = RResult::ROk(Value::NULL);
        let mut targets = self.targets.get(event.index as usize)?.as_slice();
        if PAUSE {
            targets = targets.get(from..).unwrap_or_default();
        }
        for (index, target) in targets.iter().enumerate() {
            let plugin = &self.slots[target.plugin as usize];
            let breaker = &plugin.breaker;
            let name = plugin.meta.name.as_str();
            if matches!(target.route, Route::Worker) {
                if PAUSE {
                    return Some(from + index);
                }
                let mut one = [Isolated {
                    event,
                    target,
                    args,
                    frame,
                    out: &mut *out,
                    stop: false,
                    failed: false,
                }];
                self.call_isolated(plugin, &mut one);
                let [call] = one;
                any_failed |= call.failed;
                if call.stop {
                    break;
                }
                continue;
            }
            let step = Step {
                event,
                target,
                slot: &mut slot,
                any_failed: &mut any_failed,
                out,
            };
            let stop = match breaker.admit(name) {
                Admission::Allowed { trial } => {
                    let ctx = CallCtx::for_callback(self, name, frame);
                    let call = |slot: &mut RResult<Value<'static>, PluginError>| match &target.route
                    {
                        // SAFETY: the entry was copied from the plugin's instance, which
                        // this generation owns in `slots` and drops only with itself, so it
                        // is alive while `&self` is; `state` and `data` are that entry's.
                        Route::Direct(entry) => unsafe {
                            (entry.call)(entry.state, entry.data, &raw, ctx.handle(), slot)
                        },
                        Route::C(c) => c.call(c_view, &raw, ctx.handle(), slot),
                        Route::Worker => status::NULL,
                    };
                    let code = if TIMED {
                        let start = Instant::now();
                        let code = call(step.slot);
                        step.out.nanos.push(start.elapsed().as_nanos() as u64);
                        code
                    } else {
                        call(step.slot)
                    };
                    self.settle(breaker, name, code, trial, step)
                }
                Admission::Skipped { retry_in_ms } => {
                    let callback = self.registry.callback(self.callback_id(target.callback));
                    self.skip::<TIMED>(skipped(breaker, callback, retry_in_ms), step)
                }
            };
            if stop {
                break;
            }
        }
        if any_failed && !PAUSE {
            self.report_failures(event, out.since(first), frame);
        }
        // Every path above leaves the slot holding `Ok(null)`, which owns nothing: skip the
        // drop glue the compiler cannot prove unneeded (a call per emit otherwise).
        if matches!(&slot, RResult::ROk(value) if value.is_null()) {
            std::mem::forget(slot);
        }
        None
    }

    /// After a call: a null result is recorded on the spot (the hot path: nothing to
    /// move, nothing to decide, but a breaker's trial call that succeeded closes it
    /// again); anything else goes through [`Generation::record_result`]. Whether the event
    /// stops here.
    #[inline(always)]
    pub(super) fn settle(
        &self,
        breaker: &Breaker,
        name: &str,
        code: u8,
        trial: bool,
        step: Step<'_, '_>,
    ) -> bool {
        if code == status::NULL {
            if trial {
                breaker.succeeded(name);
            }
            step.out.push_null(step.target.callback);
            return false;
        }
        let id = self.callback_id(step.target.callback);
        if code != status::VALUE && code != status::ERROR {
            *step.slot = RResult::RErr(unknown_status(code));
        }
        self.record_result(step.event, id, true, step.slot, step.any_failed, step.out)
    }

    /// Records a callback the host did not call, with why; whether the event stops here.
    #[cold]
    pub(super) fn skip<const TIMED: bool>(&self, why: PluginError, step: Step<'_, '_>) -> bool {
        if TIMED {
            step.out.nanos.push(0);
        }
        let id = self.callback_id(step.target.callback);
        *step.slot = RResult::RErr(why);
        self.record_result(step.event, id, false, step.slot, step.any_failed, step.out)
    }

    pub(super) fn callback_id(&self, index: u32) -> CallbackId {
        CallbackId {
            generation: self.number(),
            index,
        }
    }

    /// Records a result that is not null (a value, a failure, or an error for a call the
    /// breaker skipped: `called` is false), and says whether the event stops here. Kept out
    /// of line so the loop's null path stays small.
    #[cold]
    #[inline(never)]
    fn record_result(
        &self,
        event: &Event,
        id: CallbackId,
        called: bool,
        slot: &mut RResult<Value<'static>, PluginError>,
        any_failed: &mut bool,
        out: &mut Outcomes,
    ) -> bool {
        let callback = self.registry.callback(id);
        let breaker = &self.slots[callback.plugin].breaker;
        let mut result = std::mem::replace(slot, RResult::ROk(Value::NULL)).into_result();
        if called {
            // An isolated plugin's crashes and timeouts are the host's own findings (its
            // pool refuses the same kinds coming from the plugin).
            let isolated = matches!(self.slots[callback.plugin].instance, Instance::Process(_));
            result = checked(result, callback, isolated);
        }
        match &result {
            Ok(_) => breaker.succeeded(&callback.plugin_name),
            Err(_) if !called => {}
            Err(error) => {
                *any_failed = true;
                breaker.failed(&callback.plugin_name);
                tracing::warn!(
                    "callback {}.{} failed on `{}` (generation {}): {error}",
                    callback.plugin_name,
                    callback.name,
                    event.name,
                    self.number()
                );
            }
        }
        let stop = match &result {
            Ok(value) => event.result == ResultPolicy::First && !value.is_null(),
            Err(_) => event.on_error == ErrorPolicy::Stop,
        };
        out.push(id, result);
        stop
    }

    /// Dispatches `plugin.failed` once per failed (not skipped) callback. Failures of
    /// `plugin.failed` callbacks themselves are only logged, so a failing reporter cannot
    /// loop.
    pub(super) fn report_failures<'o>(
        &self,
        event: &Event,
        outcomes: impl Iterator<Item = CallOutcome<'o>>,
        frame: &Frame<'_>,
    ) {
        let reporter = self.registry.plugin_failed();
        if event.name == reporter.name || reporter.callbacks.is_empty() {
            return;
        }
        for outcome in outcomes {
            let Err(error) = outcome.result else {
                continue;
            };
            if error.is_skipped() {
                continue;
            }
            let callback = self.registry.callback(outcome.callback);
            let args = [
                Value::borrowed(&callback.plugin_name),
                Value::borrowed(&callback.name),
                Value::borrowed(&event.name),
                Value::borrowed(error.message()),
                Value::from(error.is_panic()),
            ];
            let mut reports = Outcomes::new();
            reports.reset(self.number());
            self.dispatch(reporter, &args, frame, &mut reports);
            self.record_own(&reporter.name, &reports);
        }
    }
}

/// A callback's result as the host accepts it: a value nested too deep to write out is
/// refused (and dropped without recursion), and a plugin cannot pass its own failure off
/// as a call the host skipped.
fn checked(
    result: Result<Value<'static>, PluginError>,
    callback: &Callback,
    isolated: bool,
) -> Result<Value<'static>, PluginError> {
    match result {
        Ok(value) if value.nests_deeper_than(MAX_VALUE_DEPTH) => {
            drop_without_recursion(value);
            Err(PluginError::new(format!(
                "callback {}.{} returned a value nested deeper than {MAX_VALUE_DEPTH} levels",
                callback.plugin_name, callback.name
            ))
            .with_help("return flatter data: results are limited to the depth JSON input has"))
        }
        Err(error)
            if error.is_skipped()
                || (!isolated && (error.is_crashed() || error.is_timed_out())) =>
        {
            Err(crate::error::as_plain_failure(&error))
        }
        other => other,
    }
}

/// Drops a value of any depth, one level at a time.
fn drop_without_recursion(value: Value<'static>) {
    let mut pending = vec![value];
    while let Some(mut value) = pending.pop() {
        pending.extend(value.take_children());
    }
}

/// The error for a status this host does not know (a plugin from a newer SDK answering
/// `PENDING`, which this host does not list among its features).
#[cold]
fn unknown_status(code: u8) -> PluginError {
    PluginError::new(format!(
        "the callback answered status {code}, which this host does not support"
    ))
    .with_help("rebuild the plugin against this host's switchboard-plugin-api")
}

#[cfg(test)]
mod tests {
    #[test]
    fn worker_frames_nest_values_as_deep_as_emits_do() {
        assert_eq!(super::MAX_VALUE_DEPTH, crate::isolate::MAX_DEPTH);
    }
}
