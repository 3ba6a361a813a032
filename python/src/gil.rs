//! When an emit releases the GIL around native dispatch.
//!
//! Releasing it lets the program's other Python threads run while native callbacks do:
//! threads that emit at once dispatch in parallel. With no other Python thread there is
//! no one to hand it to, and the release and the taking back (about a quarter of an emit
//! to one short native callback) buy nothing; CPython's own modules keep the GIL for work
//! too short to share (`hashlib` under 2 KiB). So an emit keeps it when this is the main
//! thread and no thread started by `threading` or `_thread` is running, and only when no
//! Python callback of this host is in the generation: then no callback, native or nested,
//! can need the GIL on another thread while this one holds it. Any other thread, started
//! at any time, makes the next emit release it again.
//!
//! Threads that a C extension creates and enters Python from (`PyGILState_Ensure`) are
//! not counted: they wait for the GIL while a native callback of a single-threaded
//! program runs, as they wait for any C extension that keeps it.

use std::ffi::c_ulong;

use pyo3::ffi;
use pyo3::prelude::*;

/// What tells whether the emitting thread is the program's only Python thread.
pub(crate) struct Threads {
    /// `_thread._count`: how many threads started by `_thread` (and so by `threading`)
    /// are running, the main thread left out.
    count: Py<PyAny>,
    /// The main thread's identity (`threading.main_thread().ident`), as CPython's C API
    /// gives it (`unsigned long`).
    main: c_ulong,
}

impl Threads {
    /// Reads what it needs from `_thread` and `threading`.
    pub(crate) fn new(py: Python<'_>) -> PyResult<Threads> {
        let count = py.import("_thread")?.getattr("_count")?.unbind();
        let main = py
            .import("threading")?
            .call_method0("main_thread")?
            .getattr("ident")?
            .extract()?;
        Ok(Threads { count, main })
    }

    /// Whether this is the main thread and no other thread of the program's runs Python
    /// code (see the module's documentation). Any doubt answers `false`.
    pub(crate) fn alone(&self, py: Python<'_>) -> bool {
        // SAFETY: a plain function of CPython's, which needs the GIL (held: `py`).
        let this = unsafe { ffi::PyThread_get_thread_ident() };
        if this != self.main {
            return false;
        }
        // SAFETY: `count` is a live callable (held by `self`); a NULL argument tuple calls it
        // without arguments. It returns a new reference, or NULL with an exception set.
        let running =
            unsafe { ffi::PyObject_CallObject(self.count.as_ptr(), std::ptr::null_mut()) };
        // SAFETY: as said above.
        let Ok(running) = (unsafe { Bound::from_owned_ptr_or_err(py, running) }) else {
            return false;
        };
        // SAFETY: `running` is a live object; the call answers -1 with an exception set
        // for anything but an int that fits.
        match unsafe { ffi::PyLong_AsSsize_t(running.as_ptr()) } {
            0 => true,
            -1 => {
                drop(PyErr::take(py));
                false
            }
            _ => false,
        }
    }
}
