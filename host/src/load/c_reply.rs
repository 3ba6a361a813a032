//! A C hook's answer (`sb_reply` and its status) turned into the host's: copied, checked
//! against the header's rules, and released by the plugin's own `release`.

use std::mem::{align_of, size_of};

use switchboard_plugin_api::{Error as PluginError, Value};

use super::c_abi::{self, SbAs, SbReply, SbStr, SbValue};
use super::c_value::{lift, static_text};

/// Whether a hook left `reply` exactly as [`EMPTY_REPLY`](super::c_value::EMPTY_REPLY) made it: then it answered
/// nothing, and the next call can have it as it is (zeroed, as the header promises). Its
/// words are compared all at once (four vector loads on x86-64), where a field at a time
/// is ten loads and ten branches, and writing a fresh reply for every call ten stores.
#[inline(always)]
pub(super) fn untouched(reply: &SbReply) -> bool {
    // SAFETY: an `SbReply` is `WORDS` words with no padding (asserted below), aligned as a
    // pointer, and every byte of it is initialized: `EMPTY_REPLY` writes all of them (its
    // union as a string, which spans the union's 16), and a plugin writes them only as C
    // does. Reading a pointer's bytes as an integer only compares them.
    let words = unsafe { std::ptr::from_ref(reply).cast::<[usize; WORDS]>().read() };
    let [first, rest @ ..] = words;
    rest.iter()
        .fold(first ^ EMPTY_FIRST_WORD, |any, word| any | word)
        == 0
}

/// How many machine words an `SbReply` is.
const WORDS: usize = size_of::<SbReply>() / size_of::<usize>();

/// The first word of an empty reply: `struct_size`, then (on 64 bits) a zero `reserved`;
/// every other word of it is zero (a null value of kind 0, null pointers, no `release`).
const EMPTY_FIRST_WORD: usize = {
    let size = (size_of::<SbReply>() as u32).to_ne_bytes();
    let mut first = [0; size_of::<usize>()];
    let mut i = 0;
    while i < size.len() {
        first[i] = size[i];
        i += 1;
    }
    usize::from_ne_bytes(first)
};

// No padding anywhere in an `SbReply`, so that every byte `untouched` reads is one a field
// holds: its size is the sum of its fields', its value's the sum of its own, and the
// union is exactly a string (its widest member).
const _: () = {
    let pointer = size_of::<usize>();
    assert!(size_of::<usize>() >= 4);
    assert!(size_of::<SbStr>() == 2 * pointer && size_of::<SbAs>() == size_of::<SbStr>());
    assert!(size_of::<SbValue>() == 8 + size_of::<SbAs>());
    assert!(size_of::<SbReply>() == 8 + size_of::<SbValue>() + 4 * pointer);
    assert!(align_of::<SbReply>() >= pointer);
    assert!(c_abi::kind::NULL == 0);
};

/// What a hook's status and reply say, copied and checked; the plugin's `release` is called
/// once the copy is made, whatever it held.
///
/// # Safety
///
/// `reply` must be the reply the plugin filled for this call (its pointers valid until
/// `release`).
pub(super) unsafe fn take_reply(
    code: i32,
    reply: &SbReply,
    hook: &str,
) -> Result<Value<'static>, PluginError> {
    let answer = match code {
        // SAFETY: the plugin's value, valid until release.
        c_abi::OK => unsafe { lift(&reply.value) }.map_err(|why| {
            PluginError::new(format!("the plugin's {hook} answered a bad value: {why}"))
                .with_help("fix the plugin: every value must follow switchboard.h")
        }),
        c_abi::ERROR => {
            // SAFETY: strings of the reply, valid until release.
            let message = unsafe { optional_text(reply.error) }
                .unwrap_or_else(|why| Some(format!("(its error message {why})")))
                .unwrap_or_else(|| format!("the plugin's {hook} failed without a message"));
            // SAFETY: as above.
            let help = unsafe { optional_text(reply.help) }.unwrap_or_default();
            let error = PluginError::new(message);
            Err(match help {
                Some(help) => error.with_help(help),
                None => error,
            })
        }
        c_abi::PENDING => Err(PluginError::new(format!(
            "the plugin's {hook} answered SB_PENDING (a result to come later), which this host (C ABI {}.{}) does not support yet",
            c_abi::ABI_MAJOR,
            c_abi::ABI_MINOR
        ))
        .with_help("answer SB_OK or SB_ERROR")),
        other => Err(PluginError::new(format!(
            "the plugin's {hook} returned status {other}, which is not a status of the C ABI (SB_OK 0, SB_ERROR 1)"
        ))
        .with_help("fix the plugin: return SB_OK or SB_ERROR")),
    };
    if let Some(release) = reply.release {
        // SAFETY: the plugin's own function with its own data, called once, after the
        // host has copied everything it needs from the reply.
        unsafe { release(reply.release_data) };
    }
    answer
}

/// A reply's optional NUL-terminated text.
///
/// # Safety
///
/// As for `static_text`.
unsafe fn optional_text(ptr: *const std::ffi::c_char) -> Result<Option<String>, String> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's promise.
    unsafe { static_text(ptr, "text") }.map(Some)
}

#[cfg(test)]
mod tests {
    use super::untouched;
    use crate::load::c_abi::{kind, SbReply};
    use crate::load::c_value::EMPTY_REPLY;

    unsafe extern "C" fn release(_: *mut std::ffi::c_void) {}

    /// A reply is untouched only as `EMPTY_REPLY` makes it: any one field a plugin writes,
    /// whichever word of the reply holds it, makes it touched.
    #[test]
    fn any_field_written_makes_a_reply_touched() {
        assert!(untouched(&EMPTY_REPLY));
        type Dirty = fn(&mut SbReply);
        let dirtied: [(&str, Dirty); 10] = [
            ("struct_size", |r| r.struct_size = 0),
            ("reserved", |r| r.reserved = 1),
            ("value.kind", |r| r.value.kind = kind::INT),
            ("value.reserved", |r| r.value.reserved = 1),
            ("value.as (first word)", |r| r.value.value.integer = 42),
            ("value.as (second word)", |r| r.value.value.string.len = 1),
            ("error", |r| r.error = c"stale".as_ptr()),
            ("help", |r| r.help = c"stale".as_ptr()),
            ("release", |r| r.release = Some(release)),
            ("release_data", |r| {
                r.release_data = std::ptr::NonNull::dangling().as_ptr()
            }),
        ];
        for (field, dirty) in dirtied {
            let mut reply = EMPTY_REPLY;
            dirty(&mut reply);
            assert!(!untouched(&reply), "{field} written, yet untouched");
        }
    }
}
