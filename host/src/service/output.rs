//! Writing results: as they come, or in input order, flushing whenever nothing is waiting
//! so that a slow producer still sees prompt output.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::queue::Queue;

/// What the writer receives.
pub(super) enum Message {
    /// The result line of event `seq`.
    Reply(u64, String),
    /// Nothing more will come that must be written.
    Finish,
    /// The process is ending under the service (a plugin called `exit()`): write every
    /// result there is now, held-back ones too, flush, and say how many lines were written
    /// in all.
    FlushNow(crossbeam_channel::Sender<u64>),
}

/// The writers of the services running in this process, for [`flush_now`].
static WRITERS: Mutex<Vec<(u64, Sender<Message>)>> = Mutex::new(Vec::new());

/// Registers a service's writer until the returned guard is dropped.
pub(super) fn register(writer: Sender<Message>) -> Registered {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let key = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    writers.push((key, writer));
    Registered(key)
}

/// A registered writer; unregistered when dropped.
pub(super) struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        writers.retain(|(key, _)| *key != self.0);
    }
}

/// Has every running service write out the results it has, waiting `within` at most;
/// how many result lines they have written in all, `None` if one did not answer in time.
pub(super) fn flush_now(within: Duration) -> Option<u64> {
    let writers: Vec<Sender<Message>> = WRITERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, writer)| writer.clone())
        .collect();
    let deadline = Instant::now() + within;
    let mut total = 0;
    for writer in writers {
        let (ack, acked) = crossbeam_channel::bounded(1);
        if writer.send(Message::FlushNow(ack)).is_err() {
            continue; // that service has finished writing
        }
        total += acked.recv_deadline(deadline).ok()?;
    }
    Some(total)
}

/// Writes result lines until [`Message::Finish`] (or until every sender is gone), telling
/// the queue how many were written so that it can accept more.
pub(super) fn write_results<W: Write>(
    output: W,
    messages: Receiver<Message>,
    ordered: bool,
    queue: &Queue,
) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, output);
    let mut pending = BTreeMap::new();
    let mut next = 1;
    let mut finished = false;
    let mut total = 0;
    while !finished {
        let first = match messages.recv() {
            Ok(message) => message,
            Err(_) => break,
        };
        let mut written = 0;
        for message in std::iter::once(first).chain(messages.try_iter().take(4096)) {
            match message {
                Message::Finish => {
                    finished = true;
                    break;
                }
                Message::FlushNow(ack) => {
                    // Everything that has arrived, then the held-back lines in order: the
                    // gaps before them will never be filled.
                    for message in messages.try_iter() {
                        if let Message::Reply(seq, line) = message {
                            pending.insert(seq, line);
                        }
                    }
                    for (_, line) in std::mem::take(&mut pending) {
                        writeln!(out, "{line}")?;
                        written += 1;
                    }
                    out.flush()?;
                    let _ = ack.send(total + written);
                }
                Message::Reply(seq, line) if ordered => {
                    pending.insert(seq, line);
                    while let Some(line) = pending.remove(&next) {
                        writeln!(out, "{line}")?;
                        next += 1;
                        written += 1;
                    }
                }
                Message::Reply(_, line) => {
                    writeln!(out, "{line}")?;
                    written += 1;
                }
            }
        }
        if messages.is_empty() {
            out.flush()?;
        }
        total += written;
        queue.written(written as usize);
    }
    // In order, what is left can only follow a gap that will never be filled.
    for line in pending.values() {
        writeln!(out, "{line}")?;
    }
    out.flush()
}
