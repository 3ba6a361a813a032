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
    /// request id ([`made_up_id`]).
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

/// An id for the `n`th event of this process that came without one (a request id, a line
/// number): `sb-<pid>-<start time>-<n>` (the last two in hex), unique across runs.
pub fn made_up_id(n: u64) -> String {
    made_up_id_in(n, &mut std::mem::MaybeUninit::uninit()).to_owned()
}

/// Room for any made-up id: the prefix (at most 47 bytes: `sb-`, a 32-bit pid, `-`, a
/// 128-bit time in hex, `-`) and at most 16 hex digits.
pub(crate) const MADE_UP_ID_ROOM: usize = 64;

/// [`made_up_id`], written into `buffer` without formatting machinery and without clearing
/// it first: it is made on the C callbacks' dispatch path, once per emit.
///
/// Each thread keeps the last id it made. Emits from one thread mostly take consecutive
/// request numbers, so the next id is that one with its hex digits counted up in place,
/// then copied whole (a fixed-size move the compiler inlines); otherwise it is written
/// afresh ([`write_made_up_id`]).
#[inline]
pub(crate) fn made_up_id_in(
    n: u64,
    buffer: &mut std::mem::MaybeUninit<[u8; MADE_UP_ID_ROOM]>,
) -> &str {
    let remembered = LAST_MADE_UP_ID.try_with(|last| {
        let mut last = last.borrow_mut();
        let follows = last.len > 0 && last.n.wrapping_add(1) == n;
        if !(follows && last.count_up()) {
            last.len = write_made_up_id(n, &mut last.text);
        }
        last.n = n;
        buffer.write(last.text);
        last.len
    });
    // A thread whose locals are being torn down writes the id afresh.
    let len =
        remembered.unwrap_or_else(|_| write_made_up_id(n, buffer.write([0; MADE_UP_ID_ROOM])));
    // SAFETY: written just above, either way.
    let text = unsafe { buffer.assume_init_ref() };
    // SAFETY: the prefix is ASCII (`sb-`, decimal and hex digits, dashes) and so is every
    // digit written after it.
    unsafe { std::str::from_utf8_unchecked(text.get(..len).unwrap_or_default()) }
}

/// The last id a thread made up.
struct LastMadeUpId {
    n: u64,
    /// Its length in `text`; 0 before the first.
    len: usize,
    text: [u8; MADE_UP_ID_ROOM],
}

thread_local! {
    static LAST_MADE_UP_ID: std::cell::RefCell<LastMadeUpId> = const {
        std::cell::RefCell::new(LastMadeUpId { n: 0, len: 0, text: [0; MADE_UP_ID_ROOM] })
    };
}

impl LastMadeUpId {
    /// Counts the id's hex number up by one in place; false when every digit was `f` (the
    /// next number has one digit more, so it is written afresh).
    #[inline]
    fn count_up(&mut self) -> bool {
        let prefix = this_run().1;
        let Some(digits) = self.text.get_mut(prefix..self.len) else {
            return false;
        };
        for digit in digits.iter_mut().rev() {
            match *digit {
                b'f' => *digit = b'0',
                b'9' => {
                    *digit = b'a';
                    return true;
                }
                _ => {
                    *digit += 1;
                    return true;
                }
            }
        }
        false
    }
}

/// Writes [`made_up_id`]`(n)` at the start of `text`: the prefix copied whole from a padded
/// copy, then the digits. Its length.
#[inline]
fn write_made_up_id(n: u64, text: &mut [u8; MADE_UP_ID_ROOM]) -> usize {
    let (padded, prefix) = this_run();
    let prefix = *prefix;
    *text = *padded;
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(1);
    // The digits, most significant first, moved to the top so that the first `digits` of
    // the 16 written are the number's.
    let hex = hex16(n << (4 * (16 - digits)));
    let Some(room) = text.get_mut(prefix..prefix + 16) else {
        return 0;
    };
    room.copy_from_slice(&hex);
    prefix + digits
}

/// `n` as 16 lowercase hex digits, most significant first, without a loop: each nibble
/// spread into a byte of its own, then all sixteen turned into ASCII at once.
#[inline]
fn hex16(n: u64) -> [u8; 16] {
    let mut x = u128::from(n);
    x = (x | (x << 32)) & 0x0000_0000_FFFF_FFFF_0000_0000_FFFF_FFFF;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF_0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF_00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F;
    // Byte k now holds nibble k (little-endian); a nibble of 10 or more gets `a` - `0` - 10
    // more than `0` does.
    let ones = 0x0101_0101_0101_0101_0101_0101_0101_0101_u128;
    let letters = ((x + 6 * ones) >> 4) & ones;
    (x + 0x30 * ones + letters * 39).to_be_bytes()
}

/// `sb-<pid>-<start time>-`, this process's prefix of made-up ids, padded with zero bytes
/// to [`MADE_UP_ID_ROOM`], and its length.
fn this_run() -> &'static ([u8; MADE_UP_ID_ROOM], usize) {
    static RUN: std::sync::OnceLock<([u8; MADE_UP_ID_ROOM], usize)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let text = format!("sb-{}-{started:x}-", std::process::id());
        let mut padded = [0; MADE_UP_ID_ROOM];
        // At most 47 bytes (see MADE_UP_ID_ROOM), so the copy always fits with room for
        // 16 digits.
        let len = text.len().min(MADE_UP_ID_ROOM - 16);
        padded[..len].copy_from_slice(&text.as_bytes()[..len]);
        (padded, len)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_made_up_id_is_this_runs_prefix_and_the_number_in_hex() {
        let (padded, len) = super::this_run();
        let prefix = std::str::from_utf8(&padded[..*len]).unwrap_or_default();
        assert!(
            prefix.starts_with(&format!("sb-{}-", std::process::id())) && prefix.ends_with('-'),
            "{prefix}"
        );
        for n in [
            0,
            7,
            10,
            15,
            16,
            0xabcdef,
            65_536,
            0x0123_4567_89ab_cdef,
            u64::MAX,
        ] {
            assert_eq!(super::made_up_id(n), format!("{prefix}{n:x}"), "{n}");
        }
        // Consecutive numbers (counted up in place), across carries and a new digit, and
        // numbers that do not follow (written afresh), on one thread as an emit loop does.
        for n in (0..40)
            .chain(0xfe..0x112)
            .chain([0xfff, 0x1000, 0x1001, 7, 8, 0x9f, 0xa0])
            .chain(u64::MAX - 2..=u64::MAX)
            .chain([0, 1])
        {
            let mut buffer = std::mem::MaybeUninit::uninit();
            assert_eq!(
                super::made_up_id_in(n, &mut buffer),
                format!("{prefix}{n:x}"),
                "{n}"
            );
        }
        for shift in 0..64 {
            let n = 0xfedc_ba98_7654_3210_u64.rotate_left(shift) >> (shift % 61);
            assert_eq!(super::made_up_id(n), format!("{prefix}{n:x}"), "{n}");
        }
    }
}
