//! `switchboard._native`: the switchboard host for Python programs. The package around it
//! (`python/switchboard/`) adds the decorator, the exception classes and the type stubs;
//! everything that touches the host is here.
//!
//! - `host`: the `Host` class: open a manifest, emit, register Python callbacks,
//!   reload, status, shutdown.
//! - `outcomes`: what an emit returns, read lazily from the host's own outcomes.
//! - `keywords`: `host.emit` as a vectorcall function, and the keywords of a call.
//! - `shapes`: the argument layout of a call site, learned once, for later emits.
//! - `callbacks`: a Python callable as an application callback of the host.
//! - `gil`: when an emit releases the GIL around native dispatch.
//! - `values` and `errors`: what crosses, both ways, and the exceptions raised.
#![deny(missing_docs)]
// Host errors carry the names and paths a user needs, built on the cold path (as in the
// host library, which allows the same).
#![allow(clippy::result_large_err)]

mod callbacks;
mod errors;
mod gil;
mod host;
mod keywords;
mod outcomes;
mod shapes;
mod values;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<host::Host>()?;
    module.add_class::<outcomes::Outcome>()?;
    module.add_class::<outcomes::Outcomes>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
