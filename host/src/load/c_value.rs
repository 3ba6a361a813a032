//! Values between the host and a C-ABI plugin. Toward the plugin ([`Lowering`]) they are
//! borrowed views of the host's values: strings and bytes point into the host's memory,
//! only lists and maps need arrays of their own. From the plugin ([`lift`]) every value is
//! checked as carefully as a manifest (kinds, UTF-8, null pointers, nesting, sizes, unique
//! keys) and copied into a value the host owns, so that nothing the plugin hands over is
//! trusted or kept.

use std::collections::HashSet;
use std::ffi::{c_char, CStr};
use std::mem::MaybeUninit;

use switchboard_plugin_api::{Entry, Value, ValueView};

use super::c_abi::{kind, SbAs, SbBytes, SbEntry, SbList, SbMap, SbReply, SbStr, SbValue};

/// How deep a plugin's lists and maps may nest (the header's promise, and the host's
/// bound everywhere else).
pub(crate) const MAX_DEPTH: usize = 64;

/// The most bytes of strings and bytes, and the most items, one value from a plugin may
/// hold in all.
const MAX_VALUE_BYTES: usize = 1 << 30;

/// The longest static string (a name, a type) read from a plugin's table.
pub(crate) const MAX_STATIC_TEXT: usize = 4096;

/// An `sb_str` borrowing `text`.
pub(crate) fn sb_str(text: &str) -> SbStr {
    SbStr {
        ptr: text.as_ptr().cast(),
        len: text.len(),
    }
}

/// The null value, all 24 bytes zero.
pub(crate) const NULL: SbValue = SbValue {
    kind: kind::NULL,
    reserved: 0,
    value: SbAs {
        string: SbStr {
            ptr: std::ptr::null(),
            len: 0,
        },
    },
};

/// A reply as the host hands it to a hook (`sb_reply`'s doc): zeroed, the value null,
/// `struct_size` set.
pub(crate) const EMPTY_REPLY: SbReply = SbReply {
    struct_size: std::mem::size_of::<SbReply>() as u32,
    reserved: 0,
    value: NULL,
    error: std::ptr::null(),
    help: std::ptr::null(),
    release: None,
    release_data: std::ptr::null_mut(),
};

/// `value` as the plugin reads it, when it is not a list or a map (those need arrays of
/// their own: [`Lowering::lower`]); borrows from `value`. Text first, the common argument:
/// a compare and three stores, the general match out of line.
#[inline(always)]
pub(crate) fn lower_flat(value: &Value<'_>) -> Option<SbValue> {
    match value.view() {
        ValueView::Str(text) => Some(text_value(text)),
        _ => lower_other(value),
    }
}

/// [`lower_flat`] written straight into `slot`: whether `value` was flat (when not, `slot`
/// is left as it was). A text is a compare and three stores into the slot itself, where an
/// `Option` returned would travel through a copy on the stack first.
#[inline(always)]
pub(crate) fn lower_flat_into(slot: &mut MaybeUninit<SbValue>, value: &Value<'_>) -> bool {
    let lowered = match value.view() {
        ValueView::Str(text) => text_value(text),
        _ => match lower_other(value) {
            Some(lowered) => lowered,
            None => return false,
        },
    };
    slot.write(lowered);
    true
}

/// A text's `sb_value`, borrowing it.
#[inline(always)]
fn text_value(text: &str) -> SbValue {
    SbValue {
        kind: kind::STRING,
        reserved: 0,
        value: SbAs {
            string: sb_str(text),
        },
    }
}

/// [`lower_flat`] for a value that is not text.
#[inline(never)]
fn lower_other(value: &Value<'_>) -> Option<SbValue> {
    let (kind, value) = match value.view() {
        ValueView::Null => return Some(NULL),
        ValueView::Bool(b) => (
            kind::BOOL,
            SbAs {
                boolean: u8::from(b),
            },
        ),
        ValueView::Int(i) => (kind::INT, SbAs { integer: i }),
        ValueView::Float(f) => (kind::FLOAT, SbAs { number: f }),
        ValueView::Str(s) => (kind::STRING, SbAs { string: sb_str(s) }),
        ValueView::Bytes(b) => (
            kind::BYTES,
            SbAs {
                bytes: SbBytes {
                    ptr: b.as_ptr(),
                    len: b.len(),
                },
            },
        ),
        ValueView::List(_) | ValueView::Map(_) => return None,
    };
    Some(SbValue {
        kind,
        reserved: 0,
        value,
    })
}

/// The storage of the lists and maps of values lowered for one call: their arrays live
/// here until the call returns (boxed, so that their addresses hold while more are added).
#[derive(Default)]
pub(crate) struct Lowering {
    lists: Vec<Box<[SbValue]>>,
    maps: Vec<Box<[SbEntry]>>,
}

impl Lowering {
    /// `value` as the plugin reads it, borrowing from `value` (and from `self` for nested
    /// lists and maps): valid while both are.
    #[inline]
    pub(crate) fn lower(&mut self, value: &Value<'_>) -> SbValue {
        if let Some(flat) = lower_flat(value) {
            return flat;
        }
        let (kind, value) = match value.view() {
            ValueView::List(items) => {
                let lowered: Box<[SbValue]> = items.iter().map(|v| self.lower(v)).collect();
                let list = SbList {
                    items: lowered.as_ptr(),
                    len: lowered.len(),
                };
                self.lists.push(lowered);
                (kind::LIST, SbAs { list })
            }
            ValueView::Map(entries) => {
                let lowered: Box<[SbEntry]> = entries
                    .iter()
                    .map(|e| SbEntry {
                        key: sb_str(e.key()),
                        value: self.lower(e.value()),
                    })
                    .collect();
                let map = SbMap {
                    entries: lowered.as_ptr(),
                    len: lowered.len(),
                };
                self.maps.push(lowered);
                (kind::MAP, SbAs { map })
            }
            _ => return NULL, // flat values were lowered above
        };
        SbValue {
            kind,
            reserved: 0,
            value,
        }
    }
}

/// A copy the host owns of a value a plugin handed over, or what is wrong with it.
///
/// # Safety
///
/// The pointers in `value` (and in what it contains) must be valid for the lengths they
/// give, as the header requires of a plugin; everything else (kinds, UTF-8, nulls,
/// nesting, sizes, keys) is checked.
pub(crate) unsafe fn lift(value: &SbValue) -> Result<Value<'static>, String> {
    let mut budget = MAX_VALUE_BYTES;
    // SAFETY: the caller's promise, passed on.
    unsafe { lift_at(value, 1, &mut budget, "the value") }
}

/// # Safety
///
/// As for [`lift`].
unsafe fn lift_at(
    value: &SbValue,
    depth: usize,
    budget: &mut usize,
    at: &str,
) -> Result<Value<'static>, String> {
    // SAFETY (every union read below): `kind` says which member the plugin wrote, and each
    // member is plain old data, so reading the one `kind` names is a read of what the
    // plugin wrote; a wrong `kind` reads other bytes as that member, which the checks on
    // the member (pointers, lengths, UTF-8) then refuse or accept as data.
    match value.kind {
        kind::NULL => Ok(Value::NULL),
        kind::BOOL => match unsafe { value.value.boolean } {
            0 => Ok(Value::from(false)),
            1 => Ok(Value::from(true)),
            other => Err(format!("{at} is a bool holding {other}, not 0 or 1")),
        },
        kind::INT => Ok(Value::from(unsafe { value.value.integer })),
        kind::FLOAT => Ok(Value::from(unsafe { value.value.number })),
        kind::STRING => {
            let s = unsafe { value.value.string };
            spend(budget, s.len, "text", at)?;
            // SAFETY: the caller's promise about pointers; `slice` checks null and length.
            let text = unsafe { text_of(s) }.map_err(|why| format!("{at} {why}"))?;
            Ok(Value::from(text.to_owned()))
        }
        kind::BYTES => {
            let b = unsafe { value.value.bytes };
            spend(budget, b.len, "bytes", at)?;
            // SAFETY: as above.
            let bytes = unsafe { slice(b.ptr, b.len) }.map_err(|why| format!("{at} {why}"))?;
            Ok(Value::bytes(bytes))
        }
        kind::LIST => {
            if depth >= MAX_DEPTH {
                return Err(format!("{at} nests deeper than {MAX_DEPTH} levels"));
            }
            let list = unsafe { value.value.list };
            spend(budget, list.len, "items", at)?;
            // SAFETY: as above.
            let items =
                unsafe { slice(list.items, list.len) }.map_err(|why| format!("{at} {why}"))?;
            let mut lifted = Vec::with_capacity(items.len());
            for (n, item) in items.iter().enumerate() {
                let at = inside(at, &format!("[{n}]"));
                // SAFETY: as above.
                lifted.push(unsafe { lift_at(item, depth + 1, budget, &at) }?);
            }
            Ok(Value::list(lifted))
        }
        kind::MAP => {
            if depth >= MAX_DEPTH {
                return Err(format!("{at} nests deeper than {MAX_DEPTH} levels"));
            }
            let map = unsafe { value.value.map };
            spend(budget, map.len, "entries", at)?;
            // SAFETY: as above.
            let entries =
                unsafe { slice(map.entries, map.len) }.map_err(|why| format!("{at} {why}"))?;
            let mut seen = HashSet::with_capacity(entries.len());
            let mut lifted = Vec::with_capacity(entries.len());
            for (n, entry) in entries.iter().enumerate() {
                spend(budget, entry.key.len, "keys", at)?;
                // SAFETY: as above.
                let key = unsafe { text_of(entry.key) }
                    .map_err(|why| format!("{at}: the key of entry {n} {why}"))?;
                if !seen.insert(key) {
                    return Err(format!("{at} has the key `{}` twice", key.escape_debug()));
                }
                let at = inside(at, &format!(".{key}"));
                // SAFETY: as above.
                let value = unsafe { lift_at(&entry.value, depth + 1, budget, &at) }?;
                lifted.push(Entry::new(key, value));
            }
            Ok(Value::map_from_entries(lifted))
        }
        other => Err(format!(
            "{at} has kind {other}, which is not a kind of the C ABI (SB_NULL 0 to SB_MAP 7)"
        )),
    }
}

/// Where a nested value is, for messages: `at` and then `step`, the path cut short once
/// it is long.
fn inside(at: &str, step: &str) -> String {
    const LONGEST: usize = 80;
    if at.len() >= LONGEST {
        if at.ends_with("...") {
            at.to_owned()
        } else {
            format!("{at}...")
        }
    } else {
        format!("{at}{step}")
    }
}

/// Takes `n` from what one value may hold in all.
fn spend(budget: &mut usize, n: usize, what: &str, at: &str) -> Result<(), String> {
    *budget = budget
        .checked_sub(n)
        .ok_or_else(|| format!("{at} holds more than {MAX_VALUE_BYTES} bytes of {what} in all"))?;
    Ok(())
}

/// The `len` items at `ptr`, refusing a null pointer with items.
///
/// # Safety
///
/// A non-null `ptr` must be valid for `len` items.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(format!("points to nothing (NULL) but says it has {len}"));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(format!("says it has {len}, more than memory can hold"));
    }
    // SAFETY: non-null, and valid for `len` items by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The text of an `sb_str`, checked for null and UTF-8.
///
/// # Safety
///
/// As for [`slice()`].
pub(crate) unsafe fn text_of<'a>(s: SbStr) -> Result<&'a str, String> {
    // SAFETY: the caller's promise.
    let bytes = unsafe { slice(s.ptr.cast::<u8>(), s.len) }?;
    std::str::from_utf8(bytes).map_err(|e| format!("is not UTF-8 ({e})"))
}

/// A NUL-terminated static string of a plugin's table, checked: not null, NUL-terminated
/// within [`MAX_STATIC_TEXT`] bytes, UTF-8.
///
/// # Safety
///
/// A non-null `ptr` must be readable up to its NUL, or [`MAX_STATIC_TEXT`] bytes.
pub(crate) unsafe fn static_text(ptr: *const c_char, what: &str) -> Result<String, String> {
    if ptr.is_null() {
        return Err(format!("{what} is NULL"));
    }
    let mut len = 0;
    // SAFETY: the caller's promise: readable up to the NUL or the bound, whichever first.
    while unsafe { *ptr.add(len) } != 0 {
        len += 1;
        if len > MAX_STATIC_TEXT {
            return Err(format!(
                "{what} has no terminating NUL within {MAX_STATIC_TEXT} bytes"
            ));
        }
    }
    // SAFETY: `len` bytes and then a NUL were just read at `ptr`.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map(str::to_owned)
        .map_err(|e| format!("{what} is not UTF-8 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value<'_>) -> Value<'static> {
        let mut lowering = Lowering::default();
        let lowered = lowering.lower(&value);
        // SAFETY: `lowered` borrows from `value` and `lowering`, both alive.
        unsafe { lift(&lowered) }.unwrap()
    }

    #[test]
    fn every_kind_survives_the_trip() {
        let value = Value::map([
            ("s", Value::from("Ann")),
            ("i", Value::from(-3)),
            ("f", Value::from(1.5)),
            ("b", Value::from(true)),
            ("n", Value::NULL),
            ("x", Value::bytes(vec![0u8, 255])),
            (
                "l",
                Value::list([Value::from(1), Value::list([Value::from("deep")])]),
            ),
        ]);
        assert_eq!(round_trip(value.clone()).to_json(), value.to_json());
        assert_eq!(
            round_trip(Value::bytes(vec![9u8])).as_bytes(),
            Some(&[9u8][..])
        );
    }

    #[test]
    fn what_a_plugin_hands_over_is_checked() {
        let bad_text = b"\xff\xfe";
        let value = SbValue {
            kind: kind::STRING,
            reserved: 0,
            value: SbAs {
                string: SbStr {
                    ptr: bad_text.as_ptr().cast(),
                    len: 2,
                },
            },
        };
        // SAFETY: the pointer is valid for its length.
        let why = unsafe { lift(&value) }.unwrap_err();
        assert!(why.contains("not UTF-8"), "{why}");

        let null = SbValue {
            kind: kind::LIST,
            reserved: 0,
            value: SbAs {
                list: SbList {
                    items: std::ptr::null(),
                    len: 3,
                },
            },
        };
        // SAFETY: a null pointer is refused before it is read.
        assert!(unsafe { lift(&null) }.unwrap_err().contains("NULL"));
        let odd = SbValue { kind: 42, ..NULL };
        // SAFETY: nothing is read for an unknown kind.
        assert!(unsafe { lift(&odd) }.unwrap_err().contains("kind 42"));
        let bool3 = SbValue {
            kind: kind::BOOL,
            reserved: 0,
            value: SbAs { integer: 3 },
        };
        // SAFETY: plain data.
        assert!(unsafe { lift(&bool3) }.unwrap_err().contains("not 0 or 1"));

        // Too deep: a list of a list of ... 70 levels.
        let mut levels = vec![NULL];
        let mut deep = Vec::new();
        for _ in 0..70 {
            let inner = levels.last().copied().unwrap();
            deep.push(Box::new([inner]));
            let items = deep.last().unwrap().as_ptr();
            levels.push(SbValue {
                kind: kind::LIST,
                reserved: 0,
                value: SbAs {
                    list: SbList { items, len: 1 },
                },
            });
        }
        // SAFETY: every array lives in `deep`.
        let why = unsafe { lift(levels.last().unwrap()) }.unwrap_err();
        assert!(why.contains("deeper than 64"), "{why}");

        // A key twice.
        let key = sb_str("k");
        let entries = [SbEntry { key, value: NULL }, SbEntry { key, value: NULL }];
        let map = SbValue {
            kind: kind::MAP,
            reserved: 0,
            value: SbAs {
                map: SbMap {
                    entries: entries.as_ptr(),
                    len: 2,
                },
            },
        };
        // SAFETY: the entries live in `entries`.
        assert!(unsafe { lift(&map) }.unwrap_err().contains("twice"));
    }
}
