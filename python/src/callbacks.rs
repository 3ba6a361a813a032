//! A Python callable as an application callback of the host: called with the arguments
//! it reads as keyword arguments, with the GIL taken for the call only, its return value
//! checked on the way back and its exception turned into that callback's error.
//!
//! While it runs, an emit it makes on the same host is a nested emit (the host bounds
//! the depth, and the nested callbacks see the same event id): the host handle of the
//! call is published for this thread.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTraceback, PyTuple};
use smallvec::SmallVec;
use switchboard::AppCallback;
use switchboard_plugin_api::{Args, Error as PluginError, Host, Value};

use crate::values::{to_python, to_value};

/// What a Python callback reads and how it is called.
pub(crate) struct PythonCallback {
    /// The host it is registered on, to tell its nested emits from another host's.
    pub(crate) host_id: usize,
    pub(crate) event: String,
    pub(crate) name: String,
    pub(crate) priority: i32,
    pub(crate) application: String,
    /// `(argument, type)` read, or `None` for a callable that takes `**kwargs` (it gets
    /// every argument).
    pub(crate) reads: Option<Vec<(String, String)>>,
    /// Parameters with a default: left out when the argument is null, so the default
    /// applies.
    pub(crate) defaults: Vec<String>,
    /// Whether its parameters can all be given by position, in the order of `reads`
    /// (none is keyword-only).
    pub(crate) positional: bool,
    pub(crate) func: Held,
}

/// A Python callback's function, held by the host until the host shuts down. Python's
/// collector cannot see through the host's Rust half, so a function that refers back to
/// its host (a closure over `host`, to emit again) would keep both alive for ever:
/// letting go at shutdown breaks that cycle.
#[derive(Clone)]
pub(crate) struct Held(Arc<Mutex<Option<Py<PyAny>>>>);

impl Held {
    /// `func`, held.
    pub(crate) fn new(func: Py<PyAny>) -> Held {
        Held(Arc::new(Mutex::new(Some(func))))
    }

    /// The function, unless it was let go.
    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let func = self.0.lock().unwrap_or_else(|e| e.into_inner());
        func.as_ref().map(|f| f.clone_ref(py))
    }

    /// Lets go of the function (its host shut down: no event reaches it any more).
    pub(crate) fn release(&self) {
        let released = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(released);
    }
}

impl PythonCallback {
    /// The host's application callback that calls it.
    pub(crate) fn into_app(self) -> AppCallback {
        let PythonCallback {
            host_id,
            event,
            name,
            priority,
            application,
            reads,
            defaults,
            positional,
            func,
        } = self;
        let reading: Option<Vec<String>> = reads
            .as_ref()
            .map(|r| r.iter().map(|(n, _)| n.clone()).collect());
        let callback_name = name.clone();
        let run = move |args: Args<'_>, host: Host<'_>| {
            let _nested = NestedScope::enter(host_id, &host);
            Python::attach(|py| {
                let how = Call {
                    reading: reading.as_deref(),
                    defaults: &defaults,
                    positional,
                };
                let Some(func) = func.get(py) else {
                    return Err(PluginError::new(
                        "the Python host of this callback was shut down",
                    ));
                };
                call(py, &func, &callback_name, args, how)
            })
        };
        let callback = AppCallback::new(event, name, run)
            .priority(priority)
            .application(application);
        match reads {
            Some(reads) => callback.reads(reads),
            None => callback,
        }
    }
}

/// How a Python callback takes its arguments.
struct Call<'c> {
    reading: Option<&'c [String]>,
    defaults: &'c [String],
    positional: bool,
}

fn call(
    py: Python<'_>,
    func: &Py<PyAny>,
    name: &str,
    args: Args<'_>,
    how: Call<'_>,
) -> Result<Value<'static>, PluginError> {
    let Call {
        reading,
        defaults,
        positional,
    } = how;
    let returned = match reading {
        // Every parameter is an argument it reads, in order, none with a default: a
        // positional call, which costs Python less than building keyword arguments.
        Some(reading) if positional && defaults.is_empty() => {
            let mut values: SmallVec<[Bound<'_, PyAny>; 4]> = SmallVec::new();
            for arg in reading {
                let value = match args.get(arg) {
                    Some(value) => to_python(py, value).map_err(|e| exception(py, &e))?,
                    None => py.None().into_bound(py),
                };
                values.push(value);
            }
            call_positional(py, func, &values)
        }
        _ => call_by_name(py, func, args, reading, defaults)?,
    };
    let returned = returned.map_err(|e| exception(py, &e))?;
    to_value(returned.bind(py), || {
        format!("the value Python callback `{name}` returned")
    })
    .map_err(|e| exception(py, &e))
}

/// Calls `func` with `values` by position: up to four through
/// `PyObject_CallFunctionObjArgs`, which hands them to the function from the stack (no
/// argument tuple is made, as it is for a call with more).
fn call_positional(
    py: Python<'_>,
    func: &Py<PyAny>,
    values: &[Bound<'_, PyAny>],
) -> PyResult<Py<PyAny>> {
    use pyo3::ffi::PyObject_CallFunctionObjArgs as call;
    let f = func.as_ptr();
    let end = std::ptr::null_mut::<pyo3::ffi::PyObject>();
    let p = |i: usize| values[i].as_ptr();
    // SAFETY: `f` and every value are live objects, borrowed for the call (we hold the GIL
    // and the references); the list of arguments ends with NULL, as the function requires.
    // It returns a new reference, or NULL with an exception set.
    let returned = unsafe {
        match values.len() {
            0 => call(f, end),
            1 => call(f, p(0), end),
            2 => call(f, p(0), p(1), end),
            3 => call(f, p(0), p(1), p(2), end),
            4 => call(f, p(0), p(1), p(2), p(3), end),
            _ => return func.call1(py, PyTuple::new(py, values)?),
        }
    };
    // SAFETY: as said above.
    unsafe { Bound::from_owned_ptr_or_err(py, returned) }.map(Bound::unbind)
}

/// Calls `func` with keyword arguments: the arguments it reads (all, for `**kwargs`),
/// leaving out the null ones whose parameter has a default.
fn call_by_name(
    py: Python<'_>,
    func: &Py<PyAny>,
    args: Args<'_>,
    reading: Option<&[String]>,
    defaults: &[String],
) -> Result<PyResult<Py<PyAny>>, PluginError> {
    let kwargs = PyDict::new(py);
    for (arg, value) in args.iter() {
        if reading.is_some_and(|r| !r.iter().any(|n| n == arg)) {
            continue;
        }
        if value.is_null() && defaults.iter().any(|d| d == arg) {
            continue;
        }
        let value = to_python(py, value).map_err(|e| exception(py, &e))?;
        kwargs.set_item(arg, value).map_err(|e| exception(py, &e))?;
    }
    Ok(func.call(py, (), Some(&kwargs)))
}

/// A Python exception as a callback's error: `Type: message`, with the line it was
/// raised at as the help.
fn exception(py: Python<'_>, error: &PyErr) -> PluginError {
    let kind = error
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
    let message = error.value(py).to_string();
    let text = if message.is_empty() {
        kind
    } else {
        format!("{kind}: {message}")
    };
    let mut failure = PluginError::new(text);
    if let Some(line) = error.traceback(py).and_then(|tb| last_line(&tb)) {
        failure = failure.with_help(format!("raised at {line}"));
    }
    failure
}

/// `file:line in function` of a traceback's innermost frame.
fn last_line(traceback: &Bound<'_, PyTraceback>) -> Option<String> {
    let mut frame = traceback.clone().into_any();
    loop {
        let next = frame.getattr("tb_next").ok()?;
        if next.is_none() {
            break;
        }
        frame = next;
    }
    let line: u32 = frame.getattr("tb_lineno").ok()?.extract().ok()?;
    let code = frame.getattr("tb_frame").ok()?.getattr("f_code").ok()?;
    let file: String = code.getattr("co_filename").ok()?.extract().ok()?;
    let function: String = code.getattr("co_name").ok()?.extract().ok()?;
    Some(format!("{file}:{line} in {function}"))
}

thread_local! {
    /// The host handle of the Python callback running on this thread, if one is, and the
    /// host it runs on.
    static NESTED: Cell<Option<(usize, NonNull<()>)>> = const { Cell::new(None) };
}

/// Publishes a callback's host handle for this thread while the callback runs, and puts
/// back what was there before (the outer callback's, for a nested one) when dropped, on
/// return as on unwind.
struct NestedScope {
    previous: Option<(usize, NonNull<()>)>,
}

impl NestedScope {
    fn enter(host_id: usize, host: &Host<'_>) -> NestedScope {
        let this = NonNull::from(host).cast::<()>();
        NestedScope {
            previous: NESTED.with(|n| n.replace(Some((host_id, this)))),
        }
    }
}

impl Drop for NestedScope {
    fn drop(&mut self) {
        NESTED.with(|n| n.set(self.previous));
    }
}

/// Whether a Python callback of host `host_id` is running on this thread.
pub(crate) fn in_callback(host_id: usize) -> bool {
    NESTED.with(|n| n.get().is_some_and(|(id, _)| id == host_id))
}

/// Runs `emit` with the host handle of the Python callback running on this thread, if it
/// runs on host `host_id`; `None` outside such a callback.
pub(crate) fn nested<R>(host_id: usize, emit: impl FnOnce(&Host<'_>) -> R) -> Option<R> {
    let (id, host) = NESTED.with(Cell::get)?;
    if id != host_id {
        return None;
    }
    // SAFETY: the pointer was published by `NestedScope::enter` from a `&Host` that the
    // callback closure owns for the whole call, on this thread; the scope unpublishes it
    // before that closure returns or unwinds. We are called from inside that call (the
    // Python code it runs, on the same thread), so the `Host` is alive and not moved.
    let host = unsafe { host.cast::<Host<'_>>().as_ref() };
    Some(emit(host))
}
