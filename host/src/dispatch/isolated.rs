//! Callbacks in worker processes: one call from the dispatch loop, or a batch of events
//! whose calls to each worker travel together (what `run` does when a plugin is
//! isolated: one frame each way carries many events instead of one).
//!
//! A batch keeps each event's own order: an event's callbacks run one after the other in
//! dispatch order, and its in-process callbacks after an isolated one wait for its result.
//! Only the interleaving across the batch's events changes, which several service workers
//! already give.

use std::time::Instant;

use abi_stable::std_types::RResult;
use serde_json::{Map, Value as Json};
use switchboard_plugin_api::{Entry, Error as PluginError, Value};

use super::breaker::Admission;
use super::context::Frame;
use super::generation::{Generation, Instance, Slot, Target};
use super::outcome::Outcomes;
use super::registry::Event;
use super::step::{skipped, Step};
use crate::error::EmitError;
use crate::event_id::EventTag;
use crate::isolate::{CallRef, Names};

/// One call to an isolated callback, for one event: where it is in the event's dispatch,
/// and what became of it.
pub(super) struct Isolated<'s, 'o> {
    pub(super) event: &'s Event,
    pub(super) target: &'s Target,
    pub(super) args: &'s [Value<'s>],
    pub(super) frame: &'s Frame<'s>,
    pub(super) out: &'o mut Outcomes,
    /// Set when the event stops after this call (its policy says so).
    pub(super) stop: bool,
    /// Set when the call failed (not skipped): the event reports it.
    pub(super) failed: bool,
}

impl Isolated<'_, '_> {
    /// The dispatch loop's view of this call, with its result in `slot`.
    fn step<'a>(&'a mut self, slot: &'a mut RResult<Value<'static>, PluginError>) -> Step<'a, 'a> {
        Step {
            event: self.event,
            target: self.target,
            slot,
            any_failed: &mut self.failed,
            out: &mut *self.out,
        }
    }
}

/// One event of [`Generation::emit_json_batch`]: the event and its arguments as JSON, and
/// after the batch, its outcomes (or why it was not dispatched).
pub(crate) struct JsonEmit<'a> {
    pub(crate) event: &'a str,
    pub(crate) args: &'a Map<String, Json>,
    pub(crate) outcomes: &'a mut Outcomes,
    pub(crate) result: Result<(), EmitError>,
}

/// An event of a batch still being dispatched.
struct Pending<'g> {
    /// Its index in the batch.
    index: usize,
    event: &'g Event,
    args: Vec<Value<'static>>,
    /// The target to go on from.
    from: usize,
    done: bool,
}

impl Generation {
    /// Emits several events at once, as [`Generation::emit_json_into`] would one by one
    /// (without counting), except that the calls to each isolated plugin travel to its
    /// worker in one frame per round.
    pub(crate) fn emit_json_batch(&self, emits: &mut [JsonEmit<'_>]) {
        let mut pending = Vec::with_capacity(emits.len());
        for (index, emit) in emits.iter_mut().enumerate() {
            let (event, args) = match self.json_event(emit.event, emit.args) {
                Ok(prepared) => prepared,
                Err(error) => {
                    emit.result = Err(error);
                    continue;
                }
            };
            emit.result = self.begin(emit.outcomes);
            if emit.result.is_err() {
                continue;
            }
            pending.push(Pending {
                index,
                event,
                args,
                from: 0,
                done: false,
            });
        }
        // The ids the events' callbacks see, out of their outcomes while the frames
        // borrow them (handed back below).
        let ids: Vec<(Option<String>, u64)> = pending
            .iter()
            .map(|p| {
                let out = &mut *emits[p.index].outcomes;
                (out.event_id.take(), out.request)
            })
            .collect();
        let frames: Vec<Frame<'_>> = pending
            .iter()
            .zip(&ids)
            .map(|(p, (id, request))| {
                Frame::root(&p.event.name, EventTag::of(id.as_deref(), *request))
            })
            .collect();
        self.dispatch_rounds(emits, &mut pending, &frames);
        drop(frames);
        for (p, (id, _)) in pending.iter().zip(ids) {
            emits[p.index].outcomes.event_id = id;
        }
    }

    /// The rounds of [`Generation::emit_json_batch`], each event on its frame.
    fn dispatch_rounds(
        &self,
        emits: &mut [JsonEmit<'_>],
        pending: &mut [Pending<'_>],
        frames: &[Frame<'_>],
    ) {
        // Rounds: every unfinished event runs up to its next isolated callback; then the
        // calls waiting on each plugin go out together.
        loop {
            let mut waiting: Vec<(u32, usize)> = Vec::new();
            for (n, p) in pending.iter_mut().enumerate().filter(|(_, p)| !p.done) {
                let out = &mut *emits[p.index].outcomes;
                let frame = &frames[n];
                let paused = if out.timed {
                    self.dispatch_calls::<true, true>(p.event, &p.args, frame, out, p.from)
                } else {
                    self.dispatch_calls::<false, true>(p.event, &p.args, frame, out, p.from)
                };
                match paused {
                    Some(at) => {
                        p.from = at;
                        waiting.push((self.targets[p.event.index as usize][at].plugin, n));
                    }
                    None => {
                        p.done = true;
                        self.report_failures(p.event, out.since(0), frame);
                    }
                }
            }
            if waiting.is_empty() {
                return;
            }
            // Grouped by plugin, each group in batch order. An event waits on one plugin
            // per round, so each group takes its events' outcomes for itself.
            waiting.sort_unstable();
            let mut outcomes: Vec<Option<&mut Outcomes>> =
                emits.iter_mut().map(|e| Some(&mut *e.outcomes)).collect();
            for group in waiting.chunk_by(|a, b| a.0 == b.0) {
                let plugin = &self.slots[group[0].0 as usize];
                let mut calls: Vec<Isolated<'_, '_>> = group
                    .iter()
                    .filter_map(|&(_, n)| {
                        let p = &pending[n];
                        Some(Isolated {
                            event: p.event,
                            target: &self.targets[p.event.index as usize][p.from],
                            args: &p.args,
                            frame: &frames[n],
                            out: outcomes[p.index].take()?,
                            stop: false,
                            failed: false,
                        })
                    })
                    .collect();
                self.call_isolated(plugin, &mut calls);
                let mut stops = Vec::with_capacity(calls.len());
                for call in &calls {
                    if call.stop {
                        self.report_failures(call.event, call.out.since(0), call.frame);
                    }
                    stops.push(call.stop);
                }
                drop(calls);
                for (&(_, n), stop) in group.iter().zip(stops) {
                    pending[n].from += 1;
                    pending[n].done = stop;
                }
            }
        }
    }

    /// Calls isolated callbacks of one plugin, one per event (quarantine comes before the
    /// breaker), and records each outcome in its event; a nested emit a callback makes runs
    /// inside its own event's emit.
    #[inline(never)]
    pub(super) fn call_isolated(&self, plugin: &Slot, calls: &mut [Isolated<'_, '_>]) {
        let Instance::Process(isolated) = &plugin.instance else {
            return;
        };
        let name = plugin.meta.name.as_str();
        let breaker = &plugin.breaker;
        if let Some(record) = isolated.quarantined() {
            let why = PluginError::skipped(format!(
                "plugin `{name}` is quarantined: {}",
                record.reason
            ))
            .with_help(format!(
                "a new build of its library lifts it, and so does `switchboard quarantine --clear {name}`"
            ));
            for call in calls.iter_mut() {
                self.skip_call(call, why.clone());
            }
            return;
        }
        let mut admitted = Vec::with_capacity(calls.len());
        for (n, call) in calls.iter_mut().enumerate() {
            match breaker.admit(name) {
                Admission::Allowed { trial } => admitted.push((n, trial)),
                Admission::Skipped { retry_in_ms } => {
                    let callback = self
                        .registry
                        .callback(self.callback_id(call.target.callback));
                    self.skip_call(call, skipped(breaker, callback, retry_in_ms));
                }
            }
        }
        if admitted.is_empty() {
            return;
        }
        let mut requests = Vec::with_capacity(admitted.len());
        let mut names = Vec::with_capacity(admitted.len());
        let mut frames = Vec::with_capacity(admitted.len());
        let ids: Vec<std::borrow::Cow<'_, str>> = admitted
            .iter()
            .map(|&(n, _)| calls[n].frame.id.text())
            .collect();
        for (&(n, _), id) in admitted.iter().zip(&ids) {
            let call = &calls[n];
            let callback = self
                .registry
                .callback(self.callback_id(call.target.callback));
            requests.push(CallRef {
                callback: callback.id,
                request: call.out.request,
                event_id: id,
                event: &call.event.name,
                names: Names::Abi(&call.event.schema.names),
                values: call.args,
            });
            names.push(callback.name.as_str());
            frames.push(call.frame);
        }
        let emit = |index: usize, event: &str, entries: &[Entry<'_>]| {
            self.emit_nested(event, entries, Some(frames[index]))
                .map(|outcomes| {
                    outcomes
                        .iter()
                        .map(|o| {
                            let c = self.registry.callback(o.callback);
                            (c.plugin_name.clone(), c.name.clone(), o.to_result())
                        })
                        .collect()
                })
                .map_err(|e| PluginError::new(e.to_string()))
        };
        let start = Instant::now();
        let mut results = Vec::with_capacity(admitted.len());
        isolated.calls(self.number(), &requests, &names, &emit, &mut results);
        // The batch's time, shared evenly: the worker does not time each call.
        let each = start.elapsed().as_nanos() as u64 / admitted.len() as u64;
        drop(requests);
        for (&(n, trial), (code, result)) in admitted.iter().zip(results) {
            let call = &mut calls[n];
            let result = match result {
                // Not called: the pool's own finding (a plugin's `skipped` is refused there).
                RResult::RErr(why) if why.is_skipped() => {
                    self.skip_call(call, why);
                    continue;
                }
                result => result,
            };
            if call.out.timed {
                call.out.nanos.push(each);
            }
            let mut slot = result;
            call.stop = self.settle(breaker, name, code, trial, call.step(&mut slot));
        }
    }

    /// Records an isolated call the host did not make.
    fn skip_call(&self, call: &mut Isolated<'_, '_>, why: PluginError) {
        let mut slot = RResult::ROk(Value::NULL);
        let step = call.step(&mut slot);
        call.stop = if step.out.timed {
            self.skip::<true>(why, step)
        } else {
            self.skip::<false>(why, step)
        };
    }
}
