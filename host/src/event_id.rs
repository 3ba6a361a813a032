//! Event ids: the sender's, or one the host makes up from a request number for an event
//! that came without one. A Rust plugin asks for the id when it wants it; a C plugin finds
//! it in every call, so the made-up text is made once per emit with C callbacks, from the
//! last one with its last two digits rewritten where it can be.

/// The id of an emit's event, as its callbacks see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EventTag<'p> {
    /// The sender's.
    Given(&'p str),
    /// None was given: one made from the emit's request id when asked for.
    Made(u64),
}

impl EventTag<'_> {
    /// The id for an emit with `given` (or none) and request id `request`.
    pub(crate) fn of(given: Option<&str>, request: u64) -> EventTag<'_> {
        match given {
            Some(id) => EventTag::Given(id),
            None => EventTag::Made(request),
        }
    }

    /// The id as text.
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        match *self {
            EventTag::Given(id) => std::borrow::Cow::Borrowed(id),
            EventTag::Made(request) => std::borrow::Cow::Owned(made_up_id(request)),
        }
    }
}

/// An id for the `n`th event of this process that came without one (a request id, a line
/// number): `sb-<pid>-<start time>-<n>` (the last two in hex), unique across runs.
pub fn made_up_id(n: u64) -> String {
    let mut id = MadeUpId::EMPTY;
    id.set(n).to_owned()
}

/// Room for any made-up id: the prefix (at most 47 bytes: `sb-`, a 32-bit pid, `-`, a
/// 128-bit time in hex, `-`) and at most 16 hex digits, so at most 63 bytes: the last byte
/// of the room is never part of an id and stays zero.
const ROOM: usize = 64;

/// The two lowercase hex digits of every byte, as a made-up id ends with them.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let digits = *b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [digits[byte >> 4], digits[byte & 0xf]];
        byte += 1;
    }
    pairs
};

/// A made-up id's text, kept to make the next one from: emits from one thread mostly take
/// consecutive request numbers, which share all but their last two hex digits 255 times
/// in 256, so the next id is the last with those two digits rewritten (one table lookup
/// and one two-byte store) instead of written afresh.
pub(crate) struct MadeUpId {
    /// The number the text shows, once there is one.
    shown: u64,
    /// The number's bits above its lowest byte, when the text ends with its lowest byte's
    /// two digits (a number of 256 or more, written out in full): any number with the same
    /// high bits is the text with those two digits rewritten. `u64::MAX` otherwise, which
    /// no number's high bits are.
    high: u64,
    /// The text's length (below [`ROOM`]); 0 before the first.
    len: u8,
    text: [u8; ROOM],
}

impl MadeUpId {
    /// No id yet.
    pub(crate) const EMPTY: MadeUpId = MadeUpId {
        shown: 0,
        high: u64::MAX,
        len: 0,
        text: [0; ROOM],
    };

    /// Makes this [`made_up_id`]`(n)`: its last two digits rewritten when `n` shares the
    /// rest with the last, written afresh otherwise. The text.
    #[inline(always)]
    pub(crate) fn set(&mut self, n: u64) -> &str {
        if n >> 8 == self.high {
            let end = usize::from(self.len);
            if let Some(last_two) = self.text.get_mut(end.wrapping_sub(2)..end) {
                last_two.copy_from_slice(&HEX_PAIRS[usize::from(n as u8)]);
                self.shown = n;
                return self.as_str();
            }
        }
        if !self.is(n) {
            self.set_slowly(n);
        }
        self.as_str()
    }

    /// Writes [`made_up_id`]`(n)` afresh: its first, or one whose high bits differ from the
    /// last's.
    #[inline(never)]
    fn set_slowly(&mut self, n: u64) {
        // Below ROOM (64): see `write_made_up_id`.
        self.len = write_made_up_id(n, &mut self.text) as u8;
        self.shown = n;
        self.high = if n >= 256 { n >> 8 } else { u64::MAX };
    }

    /// Whether this is [`made_up_id`]`(n)` already.
    #[inline]
    pub(crate) fn is(&self, n: u64) -> bool {
        self.len > 0 && self.shown == n
    }

    /// The text; empty before the first [`MadeUpId::set`].
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        let text = self
            .text
            .get(..usize::from(self.len) % ROOM)
            .unwrap_or_default();
        // SAFETY: the prefix is ASCII (`sb-`, decimal and hex digits, dashes) and so is
        // every digit written after it.
        unsafe { std::str::from_utf8_unchecked(text) }
    }
}

/// Writes [`made_up_id`]`(n)` at the start of `text`: the prefix copied whole from a padded
/// copy, then the digits. Where the digits end.
#[inline(never)]
fn write_made_up_id(n: u64, text: &mut [u8; ROOM]) -> usize {
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
/// to [`ROOM`], and its length.
fn this_run() -> &'static ([u8; ROOM], usize) {
    static RUN: std::sync::OnceLock<([u8; ROOM], usize)> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let text = format!("sb-{}-{started:x}-", std::process::id());
        let mut padded = [0; ROOM];
        // At most 47 bytes (see ROOM), so the copy always fits with room for 16 digits.
        let len = text.len().min(ROOM - 16);
        padded[..len].copy_from_slice(&text.as_bytes()[..len]);
        (padded, len)
    })
}

#[cfg(test)]
mod tests {
    use super::MadeUpId;

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
        // Consecutive numbers (the last two digits rewritten in place), across the lowest
        // byte's carry and a new digit, numbers below 256 (written afresh), numbers that
        // jump and repeats (kept), in one buffer as an emit loop uses it.
        let mut id = MadeUpId::EMPTY;
        assert_eq!(id.as_str(), "");
        for n in (0..40)
            .chain(0xfe..0x112)
            .chain([0xfff, 0x1000, 0x1001, 0x1001, 7, 8, 8, 0x9f, 0xa0])
            .chain(0xfff0..0x1_0110)
            .chain(u64::MAX - 2..=u64::MAX)
            .chain([0, 1])
        {
            assert_eq!(id.set(n), format!("{prefix}{n:x}"), "{n}");
            assert!(id.is(n) && !id.is(n.wrapping_add(1)), "{n}");
        }
        for shift in 0..64 {
            let n = 0xfedc_ba98_7654_3210_u64.rotate_left(shift) >> (shift % 61);
            assert_eq!(super::made_up_id(n), format!("{prefix}{n:x}"), "{n}");
        }
    }
}
