//! Each message to and from a worker, encoded into a frame's body and decoded from one,
//! trusting nothing a frame says.

use super::wire::{Reader, Writer};
use super::{
    encode_calls, FromWorker, ToWorker, WireCall, WireError, CALL, CALLS, CONTROL, DONE, EMIT,
    EMITTED, HELLO, INIT, LOAD, LOADED, LOAD_FAILED, LOG, RESULT, SHUTDOWN,
};

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
