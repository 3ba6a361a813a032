//! An isolated plugin: its worker processes, started lazily and restarted after a crash or
//! a timeout (with a growing pause when they crash in a row), the time limit of each call,
//! and the crash counts that can quarantine it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use abi_stable::std_types::RResult;
use switchboard_plugin_api::abi::status;
use switchboard_plugin_api::{Entry, Error as PluginError, Value};

use super::process::{Fault, WorkerProcess};
use super::protocol::{encode_calls, over_frame, CallRef, FromWorker, ToWorker, MAX_FRAME};
use super::quarantine::{QuarantineRecord, Watch};
use crate::error::LoadError;
use crate::load::{Emits, LibraryInfo, Registered};
use crate::manifest::{ProcessLimits, QuarantineSettings};
use crate::plugin_log::log;

/// How long a worker has to open its library, and to run `init` or `shutdown`.
const SETUP_WITHIN: Duration = Duration::from_secs(30);

/// The longest pause before restarting a worker that keeps crashing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// An emit an isolated callback makes (the index of its call in the batch, the event and
/// its arguments), carried out by the host: the outcomes as `(plugin, callback, result)`.
pub(crate) type NestedEmit<'a> =
    &'a dyn Fn(
        usize,
        &str,
        &[Entry<'_>],
    )
        -> Result<Vec<(String, String, Result<Value<'static>, PluginError>)>, PluginError>;

/// What an isolated library says about itself, read in a worker.
pub(crate) struct Described {
    pub(crate) info: LibraryInfo,
    pub(crate) registrations: Vec<Registered>,
    pub(crate) emits: Vec<Emits>,
}

/// Counts of an isolated plugin's faults.
#[derive(Debug, Default)]
pub(crate) struct FaultCounts {
    pub(crate) crashes: AtomicU64,
    pub(crate) kills: AtomicU64,
    pub(crate) restarts: AtomicU64,
}

/// One isolated plugin.
pub(crate) struct ProcessPlugin {
    name: String,
    /// The library as the manifest names it (for reports and the quarantine).
    library: PathBuf,
    /// Its private copy, which the workers load.
    copy: PathBuf,
    sha256: String,
    command: PathBuf,
    limits: ProcessLimits,
    manifest_dir: PathBuf,
    config: Mutex<Value<'static>>,
    workers: Vec<Mutex<Option<WorkerProcess>>>,
    next: AtomicUsize,
    /// Crashes in a row since the last call that finished: how long to pause before the
    /// next restart.
    in_a_row: AtomicU32,
    pub(crate) faults: FaultCounts,
    watch: Watch,
}

impl ProcessPlugin {
    /// Starts the plugin's first worker and has it open the library.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare(
        name: &str,
        library: &Path,
        copy: &Path,
        sha256: String,
        command: PathBuf,
        limits: ProcessLimits,
        manifest_dir: &Path,
        quarantine: QuarantineSettings,
        record: Option<QuarantineRecord>,
    ) -> Result<(ProcessPlugin, Described), LoadError> {
        let plugin = ProcessPlugin {
            name: name.to_owned(),
            library: library.to_owned(),
            copy: copy.to_owned(),
            sha256,
            command,
            limits,
            manifest_dir: manifest_dir.to_owned(),
            config: Mutex::new(Value::NULL),
            workers: (0..limits.processes.max(1))
                .map(|_| Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            in_a_row: AtomicU32::new(0),
            faults: FaultCounts::default(),
            watch: Watch::new(quarantine, record),
        };
        let (worker, described) = plugin.open().map_err(|problem| match problem {
            Opening::Load { kind, message } => LoadError::InWorker {
                plugin: name.to_owned(),
                kind,
                message,
            },
            Opening::Worker(message) => LoadError::Worker {
                plugin: name.to_owned(),
                message,
            },
        })?;
        *plugin.slot(0) = Some(worker);
        Ok((plugin, described))
    }

    fn slot(&self, index: usize) -> std::sync::MutexGuard<'_, Option<WorkerProcess>> {
        self.workers[index]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A new worker with the library open.
    fn open(&self) -> Result<(WorkerProcess, Described), Opening> {
        let mut worker = WorkerProcess::spawn(&self.command, &self.name, self.limits.memory_mb)
            .map_err(Opening::Worker)?;
        let load = ToWorker::Load {
            plugin: self.name.clone(),
            library: self.copy.to_string_lossy().into_owned(),
            manifest_dir: std::path::absolute(&self.manifest_dir)
                .unwrap_or_else(|_| self.manifest_dir.clone())
                .to_string_lossy()
                .into_owned(),
        };
        let answer = worker
            .send(&load)
            .and_then(|()| worker.recv(Some(Instant::now() + SETUP_WITHIN)));
        match answer {
            Ok(FromWorker::Loaded {
                name,
                version,
                api_version,
                features,
                callbacks,
                emits,
            }) => Ok((
                worker,
                Described {
                    info: LibraryInfo {
                        name,
                        version,
                        api_version,
                        features,
                    },
                    registrations: callbacks
                        .into_iter()
                        .map(|(event, callback, priority, id, reads)| Registered {
                            event,
                            callback,
                            priority,
                            reads,
                            id,
                        })
                        .collect(),
                    emits: emits
                        .into_iter()
                        .map(|(event, args)| Emits { event, args })
                        .collect(),
                },
            )),
            // The worker loaded the private copy; the operator knows the library's own path.
            Ok(FromWorker::LoadFailed { kind, message }) => Err(Opening::Load {
                kind,
                message: message.replace(
                    &self.copy.display().to_string(),
                    &self.library.display().to_string(),
                ),
            }),
            Ok(_) => Err(Opening::Worker(
                "the worker answered the library's opening with something else".to_owned(),
            )),
            Err(Fault::TimedOut) => Err(Opening::Worker(format!(
                "the worker did not open the library within {SETUP_WITHIN:?}"
            ))),
            Err(Fault::Died(why)) => Err(Opening::Worker(format!(
                "the worker died opening the library ({why})"
            ))),
        }
    }

    /// Runs the plugin's `init` in its first worker (later workers run it as they start).
    pub(crate) fn init(&self, config: Value<'static>) -> Result<(), PluginError> {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config.clone();
        let mut slot = self.slot(0);
        let Some(worker) = slot.as_mut() else {
            return Err(PluginError::new("the plugin's worker is not running"));
        };
        let result = init_worker(&self.name, worker, config);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// The quarantine record, while the plugin is quarantined.
    pub(crate) fn quarantined(&self) -> Option<QuarantineRecord> {
        self.watch.record()
    }

    /// The SHA-256 of the library build its workers run.
    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The plugin's limits.
    pub(crate) fn limits(&self) -> ProcessLimits {
        self.limits
    }

    /// Runs callbacks in a worker, one after the other, each within the plugin's time
    /// limit, and reports each as an in-process call would: a status, and anything but
    /// null as its result (a call not made, because the plugin was quarantined during the
    /// batch, is a `skipped` error). Several calls travel in one frame (the events of a batch under
    /// `run`); if the worker crashes or overruns on one of them, that call gets the fault
    /// and the calls after it, which never started, go to a fresh worker.
    pub(crate) fn calls(
        &self,
        generation: u64,
        calls: &[CallRef<'_>],
        names: &[&str],
        emit: NestedEmit<'_>,
        results: &mut Vec<(u8, RResult<Value<'static>, PluginError>)>,
    ) {
        let key = self as *const ProcessPlugin as usize;
        let first = results.len();
        while results.len() - first < calls.len() {
            let done = results.len() - first;
            if done > 0 {
                if let Some(record) = self.watch.record() {
                    let why = PluginError::skipped(format!(
                        "plugin `{}` is quarantined: {}",
                        self.name, record.reason
                    ))
                    .with_help(format!(
                        "a new build of its library lifts it, and so does `switchboard quarantine --clear {}`",
                        self.name
                    ));
                    results.extend(
                        (done..calls.len()).map(|_| (status::ERROR, RResult::RErr(why.clone()))),
                    );
                    return;
                }
            }
            // A callback of this plugin that emits an event this plugin also handles: the
            // nested call goes to the worker that is waiting in the emit. Otherwise a free
            // worker if there is one (a hung call must not hold others back), else the next
            // one in turn.
            let mut slot = None;
            let worker = match take_lent(key) {
                Some(worker) => worker,
                None => {
                    let mut free = self.free_slot();
                    let worker = match free.take() {
                        Some(worker) => Ok(worker),
                        None => self.restart(),
                    };
                    slot = Some(free);
                    match worker {
                        Ok(worker) => worker,
                        Err(error) => {
                            results.extend(
                                (done..calls.len())
                                    .map(|_| (status::ERROR, RResult::RErr(error.clone()))),
                            );
                            return;
                        }
                    }
                }
            };
            let back = self.exchange(
                worker,
                generation,
                &calls[done..],
                &names[done..],
                done,
                emit,
                results,
            );
            match slot {
                Some(mut slot) => *slot = back,
                None => {
                    if let Some(worker) = back {
                        lend(key, worker);
                    }
                }
            }
        }
    }

    /// A worker slot not in use, or else the next one in turn (waiting for it).
    fn free_slot(&self) -> std::sync::MutexGuard<'_, Option<WorkerProcess>> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.workers.len();
        let free = (0..count).find_map(|i| match self.workers[(first + i) % count].try_lock() {
            Ok(slot) => Some(slot),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        });
        free.unwrap_or_else(|| self.slot(first % count))
    }

    /// Calls on one worker, until all are answered or one faults: the worker back (unless
    /// it died or was killed), with one result pushed per call answered or faulted.
    /// `offset` is the first call's index in the whole batch (for nested emits).
    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        mut worker: WorkerProcess,
        generation: u64,
        calls: &[CallRef<'_>],
        names: &[&str],
        offset: usize,
        emit: NestedEmit<'_>,
        results: &mut Vec<(u8, RResult<Value<'static>, PluginError>)>,
    ) -> Option<WorkerProcess> {
        let key = self as *const ProcessPlugin as usize;
        let pid = worker.pid;
        let limit = Duration::from_millis(self.limits.timeout_ms);
        let mut deadline = Instant::now() + limit;
        let mut answered = 0;
        // As many calls as fit in one frame; the rest go in the next exchange.
        let mut sending = calls.len();
        let mut body = encode_calls(calls);
        while body.len() > MAX_FRAME && sending > 1 {
            sending /= 2;
            body = encode_calls(&calls[..sending]);
        }
        if body.len() > MAX_FRAME {
            let error = PluginError::new(over_frame(
                &format!(
                    "the call of `{}` on `{}` with its arguments",
                    names[0], calls[0].event
                ),
                body.len(),
            ))
            .with_help("send smaller arguments, or run this plugin in-process");
            results.push((status::ERROR, RResult::RErr(error)));
            return Some(worker);
        }
        let calls = &calls[..sending];
        let mut fault = worker.send_encoded(&body).err();
        drop(body);
        while fault.is_none() && answered < calls.len() {
            match worker.recv(Some(deadline)) {
                Ok(FromWorker::Result { status, result }) => {
                    self.in_a_row.store(0, Ordering::Relaxed);
                    let result = match result {
                        Some(value) => forged_kinds_refused(value).into(),
                        None => RResult::ROk(Value::NULL),
                    };
                    results.push((status, result));
                    answered += 1;
                    deadline = Instant::now() + limit;
                }
                Ok(FromWorker::Log { level, message }) => {
                    log(&self.name, Some(generation), level, &message)
                }
                Ok(FromWorker::Emit { event, args }) => {
                    let entries: Vec<Entry<'_>> = args
                        .iter()
                        .map(|(name, value)| Entry::borrowed(name, value.clone()))
                        .collect();
                    lend(key, worker);
                    let outcomes = emit(offset + answered, &event, &entries);
                    match take_lent(key) {
                        Some(back) => {
                            worker = back;
                            let mut answer = ToWorker::Emitted(outcomes).encode();
                            if answer.len() > MAX_FRAME {
                                let error = PluginError::new(over_frame(
                                    &format!("the outcomes of the nested emit of `{event}`"),
                                    answer.len(),
                                ));
                                answer = ToWorker::Emitted(Err(error)).encode();
                            }
                            fault = worker.send_encoded(&answer).err();
                        }
                        // A nested call on this worker crashed or timed out: so did this one.
                        None => {
                            let call = &calls[answered];
                            results.push((status::ERROR, RResult::RErr(PluginError::crashed(format!(
                                "plugin `{}`'s worker (pid {pid}) died in a callback nested in `{}` on `{}`",
                                self.name, names[answered], call.event
                            )))));
                            return None;
                        }
                    }
                }
                Ok(_) => {
                    fault = Some(Fault::Died(format!(
                        "pid {pid}: it answered a call with another kind of message"
                    )))
                }
                Err(error) => fault = Some(error),
            }
        }
        let Some(fault) = fault else {
            return Some(worker);
        };
        let call = &calls[answered];
        let (callback_name, event, request) = (names[answered], call.event, call.request);
        let error = match fault {
            Fault::TimedOut => {
                worker.kill();
                self.faults.kills.fetch_add(1, Ordering::Relaxed);
                PluginError::timed_out(format!(
                    "plugin `{}` did not finish callback `{callback_name}` on `{event}` within timeout_ms = {} (pid {pid}, request {request}); the worker was killed and restarts at the next call",
                    self.name, self.limits.timeout_ms
                ))
                .with_help("raise `timeout_ms` for this plugin if the work takes that long")
            }
            Fault::Died(how) => {
                self.faults.crashes.fetch_add(1, Ordering::Relaxed);
                self.in_a_row.fetch_add(1, Ordering::Relaxed);
                let what =
                    format!("callback `{callback_name}` on `{event}` (request {request}): {how}");
                let quarantined = self.watch.crashed(
                    &self.manifest_dir,
                    &self.name,
                    &self.library,
                    &self.sha256,
                    &what,
                );
                let error = PluginError::crashed(format!(
                    "plugin `{}`'s worker crashed during {what}",
                    self.name
                ));
                if let Some(record) = quarantined {
                    tracing::error!(
                        "plugin `{}` is quarantined: {}; `switchboard quarantine --clear {}` lifts it, and so does a new build of its library",
                        self.name,
                        record.reason,
                        self.name
                    );
                    error.with_help("the plugin is now quarantined: see `switchboard quarantine`")
                } else {
                    error.with_help("the worker restarts at the next call")
                }
            }
        };
        results.push((status::ERROR, RResult::RErr(error)));
        None
    }

    /// A fresh worker after a crash, a kill or a start: after a pause that grows while
    /// workers crash in a row.
    fn restart(&self) -> Result<WorkerProcess, PluginError> {
        let in_a_row = self.in_a_row.load(Ordering::Relaxed);
        if in_a_row > 1 {
            let pause = Duration::from_millis(50u64 << (in_a_row - 2).min(7)).min(MAX_BACKOFF);
            std::thread::sleep(pause);
        }
        self.faults.restarts.fetch_add(1, Ordering::Relaxed);
        let crashed = |why: String| {
            self.in_a_row.fetch_add(1, Ordering::Relaxed);
            PluginError::crashed(format!(
                "plugin `{}`: a new worker could not be started: {why}",
                self.name
            ))
        };
        let (mut worker, _) = self.open().map_err(|problem| match problem {
            Opening::Load { message, .. } | Opening::Worker(message) => crashed(message),
        })?;
        let config = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        init_worker(&self.name, &mut worker, config)
            .map_err(|e| crashed(format!("its init failed: {e}")))?;
        Ok(worker)
    }

    /// Runs a control operation in a worker.
    pub(crate) fn control(
        &self,
        operation: &str,
        argument: &Value<'_>,
    ) -> Result<Value<'static>, PluginError> {
        let mut slot = self.slot(0);
        if slot.is_none() {
            *slot = Some(self.restart()?);
        }
        let Some(worker) = slot.as_mut() else {
            return Err(PluginError::new("the plugin's worker is not running"));
        };
        let message = ToWorker::Control {
            operation: operation.to_owned(),
            argument: argument.clone().into_owned(),
        };
        let deadline = Instant::now() + Duration::from_millis(self.limits.timeout_ms);
        let answer = worker.send(&message).and_then(|()| loop {
            match worker.recv(Some(deadline))? {
                FromWorker::Done(result) => break Ok(result),
                FromWorker::Log { level, message } => log(&self.name, None, level, &message),
                _ => {
                    break Err(Fault::Died(
                        "it answered with another kind of message".into(),
                    ))
                }
            }
        });
        match answer {
            Ok(result) => result,
            Err(fault) => {
                worker.kill();
                *slot = None;
                Err(PluginError::crashed(format!(
                    "plugin `{}`'s worker failed the control operation `{operation}`: {fault:?}",
                    self.name
                )))
            }
        }
    }

    /// Runs `shutdown` in every running worker and stops them.
    pub(crate) fn shutdown(&self) -> Result<(), PluginError> {
        let mut first_error = Ok(());
        for index in 0..self.workers.len() {
            let mut slot = self.slot(index);
            if let Some(mut worker) = slot.take() {
                if let Err(fault) = worker.stop(SETUP_WITHIN) {
                    if first_error.is_ok() {
                        first_error = Err(PluginError::new(match fault {
                            Fault::TimedOut => "its worker did not shut down in time".to_owned(),
                            Fault::Died(why) => why,
                        }));
                    }
                }
            }
        }
        first_error
    }
}

/// A plugin in a worker cannot pass its own failure off as a crash, a timeout or a skipped
/// call the host found.
fn forged_kinds_refused(
    result: Result<Value<'static>, PluginError>,
) -> Result<Value<'static>, PluginError> {
    match result {
        Err(error) if error.is_crashed() || error.is_timed_out() || error.is_skipped() => {
            Err(crate::error::as_plain_failure(&error))
        }
        other => other,
    }
}

thread_local! {
    /// Workers lent out by calls on this thread that are waiting in a nested emit, by
    /// plugin: the nested calls to the same plugin use them.
    static LENT: std::cell::RefCell<Vec<(usize, WorkerProcess)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn lend(key: usize, worker: WorkerProcess) {
    LENT.with(|lent| lent.borrow_mut().push((key, worker)));
}

fn take_lent(key: usize) -> Option<WorkerProcess> {
    LENT.with(|lent| {
        let mut lent = lent.borrow_mut();
        let at = lent.iter().rposition(|(k, _)| *k == key)?;
        Some(lent.remove(at).1)
    })
}

/// How opening a library in a worker went wrong.
enum Opening {
    /// The library was refused, as the in-process loader would refuse it.
    Load { kind: String, message: String },
    /// The worker itself failed.
    Worker(String),
}

fn init_worker(
    plugin: &str,
    worker: &mut WorkerProcess,
    config: Value<'static>,
) -> Result<(), PluginError> {
    let deadline = Instant::now() + SETUP_WITHIN;
    let answer = worker.send(&ToWorker::Init { config }).and_then(|()| loop {
        match worker.recv(Some(deadline))? {
            FromWorker::Done(result) => break Ok(result),
            FromWorker::Log { level, message } => log(plugin, None, level, &message),
            _ => {
                break Err(Fault::Died(
                    "it answered init with another kind of message".into(),
                ))
            }
        }
    });
    match answer {
        Ok(result) => result.map(|_| ()),
        Err(Fault::TimedOut) => Err(PluginError::new(format!(
            "its init did not finish within {SETUP_WITHIN:?}"
        ))),
        Err(Fault::Died(why)) => Err(PluginError::crashed(format!(
            "its worker died in init ({why})"
        ))),
    }
}
