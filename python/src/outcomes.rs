//! What an emit returns to Python: `Outcomes`, a sequence of `Outcome`s in dispatch
//! order. It keeps the host's own outcomes and turns one into a Python object only when
//! it is read; a call site refills the `Outcomes` it returned last once the program let
//! go of it ([`Reusable`]), so an emit whose results nobody reads makes no Python object.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use switchboard::Generation;
use switchboard_nats::Published;
use switchboard_plugin_api::abi::Outcome as NestedOutcome;
use switchboard_plugin_api::{Error as PluginError, Value};

use crate::values::to_python;

/// One callback's outcome: which callback ran, and its value or its error.
#[pyclass(module = "switchboard", frozen, get_all)]
pub(crate) struct Outcome {
    /// The plugin (or application) whose callback ran.
    plugin: String,
    /// The callback's name.
    callback: String,
    /// Whether it returned a value (`None` included) rather than an error.
    ok: bool,
    /// What it returned; `None` when it failed.
    value: Py<PyAny>,
    /// Its error message; `None` when it succeeded.
    error: Option<String>,
    /// What to do about the error, when the callback said.
    help: Option<String>,
    /// `"value"`, or the kind of failure: `"error"`, `"panic"`, `"skipped"` (its breaker
    /// was open), `"crashed"` or `"timed_out"` (its worker process).
    kind: &'static str,
}

#[pymethods]
impl Outcome {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        if self.ok {
            Ok(format!(
                "Outcome({}.{}, ok, value={})",
                self.plugin,
                self.callback,
                self.value.bind(py).repr()?
            ))
        } else {
            let error = PyString::new(py, self.error.as_deref().unwrap_or_default());
            Ok(format!(
                "Outcome({}.{}, {}: {})",
                self.plugin,
                self.callback,
                self.kind,
                error.repr()?
            ))
        }
    }
}

impl Outcome {
    fn new(
        py: Python<'_>,
        plugin: &str,
        callback: &str,
        result: Result<&Value<'_>, &PluginError>,
    ) -> PyResult<Outcome> {
        Ok(match result {
            Ok(value) => Outcome {
                plugin: plugin.to_owned(),
                callback: callback.to_owned(),
                ok: true,
                value: to_python(py, value)?.unbind(),
                error: None,
                help: None,
                kind: "value",
            },
            Err(error) => Outcome {
                plugin: plugin.to_owned(),
                callback: callback.to_owned(),
                ok: false,
                value: py.None(),
                error: Some(error.message().to_owned()),
                help: error.help().map(str::to_owned),
                kind: error.kind_name(),
            },
        })
    }
}

/// How many spare outcome lists a thread keeps.
const SPARES: usize = 4;

thread_local! {
    /// Outcome lists let go by this thread, for its next emits. Boxed, so that the Python
    /// object holding one moves a pointer, not the list's fields.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<switchboard::Outcomes>>> = const { RefCell::new(Vec::new()) };
}

/// The host's outcomes of one emit, in a list that goes back to the thread's spares when
/// the Python `Outcomes` holding it is freed: an emit in a loop fills the same list again
/// (`Generation::emit_into`), where a new one cost an allocation, its growth and its free.
pub(crate) struct Recycled(Option<Box<switchboard::Outcomes>>);

impl Recycled {
    /// A spare list of this thread, or a new one.
    pub(crate) fn take() -> Recycled {
        let spare = SPARE
            .try_with(|spare| spare.borrow_mut().pop())
            .ok()
            .flatten();
        Recycled(Some(spare.unwrap_or_default()))
    }
}

impl From<switchboard::Outcomes> for Recycled {
    fn from(outcomes: switchboard::Outcomes) -> Recycled {
        Recycled(Some(Box::new(outcomes)))
    }
}

impl std::ops::Deref for Recycled {
    type Target = switchboard::Outcomes;

    fn deref(&self) -> &switchboard::Outcomes {
        self.0
            .as_deref()
            .expect("a recycled list is held until dropped")
    }
}

impl std::ops::DerefMut for Recycled {
    fn deref_mut(&mut self) -> &mut switchboard::Outcomes {
        self.0
            .as_deref_mut()
            .expect("a recycled list is held until dropped")
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        let Some(list) = self.0.take() else {
            return;
        };
        // A thread that is ending drops the list instead.
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARES {
                spare.push(list);
            }
        });
    }
}

/// Where an emit's outcomes are.
enum Held {
    /// An outermost emit's, with the generation that names its callbacks.
    Emitted(Arc<Generation>, Recycled),
    /// A nested emit's, from inside a Python callback.
    Nested(Vec<NestedOutcome>),
    /// None: the event was published to JetStream (`[nats] publish`) under this id.
    Published(String, Published),
}

/// The outcomes of one emit, in dispatch order: a sequence of [`Outcome`].
#[pyclass(module = "switchboard", frozen, sequence)]
pub(crate) struct Outcomes {
    event: Py<PyString>,
    /// Behind a lock only so that [`Reusable`] can refill it: never contended.
    held: Mutex<Held>,
}

/// The `Outcomes` object a call site returned last, kept to be refilled by its next emit
/// once the program let go of it: an emit in a loop whose outcomes are dropped unread (the
/// usual case) then makes no Python object, where one cost an allocation, its
/// initialization and its deallocation, about a fifth of an emit to one native callback.
/// CPython's own `zip` and `dict.items()` iterators reuse their result tuples the same way.
#[derive(Default)]
pub(crate) struct Reusable(Mutex<Option<Py<Outcomes>>>);

impl Reusable {
    /// Runs `emit` on the host's outcome list of the object kept here, if nothing else
    /// refers to it, and returns that object with `emit`'s answer; `None`, without
    /// running `emit`, when there is no such object. `emit` gets the generation that
    /// names the list's callbacks, the one to emit on.
    pub(crate) fn refill<E>(
        &self,
        py: Python<'_>,
        emit: impl FnOnce(&Generation, &mut switchboard::Outcomes) -> Result<(), E>,
    ) -> Option<Result<Py<Outcomes>, E>> {
        let kept = self.0.lock();
        let object = kept.as_ref()?;
        // SAFETY: `object` is a live object (this slot owns a reference) and we hold the
        // GIL, as reading its count requires.
        let references = unsafe { pyo3::ffi::Py_REFCNT(object.as_ptr()) };
        // Only this slot refers to it, and no other thread can take a reference while we
        // hold the GIL. Ours, taken now, keeps other emits off it until the program
        // lets go of it again, the GIL released or not.
        if references != 1 {
            return None;
        }
        let object = object.clone_ref(py);
        drop(kept);
        let mut held = object.get().held();
        let Held::Emitted(board, list) = &mut *held else {
            return None;
        };
        let emitted = emit(board, list);
        drop(held);
        Some(emitted.map(|()| object))
    }

    /// Keeps `object`, the outcomes of an emit made at this call site, to be refilled.
    pub(crate) fn keep(&self, py: Python<'_>, object: &Py<Outcomes>) {
        let previous = self.0.lock().replace(object.clone_ref(py));
        drop(previous);
    }
}

impl Outcomes {
    pub(crate) fn emitted(
        event: &Bound<'_, PyString>,
        board: Arc<Generation>,
        outcomes: Recycled,
    ) -> Self {
        Outcomes {
            event: event.clone().unbind(),
            held: Mutex::new(Held::Emitted(board, outcomes)),
        }
    }

    pub(crate) fn nested(event: &Bound<'_, PyString>, outcomes: Vec<NestedOutcome>) -> Self {
        Outcomes {
            event: event.clone().unbind(),
            held: Mutex::new(Held::Nested(outcomes)),
        }
    }

    pub(crate) fn sent(event: &Bound<'_, PyString>, id: String, published: Published) -> Self {
        Outcomes {
            event: event.clone().unbind(),
            held: Mutex::new(Held::Published(id, published)),
        }
    }

    /// What it holds.
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock()
    }

    fn count(&self) -> usize {
        match &*self.held() {
            Held::Emitted(_, outcomes) => outcomes.len(),
            Held::Nested(outcomes) => outcomes.len(),
            Held::Published(..) => 0,
        }
    }

    fn failed(&self) -> usize {
        match &*self.held() {
            Held::Emitted(_, outcomes) => outcomes.failures().count(),
            Held::Nested(outcomes) => outcomes.iter().filter(|o| o.result().is_err()).count(),
            Held::Published(..) => 0,
        }
    }

    fn at(&self, py: Python<'_>, index: usize) -> PyResult<Option<Outcome>> {
        match &*self.held() {
            Held::Emitted(board, outcomes) => {
                let Some(outcome) = outcomes.get(index) else {
                    return Ok(None);
                };
                let callback = board.callback(outcome.callback);
                Outcome::new(py, &callback.plugin_name, &callback.name, outcome.result).map(Some)
            }
            Held::Nested(outcomes) => {
                let Some(outcome) = outcomes.get(index) else {
                    return Ok(None);
                };
                Outcome::new(py, outcome.plugin(), outcome.callback(), outcome.result()).map(Some)
            }
            Held::Published(..) => Ok(None),
        }
    }

    fn all(&self, py: Python<'_>) -> PyResult<Vec<Outcome>> {
        (0..self.count())
            .filter_map(|i| self.at(py, i).transpose())
            .collect()
    }
}

#[pymethods]
impl Outcomes {
    fn __len__(&self) -> usize {
        self.count()
    }

    fn __getitem__(&self, py: Python<'_>, index: isize) -> PyResult<Outcome> {
        let count = self.count() as isize;
        let at = if index < 0 { index + count } else { index };
        if at < 0 {
            return Err(PyIndexError::new_err("outcome index out of range"));
        }
        self.at(py, at as usize)?
            .ok_or_else(|| PyIndexError::new_err("outcome index out of range"))
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.all(py)?)?
            .try_iter()
            .map(Bound::into_any)
    }

    /// The event emitted.
    #[getter]
    fn event(&self, py: Python<'_>) -> Py<PyString> {
        self.event.clone_ref(py)
    }

    /// Whether every callback succeeded.
    #[getter]
    fn ok(&self) -> bool {
        self.failed() == 0
    }

    /// The values of the callbacks that succeeded, in dispatch order.
    #[getter]
    fn values(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        Ok(self
            .all(py)?
            .into_iter()
            .filter(|o| o.ok)
            .map(|o| o.value)
            .collect())
    }

    /// The outcomes of the callbacks that failed, in dispatch order.
    #[getter]
    fn errors(&self, py: Python<'_>) -> PyResult<Vec<Outcome>> {
        Ok(self.all(py)?.into_iter().filter(|o| !o.ok).collect())
    }

    /// The emit's request id, unique in this process (0 for a nested emit, which carries
    /// its parent's).
    #[getter]
    fn request_id(&self) -> u64 {
        match &*self.held() {
            Held::Emitted(_, outcomes) => outcomes.request_id(),
            Held::Nested(_) | Held::Published(..) => 0,
        }
    }

    /// Where the event went when the manifest publishes it (`[nats] publish`) instead of
    /// dispatching it here: `{"id", "stream", "seq", "duplicate"}`; `None` when it was
    /// dispatched.
    #[getter]
    fn published<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let held = self.held();
        let Held::Published(id, published) = &*held else {
            return Ok(None);
        };
        let answer = PyDict::new(py);
        answer.set_item("id", id)?;
        answer.set_item("stream", &published.stream)?;
        answer.set_item("seq", published.sequence)?;
        answer.set_item("duplicate", published.duplicate)?;
        Ok(Some(answer))
    }

    /// Raises `CallbackError` for the first callback that failed; returns the outcomes
    /// when none did, so that `host.emit(...).check()` reads as one step.
    fn check(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let py = slf.py();
        let first = slf.get().all(py)?.into_iter().find(|o| !o.ok);
        match first {
            None => Ok(slf),
            Some(failed) => {
                let mut message = format!(
                    "{}.{} failed on `{}` ({}): {}",
                    failed.plugin,
                    failed.callback,
                    slf.get().event.bind(py),
                    failed.kind,
                    failed.error.as_deref().unwrap_or_default()
                );
                if let Some(help) = &failed.help {
                    message.push_str(&format!("; {help}"));
                }
                Err(crate::errors::raise(py, "callback", message))
            }
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Outcomes({}, {} calls, {} failed)",
            self.event.bind(py).repr()?,
            self.count(),
            self.failed()
        ))
    }
}
