//! The service fed from a reader, one event per line, answered by a writer, one result
//! line per event: `switchboard run`.

use std::io::{Read, Write};
use std::time::Duration;

use crossbeam_channel::{unbounded, RecvTimeoutError};

use super::output::{self, Message};
use super::{input, Report, Service, ServiceConfig, Stop};
use crate::runtime::Switchboard;

/// Runs JSON-lines events from `input` through `host`, writing one result line per
/// non-blank accepted input line to `output`, until the input ends or `stop` is requested.
///
/// Input line: `{"event": "user_joined", "args": {...}, "id": "optional"}`. Result line:
/// `{"seq": N, "id": ..., "event": ..., "ok": bool, "results": [...]}`, or `{"seq": N,
/// "id": ..., "error": "..."}` for a line that could not be dispatched (or was abandoned).
/// `seq` numbers the non-blank input lines from 1.
///
/// With sources in `config` (a NATS consumer), their events are dispatched by the same
/// workers, and the end of the input does not end the run: it goes on taking the sources'
/// events until `stop` is requested.
///
/// The input is read on a thread of its own, so that `stop` works while a read blocks;
/// that thread, and a worker stuck in a callback that never returns, are left behind.
pub fn run_json_lines<R, W>(
    host: &Switchboard,
    input: R,
    output: W,
    config: &ServiceConfig,
    stop: &Stop,
) -> std::io::Result<Report>
where
    R: Read + Send + 'static,
    W: Write + Send,
{
    let (tx, rx) = unbounded::<Message>();
    let service =
        Service::start_with(host, config, Some(tx.clone())).map_err(std::io::Error::other)?;
    let lines = input::read_in_background(input, config.max_line_bytes);
    let _flushable = output::register(tx.clone());

    let mut accepted = 0;
    let mut input_done = false;
    let mut input_remained = false;
    let mut report = std::thread::scope(|scope| -> std::io::Result<Report> {
        let queue = service.queue();
        let writer = scope.spawn(move || output::write_results(output, rx, config.ordered, &queue));
        'accept: loop {
            if stop.requested() || writer.is_finished() {
                break;
            }
            let mut batch = match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    input_done = true;
                    break;
                }
            };
            while !batch.is_empty() {
                let taken = service.push_lines(accepted + 1, &mut batch, Duration::from_millis(50));
                accepted += taken as u64;
                if taken == 0 && (stop.requested() || writer.is_finished()) {
                    break 'accept;
                }
            }
        }
        if input_done && service.has_sources() {
            // The sources go on until a stop request.
            tracing::info!(
                "the input ended; taking events from the sources until stopped (SIGINT or SIGTERM)"
            );
            while !stop.requested() && !writer.is_finished() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if stop.requested() {
            tracing::info!(
                "stopping: finishing the {accepted} accepted events (at most {} s)",
                config.drain_timeout.as_secs_f64()
            );
        }
        // Input is left unread only when a stop came before its end.
        input_remained = stop.requested() && !input_done;
        let mut report = service.drain(stop);
        report.stopped = stop.requested();
        let _ = tx.send(Message::Finish);
        match writer.join() {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                report.output_closed = true;
            }
            Ok(Err(e)) => report.output_failed = Some(e.to_string()),
            Ok(Ok(())) => {}
            Err(_) => return Err(std::io::Error::other("the writer thread panicked")),
        }
        Ok(report)
    })?;
    report.accepted = accepted;
    report.input_remained = input_remained;
    Ok(report)
}
