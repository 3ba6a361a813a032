//! A C hook's answer (`sb_reply` and its status) turned into the host's: copied, checked
//! against the header's rules, and released by the plugin's own `release`.

use switchboard_plugin_api::{Error as PluginError, Value};

use super::c_abi::{self, SbReply};
use super::c_value::{lift, static_text};

/// Whether a hook left `reply` exactly as [`EMPTY_REPLY`](super::c_value::EMPTY_REPLY) made it: then it answered
/// nothing, and the next call can have it as it is (zeroed, as the header promises). Loads
/// only, where writing a fresh reply for every call would be ten stores.
#[inline(always)]
pub(super) fn untouched(reply: &SbReply) -> bool {
    reply.struct_size == std::mem::size_of::<SbReply>() as u32
        && reply.reserved == 0
        && reply.value.kind == c_abi::kind::NULL
        && reply.value.reserved == 0
        // SAFETY: any bytes are a valid pointer and length, which span the union's 16.
        && unsafe { reply.value.value.string.ptr.is_null() && reply.value.value.string.len == 0 }
        && reply.error.is_null()
        && reply.help.is_null()
        && reply.release.is_none()
        && reply.release_data.is_null()
}

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
