//! What an emit returns: one outcome per callback that ran.
//!
//! Most callbacks return nothing, so an outcome is stored as 8 bytes (the callback and
//! where its result is); only values and errors are stored in full. That keeps the
//! dispatch loop from copying a whole result per callback.

use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_plugin_api::{Error as PluginError, Value};

use super::registry::CallbackId;

/// The null every callback that returned nothing shares.
const NULL: &Value<'static> = &Value::NULL;

/// The result of one callback.
#[derive(Debug, Clone, Copy)]
pub struct CallOutcome<'o> {
    /// Which callback ran; [`Generation::callback`](crate::Generation::callback) names it.
    pub callback: CallbackId,
    /// What it returned, or its error (a caught panic is an error with `is_panic()`).
    pub result: Result<&'o Value<'static>, &'o PluginError>,
}

impl CallOutcome<'_> {
    /// The result, owned.
    pub fn to_result(&self) -> Result<Value<'static>, PluginError> {
        match self.result {
            Ok(value) => Ok(value.clone()),
            Err(error) => Err(error.clone()),
        }
    }
}

/// One callback that ran, and where its result is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    /// The callback's index in its generation.
    pub(crate) callback: u32,
    /// 0 for null; otherwise the position in `Outcomes::results`, plus one.
    result: u32,
}

/// The outcomes of one emit, in the order the callbacks ran.
///
/// Reuse one `Outcomes` with [`Generation::emit_into`](crate::Generation::emit_into) to
/// dispatch without allocating.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    /// The generation whose callbacks these are.
    generation: u64,
    calls: Vec<Call>,
    results: Vec<Result<Value<'static>, PluginError>>,
    /// When set, the next emit times every call (see `nanos`).
    pub(crate) timed: bool,
    /// Per call, its duration in nanoseconds, for timed emits only.
    pub(crate) nanos: Vec<u64>,
    /// The request id of the emit these are the outcomes of.
    pub(crate) request: u64,
    /// The ids this list may hand out next, `next..end` (taken from [`NEXT_BLOCK`]).
    requests: (u64, u64),
    /// The event id the next emits' callbacks see ([`Outcomes::set_event_id`]).
    pub(crate) event_id: Option<String>,
}

/// Request ids are handed out in blocks of [`REQUEST_BLOCK`], so that an emit takes its id
/// without touching memory other threads write. Block 0 is never used: id 0 means none.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
const REQUEST_BLOCK: u64 = 1 << 16;

impl Outcomes {
    /// An empty list.
    pub fn new() -> Self {
        Outcomes::default()
    }

    /// Every outcome, in run order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            outcomes: self,
            calls: self.calls.iter(),
        }
    }

    /// The outcome of the `index`th callback that ran.
    pub fn get(&self, index: usize) -> Option<CallOutcome<'_>> {
        self.calls.get(index).map(|call| self.outcome(call))
    }

    fn outcome<'o>(&'o self, call: &Call) -> CallOutcome<'o> {
        let result = match call.result {
            0 => Ok(NULL),
            n => self.results[n as usize - 1].as_ref(),
        };
        CallOutcome {
            callback: CallbackId {
                generation: self.generation,
                index: call.callback,
            },
            result,
        }
    }

    /// How many callbacks ran.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no callback ran.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The failed callbacks.
    pub fn failures(&self) -> impl Iterator<Item = (CallOutcome<'_>, &PluginError)> + '_ {
        self.iter().filter_map(|o| o.result.err().map(|e| (o, e)))
    }

    /// Whether any callback failed.
    pub fn has_failures(&self) -> bool {
        self.results.iter().any(Result::is_err)
    }

    /// The first non-null value returned (the answer of a `result = "first"` event).
    pub fn first_value(&self) -> Option<&Value<'static>> {
        self.results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .find(|v| !v.is_null())
    }

    /// The request id of the emit: unique in the process, and the id every callback of
    /// the emit saw (`Args::request_id` in the SDK), for matching logs.
    pub fn request_id(&self) -> u64 {
        self.request
    }

    /// Sets the id the callbacks of the emits into this list see (`Host::event_id` in the
    /// SDK): the sender's id for the event, the same on every delivery of it. Kept until
    /// set again; without one, each emit's callbacks see an id the host made from its
    /// request id ([`made_up_id`](crate::dispatch::made_up_id)).
    pub fn set_event_id(&mut self, id: Option<&str>) {
        match (id, &mut self.event_id) {
            (Some(id), Some(kept)) => {
                kept.clear();
                kept.push_str(id);
            }
            (Some(id), kept) => *kept = Some(id.to_owned()),
            (None, kept) => *kept = None,
        }
    }

    /// The id set with [`Outcomes::set_event_id`], if any.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    #[inline]
    fn next_request(&mut self) -> u64 {
        let (next, end) = self.requests;
        if next == end {
            return self.next_block();
        }
        self.requests.0 = next + 1;
        next
    }

    #[cold]
    fn next_block(&mut self) -> u64 {
        let start = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) * REQUEST_BLOCK;
        self.requests = (start + 1, start + REQUEST_BLOCK);
        start
    }

    /// Records a callback that returned nothing: the hot path.
    #[inline]
    pub(crate) fn push_null(&mut self, callback: u32) {
        self.calls.push(Call {
            callback,
            result: 0,
        });
    }

    /// Records a callback's value or error.
    pub(crate) fn push(
        &mut self,
        callback: CallbackId,
        result: Result<Value<'static>, PluginError>,
    ) {
        self.results.push(result);
        self.calls.push(Call {
            callback: callback.index,
            result: self.results.len() as u32,
        });
    }

    /// The outcomes from position `from` on.
    pub(crate) fn since(&self, from: usize) -> Iter<'_> {
        Iter {
            outcomes: self,
            calls: self.calls[from..].iter(),
        }
    }

    /// Empties the list for an emit on `generation`.
    #[inline]
    pub(crate) fn reset(&mut self, generation: u64) {
        self.generation = generation;
        self.request = self.next_request();
        self.calls.clear();
        self.results.clear();
        self.nanos.clear();
    }

    /// The calls with their results, for counting: `(callback index, result)`.
    pub(crate) fn calls(&self) -> impl Iterator<Item = (u32, Result<(), &PluginError>)> + '_ {
        self.calls.iter().map(|call| {
            let result = match call.result {
                0 => Ok(()),
                n => self.results[n as usize - 1].as_ref().map(|_| ()),
            };
            (call.callback, result)
        })
    }

    /// The generation these outcomes belong to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Makes the emits into this list time every call (two clock reads per call), or stop
    /// doing so; see [`Outcomes::nanos`].
    pub fn time_calls(&mut self, on: bool) {
        self.timed = on;
    }

    /// How long each call took, in nanoseconds, in run order (one per outcome), when the
    /// emit was timed ([`Outcomes::time_calls`]); empty otherwise. For an isolated plugin
    /// under a batch, the batch's time shared evenly.
    pub fn nanos(&self) -> &[u64] {
        &self.nanos
    }
}

/// The outcomes of an emit, in run order; see [`Outcomes::iter`].
#[derive(Debug, Clone)]
pub struct Iter<'o> {
    outcomes: &'o Outcomes,
    calls: std::slice::Iter<'o, Call>,
}

impl<'o> Iterator for Iter<'o> {
    type Item = CallOutcome<'o>;

    fn next(&mut self) -> Option<CallOutcome<'o>> {
        self.calls.next().map(|call| self.outcomes.outcome(call))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.calls.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'o> DoubleEndedIterator for Iter<'o> {
    fn next_back(&mut self) -> Option<CallOutcome<'o>> {
        self.calls
            .next_back()
            .map(|call| self.outcomes.outcome(call))
    }
}

impl<'o> IntoIterator for &'o Outcomes {
    type Item = CallOutcome<'o>;
    type IntoIter = Iter<'o>;

    fn into_iter(self) -> Iter<'o> {
        self.iter()
    }
}
