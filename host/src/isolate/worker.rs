//! The worker's side: what `switchboard __worker` runs. It opens one plugin library with the
//! host's own loader (the same checks and messages), then serves the host's calls over its
//! standard input and a private copy of its standard output, until the host says stop or
//! goes away.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use switchboard_plugin_api::abi::{
    feature, operation, status, ArgsRaw, HostApi, HostApi_TO, HostBox, HostRef, Outcome, PluginBox,
};
use switchboard_plugin_api::{Entry, Error as PluginError, Value};

use super::protocol::{
    over_frame, read_frame, write_frame, FromWorker, ToWorker, WireCall, WireError, MAX_FRAME,
    VERSION,
};
use crate::load::{Library, Loader};

/// The pipes to the host: frames in, frames out (shared with the plugin's own threads,
/// which may log).
struct Channel {
    input: Mutex<BufReader<Box<dyn Read + Send>>>,
    output: Mutex<BufWriter<Box<dyn Write + Send>>>,
}

impl Channel {
    /// Sends a message; one too large for a frame is replaced by an error of the same
    /// kind that says so (the plugin's answer is refused, the worker goes on).
    fn send(&self, message: &FromWorker) -> Result<(), WireError> {
        let mut body = message.encode();
        if body.len() > MAX_FRAME {
            let too_large = |what: &str| {
                PluginError::new(over_frame(what, body.len())).with_help(
                    "return less (write large data to a file and return its path), or run this plugin in-process",
                )
            };
            let instead = match message {
                FromWorker::Result { .. } => FromWorker::Result {
                    status: status::ERROR,
                    result: Some(Err(too_large("the callback's result"))),
                },
                FromWorker::Done(_) => FromWorker::Done(Err(too_large("the answer"))),
                // Emits and logs are bounded where they are made.
                _ => return Err(WireError::Broken(over_frame("a message", body.len()))),
            };
            body = instead.encode();
        }
        self.send_encoded(&body)
    }

    /// Sends a message already encoded (and checked against the frame limit).
    fn send_encoded(&self, body: &[u8]) -> Result<(), WireError> {
        let mut output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *output, body)
    }

    fn recv(&self) -> Result<ToWorker, WireError> {
        let mut input = self.input.lock().unwrap_or_else(|e| e.into_inner());
        ToWorker::decode(&read_frame(&mut *input)?)
    }
}

/// Serves one plugin for the host on the other end of `input` and `output`; returns the
/// process's exit code. The caller has made sure nothing else writes to `output` (the
/// plugin's own prints go to standard error).
pub fn serve(input: Box<dyn Read + Send>, output: Box<dyn Write + Send>) -> i32 {
    let channel = Arc::new(Channel {
        input: Mutex::new(BufReader::new(input)),
        output: Mutex::new(BufWriter::new(output)),
    });
    let hello = FromWorker::Hello {
        version: VERSION,
        pid: std::process::id(),
    };
    if channel.send(&hello).is_err() {
        return 1;
    }
    let (plugin, manifest_dir, library) = match channel.recv() {
        Ok(ToWorker::Load {
            plugin,
            library,
            manifest_dir,
        }) => match Loader::in_place().open(&plugin, Path::new(&library)) {
            Ok(opened) => (plugin, manifest_dir, opened),
            Err(error) => {
                let _ = channel.send(&FromWorker::LoadFailed {
                    kind: error.kind().to_owned(),
                    message: error.to_string(),
                });
                return 2;
            }
        },
        _ => return 1,
    };
    if channel.send(&loaded(&library)).is_err() {
        return 1;
    }
    let mut session = Session {
        host: WorkerHost {
            channel,
            plugin,
            manifest_dir,
            instance: Arc::new(OnceLock::new()),
            in_call: false,
            event_id: None,
        },
        library,
        names: HashMap::new(),
    };
    session.run()
}

/// What the host is told about the opened library.
fn loaded(library: &Library) -> FromWorker {
    FromWorker::Loaded {
        name: library.info.name.clone(),
        version: library.info.version.clone(),
        api_version: library.info.api_version.clone(),
        features: library.info.features.clone(),
        callbacks: library
            .registrations
            .iter()
            .map(|r| {
                (
                    r.event.clone(),
                    r.callback.clone(),
                    r.priority,
                    r.id,
                    r.reads.clone(),
                )
            })
            .collect(),
        emits: library
            .emits
            .iter()
            .map(|e| (e.event.clone(), e.args.clone()))
            .collect(),
    }
}

struct Session {
    /// The plugin's host handle outside calls; the instance in it is shared with every
    /// handle, which run nested calls while the plugin emits.
    host: WorkerHost,
    library: Library,
    /// Argument names per event, kept so that every call of an event passes the same
    /// memory (the interface's promise to typed callbacks).
    names: HashMap<String, Vec<RString>>,
}

impl Session {
    fn host(&self, in_call: bool) -> WorkerHost {
        WorkerHost {
            in_call,
            ..self.host.clone()
        }
    }

    fn run(&mut self) -> i32 {
        loop {
            let message = match self.host.channel.recv() {
                Ok(message) => message,
                // The host went away: nobody is left to serve.
                Err(WireError::Closed) => return 0,
                Err(_) => return 1,
            };
            let reply = match message {
                ToWorker::Init { config } => {
                    let host = self.host(false);
                    let result = self.library.module.init(&config, host.handle());
                    FromWorker::Done(match result.into_result() {
                        Ok(instance) => {
                            let _ = self.host.instance.set(instance);
                            Ok(Value::NULL)
                        }
                        Err(error) => Err(error),
                    })
                }
                ToWorker::Call(call) => self.call(call),
                ToWorker::Calls(calls) => {
                    // Each result is written (and flushed) before the next call starts:
                    // if the plugin crashes, the host knows exactly which calls finished.
                    let mut last = None;
                    for call in calls {
                        if let Some(reply) = last.take() {
                            if self.host.channel.send(&reply).is_err() {
                                return 1;
                            }
                        }
                        last = Some(self.call(call));
                    }
                    match last {
                        Some(reply) => reply,
                        None => continue,
                    }
                }
                ToWorker::Control {
                    operation,
                    argument,
                } => {
                    let host = self.host(false);
                    FromWorker::Done(match self.host.instance.get() {
                        Some(instance) => instance
                            .control(operation.as_str().into(), &argument, host.handle())
                            .into_result(),
                        None => Err(PluginError::new("the plugin is not initialized")),
                    })
                }
                ToWorker::Shutdown => {
                    let host = self.host(false);
                    let result = match self.host.instance.get() {
                        Some(instance) => instance.shutdown(host.handle()).into_result(),
                        None => Ok(()),
                    };
                    let _ = self
                        .host
                        .channel
                        .send(&FromWorker::Done(result.map(|()| Value::NULL)));
                    return 0;
                }
                ToWorker::Load { .. } | ToWorker::Emitted(_) => {
                    FromWorker::Done(Err(PluginError::new("unexpected message")))
                }
            };
            if self.host.channel.send(&reply).is_err() {
                return 1;
            }
        }
    }

    fn call(&mut self, call: WireCall) -> FromWorker {
        let host = WorkerHost {
            event_id: Some(call.event_id),
            ..self.host(true)
        };
        let kept = match self.names.get_mut(&call.event) {
            Some(kept) => kept,
            None => self.names.entry(call.event.clone()).or_default(),
        };
        let names = &call.names;
        if kept.len() != names.len() || kept.iter().zip(names).any(|(a, b)| a.as_str() != b) {
            *kept = call.names.into_iter().map(RString::from).collect();
        }
        call_plugin(
            &host,
            call.callback,
            call.request,
            &call.event,
            kept,
            &call.values,
        )
    }
}

/// Runs one callback and makes its reply.
fn call_plugin(
    host: &WorkerHost,
    callback: u32,
    request: u64,
    event: &str,
    names: &[RString],
    values: &[Value<'static>],
) -> FromWorker {
    let Some(instance) = host.instance.get() else {
        return FromWorker::Result {
            status: status::ERROR,
            result: Some(Err(PluginError::new("the plugin is not initialized"))),
        };
    };
    let raw = ArgsRaw {
        event: event.into(),
        names: names.into(),
        values: values.into(),
        request,
    };
    // A C plugin reads the id from its call, a Rust one through the host handle.
    let event_id = host.event_id.as_deref().unwrap_or_default();
    let mut frame = crate::load::FrameSlot::new();
    let _published =
        crate::load::CFrame::publish(&mut frame, &raw, crate::event_id::EventTag::Given(event_id));
    let mut slot = RResult::ROk(Value::NULL);
    let code = instance.call(callback, &raw, host.handle(), &mut slot);
    FromWorker::Result {
        status: code,
        result: (code != status::NULL).then(|| slot.into_result()),
    }
}

/// The longest log line a worker passes on, in bytes; the rest is cut with a note.
const MAX_LOG_LINE: usize = 64 * 1024;

/// `message`, cut at [`MAX_LOG_LINE`] bytes (on a character boundary) with a note.
fn bounded_log_line(message: &str) -> String {
    if message.len() <= MAX_LOG_LINE {
        return message.to_owned();
    }
    let mut end = MAX_LOG_LINE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}... [{} more bytes cut: a log line from a worker is at most {MAX_LOG_LINE} bytes]",
        &message[..end],
        message.len() - end
    )
}

/// What a worker's host supports: no emits from a plugin's own threads (yet).
static WORKER_FEATURES: [RStr<'static>; 5] = [
    RStr::from_str(feature::EVENT_IDS),
    RStr::from_str(feature::MANIFEST_DIR),
    RStr::from_str(feature::NESTED_EMIT),
    RStr::from_str(feature::REQUEST_IDS),
    RStr::from_str(feature::CONTROL),
];

/// The host as a plugin in a worker sees it: every service is a frame to the real host.
#[derive(Clone)]
struct WorkerHost {
    channel: Arc<Channel>,
    plugin: String,
    manifest_dir: String,
    instance: Arc<OnceLock<PluginBox>>,
    /// Whether a callback is running (only then may the plugin emit).
    in_call: bool,
    /// The id of the event the running callback is called for.
    event_id: Option<String>,
}

impl WorkerHost {
    fn handle(&self) -> HostRef<'_> {
        HostApi_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

impl HostApi for WorkerHost {
    fn plugin_name(&self) -> RStr<'_> {
        RStr::from(self.plugin.as_str())
    }

    fn log(&self, level: u8, message: RStr<'_>) {
        let _ = self.channel.send(&FromWorker::Log {
            level,
            message: bounded_log_line(message.as_str()),
        });
    }

    fn emit(
        &self,
        event: RStr<'_>,
        args: RSlice<'_, Entry<'_>>,
    ) -> RResult<RVec<Outcome>, PluginError> {
        if !self.in_call {
            return RResult::RErr(PluginError::new(format!(
                "an isolated plugin can emit `{event}` only from inside a callback"
            )));
        }
        let message = FromWorker::Emit {
            event: event.to_string(),
            args: args
                .iter()
                .map(|e| (e.key().to_owned(), e.value().clone().into_owned()))
                .collect(),
        };
        let body = message.encode();
        if body.len() > MAX_FRAME {
            return RResult::RErr(
                PluginError::new(over_frame(&format!("the emit of `{event}`"), body.len()))
                    .with_help("emit smaller arguments, or run this plugin in-process"),
            );
        }
        if let Err(error) = self.channel.send_encoded(&body) {
            return RResult::RErr(PluginError::new(format!("the host is gone: {error}")));
        }
        loop {
            match self.channel.recv() {
                Ok(ToWorker::Emitted(Ok(outcomes))) => {
                    return RResult::ROk(
                        outcomes
                            .into_iter()
                            .map(|(plugin, callback, result)| {
                                Outcome::new(&plugin, &callback, result)
                            })
                            .collect(),
                    )
                }
                Ok(ToWorker::Emitted(Err(error))) => return RResult::RErr(error),
                // The emit reached this plugin's own callbacks: they run here, nested.
                Ok(ToWorker::Call(call)) => {
                    let names: Vec<RString> = call.names.into_iter().map(RString::from).collect();
                    let reply = call_plugin(
                        self,
                        call.callback,
                        call.request,
                        &call.event,
                        &names,
                        &call.values,
                    );
                    if let Err(error) = self.channel.send(&reply) {
                        return RResult::RErr(PluginError::new(format!(
                            "the host is gone: {error}"
                        )));
                    }
                }
                Ok(_) => {
                    return RResult::RErr(PluginError::new(
                        "the host answered an emit with something else",
                    ))
                }
                Err(error) => {
                    return RResult::RErr(PluginError::new(format!("the host is gone: {error}")))
                }
            }
        }
    }

    fn features(&self) -> RSlice<'static, RStr<'static>> {
        RSlice::from_slice(&WORKER_FEATURES)
    }

    fn keep(&self) -> RResult<HostBox, PluginError> {
        RResult::ROk(HostApi_TO::from_value(
            WorkerHost {
                in_call: false,
                event_id: None,
                ..self.clone()
            },
            TD_Opaque,
        ))
    }

    fn call(&self, op: RStr<'_>, _argument: &Value<'_>) -> RResult<Value<'static>, PluginError> {
        match op.as_str() {
            operation::MANIFEST_DIR => RResult::ROk(Value::from(self.manifest_dir.as_str())),
            operation::EVENT_ID => match &self.event_id {
                Some(id) => RResult::ROk(Value::from(id.as_str())),
                None => RResult::RErr(PluginError::new(crate::error::NO_EVENT_OUTSIDE_A_CALLBACK)),
            },
            _ => RResult::RErr(PluginError::unsupported(format!(
                "this host does not support the operation `{op}`"
            ))),
        }
    }
}
