//! Opening plugin libraries: the checks on a file before it is loaded ([`library_file`]),
//! then the system loader and abi_stable's layout checks, with their long reports turned
//! into one readable line.
//!
//! Libraries are never unloaded: see [`HOST_API_VERSION`] and the crate docs.

mod c_abi;
mod c_call;
mod c_frame;
mod c_host;
mod c_plugin;
mod c_reply;
mod c_table;
mod c_target;
mod c_value;
mod copy;
mod declared;
mod identify;
mod library;
mod preflight;
mod structure;

#[doc(hidden)]
pub use c_abi::layout_report as c_abi_layout_report;
pub use c_abi::{ABI_MAJOR as C_ABI_MAJOR, ABI_MINOR as C_ABI_MINOR};
pub(crate) use c_call::is_c_entry;
pub(crate) use c_frame::{CFrame, FrameSlot, Published};
pub(crate) use c_target::CTarget;
#[doc(hidden)]
pub use copy::remove_temporary_copies;
pub use copy::MAX_IN_PROCESS_BUILDS;
pub use declared::{Emits, LibraryInfo, Registered};
pub(crate) use library::{check_registrations, registration_fix, Library, Loader};
pub use library::{inspect, LibraryReport, PluginKind, HOST_API_VERSION};
#[doc(hidden)]
pub use preflight::{library_file, sha256_of};
