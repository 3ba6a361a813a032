//! The frames between the host and a worker process: a 4-byte little-endian length, then a
//! message whose first byte says what it is. Values travel in a compact binary form that
//! keeps every kind (bytes stay bytes, floats keep their bits), nested no deeper than the
//! host accepts anywhere else.
//!
//! Here: the frames, their limits and the messages' types; `messages` encodes and
//! decodes each message, `wire` is the binary form of its parts (values, calls, errors).

use std::io::{self, Read, Write};

use abi_stable::std_types::RString;
use switchboard_plugin_api::{Error as PluginError, Value};

use super::MAX_DEPTH as MAX_VALUE_DEPTH;
use wire::Writer;

mod messages;
#[cfg(test)]
mod tests;
mod wire;

/// The protocol's version, in the worker's hello: a host refuses a worker that speaks
/// another one (a `switchboard` binary from another release).
pub(crate) const VERSION: u32 = 2;

/// The largest frame either side accepts: 64 MiB, the bound of everything else a worker
/// sends (a result, a log line, an emit).
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// The frame limit in words, for errors: `64 MiB`.
pub(crate) fn frame_limit() -> String {
    format!("{} MiB", MAX_FRAME >> 20)
}

/// Why a message of `bytes` bytes encoded cannot travel in one frame, for an error.
pub(crate) fn over_frame(what: &str, bytes: usize) -> String {
    format!(
        "{what} is {bytes} bytes encoded, over the {} limit of one frame between the host and a worker process",
        frame_limit()
    )
}

/// One callback's outcome in a nested emit: plugin, callback, result.
pub(crate) type NestedOutcome = (String, String, Result<Value<'static>, PluginError>);

/// A message to a worker.
#[derive(Debug)]
pub(crate) enum ToWorker {
    /// Open the library (with the host's loader and its checks) for the manifest entry.
    Load {
        plugin: String,
        library: String,
        manifest_dir: String,
    },
    /// Run the plugin's `init` with its config.
    Init { config: Value<'static> },
    /// Run one callback.
    Call(WireCall),
    /// Run callbacks one after the other, answering each with its own `Result` frame as it
    /// finishes (several events' calls in one frame, under `run`).
    Calls(Vec<WireCall>),
    /// The outcomes of an emit the worker asked for: `(plugin, callback, result)`.
    Emitted(Result<Vec<NestedOutcome>, PluginError>),
    /// Run a control operation.
    Control {
        operation: String,
        argument: Value<'static>,
    },
    /// Run the plugin's `shutdown`, then exit.
    Shutdown,
}

/// One callback to run: which, for which request, and the event's arguments by name.
#[derive(Debug, Clone)]
pub(crate) struct WireCall {
    pub(crate) callback: u32,
    pub(crate) request: u64,
    pub(crate) event_id: String,
    pub(crate) event: String,
    pub(crate) names: Vec<String>,
    pub(crate) values: Vec<Value<'static>>,
}

impl WireCall {
    fn as_ref(&self) -> CallRef<'_> {
        CallRef {
            callback: self.callback,
            request: self.request,
            event_id: &self.event_id,
            event: &self.event,
            names: Names::Owned(&self.names),
            values: &self.values,
        }
    }
}

/// A call as the host sends it, borrowing the event's arguments.
pub(crate) struct CallRef<'a> {
    pub(crate) callback: u32,
    pub(crate) request: u64,
    /// The id of the event, as its callbacks see it.
    pub(crate) event_id: &'a str,
    pub(crate) event: &'a str,
    pub(crate) names: Names<'a>,
    pub(crate) values: &'a [Value<'a>],
}

/// Argument names, as the host or a decoded frame holds them.
pub(crate) enum Names<'a> {
    Abi(&'a [RString]),
    Owned(&'a [String]),
}

/// One `Call` frame's body, or one `Calls` frame's for several calls.
pub(crate) fn encode_calls(calls: &[CallRef<'_>]) -> Vec<u8> {
    let mut w = Writer::default();
    if calls.len() != 1 {
        w.u8(CALLS);
        w.u32(calls.len() as u32);
    } else {
        w.u8(CALL);
    }
    for call in calls {
        w.call(call);
    }
    w.0
}

impl Names<'_> {
    fn len(&self) -> usize {
        match self {
            Names::Abi(names) => names.len(),
            Names::Owned(names) => names.len(),
        }
    }

    fn get(&self, index: usize) -> &str {
        match self {
            Names::Abi(names) => names[index].as_str(),
            Names::Owned(names) => names[index].as_str(),
        }
    }
}

/// A registration as the worker reports it: event, name, priority, id, reads.
pub(crate) type WireRegistration = (String, String, i32, u32, Option<Vec<(String, String)>>);

/// A message from a worker.
#[derive(Debug)]
pub(crate) enum FromWorker {
    /// The first frame: the protocol version and the worker's process id.
    Hello { version: u32, pid: u32 },
    /// The library is open.
    Loaded {
        name: String,
        version: String,
        api_version: String,
        features: Vec<String>,
        callbacks: Vec<WireRegistration>,
        emits: Vec<(String, Vec<(String, String)>)>,
    },
    /// It could not be opened: the load error's kind and message.
    LoadFailed { kind: String, message: String },
    /// `init`, `shutdown` or a control operation finished.
    Done(Result<Value<'static>, PluginError>),
    /// A callback finished: its status and, unless null, its value or error.
    Result {
        status: u8,
        result: Option<Result<Value<'static>, PluginError>>,
    },
    /// A log line from the plugin.
    Log { level: u8, message: String },
    /// The plugin emits an event from inside a callback.
    Emit {
        event: String,
        args: Vec<(String, Value<'static>)>,
    },
}

/// Why a frame could not be read or made sense of.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The other side closed the pipe.
    Closed,
    /// Reading or writing failed.
    Io(io::Error),
    /// The bytes are not a frame of this protocol.
    Broken(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Closed => f.write_str("the pipe closed"),
            WireError::Io(e) => write!(f, "{e}"),
            WireError::Broken(why) => write!(f, "a broken frame ({why})"),
        }
    }
}

/// Reads one frame's bytes.
pub(crate) fn read_frame(input: &mut impl Read) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        Err(e) => return Err(WireError::Io(e)),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(WireError::Broken(format!("a frame of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => WireError::Broken("a truncated frame".into()),
        _ => WireError::Io(e),
    })?;
    Ok(body)
}

/// Writes one frame and flushes it.
pub(crate) fn write_frame(output: &mut impl Write, body: &[u8]) -> Result<(), WireError> {
    if body.len() > MAX_FRAME {
        return Err(WireError::Broken(format!(
            "a message of {} bytes, over the {MAX_FRAME}-byte limit",
            body.len()
        )));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    output.write_all(&frame).map_err(WireError::Io)?;
    output.flush().map_err(WireError::Io)
}

// Message tags.
const LOAD: u8 = 1;
const INIT: u8 = 2;
const CALL: u8 = 3;
const EMITTED: u8 = 4;
const CONTROL: u8 = 5;
const SHUTDOWN: u8 = 6;
const CALLS: u8 = 7;
const HELLO: u8 = 64;
const LOADED: u8 = 65;
const LOAD_FAILED: u8 = 66;
const DONE: u8 = 67;
const RESULT: u8 = 68;
const LOG: u8 = 69;
const EMIT: u8 = 70;
