//! Integration tests: the real plugin libraries, loaded by the real loader and the real
//! `switchboard` binary. One test binary, so the plugins are built once.

mod abi;
mod application;
#[cfg(target_os = "linux")]
mod c_abi;
mod cli;
mod corpus;
mod dispatch;
mod embedding;
mod event_ids;
mod faults;
mod generations;
mod guide;
mod hardening;
mod hostile;
#[cfg(target_os = "linux")]
mod isolation;
mod layout;
#[cfg(target_os = "linux")]
mod ledger;
mod loading;
#[cfg(target_os = "linux")]
mod nats;
mod operator;
mod refusals;
#[cfg(target_os = "linux")]
mod reload;
#[cfg(unix)]
mod serve;
mod signup;
mod util;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod windows;
