//! The host's errors as Python exceptions. The classes live in `switchboard/errors.py`,
//! named after the host's error kinds (`emit.unknown_event` is an `UnknownEventError`,
//! which is also a `LookupError`); each carries the kind as `.kind`.

use pyo3::prelude::*;
use pyo3::types::PyType;

/// An exception of the class for `kind`, with `message`.
pub(crate) fn raise(py: Python<'_>, kind: &str, message: impl Into<String>) -> PyErr {
    let message = message.into();
    let class = py
        .import("switchboard.errors")
        .and_then(|errors| errors.getattr("_class_of"))
        .and_then(|class_of| class_of.call1((kind,)))
        .and_then(|class| class.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(class) => PyErr::from_type(class, (message, kind.to_owned())),
        Err(error) => error,
    }
}

/// A host error as its exception.
pub(crate) fn host_error(py: Python<'_>, error: &switchboard::HostError) -> PyErr {
    raise(py, error.kind(), error.to_string())
}

/// A refused emit as its exception.
pub(crate) fn emit_error(py: Python<'_>, error: &switchboard::EmitError) -> PyErr {
    raise(py, error.kind(), error.to_string())
}
