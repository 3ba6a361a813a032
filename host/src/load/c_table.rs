//! A C-ABI library's static table (`switchboard.h`'s `sb_plugin`), read and checked at
//! load: sizes, versions, strings, callbacks, their arguments and the hooks a plugin must
//! have. Nothing in it is used before it is checked here.

use std::path::Path;

use switchboard_plugin_api::abi::feature;

use super::c_abi::{self, SbCallback, SbPlugin, SbStr};
use super::c_value::{slice, static_text};
use super::declared::{Emits, LibraryInfo, Registered};
use crate::error::LoadError;
use crate::manifest::schema::ArgType;

/// The feature a C-ABI plugin's [`LibraryInfo`] lists: how `inspect`, `list` and a worker's
/// report tell the kinds apart.
pub const C_ABI_FEATURE: &str = "c_abi";

/// The most callbacks, emitted events and arguments per callback a table may list.
const MAX_CALLBACKS: usize = 4096;
const MAX_ARGS: usize = 256;

/// A checked C-ABI plugin table (static in its library, which is never unloaded).
#[derive(Clone, Copy)]
pub(crate) struct Table(pub(super) &'static SbPlugin);

// SAFETY: the table is static, read-only data of a library that is never unloaded; the
// hooks it points to are required by the header to be callable from any thread.
unsafe impl Send for Table {}
// SAFETY: as for `Send`.
unsafe impl Sync for Table {}

/// What a C-ABI library says about itself, read from its table.
pub(crate) struct Described {
    pub(crate) table: Table,
    pub(crate) info: LibraryInfo,
    pub(crate) registrations: Vec<Registered>,
    pub(crate) emits: Vec<Emits>,
}

/// Calls the library's entry point and checks its table: sizes, versions, strings,
/// callbacks, arguments and the hooks it must have.
///
/// # Safety
///
/// `entry` must be the library's `switchboard_plugin` export; the pointers in the table it
/// returns must be valid as the header says (every count and size is checked).
pub(crate) unsafe fn describe(
    plugin: &str,
    path: &Path,
    entry: c_abi::EntryPoint,
) -> Result<Described, LoadError> {
    let broken = |problem: String| LoadError::CAbi {
        plugin: plugin.to_owned(),
        path: path.to_owned(),
        problem,
        host_abi: format!("{}.{}", c_abi::ABI_MAJOR, c_abi::ABI_MINOR),
    };
    // SAFETY: the caller's promise: a function of the header's type.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(broken(
            "`switchboard_plugin` returned NULL instead of its table".into(),
        ));
    }
    // The size first: the table may be shorter than this host's (an older minor).
    // SAFETY: a non-null table starts with its u32 size and the two versions.
    let (size, major, minor) = unsafe {
        let t = table.cast::<u32>();
        (
            *t,
            *table.cast::<u8>().add(4).cast::<u16>(),
            *table.cast::<u8>().add(6).cast::<u16>(),
        )
    };
    if major != c_abi::ABI_MAJOR {
        return Err(LoadError::CAbiVersion {
            plugin: plugin.to_owned(),
            path: path.to_owned(),
            plugin_abi: format!("{major}.{minor}"),
            host_abi: format!("{}.{}", c_abi::ABI_MAJOR, c_abi::ABI_MINOR),
        });
    }
    let ours = std::mem::size_of::<SbPlugin>();
    if (size as usize) < ours {
        return Err(broken(format!(
            "its table says it is {size} bytes, smaller than the {ours} bytes of a C ABI 1.0 table (`struct_size` must be sizeof(sb_plugin))"
        )));
    }
    // SAFETY: the table is at least as large as this host's `SbPlugin`, so every field
    // read below is inside it.
    let table: &'static SbPlugin = unsafe { &*table };
    // SAFETY (static_text below): pointers of the table, valid by the caller's promise.
    let name = unsafe { static_text(table.name, "its name") }.map_err(broken)?;
    let version = unsafe { static_text(table.version, "its version") }.map_err(broken)?;
    if table.on_call.is_none() {
        return Err(broken(
            "its table has no `on_call` hook (it is required)".into(),
        ));
    }
    if table.callback_count > MAX_CALLBACKS || table.emit_count > MAX_CALLBACKS {
        return Err(broken(format!(
            "its table lists {} callbacks and {} emitted events; at most {MAX_CALLBACKS} each",
            table.callback_count, table.emit_count
        )));
    }
    let stride = table.callback_size;
    if table.callback_count > 0 {
        if stride < std::mem::size_of::<SbCallback>() {
            return Err(broken(format!(
                "its `callback_size` is {stride}, smaller than sizeof(sb_callback) = {}",
                std::mem::size_of::<SbCallback>()
            )));
        }
        if table.callbacks.is_null() {
            return Err(broken(format!(
                "it lists {} callbacks but `callbacks` is NULL",
                table.callback_count
            )));
        }
    }
    let mut registrations = Vec::with_capacity(table.callback_count);
    let mut typed = false;
    for index in 0..table.callback_count {
        // SAFETY: `callbacks` holds `callback_count` entries of `callback_size` bytes, each
        // starting with this host's `SbCallback` (stride checked above).
        let callback: &SbCallback = unsafe {
            &*table
                .callbacks
                .cast::<u8>()
                .add(index * stride)
                .cast::<SbCallback>()
        };
        let what = |field: &str| format!("callback {index}'s `{field}`");
        // SAFETY: pointers of the table.
        let event = unsafe { static_text(callback.event, &what("event")) }.map_err(broken)?;
        let callback_name = unsafe { static_text(callback.name, &what("name")) }.map_err(broken)?;
        let reads = if callback.flags & c_abi::CALLBACK_TYPED != 0 {
            typed = true;
            // SAFETY: pointers of the table.
            Some(
                unsafe { args(callback.reads, callback.read_count, &callback_name) }
                    .map_err(broken)?,
            )
        } else {
            None
        };
        registrations.push(Registered {
            event,
            callback: callback_name,
            priority: callback.priority,
            reads,
            id: index as u32,
        });
    }
    if table.emit_count > 0 && table.emits.is_null() {
        return Err(broken(format!(
            "it lists {} emitted events but `emits` is NULL",
            table.emit_count
        )));
    }
    let mut emits = Vec::with_capacity(table.emit_count);
    for index in 0..table.emit_count {
        // SAFETY: `emits` holds `emit_count` entries (checked non-null above).
        let emit = unsafe { &*table.emits.add(index) };
        let what = format!("emitted event {index}");
        // SAFETY: pointers of the table.
        let event =
            unsafe { static_text(emit.event, &format!("{what}'s name")) }.map_err(broken)?;
        // SAFETY: pointers of the table.
        let args = unsafe { args(emit.args, emit.arg_count, &what) }.map_err(broken)?;
        emits.push(Emits { event, args });
    }
    let mut features = vec![C_ABI_FEATURE.to_owned(), feature::REQUEST_IDS.to_owned()];
    if typed {
        features.push(feature::TYPED_ARGS.to_owned());
    }
    if table.on_control.is_some() {
        features.push(feature::CONTROL.to_owned());
    }
    Ok(Described {
        table: Table(table),
        info: LibraryInfo {
            name,
            version,
            api_version: format!("{major}.{minor}"),
            features,
        },
        registrations,
        emits,
    })
}

/// `(name, type)` pairs of an `sb_arg` array, each type one a manifest can write.
///
/// # Safety
///
/// A non-null `args` must hold `count` entries whose strings are valid.
unsafe fn args(
    args: *const c_abi::SbArg,
    count: usize,
    whose: &str,
) -> Result<Vec<(String, String)>, String> {
    if count > MAX_ARGS {
        return Err(format!(
            "{whose} lists {count} arguments; at most {MAX_ARGS}"
        ));
    }
    // SAFETY: the caller's promise: `count` entries at a non-null `args`.
    let args = unsafe { slice(args, count) }.map_err(|why| format!("{whose}'s arguments {why}"))?;
    let mut pairs = Vec::with_capacity(count);
    for (n, arg) in args.iter().enumerate() {
        // SAFETY: strings of the table.
        let name = unsafe { static_text(arg.name, &format!("{whose}'s argument {n}")) }?;
        // SAFETY: as above.
        let kind = unsafe { static_text(arg.kind, &format!("the type of {whose}'s `{name}`")) }?;
        ArgType::parse(&kind)
            .map_err(|e| format!("{whose}'s argument `{name}` has type `{kind}`: {e}"))?;
        pairs.push((name, kind));
    }
    Ok(pairs)
}

impl Table {
    /// The argument names typed callback `id` reads, borrowed from the static table (the
    /// table was checked at load); `None` for a callback that reads by name.
    pub(super) fn reads(self, id: usize) -> Option<Box<[SbStr]>> {
        // SAFETY: `id` is below `callback_count`, and entries are `callback_size` apart
        // (both checked when the table was read); the names are checked static strings.
        let callback = unsafe {
            &*self
                .0
                .callbacks
                .cast::<u8>()
                .add(id * self.0.callback_size)
                .cast::<SbCallback>()
        };
        if callback.flags & c_abi::CALLBACK_TYPED == 0 {
            return None;
        }
        Some(
            (0..callback.read_count)
                .map(|n| {
                    // SAFETY: as above: `read_count` checked arguments.
                    let name = unsafe { std::ffi::CStr::from_ptr((*callback.reads.add(n)).name) };
                    SbStr {
                        ptr: name.as_ptr(),
                        len: name.to_bytes().len(),
                    }
                })
                .collect(),
        )
    }
}
