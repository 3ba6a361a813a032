//! Python values to the host's values and back: `None`, `bool`, `int` (64 bits), `float`,
//! `str`, `bytes`/`bytearray`, `list`/`tuple` and `dict` with `str` keys, nested at most
//! as deep as the host allows. Anything else is a `TypeError` that names the argument
//! and where inside it the value sits.

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use switchboard::dispatch::MAX_VALUE_DEPTH;
use switchboard_plugin_api::{Value, ValueView};

/// Why a Python value cannot cross, and where inside the argument it sits.
struct Unfit {
    /// The path inside the argument, like `[2]["name"]`, built while unwinding.
    path: String,
    reason: Reason,
}

enum Reason {
    Type(String),
    Overflow,
    TooDeep,
    Key(String),
    Text,
}

/// `obj` as a host value; `what` names it in errors (`argument `email` of event
/// `user_joined``).
pub(crate) fn to_value(
    obj: &Bound<'_, PyAny>,
    what: impl Fn() -> String,
) -> PyResult<Value<'static>> {
    convert(obj, 0).map_err(|unfit| {
        let what = what();
        let at = if unfit.path.is_empty() {
            String::new()
        } else {
            format!(" at {}", unfit.path)
        };
        match unfit.reason {
            Reason::Type(name) => PyTypeError::new_err(format!(
                "{what}{at}: a `{name}` cannot be handed to callbacks; give str, int, float, bool, bytes, None, a list, a tuple or a dict with str keys"
            )),
            Reason::Overflow => PyOverflowError::new_err(format!(
                "{what}{at}: the int does not fit in 64 bits (from -2**63 to 2**63-1); give it as a str or a float"
            )),
            Reason::TooDeep => PyValueError::new_err(format!(
                "{what}: nested deeper than {MAX_VALUE_DEPTH} levels"
            )),
            Reason::Key(name) => PyTypeError::new_err(format!(
                "{what}{at}: dict keys must be str, not `{name}`"
            )),
            Reason::Text => PyValueError::new_err(format!(
                "{what}{at}: the str is not valid Unicode text (it holds a lone surrogate)"
            )),
        }
    })
}

fn unfit(reason: Reason) -> Unfit {
    Unfit {
        path: String::new(),
        reason,
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
}

fn convert(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value<'static>, Unfit> {
    if obj.is_none() {
        return Ok(Value::NULL);
    }
    // `bool` before `int`: in Python a bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::from(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map(Value::from)
            .map_err(|_| unfit(Reason::Overflow));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::from(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s
            .to_cow()
            .map(|text| Value::from(text.into_owned()))
            .map_err(|_| unfit(Reason::Text));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::bytes(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::bytes(b.to_vec()));
    }
    if depth >= MAX_VALUE_DEPTH {
        let nested = obj.is_instance_of::<PyList>()
            || obj.is_instance_of::<PyTuple>()
            || obj.is_instance_of::<PyDict>();
        if nested {
            return Err(unfit(Reason::TooDeep));
        }
    }
    let item = |index: usize, item: Bound<'_, PyAny>| {
        convert(&item, depth + 1).map_err(|mut unfit| {
            unfit.path = format!("[{index}]{}", unfit.path);
            unfit
        })
    };
    if let Ok(list) = obj.cast::<PyList>() {
        let items: Result<Vec<_>, _> = list.iter().enumerate().map(|(i, v)| item(i, v)).collect();
        return Ok(Value::list(items?));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let items: Result<Vec<_>, _> = tuple.iter().enumerate().map(|(i, v)| item(i, v)).collect();
        return Ok(Value::list(items?));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(unfit(Reason::Key(type_name(&key))));
            };
            let key = key.to_cow().map_err(|_| unfit(Reason::Text))?.into_owned();
            let value = convert(&value, depth + 1).map_err(|mut unfit| {
                unfit.path = format!("[{key:?}]{}", unfit.path);
                unfit
            })?;
            entries.push((key, value));
        }
        return Ok(Value::map(entries));
    }
    Err(unfit(Reason::Type(type_name(obj))))
}

/// A host value as a Python object: lists as `list`, maps as `dict`, bytes as `bytes`.
pub(crate) fn to_python<'py>(py: Python<'py>, value: &Value<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value.view() {
        ValueView::Null => py.None().into_bound(py),
        ValueView::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        ValueView::Int(i) => i.into_pyobject(py)?.into_any(),
        ValueView::Float(f) => PyFloat::new(py, f).into_any(),
        ValueView::Str(s) => match original(py, s) {
            Some(object) => object,
            None => PyString::new(py, s).into_any(),
        },
        ValueView::Bytes(b) => PyBytes::new(py, b).into_any(),
        ValueView::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        ValueView::Map(entries) => {
            let dict = PyDict::new(py);
            for entry in entries {
                dict.set_item(entry.key(), to_python(py, entry.value())?)?;
            }
            dict.into_any()
        }
    })
}

/// A `str` an emit from Python handed over, whose text the host borrowed in place.
#[derive(Clone, Copy)]
pub(crate) struct Original {
    text: *const u8,
    len: usize,
    object: *mut pyo3::ffi::PyObject,
}

impl Original {
    /// `object`, a `str` whose UTF-8 text is `text`, borrowed from it.
    pub(crate) fn new(object: &Bound<'_, PyAny>, text: &str) -> Original {
        Original {
            text: text.as_ptr(),
            len: text.len(),
            object: object.as_ptr(),
        }
    }
}

thread_local! {
    /// The `str`s of the emit from Python running on this thread, if one is.
    static ORIGINALS: std::cell::Cell<(*const Original, usize)> =
        const { std::cell::Cell::new((std::ptr::null(), 0)) };
}

/// While alive, a Python callback handed one of `originals`' texts gets the very `str`
/// the emit was given, instead of a new one with the same text: Python values are
/// immutable, so the two cannot be told apart but by their cost.
pub(crate) struct OriginalsScope {
    previous: (*const Original, usize),
}

impl OriginalsScope {
    /// Publishes `originals` for this thread until the scope is dropped. They must stay
    /// alive, and their texts unmoved, for as long (the emit holds them).
    pub(crate) fn enter(originals: &[Original]) -> OriginalsScope {
        OriginalsScope {
            previous: ORIGINALS.with(|o| o.replace((originals.as_ptr(), originals.len()))),
        }
    }
}

impl Drop for OriginalsScope {
    fn drop(&mut self) {
        ORIGINALS.with(|o| o.set(self.previous));
    }
}

/// The original `str` whose text `text` is, if this thread's emit handed it over.
fn original<'py>(py: Python<'py>, text: &str) -> Option<Bound<'py, PyAny>> {
    let (start, count) = ORIGINALS.with(std::cell::Cell::get);
    if count == 0 {
        return None;
    }
    // SAFETY: published by `OriginalsScope::enter` from a slice that its emit keeps alive
    // until the scope, which is on this thread's stack above us, is dropped.
    let originals = unsafe { std::slice::from_raw_parts(start, count) };
    let found = originals
        .iter()
        .find(|o| o.text == text.as_ptr() && o.len == text.len())?;
    // SAFETY: the emit holds a reference to the object for as long as the scope lives;
    // the `str`'s text is the same bytes (its UTF-8 form is kept inside it), so it is the
    // value asked for. `from_borrowed_ptr` takes a reference of our own.
    Some(unsafe { Bound::from_borrowed_ptr(py, found.object) })
}
