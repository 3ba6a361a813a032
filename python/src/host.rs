//! The `Host` class: a running switchboard host in a Python program. Every call that can
//! run plugin code (open, emit, register, reload, control, shutdown) releases the GIL, so
//! native callbacks run in parallel with the program's other threads, and Python
//! callbacks take the GIL only while they run. The one exception: an emit from a program
//! with no other thread keeps it when it cannot be needed elsewhere (see `gil`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use smallvec::SmallVec;
use switchboard::manifest::NatsSettings;
use switchboard::service::Outgoing;
use switchboard::{BreakerState, Generation, Switchboard};
use switchboard_nats::Publisher;
use switchboard_plugin_api::Value;

use crate::callbacks::{in_callback, nested, Held, PythonCallback};
use crate::errors::{emit_error, host_error, raise};
use crate::gil::Threads;
use crate::keywords::{borrowed_text, emit_function, Emitter, Keywords};
use crate::outcomes::{Outcomes, Recycled};
use crate::shapes::{Shape, Shapes};
use crate::values::{to_python, to_value, Original, OriginalsScope};

/// A running host: the manifest's plugins loaded and started, the Python program's
/// callbacks beside them.
#[pyclass(module = "switchboard._native", subclass, frozen)]
pub(crate) struct Host {
    state: Arc<State>,
}

/// What a host holds, shared with the emit function it hands the package (see
/// `Host._emitter`).
pub(crate) struct State {
    inner: Switchboard,
    /// Whether an emit may keep the GIL (see `gil`).
    threads: Threads,
    manifest: PathBuf,
    application: String,
    shapes: Shapes,
    /// Connected at the first event the manifest publishes, kept until the host goes.
    publisher: Mutex<Option<Arc<Publisher>>>,
    /// How many events this host published without an id of the caller's.
    published: AtomicU64,
    /// The functions of its Python callbacks, let go when it shuts down.
    held: Mutex<Vec<Held>>,
}

impl std::ops::Deref for Host {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl Emitter for State {
    /// Emits `event` with keyword arguments: see `Host.emit`. `learn`: whether the
    /// call's shape is worth keeping (its names are a call site's constant tuple).
    fn emit(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        keywords: &Keywords<'_, '_>,
        learn: bool,
    ) -> PyResult<Py<Outcomes>> {
        let id = self.id();
        if !in_callback(id) {
            // A known call site: its generation is the one its kept outcomes name, and
            // only its first emit, or one after its outcomes were kept, loads it.
            let number = self.inner.current_number();
            if let Some(shape) = self.shapes.find(number, event, keywords) {
                let current = || self.inner.current();
                let shaped = emit_shaped(py, current, &self.threads, &shape, event, keywords);
                if let Some(answer) = shaped {
                    return answer;
                }
            }
        }
        let board = self.inner.current();
        let name = event.to_cow()?;
        let published = board.manifest().nats().filter(|n| n.publishes(&name));
        if let Some(nats) = published {
            let sent = self.publish(py, &board, nats, event, keywords)?;
            return Py::new(py, sent);
        }
        let Arguments {
            keys,
            texts,
            others,
        } = Arguments::of(&name, keywords)?;
        // From inside one of this host's Python callbacks: a nested emit.
        let mut others = Some(others);
        let nested_emit = nested(id, |host| {
            host.emit(
                &name,
                pairs(&keys, &texts, others.take().unwrap_or_default()),
            )
        });
        if let Some(emitted) = nested_emit {
            return match emitted {
                Ok(outcomes) => Py::new(py, Outcomes::nested(event, outcomes)),
                Err(error) => Err(raise(
                    py,
                    nested_kind(error.message()),
                    error.message().to_owned(),
                )),
            };
        }
        let others = others.unwrap_or_default();
        let emitted = py.detach(|| board.emit_named(&name, pairs(&keys, &texts, others)));
        match emitted {
            Ok(outcomes) => {
                if learn {
                    self.shapes
                        .learn(&board, &self.application, event, keywords);
                }
                Py::new(py, Outcomes::emitted(event, board, outcomes.into()))
            }
            Err(error) => Err(emit_error(py, &error)),
        }
    }
}

impl State {
    /// Publishes `event` to JetStream, as the manifest's `[nats] publish` says, instead of
    /// dispatching it here: its arguments are checked first, as for a dispatch.
    fn publish(
        &self,
        py: Python<'_>,
        board: &Generation,
        nats: &NatsSettings,
        event: &Bound<'_, PyString>,
        keywords: &Keywords<'_, '_>,
    ) -> PyResult<Outcomes> {
        let name = event.to_cow()?;
        let mut object = serde_json::Map::new();
        for pair in keywords.iter() {
            let (key, value) = pair?;
            let key = key.to_cow()?.into_owned();
            let value = to_value(&value, || format!("argument `{key}` of event `{name}`"))?;
            if !value.is_null() {
                object.insert(key, value.to_json());
            }
        }
        let n = self.published.fetch_add(1, Ordering::Relaxed) + 1;
        let outgoing =
            Outgoing::on(board, &name, &object, None, n).map_err(|e| emit_error(py, &e))?;
        let stored = py.detach(|| {
            let publisher = self.publisher(nats)?;
            publisher
                .publish(outgoing.event, outgoing.args, &outgoing.id)
                .map_err(|e| e.to_string())
        });
        match stored {
            Ok(published) => Ok(Outcomes::sent(event, outgoing.id, published)),
            Err(message) => Err(raise(py, "nats", message)),
        }
    }

    /// The publisher, connected on first use.
    fn publisher(&self, nats: &NatsSettings) -> Result<Arc<Publisher>, String> {
        let mut publisher = self.publisher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(publisher) = publisher.as_ref() {
            return Ok(Arc::clone(publisher));
        }
        let connected = Arc::new(Publisher::connect(nats).map_err(|e| e.to_string())?);
        *publisher = Some(Arc::clone(&connected));
        Ok(connected)
    }

    /// Tells this host's nested emits from another host's.
    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

/// The keyword arguments of an emit, checked one by one: names borrowed from Python,
/// `str` values read in place as the shaped path reads them ([`borrowed_text`]), other
/// values converted.
struct Arguments<'a> {
    keys: Vec<PyBackedStr>,
    /// Per argument, its text when it is a `str` read in place.
    texts: Vec<Option<&'a str>>,
    /// Per argument, its value otherwise (null when it is a text).
    others: Vec<Value<'static>>,
}

impl<'a> Arguments<'a> {
    fn of(event: &str, keywords: &Keywords<'a, '_>) -> PyResult<Arguments<'a>> {
        let count = keywords.len();
        let mut arguments = Arguments {
            keys: Vec::with_capacity(count),
            texts: Vec::with_capacity(count),
            others: Vec::with_capacity(count),
        };
        for pair in keywords.iter() {
            let (key, value) = pair?;
            let key: PyBackedStr = key.to_owned().try_into()?;
            if let Some(text) = borrowed_text(value) {
                arguments.texts.push(Some(text));
                arguments.others.push(Value::NULL);
            } else {
                let value = to_value(&value, || {
                    format!("argument `{}` of event `{event}`", &*key)
                })?;
                arguments.texts.push(None);
                arguments.others.push(value);
            }
            arguments.keys.push(key);
        }
        Ok(arguments)
    }
}

/// The `(name, value)` pairs an emit takes, borrowing the names and texts.
fn pairs<'a>(
    keys: &'a [PyBackedStr],
    texts: &'a [Option<&'a str>],
    others: Vec<Value<'static>>,
) -> impl Iterator<Item = (&'a str, Value<'a>)> {
    keys.iter()
        .zip(texts)
        .zip(others)
        .map(|((key, text), other)| match text {
            Some(text) => (&**key, Value::borrowed(text)),
            None => (&**key, other),
        })
}

/// How many arguments an emit keeps on the stack.
const INLINE_ARGUMENTS: usize = 8;

/// An emit whose call shape is known: the arguments go straight to their positions.
/// `current` loads the current generation, needed only when no kept outcomes name it;
/// `None` when that is no longer the shape's (a reload just happened): emit by name.
fn emit_shaped(
    py: Python<'_>,
    current: impl FnOnce() -> Arc<Generation>,
    threads: &Threads,
    shape: &Shape,
    event: &Bound<'_, PyString>,
    keywords: &Keywords<'_, '_>,
) -> Option<PyResult<Py<Outcomes>>> {
    // On the stack for the usual handful of arguments, `str`s borrowed in place: an
    // emit allocates nothing here. Keywords given in the declared order (the usual call)
    // are pushed as they come; others land on a row of nulls.
    let mut args: SmallVec<[Value<'_>; INLINE_ARGUMENTS]> = SmallVec::new();
    if !shape.in_order {
        args.extend((0..shape.arity).map(|_| Value::NULL));
    }
    // Kept only where a Python callback may be handed them back.
    let mut originals: SmallVec<[Original; INLINE_ARGUMENTS]> = SmallVec::new();
    for (i, (value, &position)) in keywords.values().zip(&shape.positions).enumerate() {
        let value = match borrowed_text(value) {
            Some(text) => {
                if shape.reaches_python {
                    originals.push(Original::new(&value, text));
                }
                Value::borrowed(text)
            }
            None => match to_value(&value, || {
                let key = keywords.name(i).map(|k| k.to_string()).unwrap_or_default();
                format!("argument `{key}` of event `{event}`")
            }) {
                Ok(value) => value,
                Err(error) => return Some(Err(error)),
            },
        };
        if shape.in_order {
            args.push(value);
        } else {
            args[position] = value;
        }
    }
    // Declared arguments left out are null (an empty `extend` costs as much as a full one).
    if shape.in_order && args.len() < shape.arity {
        args.extend((args.len()..shape.arity).map(|_| Value::NULL));
    }
    // Python callbacks of this emit get the caller's own `str`s back.
    let _originals = shape
        .reaches_python
        .then(|| OriginalsScope::enter(&originals));
    // Kept where no other thread could use it (see `gil`); Python callbacks take it anyway.
    let keep_gil = shape.python_only || (shape.no_python_elsewhere && threads.alone(py));
    let emit = |board: &Generation, outcomes: &mut switchboard::Outcomes| {
        let emitted = if keep_gil {
            board.emit_into(shape.event_id, &args, outcomes)
        } else {
            py.detach(|| board.emit_into(shape.event_id, &args, outcomes))
        };
        emitted.map(|()| board.record(outcomes))
    };
    // The call site's last outcomes object, when the program let go of it: refilled, on
    // the generation it names (the shape's).
    let refilled = shape
        .answer
        .refill(py, |board, outcomes| emit(board, outcomes));
    if let Some(answer) = refilled {
        return Some(answer.map_err(|error| emit_error(py, &error)));
    }
    let board = current();
    if board.number() != shape.generation() {
        return None;
    }
    let mut outcomes = Recycled::take();
    if let Err(error) = emit(&board, &mut outcomes) {
        return Some(Err(emit_error(py, &error)));
    }
    let object = Py::new(py, Outcomes::emitted(event, board, outcomes));
    if let Ok(object) = &object {
        shape.answer.keep(py, object);
    }
    Some(object)
}

/// The kind of a refused nested emit, which reaches a callback as a message only (the
/// host's `EmitError` texts, see `host/src/error.rs`).
fn nested_kind(message: &str) -> &'static str {
    if message.starts_with("nested emit deeper than max_depth") {
        "emit.too_deep"
    } else if message.starts_with("unknown event") {
        "emit.unknown_event"
    } else if message.contains("argument") {
        "emit.wrong_type"
    } else {
        "emit"
    }
}

#[pymethods]
impl Host {
    /// Reads and checks the manifest, loads its plugins and starts them.
    #[new]
    #[pyo3(signature = (manifest = PathBuf::from("events.toml"), *, application = "app".to_owned()))]
    fn new(py: Python<'_>, manifest: PathBuf, application: String) -> PyResult<Host> {
        let opened = py.detach(|| Switchboard::open(&manifest));
        let inner = opened.map_err(|e| host_error(py, &e))?;
        Ok(Host {
            state: Arc::new(State {
                threads: Threads::new(py)?,
                inner,
                manifest,
                application,
                shapes: Shapes::default(),
                publisher: Mutex::new(None),
                published: AtomicU64::new(0),
                held: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Emits `event` with keyword arguments and returns every callback's outcome.
    #[pyo3(signature = (event, /, **kwargs))]
    fn emit(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<Outcomes>> {
        let (mut names, mut values) = (None, Vec::new());
        let keywords = Keywords::of_dict(py, kwargs, &mut names, &mut values)?;
        self.state.emit(py, event, &keywords, false)
    }

    /// `emit` as a vectorcall function of this host, which the package sets as the
    /// instance's `emit`: it takes its keyword arguments as the caller's stack holds
    /// them, where a method taking `**kwargs` gets a new dict at every call.
    fn _emitter(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        emit_function(py, Arc::clone(&self.state) as Arc<dyn Emitter>)
    }

    /// Registers `func` as a callback of this host's application; the package's
    /// `Host.callback` decorator reads its signature and calls this.
    #[pyo3(signature = (event, name, priority, reads, defaults, func, positional = false))]
    #[allow(clippy::too_many_arguments)]
    fn _register(
        &self,
        py: Python<'_>,
        event: String,
        name: String,
        priority: i32,
        reads: Option<Vec<(String, String)>>,
        defaults: Vec<String>,
        func: Py<PyAny>,
        positional: bool,
    ) -> PyResult<()> {
        let func = Held::new(func);
        let callback = PythonCallback {
            host_id: self.id(),
            event,
            name,
            priority,
            application: self.application.clone(),
            reads,
            defaults,
            positional,
            func: func.clone(),
        }
        .into_app();
        py.detach(|| self.inner.register(callback))
            .map_err(|e| host_error(py, &e))?;
        self.shapes.clear();
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(func);
        Ok(())
    }

    /// Removes this application's callback called `name`; whether there was one.
    fn unregister(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        let removed = py
            .detach(|| self.inner.unregister(&self.application, name))
            .map_err(|e| host_error(py, &e))?;
        self.shapes.clear();
        Ok(removed)
    }

    /// Reads the manifest again and swaps in its plugins while events flow (unchanged
    /// plugins keep running; the Python callbacks are kept). On any error nothing
    /// changes and the error is raised.
    fn reload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let reloaded = py
            .detach(|| self.inner.reload(&self.manifest))
            .map_err(|e| host_error(py, &e))?;
        self.shapes.clear();
        let answer = PyDict::new(py);
        answer.set_item("generation", reloaded.generation)?;
        answer.set_item("previous", reloaded.previous)?;
        answer.set_item("carried", reloaded.carried)?;
        answer.set_item("started", reloaded.started)?;
        answer.set_item("removed", reloaded.removed)?;
        Ok(answer)
    }

    /// Every plugin (and the application) with its kind, state and counts, in manifest
    /// order; counts start again at every reload and registration.
    fn plugins<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let board = self.inner.current();
        let list = PyList::empty(py);
        for plugin in board.plugins() {
            let entry = PyDict::new(py);
            let meta = &plugin.meta;
            entry.set_item("name", &meta.name)?;
            entry.set_item("kind", format!("{:?}", meta.info.kind()).to_lowercase())?;
            entry.set_item("version", &meta.info.version)?;
            entry.set_item("interface", meta.info.interface())?;
            entry.set_item("isolation", meta.isolation.name())?;
            let breaker = plugin.breaker.map(|state| match state {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half_open",
            });
            entry.set_item("breaker", breaker)?;
            entry.set_item("off_reason", plugin.off_reason)?;
            entry.set_item("calls", plugin.counts.calls)?;
            entry.set_item("errors", plugin.counts.errors)?;
            entry.set_item("panics", plugin.counts.panics)?;
            entry.set_item("skipped", plugin.counts.skipped)?;
            list.append(entry)?;
        }
        Ok(list)
    }

    /// The callbacks of `event` (or of every event) in dispatch order, as
    /// `(plugin, callback, event, priority)`.
    #[pyo3(signature = (event = None))]
    fn callbacks<'py>(&self, py: Python<'py>, event: Option<&str>) -> PyResult<Bound<'py, PyList>> {
        let board = self.inner.current();
        let registry = board.registry();
        let list = PyList::empty(py);
        for declared in registry.events() {
            if event.is_some_and(|e| e != declared.name) {
                continue;
            }
            for id in &declared.callbacks {
                let callback = registry.callback(*id);
                list.append((
                    callback.plugin_name.as_str(),
                    callback.name.as_str(),
                    declared.name.as_str(),
                    callback.priority,
                ))?;
            }
        }
        Ok(list)
    }

    /// The declared events and their arguments, `{event: {argument: type}}`.
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let board = self.inner.current();
        let events = PyDict::new(py);
        for event in board.registry().events() {
            let args = PyDict::new(py);
            for (name, kind) in event.schema.names.iter().zip(&event.schema.types) {
                args.set_item(name.as_str(), kind.to_string())?;
            }
            events.set_item(&event.name, args)?;
        }
        Ok(events)
    }

    /// Sends `plugin` a control operation and returns its answer.
    #[pyo3(signature = (plugin, operation, argument = None))]
    fn control<'py>(
        &self,
        py: Python<'py>,
        plugin: &str,
        operation: &str,
        argument: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let argument = match argument {
            Some(argument) => to_value(argument, || format!("the argument of `{operation}`"))?,
            None => Value::NULL,
        };
        let board = self.inner.current();
        let answer = py.detach(|| board.control(plugin, operation, &argument));
        match answer {
            Ok(value) => to_python(py, &value),
            Err(error) => Err(raise(py, "control", error.to_string())),
        }
    }

    /// Emits `host.stopping` and shuts every plugin down, once; later emits raise
    /// `ShutDownError`. Returns the plugins' shutdown failures as `(plugin, message)`.
    fn shutdown(&self, py: Python<'_>) -> Vec<(String, String)> {
        let failures = py.detach(|| self.inner.shutdown());
        self.shapes.clear();
        // No event reaches a Python callback any more: let go of the functions, which
        // may refer back to this host.
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        for func in held {
            func.release();
        }
        failures
            .into_iter()
            .map(|failure| (failure.plugin, failure.error.to_string()))
            .collect()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.shutdown(py);
        false
    }

    /// The manifest's path.
    #[getter]
    fn manifest(&self) -> PathBuf {
        self.manifest.clone()
    }

    /// The name the Python callbacks are shown and counted under.
    #[getter]
    fn application(&self) -> &str {
        &self.application
    }

    /// The number of the generation running now (each reload and registration starts
    /// one).
    #[getter]
    fn generation(&self) -> u64 {
        self.inner.current().number()
    }

    fn __repr__(&self) -> String {
        let board = self.inner.current();
        format!(
            "Host({:?}, {} plugins, {} events, generation {})",
            self.manifest.display().to_string(),
            board.live_plugins(),
            board.registry().events().len(),
            board.number()
        )
    }
}
