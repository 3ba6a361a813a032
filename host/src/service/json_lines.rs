//! The JSON-lines protocol of the service: one event per input line, one result line per
//! event.

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_plugin_api::{Error as PluginError, Value};

use super::bridge::id_text;
use super::counts::Held;
use super::{Forward, Outgoing, Report};
use crate::dispatch::{Generation, JsonEmit, Outcomes, StrictJson};
use crate::error::EmitError;

/// One line of input, as read.
pub(super) enum Line {
    /// A line of text (an event, or not).
    Text(String),
    /// A line that is not UTF-8: reported as a bad line, and the run goes on.
    NotUtf8(std::str::Utf8Error),
    /// A line longer than the service's bound: not kept, reported as a bad line.
    TooLong {
        /// Its length in bytes.
        length: usize,
        /// The bound.
        max: usize,
    },
    /// The input failed; the last line of the run.
    Unreadable(String),
}

impl Line {
    /// The line, or `None` for a blank one.
    pub(super) fn from_bytes(bytes: Vec<u8>) -> Option<Line> {
        match String::from_utf8(bytes) {
            Ok(text) if text.trim().is_empty() => None,
            Ok(text) => Some(Line::Text(text)),
            Err(e) => Some(Line::NotUtf8(e.utf8_error())),
        }
    }

    /// The event a line names, read without the rest of it; `None` for a line that is not
    /// an event.
    pub(super) fn event(&self) -> Option<std::borrow::Cow<'_, str>> {
        #[derive(Deserialize)]
        struct EventOnly<'a> {
            #[serde(borrow)]
            event: std::borrow::Cow<'a, str>,
        }
        let Line::Text(text) = self else {
            return None;
        };
        // Most lines start with their event: read it without parsing the line (it is
        // parsed in full when it is dispatched). Anything else, escapes included, parses.
        if let Some(rest) = text.trim_start().strip_prefix(r#"{"event":""#) {
            if let Some(end) = rest.find(['"', '\\']) {
                if rest.as_bytes()[end] == b'"' {
                    return Some(std::borrow::Cow::Borrowed(&rest[..end]));
                }
            }
        }
        Some(serde_json::from_str::<EventOnly<'_>>(text).ok()?.event)
    }

    /// The caller's `id`, if the line is an event that has one.
    pub(super) fn id(&self) -> Option<serde_json::Value> {
        #[derive(Deserialize)]
        struct IdOnly {
            id: Option<serde_json::Value>,
        }
        match self {
            Line::Text(text) => serde_json::from_str::<IdOnly>(text).ok()?.id,
            _ => None,
        }
    }
}

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    event: String,
    #[serde(default, deserialize_with = "strict_object")]
    args: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

impl Input {
    /// The id the event's callbacks see: the line's (a JSON string as it is, any other
    /// value as its text), or none (the host makes one).
    fn event_id(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self.id.as_ref()? {
            serde_json::Value::Null => None,
            id => Some(id_text(id)),
        }
    }
}

/// `args`, refusing a key given twice at any level.
fn strict_object<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
    match StrictJson::deserialize(deserializer)?.0 {
        serde_json::Value::Object(object) => Ok(object),
        other => Err(serde::de::Error::custom(format!(
            "`args` must be an object of arguments, not {other}"
        ))),
    }
}

/// One result line.
#[derive(Serialize)]
struct Reply<'a> {
    seq: u64,
    id: &'a Option<serde_json::Value>,
    event: &'a str,
    /// The generation of plugins that served it (a reload starts a new one).
    generation: u64,
    ok: bool,
    results: OutcomesJson<'a>,
}

/// Counts a line that could not be dispatched and returns its result line.
fn bad_line(seq: u64, error: String, report: &mut Report) -> String {
    report.bad_lines += 1;
    json!({"seq": seq, "error": error}).to_string()
}

/// Dispatches one input line and returns its result line.
pub(super) fn handle(
    generation: &Generation,
    seq: u64,
    line: &Line,
    outcomes: &mut Outcomes,
    (report, events): (&mut Report, &mut Held<'_>),
    forward: Option<&dyn Forward>,
) -> String {
    // Nothing of this line's is counted unless it is dispatched.
    outcomes.reset(0);
    match parse(seq, line, report) {
        Ok(input) => match outgoing(generation, seq, &input, forward, (report, events)) {
            Some((forward, Ok(outgoing))) => {
                forward_line(seq, &input, outgoing.send(forward), (report, events))
            }
            Some((_, Err(refused))) => refused,
            None => {
                outcomes.set_event_id(input.event_id().as_deref());
                let result = generation.emit_json_into(&input.event, &input.args, outcomes);
                if result.is_ok() {
                    generation.tell_observer(&input.event, outcomes);
                }
                reply(generation, seq, &input, result, outcomes, (report, events))
            }
        },
        Err(reply) => reply,
    }
}

/// Dispatches input lines together, so that the calls of their events to an isolated
/// plugin travel to its worker in one frame; one result line per input line, in order.
pub(super) fn handle_batch(
    generation: &Generation,
    lines: &[(u64, &Line)],
    outcomes: &mut [Outcomes],
    (report, events): (&mut Report, &mut Held<'_>),
    forward: Option<&dyn Forward>,
) -> Vec<String> {
    // A forwarded line's result is made here, like a refused line's: neither is dispatched.
    let mut parsed: Vec<Result<Input, String>> = lines
        .iter()
        .map(|&(seq, line)| parse(seq, line, report))
        .collect();
    if let Some(forward) = forward {
        forward_together(generation, lines, &mut parsed, forward, (report, events));
    }
    let mut emits: Vec<JsonEmit<'_>> = parsed
        .iter()
        .zip(outcomes.iter_mut())
        .filter_map(|(input, outcomes)| {
            // Nothing of a line's is counted unless it is dispatched.
            outcomes.reset(0);
            let input = input.as_ref().ok()?;
            outcomes.set_event_id(input.event_id().as_deref());
            Some(JsonEmit {
                event: &input.event,
                args: &input.args,
                outcomes,
                result: Ok(()),
            })
        })
        .collect();
    generation.emit_json_batch(&mut emits);
    let results: Vec<Result<(), EmitError>> = emits.into_iter().map(|e| e.result).collect();
    let mut results = results.into_iter();
    parsed
        .into_iter()
        .zip(lines)
        .zip(outcomes.iter())
        .map(|((input, &(seq, _)), outcomes)| {
            let input = input?;
            // One result per parsed line, in order: the batch leaves none out.
            let result = results.next().unwrap_or(Err(EmitError::ShutDown));
            if result.is_ok() {
                generation.tell_observer(&input.event, outcomes);
            }
            Ok(reply(
                generation,
                seq,
                &input,
                result,
                outcomes,
                (report, events),
            ))
        })
        .map(|line: Result<String, String>| line.unwrap_or_else(|refused| refused))
        .collect()
}

/// Hands on every line of a batch whose event is forwarded, all at once (their
/// acknowledgements are awaited together); each such line becomes its result line.
fn forward_together(
    generation: &Generation,
    lines: &[(u64, &Line)],
    parsed: &mut [Result<Input, String>],
    forward: &dyn Forward,
    (report, events): (&mut Report, &mut Held<'_>),
) {
    let mut done = Vec::new();
    let mut going = Vec::new();
    let mut sent = Vec::new();
    for (n, (input, &(seq, _))) in parsed.iter().zip(lines).enumerate() {
        let Ok(input) = input else { continue };
        match outgoing(generation, seq, input, Some(forward), (report, events)) {
            Some((_, Ok(outgoing))) => {
                going.push((n, seq));
                sent.push(outgoing);
            }
            Some((_, Err(line))) => done.push((n, line)),
            None => {}
        }
    }
    if !sent.is_empty() {
        let answers = Outgoing::send_all(&sent, forward);
        for (&(n, seq), answer) in going.iter().zip(answers) {
            if let Ok(input) = &parsed[n] {
                done.push((n, forward_line(seq, input, answer, (report, events))));
            }
        }
    }
    drop(sent);
    for (n, line) in done {
        parsed[n] = Err(line);
    }
}

/// A line's event on its way out through the forward returned with it, checked and named
/// ([`Outgoing::route`]), or its result line if refused; `None` when it is dispatched here.
fn outgoing<'i, 'f>(
    generation: &'i Generation,
    seq: u64,
    input: &'i Input,
    forward: Option<&'f dyn Forward>,
    (report, events): (&mut Report, &mut Held<'_>),
) -> Option<(&'f dyn Forward, Result<Outgoing<'i>, String>)> {
    let id = input.id.as_ref().map(id_text);
    let route = Outgoing::route(
        forward,
        generation,
        &input.event,
        &input.args,
        id.as_deref(),
        seq,
    );
    let (forward, outgoing) = route?;
    let outgoing = outgoing.map_err(|e| {
        report.bad_lines += 1;
        events.refused_for(&input.event, &e);
        json!({"seq": seq, "id": input.id, "event": input.event, "error": e.to_string()})
            .to_string()
    });
    Some((forward, outgoing))
}

/// The result line of a forwarded event.
fn forward_line(
    seq: u64,
    input: &Input,
    answer: Result<serde_json::Value, String>,
    (report, events): (&mut Report, &mut Held<'_>),
) -> String {
    report.dispatched += 1;
    match answer {
        Ok(published) => {
            events.forwarded(&input.event);
            json!({
                "seq": seq, "id": input.id, "event": input.event, "ok": true, "published": published
            })
            .to_string()
        }
        Err(error) => {
            events.received(&input.event);
            report.failed_events += 1;
            json!({"seq": seq, "id": input.id, "event": input.event, "ok": false, "error": error})
                .to_string()
        }
    }
}

/// The event on a line, or the result line that refuses it.
fn parse(seq: u64, line: &Line, report: &mut Report) -> Result<Input, String> {
    let line = match line {
        Line::Text(text) => text,
        Line::NotUtf8(e) => {
            let error = format!("line {seq} is not valid UTF-8 ({e}); send events as UTF-8 JSON");
            return Err(bad_line(seq, error, report));
        }
        Line::TooLong { length, max } => {
            let error = format!(
                "line {seq} is {length} bytes long, over the limit of {max} bytes; it was not read (raise --max-line-bytes, or send smaller events)"
            );
            return Err(bad_line(seq, error, report));
        }
        Line::Unreadable(e) => {
            let error = format!(
                "cannot read standard input after line {}: {e}; the events before it were dispatched",
                seq - 1
            );
            return Err(bad_line(seq, error, report));
        }
    };
    serde_json::from_str(line)
        .map_err(|e| bad_line(seq, format!("line {seq} is not a valid event: {e}"), report))
}

/// The result line of a dispatched (or refused) event.
fn reply(
    generation: &Generation,
    seq: u64,
    input: &Input,
    result: Result<(), EmitError>,
    outcomes: &Outcomes,
    (report, events): (&mut Report, &mut Held<'_>),
) -> String {
    match result {
        Ok(()) => {
            events.received(&input.event);
            report.dispatched += 1;
            let ok = !outcomes.has_failures();
            if !ok {
                report.failed_events += 1;
            }
            let reply = Reply {
                seq,
                id: &input.id,
                event: &input.event,
                generation: outcomes.generation(),
                ok,
                results: OutcomesJson {
                    generation,
                    outcomes,
                },
            };
            serde_json::to_string(&reply).unwrap_or_else(|e| {
                json!({"seq": seq, "id": input.id, "error": format!("cannot write the result: {e}")})
                    .to_string()
            })
        }
        Err(e) => {
            report.bad_lines += 1;
            events.refused_for(&input.event, &e);
            json!({"seq": seq, "id": input.id, "event": input.event, "error": e.to_string()})
                .to_string()
        }
    }
}

/// The outcomes of one emit, serialized straight to JSON as a list of `{"plugin",
/// "callback", "value"}` or `{"plugin", "callback", "error": {"message", "help",
/// "panic"}}` (building a `serde_json::Value` tree first cost `run` a third of its time).
pub struct OutcomesJson<'a> {
    /// Names the callbacks: the generation the outcomes came from.
    pub generation: &'a Generation,
    /// What they returned.
    pub outcomes: &'a Outcomes,
}

impl Serialize for OutcomesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Call<'a> {
            plugin: &'a str,
            callback: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            value: Option<&'a Value<'static>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<ErrorJson<'a>>,
        }
        serializer.collect_seq(self.outcomes.iter().map(|o| {
            let callback = self.generation.callback(o.callback);
            Call {
                plugin: &callback.plugin_name,
                callback: &callback.name,
                value: o.result.ok(),
                error: o.result.err().map(ErrorJson),
            }
        }))
    }
}

/// A plugin error as JSON: `{"message", "help", "panic", "kind"}`; `kind` is `error`,
/// `panic`, `skipped`, `crashed` or `timed_out`.
struct ErrorJson<'a>(&'a PluginError);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut error = serializer.serialize_struct("Error", 4)?;
        error.serialize_field("message", self.0.message())?;
        error.serialize_field("help", &self.0.help())?;
        error.serialize_field("panic", &self.0.is_panic())?;
        error.serialize_field("kind", self.0.kind_name())?;
        error.end()
    }
}
