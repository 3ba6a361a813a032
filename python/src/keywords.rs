//! `host.emit` as a vectorcall function: Python hands it the call's keyword names as one
//! tuple and their values as an array, as they stand on the caller's stack, where a
//! method taking `**kwargs` gets a new dict built for every call.
//!
//! The keyword-name tuple of a call site such as `host.emit("user_joined", name=n,
//! email=e)` is a constant of its code, the same object at every call, so the call's
//! shape is found by that one pointer (see `shapes`).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::Borrowed;

use crate::outcomes::Outcomes;

/// What the emit function calls: the host's emit. A trait, so that the function's
/// machinery here does not depend on the host's file (which makes the function).
pub(crate) trait Emitter: Send + Sync {
    /// Emits `event` with `keywords`; `learn`: whether the call's shape is worth keeping.
    fn emit(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        keywords: &Keywords<'_, '_>,
        learn: bool,
    ) -> PyResult<Py<Outcomes>>;
}

/// The state an emit function holds.
type Held = Arc<dyn Emitter>;

/// An emit's keyword arguments: their names, and their values in the same order.
pub(crate) struct Keywords<'a, 'py> {
    py: Python<'py>,
    /// The names; `None` for a call without keyword arguments.
    names: Option<Borrowed<'a, 'py, PyTuple>>,
    /// The values, borrowed for 'a: the caller's own stack of arguments, read in place.
    values: &'a [*mut ffi::PyObject],
}

impl<'a, 'py> Keywords<'a, 'py> {
    /// The keywords of a `**kwargs` dict, for the class's own `emit` method (what a
    /// subclass reaches through `super().emit`): a new tuple of names at every call, so
    /// these calls are found by their names' identities, not by their tuple.
    pub(crate) fn of_dict(
        py: Python<'py>,
        kwargs: Option<&'a Bound<'py, PyDict>>,
        names: &'a mut Option<Bound<'py, PyTuple>>,
        values: &'a mut Vec<*mut ffi::PyObject>,
    ) -> PyResult<Keywords<'a, 'py>> {
        let Some(kwargs) = kwargs else {
            return Ok(Keywords {
                py,
                names: None,
                values: &[],
            });
        };
        *names = Some(PyTuple::new(py, kwargs.keys())?);
        // Each value is owned by `kwargs` too, which outlives 'a.
        *values = kwargs.values().iter().map(|value| value.as_ptr()).collect();
        Ok(Keywords {
            py,
            names: names.as_ref().map(Bound::as_borrowed),
            values,
        })
    }

    /// How many keyword arguments the call has.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The tuple of names, when there are keyword arguments.
    pub(crate) fn names(&self) -> Option<Borrowed<'a, 'py, PyTuple>> {
        self.names
    }

    /// `(name, value)` pairs in call order. A name that is not a `str` (which Python
    /// itself refuses before calling) ends the pairs with an error.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = PyResult<(Borrowed<'a, 'py, PyString>, Borrowed<'a, 'py, PyAny>)>> + '_
    {
        self.values()
            .enumerate()
            .map(move |(i, value)| Ok((self.name(i)?, value)))
    }

    /// The name of keyword argument `i`.
    pub(crate) fn name(&self, i: usize) -> PyResult<Borrowed<'a, 'py, PyString>> {
        let names = self
            .names
            .ok_or_else(|| PySystemError::new_err("keyword values without names"))?;
        let name = names.get_borrowed_item(i)?;
        // SAFETY: the tuple, borrowed for 'a, holds its item for as long.
        let name = unsafe { Borrowed::from_ptr(names.py(), name.as_ptr()) };
        name.cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("keywords must be strings"))
    }

    /// The values, in call order.
    pub(crate) fn values(
        &self,
    ) -> impl ExactSizeIterator<Item = Borrowed<'a, 'py, PyAny>> + use<'a, 'py, '_> {
        let py = self.py;
        // SAFETY: every pointer is a live object borrowed for 'a (see the field).
        self.values
            .iter()
            .map(move |value| unsafe { Borrowed::from_ptr(py, *value) })
    }
}

/// `value`'s text, borrowed in place from the `str` object (CPython keeps a `str`'s
/// UTF-8 form inside it), or `None` when `value` is not a `str`, its text is not valid
/// UTF-8 (a lone surrogate: `to_value` says so), or this platform must convert instead.
pub(crate) fn borrowed_text<'a>(value: Borrowed<'a, '_, PyAny>) -> Option<&'a str> {
    if !value.is_instance_of::<PyString>() {
        return None;
    }
    in_place(value)
}

#[cfg(not(windows))]
fn in_place<'a>(value: Borrowed<'a, '_, PyAny>) -> Option<&'a str> {
    // Exported by every CPython 3.x; the stable ABI lists it from 3.10 on, which is why
    // pyo3 leaves it out of an abi3-py39 build. Windows links the stable ABI's DLL, whose
    // 3.9 release lacks it: there the text is converted instead.
    extern "C" {
        fn PyUnicode_AsUTF8AndSize(
            unicode: *mut ffi::PyObject,
            size: *mut ffi::Py_ssize_t,
        ) -> *const c_char;
    }
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `value` is a live `str` (checked by the caller); the call fills `size` and
    // returns its UTF-8 form, cached in the object, or NULL with an exception set.
    let data = unsafe { PyUnicode_AsUTF8AndSize(value.as_ptr(), &mut size) };
    if data.is_null() {
        // A lone surrogate: cleared here, `to_value` raises the error that names it.
        drop(PyErr::take(value.py()));
        return None;
    }
    let size = usize::try_from(size).ok()?;
    // SAFETY: CPython returns `size` bytes of valid UTF-8 that live as long as the
    // object, which is borrowed for 'a.
    Some(unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(data.cast(), size)) })
}

#[cfg(windows)]
fn in_place<'a>(_value: Borrowed<'a, '_, PyAny>) -> Option<&'a str> {
    None
}

/// What every emit function shares: its `PyMethodDef`, which CPython keeps a pointer to.
struct MethodDef(ffi::PyMethodDef);

// SAFETY: the definition is immutable after construction and holds only pointers to
// static C strings and a function; CPython only reads it.
unsafe impl Sync for MethodDef {}

/// The signature of a `METH_FASTCALL | METH_KEYWORDS` function (`PyCFunctionFastWithKeywords`
/// in CPython's headers, which pyo3 leaves out of the stable ABI before 3.10).
type FastWithKeywords = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// `METH_FASTCALL`: CPython has called functions with this flag in the vectorcall
/// convention since 3.7; the stable ABI names it from 3.10 on, but the value and the
/// convention are the same in every version this package supports (3.9+).
const METH_FASTCALL: std::ffi::c_int = 0x0080;

static EMIT: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"emit".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        // SAFETY (of the transmute): CPython calls `ml_meth` with the signature its
        // `ml_flags` name, here METH_FASTCALL | METH_KEYWORDS, which is `EMIT_VECTORCALL`'s;
        // the union's field type is only how the pointer is stored.
        PyCFunctionWithKeywords: unsafe {
            std::mem::transmute::<FastWithKeywords, ffi::PyCFunctionWithKeywords>(
                EMIT_VECTORCALL,
            )
        },
    },
    ml_flags: METH_FASTCALL | ffi::METH_KEYWORDS,
    ml_doc: c"emit(event, /, **arguments)\n--\n\nEmits `event` with keyword arguments and returns every callback's outcome.".as_ptr(),
});

/// A new `emit` function of the host whose state is `state`: the state travels in a
/// capsule as the function's `self`, so the function keeps it alive (and makes no
/// reference cycle with the host object that stores the function).
pub(crate) fn emit_function(py: Python<'_>, state: Held) -> PyResult<Py<PyAny>> {
    let boxed = Box::into_raw(Box::new(state)).cast::<c_void>();
    // SAFETY: `boxed` is a valid, uniquely owned pointer; the capsule owns it from here on
    // and `release_state` frees it once, when the capsule goes. A NULL name is allowed.
    let capsule = unsafe { ffi::PyCapsule_New(boxed, std::ptr::null(), Some(release_state)) };
    if capsule.is_null() {
        // SAFETY: the capsule was not made, so the box is still ours to free.
        drop(unsafe { Box::from_raw(boxed.cast::<Held>()) });
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `capsule` is a new reference we own.
    let capsule = unsafe { Bound::from_owned_ptr(py, capsule) };
    let def = std::ptr::from_ref(&EMIT.0).cast_mut();
    // SAFETY: `def` points to a static `PyMethodDef` that lives as long as the process and
    // that CPython only reads; `capsule` is a live object, which the function keeps a
    // reference to.
    let function = unsafe { ffi::PyCFunction_NewEx(def, capsule.as_ptr(), std::ptr::null_mut()) };
    // SAFETY: a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, function) }.map(Bound::unbind)
}

/// The capsule's destructor: frees the state box `emit_function` made.
unsafe extern "C" fn release_state(capsule: *mut ffi::PyObject) {
    // SAFETY: called once by CPython as the capsule is freed; its pointer is the box made
    // by `emit_function` (name NULL, as made).
    let pointer = unsafe { ffi::PyCapsule_GetPointer(capsule, std::ptr::null::<c_char>()) };
    if !pointer.is_null() {
        // SAFETY: see above: the box is freed here only.
        let state = unsafe { Box::from_raw(pointer.cast::<Held>()) };
        // The last reference shuts the host down; a panic must not unwind into CPython
        // (the panic hook has printed it already).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(state)));
    }
}

/// The vectorcall entry of `emit`, made by pyo3's own trampoline (the one its
/// `#[pyfunction]`s get): it marks the thread attached for pyo3's bookkeeping, so that the
/// Python callbacks an emit runs on this thread without releasing the GIL find it held,
/// and turns a panic into a `PanicException`. It is pyo3's `#[doc(hidden)]` glue, which its
/// macros expand to: Cargo.lock pins pyo3, and an upgrade of it checks this line.
const EMIT_VECTORCALL: FastWithKeywords =
    pyo3::impl_::trampoline::get_trampoline_function!(fastcall_cfunction_with_keywords, emit_call);

/// `emit`'s work: `args[0]` is the event, the values of the keyword arguments follow,
/// named by `kwnames`.
///
/// # Safety
/// CPython calls it (through [`EMIT_VECTORCALL`]) with the function's `self` (our capsule,
/// see `emit_function`), the positional arguments then the keyword values in `args`,
/// `nargs` counting the positional ones (it may carry `PY_VECTORCALL_ARGUMENTS_OFFSET`,
/// masked off here), and `kwnames` NULL or a tuple of the keywords' names; all borrowed
/// for the call.
unsafe fn emit_call(
    py: Python<'_>,
    capsule: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: the capsule is the one `emit_function` made, named NULL, holding a box.
    let state = unsafe { ffi::PyCapsule_GetPointer(capsule, std::ptr::null::<c_char>()) };
    if state.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: the box lives as long as the capsule, which the function holds.
    let state = unsafe { &*state.cast::<Held>() };
    // PY_VECTORCALL_ARGUMENTS_OFFSET, the top bit, says the caller's slot before `args`
    // may be borrowed; it is not part of the count (`PyVectorcall_NARGS`).
    let positional = usize::try_from(nargs & ffi::Py_ssize_t::MAX).unwrap_or(0);
    // SAFETY: see above: NULL or a borrowed tuple.
    let names = unsafe { Borrowed::from_ptr_or_opt(py, kwnames) }
        .map(|names| names.cast::<PyTuple>())
        .transpose()
        .map_err(|_| PySystemError::new_err("keyword names are not a tuple"))?;
    let keywords = names.map_or(0, |n| n.len());
    if positional != 1 {
        return Err(PyTypeError::new_err(format!(
            "emit() takes the event's name, then its arguments by keyword: emit(\"user_joined\", name=...); {positional} positional arguments were given"
        )));
    }
    // SAFETY: `args` holds `positional + keywords` borrowed objects.
    let given = unsafe { std::slice::from_raw_parts(args, positional + keywords) };
    // SAFETY: each pointer is a live object borrowed for the call.
    let borrowed = |ptr: &*mut ffi::PyObject| unsafe { Borrowed::from_ptr(py, *ptr) };
    let first = borrowed(&given[0]);
    let event = first.cast::<PyString>().map_err(|_| {
        let kind = first.get_type().name().map(|n| n.to_string());
        PyTypeError::new_err(format!(
            "emit(): the event's name must be a str, not `{}`",
            kind.unwrap_or_default()
        ))
    })?;
    let keywords = Keywords {
        py,
        names,
        values: &given[1..],
    };
    Ok(state.emit(py, &event, &keywords, true)?.into_ptr())
}
