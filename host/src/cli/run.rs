//! `switchboard run`: JSON-lines events on stdin, one result line per event on stdout,
//! dispatched by a pool of worker threads.
//!
//! Input line: `{"event": "user_joined", "args": {...}, "id": "optional"}`.
//! Output line: `{"seq": N, "id": ..., "event": ..., "ok": bool, "results": [...]}`, or
//! `{"seq": N, "id": ..., "error": "..."}` for a line that could not be dispatched. `seq`
//! numbers the non-empty input lines from 1.
//!
//! Threads: a reader turns stdin into batches of lines; the main thread numbers them and
//! accepts them into a bounded queue (when it is full, reading waits); workers dispatch; a
//! writer prints. On end of input or SIGINT/SIGTERM, the main thread stops accepting, the
//! workers finish every accepted event, and the plugins shut down. A second SIGINT exits at
//! once.
//!
//! Lines travel in batches: every line already read when the reader would otherwise wait
//! for more, up to [`BATCH`]. A file or a fast producer fills batches, so the threads hand
//! over work (and wake each other) once per batch instead of once per line; a slow
//! producer's line travels alone, at once.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard::Switchboard;

use super::output::{count, OutcomesJson};
use super::{exit, Cli, Format};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Worker threads dispatching events [default: the number of cores].
    #[arg(long, short = 'w', value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Events accepted ahead of the workers; when the queue is full, reading waits.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,

    /// Print result lines in input order, even with several workers.
    #[arg(long)]
    pub ordered: bool,
}

/// The most lines that travel together between the threads.
const BATCH: usize = 256;

/// Lines numbered from `first`, in input order.
struct Batch<T> {
    first: u64,
    lines: Vec<T>,
}

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    event: String,
    #[serde(default)]
    args: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// One result line of `run`.
#[derive(Serialize)]
struct Reply<'a> {
    seq: u64,
    id: &'a Option<serde_json::Value>,
    event: &'a str,
    ok: bool,
    results: OutcomesJson<'a>,
}

/// Counts kept by each worker and added up at the end.
#[derive(Debug, Default, Clone)]
struct Totals {
    events: u64,
    bad_lines: u64,
    plugins: Vec<PluginTotals>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PluginTotals {
    calls: u64,
    failed: u64,
    panicked: u64,
    skipped: u64,
}

impl Totals {
    fn new(plugins: usize) -> Self {
        Totals {
            plugins: vec![PluginTotals::default(); plugins],
            ..Totals::default()
        }
    }

    fn add(&mut self, other: &Totals) {
        self.events += other.events;
        self.bad_lines += other.bad_lines;
        for (mine, theirs) in self.plugins.iter_mut().zip(&other.plugins) {
            mine.calls += theirs.calls;
            mine.failed += theirs.failed;
            mine.panicked += theirs.panicked;
            mine.skipped += theirs.skipped;
        }
    }

    fn failed_callbacks(&self) -> u64 {
        self.plugins.iter().map(|p| p.failed + p.skipped).sum()
    }
}

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut board = Switchboard::open(&cli.manifest)?;
    let workers = args.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while draining exits at once, with the conventional code.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }

    let lines = read_lines_in_background();
    // The queue bound is in events; a batch holds up to BATCH of them.
    let capacity = (args.queue as usize).div_ceil(BATCH);
    let (work_tx, work_rx) = bounded::<Batch<Line>>(capacity);
    let (out_tx, out_rx) = bounded::<Batch<String>>(capacity);
    let plugins = board.registry().plugins().len();

    let mut totals = Totals::new(plugins);
    let mut accepted = 0;
    let mut stopped_by_signal = false;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let writer = scope.spawn(move || write_results(out_rx, args.ordered));
        let board = &board;
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (work_rx, out_tx) = (work_rx.clone(), out_tx.clone());
                scope.spawn(move || work(board, work_rx, out_tx, plugins))
            })
            .collect();
        drop((work_rx, out_tx));

        loop {
            if stop.load(Ordering::Relaxed) {
                stopped_by_signal = true;
                break;
            }
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(lines) => {
                    let batch = Batch {
                        first: accepted + 1,
                        lines,
                    };
                    let count = batch.lines.len() as u64;
                    // Blocks while the queue is full: back-pressure on the reader.
                    if work_tx.send(batch).is_err() {
                        break;
                    }
                    accepted += count;
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if stopped_by_signal {
            tracing::info!("stopping on signal: finishing the {accepted} accepted events");
        }
        drop(work_tx);
        for handle in handles {
            totals.add(&handle.join().expect("a worker thread panicked"));
        }
        writer.join().expect("the writer thread panicked")?;
        Ok(())
    })?;

    board.shutdown();
    print_summary(cli, &board, accepted, &totals, stopped_by_signal);
    Ok(if totals.bad_lines > 0 {
        exit::bad_input()
    } else if totals.failed_callbacks() > 0 {
        exit::callback_failed()
    } else {
        exit::ok()
    })
}

/// Reads stdin on a thread of its own, so that a signal can stop the run while a read
/// blocks; the thread is left behind when the run ends.
fn read_lines_in_background() -> Receiver<Vec<Line>> {
    let (tx, rx) = bounded::<Vec<Line>>(4);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut stdin = std::io::BufReader::with_capacity(64 * 1024, stdin.lock());
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let mut bytes = Vec::new();
            let (line, done) = match stdin.read_until(b'\n', &mut bytes) {
                Ok(0) => (None, true),
                Ok(_) => (Line::from_bytes(bytes), false),
                Err(e) => (Some(Line::Unreadable(e.to_string())), true),
            };
            batch.extend(line);
            // Send what we have before a read that could wait, or when the batch is full.
            let would_wait = stdin.buffer().is_empty();
            if !batch.is_empty() && (done || would_wait || batch.len() == BATCH) {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return;
                }
            }
            if done {
                return;
            }
        }
    });
    rx
}

/// One line of standard input, as read.
enum Line {
    /// A line of text (an event, or not).
    Text(String),
    /// A line that is not UTF-8: reported as a bad line, and the run goes on.
    NotUtf8(std::str::Utf8Error),
    /// Standard input failed; the last line of the run.
    Unreadable(String),
}

impl Line {
    /// The line, or `None` for a blank one.
    fn from_bytes(bytes: Vec<u8>) -> Option<Line> {
        match String::from_utf8(bytes) {
            Ok(text) if text.trim().is_empty() => None,
            Ok(text) => Some(Line::Text(text)),
            Err(e) => Some(Line::NotUtf8(e.utf8_error())),
        }
    }
}

fn work(
    board: &Switchboard,
    jobs: Receiver<Batch<Line>>,
    results: Sender<Batch<String>>,
    plugins: usize,
) -> Totals {
    let mut totals = Totals::new(plugins);
    for batch in jobs {
        let replies = (batch.first..)
            .zip(&batch.lines)
            .map(|(seq, line)| handle(board, seq, line, &mut totals))
            .collect();
        let replies = Batch {
            first: batch.first,
            lines: replies,
        };
        if results.send(replies).is_err() {
            break;
        }
    }
    totals
}

/// Counts a line that could not be dispatched and returns its result line.
fn bad_line(seq: u64, error: String, totals: &mut Totals) -> String {
    totals.bad_lines += 1;
    json!({"seq": seq, "error": error}).to_string()
}

/// Dispatches one input line and returns its result line.
fn handle(board: &Switchboard, seq: u64, line: &Line, totals: &mut Totals) -> String {
    let line = match line {
        Line::Text(text) => text,
        Line::NotUtf8(e) => {
            let error = format!("line {seq} is not valid UTF-8 ({e}); send events as UTF-8 JSON");
            return bad_line(seq, error, totals);
        }
        Line::Unreadable(e) => {
            let error = format!(
                "cannot read standard input after line {}: {e}; the events before it were dispatched",
                seq - 1
            );
            return bad_line(seq, error, totals);
        }
    };
    let input: Input = match serde_json::from_str(line) {
        Ok(input) => input,
        Err(e) => {
            return bad_line(seq, format!("line {seq} is not a valid event: {e}"), totals);
        }
    };
    match board.emit_json(&input.event, &input.args) {
        Ok(outcomes) => {
            totals.events += 1;
            for outcome in &outcomes {
                let plugin = &mut totals.plugins[board.callback(outcome.callback).plugin];
                match &outcome.result {
                    Ok(_) => plugin.calls += 1,
                    Err(e) if e.is_skipped() => plugin.skipped += 1,
                    Err(e) => {
                        plugin.calls += 1;
                        plugin.failed += 1;
                        plugin.panicked += u64::from(e.is_panic());
                    }
                }
            }
            let reply = Reply {
                seq,
                id: &input.id,
                event: &input.event,
                ok: !outcomes.has_failures(),
                results: OutcomesJson {
                    board,
                    outcomes: &outcomes,
                },
            };
            serde_json::to_string(&reply).unwrap_or_else(|e| {
                json!({"seq": seq, "id": input.id, "error": format!("cannot write the result: {e}")})
                    .to_string()
            })
        }
        Err(e) => {
            totals.bad_lines += 1;
            json!({"seq": seq, "id": input.id, "event": input.event, "error": e.to_string()})
                .to_string()
        }
    }
}

/// Prints result lines as they come (or in `seq` order), flushing whenever no result is
/// waiting so that a slow producer still sees prompt output.
fn write_results(results: Receiver<Batch<String>>, ordered: bool) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut pending = BTreeMap::new();
    let mut next = 1;
    loop {
        let batch = match results.try_recv() {
            Ok(batch) => batch,
            Err(_) => {
                out.flush()?;
                match results.recv() {
                    Ok(batch) => batch,
                    Err(_) => break,
                }
            }
        };
        if !ordered {
            write_lines(&mut out, &batch.lines)?;
            continue;
        }
        pending.insert(batch.first, batch.lines);
        while let Some(lines) = pending.remove(&next) {
            write_lines(&mut out, &lines)?;
            next += lines.len() as u64;
        }
    }
    for lines in pending.values() {
        write_lines(&mut out, lines)?;
    }
    out.flush()
}

fn write_lines(out: &mut impl Write, lines: &[String]) -> std::io::Result<()> {
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn print_summary(cli: &Cli, board: &Switchboard, accepted: u64, totals: &Totals, signal: bool) {
    let breakers = board.breaker_states();
    let names = board.registry().plugins().iter().map(|p| p.name.as_str());
    match cli.format {
        Format::Json => {
            let plugins: Vec<_> = names
                .zip(&totals.plugins)
                .zip(&breakers)
                .map(|((name, t), (_, state, trips))| {
                    json!({
                        "plugin": name, "calls": t.calls, "failed": t.failed,
                        "panicked": t.panicked, "skipped": t.skipped,
                        "breaker": state.to_string(), "breaker_trips": trips,
                    })
                })
                .collect();
            eprintln!(
                "{}",
                json!({
                    "summary": {
                        "accepted": accepted, "events": totals.events,
                        "bad_lines": totals.bad_lines, "stopped_by_signal": signal,
                        "plugins": plugins,
                    }
                })
            );
        }
        Format::Text if !cli.quiet => {
            eprintln!(
                "run: {} accepted{}, {} dispatched, {}",
                count(accepted, "event"),
                if signal { " (stopped by signal)" } else { "" },
                totals.events,
                count(totals.bad_lines, "bad line")
            );
            for ((name, t), (_, state, trips)) in names.zip(&totals.plugins).zip(&breakers) {
                eprintln!(
                    "  {name}: {}, {} failed ({}), {} skipped; {state}{}",
                    count(t.calls, "call"),
                    t.failed,
                    count(t.panicked, "panic"),
                    t.skipped,
                    if *trips > 0 {
                        format!(", switched off {}", count(*trips, "time"))
                    } else {
                        String::new()
                    }
                );
            }
        }
        Format::Text => {}
    }
}
