//! An HTTP request's answer, made on the service's worker that dispatched its event: the
//! body is serialized there, next to the outcomes, and travels back to the request's task
//! over a oneshot channel.

use switchboard::service::{Abandoned, Answer, OutcomesJson, Reply};
use switchboard::EmitError;
use tokio::sync::oneshot;

/// What became of an event request.
pub(crate) enum Dispatched {
    /// It ran (or was forwarded): the answer's body, made on the worker.
    Done {
        /// Whether every callback succeeded (or the forward did).
        ok: bool,
        /// How many callbacks failed or were skipped.
        failed: usize,
        /// The JSON answer: the event, the id, `ok`, the generation, the request id and
        /// every callback's outcome (or where a forwarded event was stored).
        body: Vec<u8>,
    },
    /// The host refused it before any callback ran (its arguments, most likely).
    Refused(EmitError),
    /// The server stopped and its drain gave up on it: why.
    Abandoned(&'static str),
}

/// The answer to a request whose event never started because the drain gave up.
pub(crate) const NOT_DISPATCHED: &str =
    "not dispatched: the server stopped and its drain timeout ended before this event ran; send it again to a running server";

/// The answer to a request whose event was still running when the drain gave up.
pub(crate) const STILL_RUNNING: &str = "the server stopped and its drain timeout ended while this event's callbacks were still running: they may have run in part, and their outcome is unknown; give slow plugins isolation = \"process\" with a timeout_ms, or raise serve.drain_timeout_ms";

/// Where a request's answer goes: its task, waiting on the other end.
pub(crate) struct HttpReply {
    pub(crate) answer: oneshot::Sender<Dispatched>,
}

impl Reply for HttpReply {
    fn answer(self: Box<Self>, answer: Answer<'_>) {
        let dispatched = match answer {
            Answer::Dispatched {
                event,
                id,
                generation,
                outcomes,
            } => {
                let failed = outcomes.failures().count();
                let body = Body {
                    event,
                    id,
                    ok: failed == 0,
                    generation: generation.number(),
                    request: outcomes.request_id(),
                    results: OutcomesJson {
                        generation,
                        outcomes,
                    },
                };
                let body = serde_json::to_vec(&body).unwrap_or_else(|e| {
                    serde_json::json!({"event": event, "id": id, "ok": false, "error": format!("cannot write the outcomes: {e}")})
                        .to_string()
                        .into_bytes()
                });
                Dispatched::Done {
                    ok: failed == 0,
                    failed,
                    body,
                }
            }
            Answer::Forwarded { event, id, result } => {
                let ok = result.is_ok();
                let mut body = serde_json::json!({"event": event, "id": id, "ok": ok});
                if let Some(body) = body.as_object_mut() {
                    match result {
                        Ok(published) => body.insert("published".into(), published),
                        Err(message) => body.insert(
                            "error".into(),
                            serde_json::json!({"kind": "nats.publish", "message": message}),
                        ),
                    };
                }
                Dispatched::Done {
                    ok,
                    failed: usize::from(!ok),
                    body: body.to_string().into_bytes(),
                }
            }
            Answer::Refused { error, .. } => Dispatched::Refused(error),
            Answer::Abandoned(Abandoned::NotStarted) => Dispatched::Abandoned(NOT_DISPATCHED),
            Answer::Abandoned(_) => Dispatched::Abandoned(STILL_RUNNING),
        };
        // The client may have gone away; the event ran all the same.
        let _ = self.answer.send(dispatched);
    }
}

/// The answer to an event request, serialized straight to the body (no JSON tree first).
#[derive(serde::Serialize)]
struct Body<'a> {
    event: &'a str,
    id: &'a str,
    ok: bool,
    generation: u64,
    request: u64,
    results: OutcomesJson<'a>,
}
