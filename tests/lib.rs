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

/// A C-ABI plugin library built from `sources` (paths in the workspace) by `compiler`
/// (`gcc`, `g++`, ...) with `flags`, once per test run, as `lib<name>.so` in a folder of its
/// own under `target/<profile>/c-abi/` (one folder per set of flags, so that variants of
/// one plugin keep their file name). The header's folder is on the include path.
pub fn c_library(compiler: &str, sources: &[&str], name: &str, flags: &[&str]) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let key = format!("{compiler} {name} {}", flags.join(" "));
    let built = BUILT.get_or_init(Mutex::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let variant: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let folder = profile_dir().join("c-abi").join(variant);
    std::fs::create_dir_all(&folder).unwrap();
    let output = folder.join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let status = Command::new(compiler)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(workspace().join("plugin-api/include"))
        .args(flags)
        .args(sources.iter().map(|s| workspace().join(s)))
        .arg("-o")
        .arg(&output)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        status.success(),
        "{compiler} could not build {name} from {sources:?}"
    );
    built.insert(key, output.clone());
    output
}

/// A Zig C-ABI plugin built from `source` (in the workspace) by the `ziglang` package's
/// compiler (`python3 -m ziglang`), once per test run; `None` when that compiler is not
/// installed (scripts/setup installs it).
pub fn zig_library(source: &str, name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let zig = |args: &[&std::ffi::OsStr]| {
                Command::new(python())
                    .args(["-m", "ziglang"])
                    .args(args)
                    .output()
            };
            zig(&["version".as_ref()])
                .ok()
                .filter(|o| o.status.success())?;
            let folder = profile_dir().join("c-abi").join("zig");
            std::fs::create_dir_all(&folder).unwrap();
            let include = workspace().join("plugin-api/include");
            let translated = zig(&[
                "translate-c".as_ref(),
                "-lc".as_ref(),
                "-I".as_ref(),
                include.as_os_str(),
                include.join("switchboard.h").as_os_str(),
            ])
            .unwrap();
            assert!(
                translated.status.success(),
                "zig translate-c failed: {}",
                String::from_utf8_lossy(&translated.stderr)
            );
            let module = folder.join("switchboard.zig");
            std::fs::write(&module, translated.stdout).unwrap();
            let output = folder.join(format!("lib{name}.so"));
            let root = format!("-Mroot={}", workspace().join(source).display());
            let header = format!("-Mswitchboard={}", module.display());
            let emit = format!("-femit-bin={}", output.display());
            let built = zig(&[
                "build-lib".as_ref(),
                "-dynamic".as_ref(),
                "-O".as_ref(),
                "ReleaseSafe".as_ref(),
                "-lc".as_ref(),
                "--dep".as_ref(),
                "switchboard".as_ref(),
                root.as_ref(),
                header.as_ref(),
                emit.as_ref(),
            ])
            .unwrap();
            assert!(
                built.status.success(),
                "zig could not build {source}: {}",
                String::from_utf8_lossy(&built.stderr)
            );
            Some(output)
        })
        .clone()
}

/// A Go C-ABI plugin built from the Go module in `folder` (in the workspace) with
/// `go build -buildmode=c-shared`, once per test run; `None` when Go is not installed.
pub fn go_library(folder: &str, name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            Command::new("go")
                .arg("version")
                .output()
                .ok()
                .filter(|o| o.status.success())?;
            let output = profile_dir()
                .join("c-abi")
                .join("go")
                .join(format!("lib{name}.so"));
            std::fs::create_dir_all(output.parent().unwrap()).unwrap();
            let built = Command::new("go")
                .args(["build", "-buildmode=c-shared", "-o"])
                .arg(&output)
                .arg(".")
                .current_dir(workspace().join(folder))
                .env("CGO_ENABLED", "1")
                .env(
                    "CGO_CFLAGS",
                    format!("-I{}", workspace().join("plugin-api/include").display()),
                )
                // No module is fetched: the plugin needs only the standard library.
                .env("GOFLAGS", "-mod=mod")
                .env("GOPROXY", "off")
                .output()
                .unwrap();
            assert!(
                built.status.success(),
                "go could not build {folder}: {}",
                String::from_utf8_lossy(&built.stderr)
            );
            Some(output)
        })
        .clone()
}

/// The Python the tests run tools with.
fn python() -> &'static str {
    if Command::new("python3").arg("--version").output().is_ok() {
        "python3"
    } else {
        "python"
    }
}
