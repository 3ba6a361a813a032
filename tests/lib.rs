//! Test support shared by the integration tests, the allocation test and the benchmarks:
//! find the workspace, build the real plugin libraries once, and locate them and the
//! `switchboard` binary for the profile the caller was built with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `target/<profile>`, found from this test binary's own path (`target/<profile>/deps/..`)
/// so that tests use the libraries of the profile they were built with.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

fn profile_name() -> String {
    match profile_dir().file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(other) => other.to_owned(),
        None => "release".to_owned(),
    }
}

/// A `cargo` command with the variables of the cargo running this test removed, so that
/// the nested build sees the same environment as a build from the shell.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key == "OUT_DIR"
            || key.starts_with("DEP_")
            || key == "RUSTC_WRAPPER"
        {
            cmd.env_remove(&*key);
        }
    }
    cmd.current_dir(workspace());
    cmd
}

/// Builds the binary and every plugin of the workspace once per test run.
pub fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = profile_dir().parent().unwrap().to_owned();
        let status = cargo()
            .args([
                "build",
                "--workspace",
                "--profile",
                &profile_name(),
                "--target-dir",
            ])
            .arg(&target)
            .status()
            .expect("cannot run cargo");
        assert!(
            status.success(),
            "building the workspace for the tests failed"
        );
    });
}

/// The path of a built plugin library.
pub fn library(name: &str) -> PathBuf {
    build();
    profile_dir().join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// The built `switchboard` binary.
pub fn binary() -> PathBuf {
    build();
    profile_dir().join(format!("switchboard{}", std::env::consts::EXE_SUFFIX))
}
