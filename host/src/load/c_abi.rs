//! The C ABI's types, mirrored from `plugin-api/include/switchboard.h` (the source of
//! truth): one `#[repr(C)]` struct per struct of the header, field for field. A test
//! compiles a C program that prints every `sizeof` and `offsetof` of the header and compares
//! them with these (`tests/integration/c_abi.rs`), so the two cannot drift.

use std::ffi::{c_char, c_void};

/// `SB_ABI_MAJOR`: a plugin of another major is refused.
pub const ABI_MAJOR: u16 = 1;
/// `SB_ABI_MINOR` of this host.
pub const ABI_MINOR: u16 = 0;

/// The exported entry point's name.
pub const ENTRY_POINT: &[u8] = b"switchboard_plugin\0";

/// `SB_OK`.
pub const OK: i32 = 0;
/// `SB_ERROR`.
pub const ERROR: i32 = 1;
/// `SB_PENDING` (reserved in 1.0).
pub const PENDING: i32 = 2;

/// `SB_CALLBACK_TYPED`.
pub const CALLBACK_TYPED: u32 = 1;

/// Value kinds, `SB_NULL`..`SB_MAP`.
pub mod kind {
    pub const NULL: u32 = 0;
    pub const BOOL: u32 = 1;
    pub const INT: u32 = 2;
    pub const FLOAT: u32 = 3;
    pub const STRING: u32 = 4;
    pub const BYTES: u32 = 5;
    pub const LIST: u32 = 6;
    pub const MAP: u32 = 7;
}

/// `sb_str`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SbStr {
    pub ptr: *const c_char,
    pub len: usize,
}

/// `sb_bytes`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SbBytes {
    pub ptr: *const u8,
    pub len: usize,
}

/// The `list` member of `sb_value.as`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SbList {
    pub items: *const SbValue,
    pub len: usize,
}

/// The `map` member of `sb_value.as`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SbMap {
    pub entries: *const SbEntry,
    pub len: usize,
}

/// `sb_value.as`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union SbAs {
    pub boolean: u8,
    pub integer: i64,
    pub number: f64,
    pub string: SbStr,
    pub bytes: SbBytes,
    pub list: SbList,
    pub map: SbMap,
}

/// `sb_value`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SbValue {
    pub kind: u32,
    pub reserved: u32,
    pub value: SbAs,
}

/// `sb_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SbEntry {
    pub key: SbStr,
    pub value: SbValue,
}

/// `sb_arg`.
#[repr(C)]
pub struct SbArg {
    pub name: *const c_char,
    pub kind: *const c_char,
}

/// `sb_callback`.
#[repr(C)]
pub struct SbCallback {
    pub event: *const c_char,
    pub name: *const c_char,
    pub priority: i32,
    pub flags: u32,
    pub reads: *const SbArg,
    pub read_count: usize,
}

/// `sb_emit`.
#[repr(C)]
pub struct SbEmit {
    pub event: *const c_char,
    pub args: *const SbArg,
    pub arg_count: usize,
}

/// `sb_call`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SbCall {
    pub struct_size: u32,
    pub callback: u32,
    pub event: SbStr,
    pub names: *const SbStr,
    pub values: *const SbValue,
    pub count: usize,
    pub request_id: u64,
    pub event_id: SbStr,
}

/// `sb_reply`.
#[repr(C)]
pub struct SbReply {
    pub struct_size: u32,
    pub reserved: u32,
    pub value: SbValue,
    pub error: *const c_char,
    pub help: *const c_char,
    pub release: Option<unsafe extern "C" fn(release_data: *mut c_void)>,
    pub release_data: *mut c_void,
}

/// `sb_outcome`.
#[repr(C)]
pub struct SbOutcome {
    pub plugin: SbStr,
    pub callback: SbStr,
    pub status: i32,
    pub reserved: u32,
    pub value: SbValue,
    pub error: SbStr,
}

/// `sb_outcomes`.
#[repr(C)]
pub struct SbOutcomes {
    pub items: *const SbOutcome,
    pub count: usize,
    pub host_data: *mut c_void,
}

/// `sb_host`.
#[repr(C)]
pub struct SbHost {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub host_data: *mut c_void,
    pub callback_plugin_name: unsafe extern "C" fn(host: *const SbHost) -> SbStr,
    pub callback_log: unsafe extern "C" fn(host: *const SbHost, level: i32, message: SbStr),
    pub callback_emit: unsafe extern "C" fn(
        host: *const SbHost,
        event: SbStr,
        args: *const SbEntry,
        count: usize,
        outcomes: *mut SbOutcomes,
    ) -> i32,
    pub callback_outcomes_free:
        unsafe extern "C" fn(host: *const SbHost, outcomes: *mut SbOutcomes),
    pub callback_has_feature: unsafe extern "C" fn(host: *const SbHost, feature: SbStr) -> i32,
    pub callback_manifest_dir: unsafe extern "C" fn(host: *const SbHost) -> SbStr,
    pub callback_keep: unsafe extern "C" fn(host: *const SbHost) -> *const SbHost,
    pub callback_release: unsafe extern "C" fn(kept: *const SbHost),
}

/// `sb_plugin`.
#[repr(C)]
pub struct SbPlugin {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub name: *const c_char,
    pub version: *const c_char,
    pub callbacks: *const SbCallback,
    pub callback_count: usize,
    pub callback_size: usize,
    pub emits: *const SbEmit,
    pub emit_count: usize,
    pub on_init: Option<
        unsafe extern "C" fn(
            host: *const SbHost,
            config: *const SbValue,
            state: *mut *mut c_void,
            reply: *mut SbReply,
        ) -> i32,
    >,
    pub on_call: Option<
        unsafe extern "C" fn(
            state: *mut c_void,
            call: *const SbCall,
            host: *const SbHost,
            reply: *mut SbReply,
        ) -> i32,
    >,
    pub on_control: Option<
        unsafe extern "C" fn(
            state: *mut c_void,
            operation: SbStr,
            argument: *const SbValue,
            host: *const SbHost,
            reply: *mut SbReply,
        ) -> i32,
    >,
    pub on_shutdown: Option<
        unsafe extern "C" fn(state: *mut c_void, host: *const SbHost, reply: *mut SbReply) -> i32,
    >,
}

/// The entry point's type.
pub type EntryPoint = unsafe extern "C" fn() -> *const SbPlugin;

/// Every struct of the header with its size and its fields' offsets, as this side lays
/// them out: `name size`, then `name.field offset`, one per line, in the header's order.
/// The drift test prints the same from C and compares.
pub fn layout_report() -> String {
    use std::mem::{offset_of, size_of};
    let mut out = String::new();
    macro_rules! layout {
        ($c:literal, $t:ty, [$($cf:literal => $f:ident),* $(,)?]) => {
            out.push_str(&format!("{} {}\n", $c, size_of::<$t>()));
            $(out.push_str(&format!("{}.{} {}\n", $c, $cf, offset_of!($t, $f)));)*
        };
    }
    layout!("sb_str", SbStr, ["ptr" => ptr, "len" => len]);
    layout!("sb_bytes", SbBytes, ["ptr" => ptr, "len" => len]);
    layout!("sb_value", SbValue, ["kind" => kind, "reserved" => reserved, "as" => value]);
    layout!("sb_entry", SbEntry, ["key" => key, "value" => value]);
    layout!("sb_arg", SbArg, ["name" => name, "type" => kind]);
    layout!("sb_callback", SbCallback, [
        "event" => event, "name" => name, "priority" => priority, "flags" => flags,
        "reads" => reads, "read_count" => read_count,
    ]);
    layout!("sb_emit", SbEmit, ["event" => event, "args" => args, "arg_count" => arg_count]);
    layout!("sb_call", SbCall, [
        "struct_size" => struct_size, "callback" => callback, "event" => event,
        "names" => names, "values" => values, "count" => count,
        "request_id" => request_id, "event_id" => event_id,
    ]);
    layout!("sb_reply", SbReply, [
        "struct_size" => struct_size, "reserved" => reserved, "value" => value,
        "error" => error, "help" => help, "release" => release, "release_data" => release_data,
    ]);
    layout!("sb_outcome", SbOutcome, [
        "plugin" => plugin, "callback" => callback, "status" => status,
        "reserved" => reserved, "value" => value, "error" => error,
    ]);
    layout!("sb_outcomes", SbOutcomes, ["items" => items, "count" => count, "host_data" => host_data]);
    layout!("sb_host", SbHost, [
        "struct_size" => struct_size, "abi_major" => abi_major, "abi_minor" => abi_minor,
        "host_data" => host_data, "callback_plugin_name" => callback_plugin_name,
        "callback_log" => callback_log, "callback_emit" => callback_emit,
        "callback_outcomes_free" => callback_outcomes_free,
        "callback_has_feature" => callback_has_feature,
        "callback_manifest_dir" => callback_manifest_dir,
        "callback_keep" => callback_keep, "callback_release" => callback_release,
    ]);
    layout!("sb_plugin", SbPlugin, [
        "struct_size" => struct_size, "abi_major" => abi_major, "abi_minor" => abi_minor,
        "name" => name, "version" => version, "callbacks" => callbacks,
        "callback_count" => callback_count, "callback_size" => callback_size,
        "emits" => emits, "emit_count" => emit_count, "on_init" => on_init,
        "on_call" => on_call, "on_control" => on_control, "on_shutdown" => on_shutdown,
    ]);
    out
}
