//! Emitting events: argument checks, then every callback in dispatch order.

use abi_stable::std_types::RResult;
use switchboard_plugin_api::abi::{status, ArgsRaw};
use switchboard_plugin_api::{Error as PluginError, Value};

use crate::breaker::{Admission, Breaker};

use crate::error::EmitError;
use crate::host_api::CallCtx;
use crate::manifest::{ErrorPolicy, ResultPolicy};
use crate::outcome::{CallOutcome, Outcomes};
use crate::registry::{CallbackId, Event, EventId};
use crate::runtime::Switchboard;
use crate::schema::describe;
use crate::suggest::did_you_mean;

/// The chain of emits that led to the current one, for the depth limit and its message.
pub(crate) struct Frame<'p> {
    pub(crate) event: &'p str,
    pub(crate) depth: u32,
    pub(crate) parent: Option<&'p Frame<'p>>,
}

impl Frame<'_> {
    fn chain(&self) -> Vec<String> {
        let mut chain = vec![self.event.to_owned()];
        let mut frame = self.parent;
        while let Some(f) = frame {
            chain.push(f.event.to_owned());
            frame = f.parent;
        }
        chain.reverse();
        chain
    }
}

impl Switchboard {
    /// Emits `event` with arguments in the order the manifest declares them, and returns
    /// every callback's outcome. Arguments are checked against the schema first; a
    /// mismatch runs no callback.
    ///
    /// Arguments may borrow (`Value::borrowed`): every callback reads the same memory.
    pub fn emit(&self, event: EventId, args: &[Value<'_>]) -> Result<Outcomes, EmitError> {
        let mut outcomes = Outcomes::new();
        self.emit_into(event, args, &mut outcomes)?;
        Ok(outcomes)
    }

    /// Like [`Switchboard::emit`], but reuses `outcomes` (cleared first), so that a loop of
    /// emits whose callbacks return nothing allocates nothing.
    pub fn emit_into(
        &self,
        event: EventId,
        args: &[Value<'_>],
        outcomes: &mut Outcomes,
    ) -> Result<(), EmitError> {
        outcomes.clear();
        let decl = self.registry.event(event);
        check_positional(decl, args)?;
        let frame = Frame {
            event: &decl.name,
            depth: 1,
            parent: None,
        };
        self.dispatch(decl, args, &frame, outcomes);
        Ok(())
    }

    /// Emits by event name with named arguments, in any order; optional arguments may be
    /// left out.
    pub fn emit_named<'v>(
        &self,
        event: &str,
        args: impl IntoIterator<Item = (&'v str, Value<'v>)>,
    ) -> Result<Outcomes, EmitError> {
        let id = self.event(event)?;
        let decl = self.registry.event(id);
        let values = arrange(decl, args.into_iter().map(|(k, v)| (k, Ok(v))))?;
        let mut outcomes = Outcomes::new();
        let frame = Frame {
            event: &decl.name,
            depth: 1,
            parent: None,
        };
        self.dispatch(decl, &values, &frame, &mut outcomes);
        Ok(outcomes)
    }

    /// Emits by event name with a JSON object of arguments (as `switchboard emit --json`
    /// and `switchboard run` do). Ints widen to floats and number lists to bytes where the
    /// schema says so.
    pub fn emit_json(
        &self,
        event: &str,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Outcomes, EmitError> {
        let id = self.event(event)?;
        let decl = self.registry.event(id);
        let values = decl.json_args(args)?;
        let mut outcomes = Outcomes::new();
        let frame = Frame {
            event: &decl.name,
            depth: 1,
            parent: None,
        };
        self.dispatch(decl, &values, &frame, &mut outcomes);
        Ok(outcomes)
    }

    /// Runs a nested emit from inside a callback.
    pub(crate) fn emit_nested(
        &self,
        event: &str,
        args: &[switchboard_plugin_api::Entry<'_>],
        parent: &Frame<'_>,
    ) -> Result<Outcomes, EmitError> {
        let id = self.event(event)?;
        let decl = self.registry.event(id);
        let frame = Frame {
            event: &decl.name,
            depth: parent.depth + 1,
            parent: Some(parent),
        };
        let max_depth = self.manifest.host.max_depth;
        if frame.depth > max_depth {
            return Err(EmitError::TooDeep {
                chain: frame.chain(),
                max_depth,
            });
        }
        let values = arrange(decl, args.iter().map(|e| (e.key(), Ok(e.value().clone()))))?;
        let mut outcomes = Outcomes::new();
        self.dispatch(decl, &values, &frame, &mut outcomes);
        Ok(outcomes)
    }

    fn dispatch(&self, event: &Event, args: &[Value<'_>], frame: &Frame<'_>, out: &mut Outcomes) {
        let raw = ArgsRaw {
            event: event.name.as_str().into(),
            names: event.schema.names.as_slice().into(),
            values: args.into(),
        };
        let first = out.len();
        let mut any_failed = false;
        let mut slot = RResult::ROk(Value::NULL);
        for &id in &event.callbacks {
            let callback = self.registry.callback(id);
            let breaker = &self.breakers[callback.plugin];
            let code = match breaker.admit(&callback.plugin_name) {
                Admission::Allowed => {
                    // Callbacks of a skipped plugin were taken out of every event.
                    let Some(instance) = &self.instances[callback.plugin] else {
                        continue;
                    };
                    let ctx = CallCtx::for_callback(self, &callback.plugin_name, frame);
                    instance.call(callback.id, &raw, ctx.handle(), &mut slot)
                }
                Admission::Skipped { retry_in_ms } => {
                    slot = RResult::RErr(skipped(breaker, callback, retry_in_ms));
                    if self.record(event, id, false, &mut slot, &mut any_failed, out) {
                        break;
                    }
                    continue;
                }
            };
            if code == status::NULL {
                // The hot path: nothing to move, nothing to decide.
                breaker.succeeded(&callback.plugin_name);
                out.push_null(id);
                continue;
            }
            if self.record(event, id, true, &mut slot, &mut any_failed, out) {
                break;
            }
        }
        if any_failed {
            self.report_failures(event, out.since(first), frame);
        }
    }

    /// Records a result that is not null (a value, a failure, or an error for a call the
    /// breaker skipped: `called` is false), and says whether the event stops here. Kept out
    /// of line so the loop's null path stays small.
    #[cold]
    #[inline(never)]
    fn record(
        &self,
        event: &Event,
        id: CallbackId,
        called: bool,
        slot: &mut RResult<Value<'static>, PluginError>,
        any_failed: &mut bool,
        out: &mut Outcomes,
    ) -> bool {
        let callback = self.registry.callback(id);
        let breaker = &self.breakers[callback.plugin];
        let result = std::mem::replace(slot, RResult::ROk(Value::NULL)).into_result();
        match &result {
            Ok(_) => breaker.succeeded(&callback.plugin_name),
            Err(_) if !called => {}
            Err(error) => {
                *any_failed = true;
                breaker.failed(&callback.plugin_name);
                tracing::warn!(
                    "callback {}.{} failed on `{}`: {error}",
                    callback.plugin_name,
                    callback.name,
                    event.name
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
    fn report_failures<'o>(
        &self,
        event: &Event,
        outcomes: impl Iterator<Item = CallOutcome<'o>>,
        frame: &Frame<'_>,
    ) {
        let reporter = self.registry.event(self.plugin_failed);
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
            self.dispatch(reporter, &args, frame, &mut reports);
        }
    }
}

/// The outcome of a callback skipped because its plugin is switched off.
fn skipped(
    breaker: &Breaker,
    callback: &crate::registry::Callback,
    retry_in_ms: u64,
) -> PluginError {
    let settings = breaker.settings();
    PluginError::skipped(format!(
        "plugin `{}` is switched off after {} failures in {} ms; retrying in {retry_in_ms} ms",
        callback.plugin_name, settings.failures, settings.window_ms
    ))
    .with_help("see the plugin's earlier errors; the breaker is set by `breaker` in the manifest")
}

impl Event {
    /// Converts a JSON object into positional arguments for this event.
    pub fn json_args(
        &self,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<Value<'static>>, EmitError> {
        arrange(
            self,
            args.iter().map(|(name, json)| {
                let converted = match self.schema.position(name) {
                    Some(i) => self.schema.types[i].from_json(json),
                    None => Ok(Value::NULL),
                };
                (name.as_str(), converted)
            }),
        )
    }

    /// Converts `name=value` text pairs (as `switchboard emit` takes them) into positional
    /// arguments for this event, reading each value as its declared type.
    pub fn text_args<'t>(
        &self,
        args: impl IntoIterator<Item = (&'t str, &'t str)>,
    ) -> Result<Vec<Value<'static>>, EmitError> {
        arrange(
            self,
            args.into_iter().map(|(name, text)| {
                let converted = match self.schema.position(name) {
                    Some(i) => self.schema.types[i].from_text(text),
                    None => Ok(Value::NULL),
                };
                (name, converted)
            }),
        )
    }
}

fn check_positional(event: &Event, args: &[Value<'_>]) -> Result<(), EmitError> {
    let schema = &event.schema;
    if args.len() != schema.types.len() {
        return Err(EmitError::WrongArity {
            event: event.name.clone(),
            expected: schema.types.len(),
            got: args.len(),
        });
    }
    for (i, (ty, value)) in schema.types.iter().zip(args).enumerate() {
        if !ty.accepts(value) {
            return Err(type_error(event, i, value));
        }
    }
    Ok(())
}

fn type_error(event: &Event, index: usize, value: &Value<'_>) -> EmitError {
    let ty = event.schema.types[index];
    let arg = event.schema.names[index].to_string();
    if value.is_null() {
        EmitError::MissingArg {
            event: event.name.clone(),
            arg,
            ty: ty.to_string(),
        }
    } else {
        EmitError::WrongType {
            event: event.name.clone(),
            arg,
            reason: format!("expected {ty}, got {}", describe(value)),
        }
    }
}

/// Puts named arguments in declared order, with null for the ones left out, and checks
/// them.
fn arrange<'v, 'n>(
    event: &Event,
    named: impl Iterator<Item = (&'n str, Result<Value<'v>, String>)>,
) -> Result<Vec<Value<'v>>, EmitError> {
    let schema = &event.schema;
    let mut values = vec![Value::NULL; schema.types.len()];
    for (name, value) in named {
        let Some(index) = schema.position(name) else {
            return Err(EmitError::UnknownArg {
                event: event.name.clone(),
                arg: name.to_owned(),
                suggestion: did_you_mean(name, schema.names()),
                declared: declared_args(event),
            });
        };
        values[index] = value.map_err(|reason| EmitError::WrongType {
            event: event.name.clone(),
            arg: name.to_owned(),
            reason,
        })?;
    }
    for (i, (ty, value)) in schema.types.iter().zip(&values).enumerate() {
        if !ty.accepts(value) {
            return Err(type_error(event, i, value));
        }
    }
    Ok(values)
}

/// `name (string), email (string)`, or `nothing`.
pub(crate) fn declared_args(event: &Event) -> String {
    if event.schema.names.is_empty() {
        return "no arguments".to_owned();
    }
    event
        .schema
        .names()
        .zip(&event.schema.types)
        .map(|(n, t)| format!("{n} ({t})"))
        .collect::<Vec<_>>()
        .join(", ")
}
