//! Writing results: as they come, or in input order, flushing whenever nothing is waiting
//! so that a slow producer still sees prompt output.

use std::collections::BTreeMap;
use std::io::Write;

use crossbeam_channel::Receiver;

use super::queue::Queue;

/// What the writer receives.
pub(super) enum Message {
    /// The result line of event `seq`.
    Reply(u64, String),
    /// Nothing more will come that must be written.
    Finish,
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
        queue.written(written);
    }
    // In order, what is left can only follow a gap that will never be filled.
    for line in pending.values() {
        writeln!(out, "{line}")?;
    }
    out.flush()
}
