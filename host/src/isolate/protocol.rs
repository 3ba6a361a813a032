//! The frames between the host and a worker process: a 4-byte little-endian length, then a
//! message whose first byte says what it is. Values travel in a compact binary form that
//! keeps every kind (bytes stay bytes, floats keep their bits), nested no deeper than the
//! host accepts anywhere else.

use std::io::{self, Read, Write};

use abi_stable::std_types::RString;
use switchboard_plugin_api::{Entry, Error as PluginError, Value, ValueView};

use super::MAX_DEPTH as MAX_VALUE_DEPTH;

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

impl ToWorker {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            ToWorker::Load {
                plugin,
                library,
                manifest_dir,
            } => {
                w.u8(LOAD);
                w.str(plugin);
                w.str(library);
                w.str(manifest_dir);
            }
            ToWorker::Init { config } => {
                w.u8(INIT);
                w.value(config);
            }
            ToWorker::Call(call) => return encode_calls(&[call.as_ref()]),
            ToWorker::Calls(calls) => {
                return encode_calls(&calls.iter().map(WireCall::as_ref).collect::<Vec<_>>())
            }
            ToWorker::Emitted(result) => {
                w.u8(EMITTED);
                match result {
                    Ok(outcomes) => {
                        w.u8(0);
                        w.u32(outcomes.len() as u32);
                        for (plugin, callback, result) in outcomes {
                            w.str(plugin);
                            w.str(callback);
                            w.result(result);
                        }
                    }
                    Err(error) => {
                        w.u8(1);
                        w.error(error);
                    }
                }
            }
            ToWorker::Control {
                operation,
                argument,
            } => {
                w.u8(CONTROL);
                w.str(operation);
                w.value(argument);
            }
            ToWorker::Shutdown => w.u8(SHUTDOWN),
        }
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<ToWorker, WireError> {
        let mut r = Reader(bytes);
        let message = match r.u8()? {
            LOAD => ToWorker::Load {
                plugin: r.string()?,
                library: r.string()?,
                manifest_dir: r.string()?,
            },
            INIT => ToWorker::Init {
                config: r.value(0)?,
            },
            CALL => ToWorker::Call(r.call()?),
            CALLS => {
                let count = r.count()?;
                let mut calls = Vec::with_capacity(count);
                for _ in 0..count {
                    calls.push(r.call()?);
                }
                ToWorker::Calls(calls)
            }
            EMITTED => ToWorker::Emitted(match r.u8()? {
                0 => {
                    let count = r.count()?;
                    let mut outcomes = Vec::with_capacity(count);
                    for _ in 0..count {
                        outcomes.push((r.string()?, r.string()?, r.result()?));
                    }
                    Ok(outcomes)
                }
                _ => Err(r.error()?),
            }),
            CONTROL => ToWorker::Control {
                operation: r.string()?,
                argument: r.value(0)?,
            },
            SHUTDOWN => ToWorker::Shutdown,
            other => return Err(WireError::Broken(format!("unknown message {other}"))),
        };
        r.end()?;
        Ok(message)
    }
}

impl FromWorker {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            FromWorker::Hello { version, pid } => {
                w.u8(HELLO);
                w.u32(*version);
                w.u32(*pid);
            }
            FromWorker::Loaded {
                name,
                version,
                api_version,
                features,
                callbacks,
                emits,
            } => {
                w.u8(LOADED);
                w.str(name);
                w.str(version);
                w.str(api_version);
                w.strings(features);
                w.u32(callbacks.len() as u32);
                for (event, callback, priority, id, reads) in callbacks {
                    w.str(event);
                    w.str(callback);
                    w.u32(*priority as u32);
                    w.u32(*id);
                    match reads {
                        Some(reads) => {
                            w.u8(1);
                            w.pairs(reads);
                        }
                        None => w.u8(0),
                    }
                }
                w.u32(emits.len() as u32);
                for (event, args) in emits {
                    w.str(event);
                    w.pairs(args);
                }
            }
            FromWorker::LoadFailed { kind, message } => {
                w.u8(LOAD_FAILED);
                w.str(kind);
                w.str(message);
            }
            FromWorker::Done(result) => {
                w.u8(DONE);
                w.result(result);
            }
            FromWorker::Result { status, result } => {
                w.u8(RESULT);
                w.u8(*status);
                match result {
                    Some(result) => {
                        w.u8(1);
                        w.result(result);
                    }
                    None => w.u8(0),
                }
            }
            FromWorker::Log { level, message } => {
                w.u8(LOG);
                w.u8(*level);
                w.str(message);
            }
            FromWorker::Emit { event, args } => {
                w.u8(EMIT);
                w.str(event);
                w.u32(args.len() as u32);
                for (name, value) in args {
                    w.str(name);
                    w.value(value);
                }
            }
        }
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<FromWorker, WireError> {
        let mut r = Reader(bytes);
        let message = match r.u8()? {
            HELLO => FromWorker::Hello {
                version: r.u32()?,
                pid: r.u32()?,
            },
            LOADED => {
                let name = r.string()?;
                let version = r.string()?;
                let api_version = r.string()?;
                let features = r.strings()?;
                let count = r.count()?;
                let mut callbacks = Vec::with_capacity(count);
                for _ in 0..count {
                    let event = r.string()?;
                    let callback = r.string()?;
                    let priority = r.u32()? as i32;
                    let id = r.u32()?;
                    let reads = match r.u8()? {
                        0 => None,
                        _ => Some(r.pairs()?),
                    };
                    callbacks.push((event, callback, priority, id, reads));
                }
                let count = r.count()?;
                let mut emits = Vec::with_capacity(count);
                for _ in 0..count {
                    emits.push((r.string()?, r.pairs()?));
                }
                FromWorker::Loaded {
                    name,
                    version,
                    api_version,
                    features,
                    callbacks,
                    emits,
                }
            }
            LOAD_FAILED => FromWorker::LoadFailed {
                kind: r.string()?,
                message: r.string()?,
            },
            DONE => FromWorker::Done(r.result()?),
            RESULT => {
                let status = r.u8()?;
                let result = match r.u8()? {
                    0 => None,
                    _ => Some(r.result()?),
                };
                FromWorker::Result { status, result }
            }
            LOG => FromWorker::Log {
                level: r.u8()?,
                message: r.string()?,
            },
            EMIT => {
                let event = r.string()?;
                let count = r.count()?;
                let mut args = Vec::with_capacity(count);
                for _ in 0..count {
                    args.push((r.string()?, r.value(0)?));
                }
                FromWorker::Emit { event, args }
            }
            other => return Err(WireError::Broken(format!("unknown message {other}"))),
        };
        r.end()?;
        Ok(message)
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn str(&mut self, v: &str) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v.as_bytes());
    }

    fn call(&mut self, call: &CallRef<'_>) {
        self.u32(call.callback);
        self.u64(call.request);
        self.str(call.event_id);
        self.str(call.event);
        let count = call.names.len().min(call.values.len());
        self.u32(count as u32);
        for (index, value) in call.values[..count].iter().enumerate() {
            self.str(call.names.get(index));
            self.value(value);
        }
    }

    fn strings(&mut self, v: &[String]) {
        self.u32(v.len() as u32);
        for s in v {
            self.str(s);
        }
    }

    fn pairs(&mut self, v: &[(String, String)]) {
        self.u32(v.len() as u32);
        for (a, b) in v {
            self.str(a);
            self.str(b);
        }
    }

    fn value(&mut self, v: &Value<'_>) {
        match v.view() {
            ValueView::Null => self.u8(0),
            ValueView::Bool(b) => {
                self.u8(1);
                self.u8(u8::from(b));
            }
            ValueView::Int(i) => {
                self.u8(2);
                self.u64(i as u64);
            }
            ValueView::Float(f) => {
                self.u8(3);
                self.u64(f.to_bits());
            }
            ValueView::Str(s) => {
                self.u8(4);
                self.str(s);
            }
            ValueView::Bytes(b) => {
                self.u8(5);
                self.u32(b.len() as u32);
                self.0.extend_from_slice(b);
            }
            ValueView::List(items) => {
                self.u8(6);
                self.u32(items.len() as u32);
                for item in items {
                    self.value(item);
                }
            }
            ValueView::Map(entries) => {
                self.u8(7);
                self.u32(entries.len() as u32);
                for entry in entries {
                    self.str(entry.key());
                    self.value(entry.value());
                }
            }
        }
    }

    fn error(&mut self, e: &PluginError) {
        self.str(e.message());
        match e.help() {
            Some(help) => {
                self.u8(1);
                self.str(help);
            }
            None => self.u8(0),
        }
        self.str(e.kind_name());
    }

    fn result(&mut self, r: &Result<Value<'static>, PluginError>) {
        match r {
            Ok(value) => {
                self.u8(0);
                self.value(value);
            }
            Err(error) => {
                self.u8(1);
                self.error(error);
            }
        }
    }
}

struct Reader<'b>(&'b [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Broken("a message shorter than it says".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(bytes))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(bytes))
    }

    /// A count of items, each at least one byte: never more than the bytes left, so a
    /// forged count cannot make the reader allocate more than the frame.
    fn count(&mut self) -> Result<usize, WireError> {
        let count = self.u32()? as usize;
        if count > self.0.len() {
            return Err(WireError::Broken(format!(
                "a count of {count} with {} bytes left",
                self.0.len()
            )));
        }
        Ok(count)
    }

    fn string(&mut self) -> Result<String, WireError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| WireError::Broken("text that is not UTF-8".into()))
    }

    fn call(&mut self) -> Result<WireCall, WireError> {
        let callback = self.u32()?;
        let request = self.u64()?;
        let event_id = self.string()?;
        let event = self.string()?;
        let count = self.count()?;
        let mut names = Vec::with_capacity(count);
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            names.push(self.string()?);
            values.push(self.value(0)?);
        }
        Ok(WireCall {
            callback,
            request,
            event_id,
            event,
            names,
            values,
        })
    }

    fn strings(&mut self) -> Result<Vec<String>, WireError> {
        let count = self.count()?;
        (0..count).map(|_| self.string()).collect()
    }

    fn pairs(&mut self) -> Result<Vec<(String, String)>, WireError> {
        let count = self.count()?;
        (0..count)
            .map(|_| Ok((self.string()?, self.string()?)))
            .collect()
    }

    fn value(&mut self, depth: usize) -> Result<Value<'static>, WireError> {
        if depth > MAX_VALUE_DEPTH {
            return Err(WireError::Broken(format!(
                "a value nested deeper than {MAX_VALUE_DEPTH} levels"
            )));
        }
        Ok(match self.u8()? {
            0 => Value::NULL,
            1 => Value::from(self.u8()? != 0),
            2 => Value::from(self.u64()? as i64),
            3 => Value::from(f64::from_bits(self.u64()?)),
            4 => Value::from(self.string()?),
            5 => {
                let len = self.u32()? as usize;
                Value::bytes(self.take(len)?.to_vec())
            }
            6 => {
                let count = self.count()?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::list(items)
            }
            7 => {
                let count = self.count()?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = self.string()?;
                    entries.push(Entry::new(key, self.value(depth + 1)?));
                }
                Value::map_from_entries(entries)
            }
            other => return Err(WireError::Broken(format!("unknown value kind {other}"))),
        })
    }

    fn error(&mut self) -> Result<PluginError, WireError> {
        let message = self.string()?;
        let help = match self.u8()? {
            0 => None,
            _ => Some(self.string()?),
        };
        let mut error = match self.string()?.as_str() {
            "panic" => PluginError::panicked(message),
            "skipped" => PluginError::skipped(message),
            "crashed" => PluginError::crashed(message),
            "timed_out" => PluginError::timed_out(message),
            _ => PluginError::new(message),
        };
        if let Some(help) = help {
            error = error.with_help(help);
        }
        Ok(error)
    }

    fn result(&mut self) -> Result<Result<Value<'static>, PluginError>, WireError> {
        Ok(match self.u8()? {
            0 => Ok(self.value(0)?),
            _ => Err(self.error()?),
        })
    }

    fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Broken(format!(
                "{} bytes after the message",
                self.0.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_every_kind_round_trip() {
        let value = Value::map([
            ("n", Value::NULL),
            ("b", Value::from(true)),
            ("i", Value::from(-7)),
            ("f", Value::from(f64::NAN)),
            ("s", Value::from("é")),
            ("y", Value::bytes(vec![0u8, 255])),
            ("l", Value::list([Value::from(1), Value::list([])])),
        ]);
        let call = WireCall {
            callback: 3,
            request: 9,
            event_id: "signup-7".into(),
            event: "e".into(),
            names: vec!["v".into()],
            values: vec![value.clone()],
        };
        let calls = ToWorker::Calls(vec![call.clone(), call]);
        let ToWorker::Calls(calls) = ToWorker::decode(&calls.encode()).unwrap() else {
            panic!("not calls");
        };
        assert_eq!(calls.len(), 2);
        let WireCall {
            values, event_id, ..
        } = &calls[1];
        assert_eq!(event_id, "signup-7");
        assert_eq!(
            values[0].get("y").unwrap().as_bytes(),
            Some(&[0u8, 255][..])
        );
        assert!(values[0].get("f").unwrap().as_f64().unwrap().is_nan());
        assert_eq!(values[0].get("s"), value.get("s"));
    }

    #[test]
    fn hostile_frames_are_refused_not_trusted() {
        // A count far larger than the frame.
        let mut forged = vec![CALL];
        forged.extend_from_slice(&0u32.to_le_bytes());
        forged.extend_from_slice(&0u64.to_le_bytes());
        forged.extend_from_slice(&1u32.to_le_bytes());
        forged.push(b'e');
        forged.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ToWorker::decode(&forged),
            Err(WireError::Broken(_))
        ));
        // Nesting past the limit.
        let mut deep = Value::NULL;
        for _ in 0..(MAX_VALUE_DEPTH + 2) {
            deep = Value::list([deep]);
        }
        let init = ToWorker::Init { config: deep };
        assert!(matches!(
            ToWorker::decode(&init.encode()),
            Err(WireError::Broken(_))
        ));
        // Truncated, trailing bytes, unknown tags.
        assert!(ToWorker::decode(&[]).is_err());
        assert!(ToWorker::decode(&[SHUTDOWN, 0]).is_err());
        assert!(FromWorker::decode(&[200]).is_err());
        let mut frame: &[u8] = &[0, 0, 0, 0];
        assert!(matches!(read_frame(&mut frame), Err(WireError::Broken(_))));
        let mut frame: &[u8] = &[5, 0, 0, 0, 1];
        assert!(matches!(read_frame(&mut frame), Err(WireError::Broken(_))));
    }
}
