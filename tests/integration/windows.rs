//! Windows for real: the workspace cross-built for `x86_64-pc-windows-gnu`, and
//! `switchboard.exe` run under wine with the seed plugins as `.dll` files from a plain
//! folder. See `tests/windows/README.md` for what the machine needs (`scripts/test`
//! installs it); without it these tests are skipped with a line saying so, except in CI,
//! and `SWITCHBOARD_SKIP_WINDOWS=1` skips them on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use crate::util::{cargo, library, profile_dir, workspace, Sandbox, PROBE_EVENTS};

const TARGET: &str = "x86_64-pc-windows-gnu";

/// The Windows build's folder, built once per test run; `None` when skipped on purpose.
fn windows_build() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if std::env::var_os("SWITCHBOARD_SKIP_WINDOWS").is_some() {
                eprintln!("SWITCHBOARD_SKIP_WINDOWS is set: the Windows tests are skipped");
                return None;
            }
            let missing: Vec<&str> = [
                (
                    "x86_64-w64-mingw32-gcc",
                    "apt-get install gcc-mingw-w64-x86-64",
                ),
                (
                    wine().to_str().unwrap_or("wine64"),
                    "apt-get install wine64",
                ),
            ]
            .into_iter()
            .filter(|(tool, _)| Command::new(tool).arg("--version").output().is_err())
            .map(|(_, fix)| fix)
            .collect();
            let target_installed = Command::new("rustup")
                .args(["target", "list", "--installed"])
                .output()
                .map_or(true, |o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == TARGET));
            let mut missing = missing;
            let add_target = format!("rustup target add {TARGET}");
            if !target_installed {
                missing.push(&add_target);
            }
            if !missing.is_empty() {
                // CI installs all of it (`scripts/test` does, as root on Debian): there a
                // missing tool is a failure, not a skip.
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must run the Windows tests; they need: {}",
                    missing.join("; ")
                );
                eprintln!(
                    "SKIPPED: the Windows tests need {} (scripts/test installs them as root on Debian)",
                    missing.join("; ")
                );
                return None;
            }
            let target_dir = profile_dir().parent().unwrap().to_owned();
            let status = cargo()
                .args(["build", "--release", "--workspace", "--target", TARGET])
                .arg("--target-dir")
                .arg(&target_dir)
                .status()
                .expect("cannot run cargo");
            assert!(
                status.success(),
                "cross-building for {TARGET} failed (rustup target add {TARGET})"
            );
            Some(target_dir.join(TARGET).join("release"))
        })
        .as_deref()
}

/// Debian's wine keeps its 64-bit loader out of PATH.
fn wine() -> PathBuf {
    let debian = Path::new("/usr/lib/wine/wine64");
    if debian.exists() {
        debian.to_owned()
    } else {
        PathBuf::from("wine64")
    }
}

/// A plain folder as an operator would make it: `switchboard.exe`, the stand-in
/// `bcryptprimitives.dll` wine 8 lacks, `plugins/*.dll` and the default manifest.
fn windows_folder(build: &Path) -> Sandbox {
    let s = Sandbox::new("");
    let plugins = s.path("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(build.join("switchboard.exe"), s.path("switchboard.exe")).unwrap();
    for plugin in ["greeter", "database", "emails", "notify", "probe"] {
        let dll = format!("{plugin}.dll");
        std::fs::copy(build.join(&dll), plugins.join(&dll)).unwrap();
    }
    let status = Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(s.path("bcryptprimitives.dll"))
        .arg(workspace().join("tests/windows/bcryptprimitives.c"))
        .arg("-ladvapi32")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cannot build the bcryptprimitives stand-in"
    );
    let manifest = std::fs::read_to_string(workspace().join("events.toml"))
        .unwrap()
        .replace(
            "plugin_dir = \"target/release\"",
            "plugin_dir = \"plugins\"",
        );
    s.write("events.toml", &manifest);
    s
}

/// `switchboard.exe ARGS` under wine, in the folder. One at a time: wine sets its prefix up
/// on first use.
fn switchboard_exe(folder: &Sandbox, args: &[&str]) -> Output {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(wine())
        .arg("switchboard.exe")
        .args(args)
        .current_dir(folder.dir.path())
        .env("WINEDEBUG", "-all")
        .env("WINEPREFIX", profile_dir().join("wine-prefix"))
        .output()
        .expect("cannot start wine")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_sign_up_runs_on_windows_from_a_folder_of_dlls() {
    let Some(build) = windows_build() else { return };
    let folder = windows_folder(build);

    let signup = switchboard_exe(
        &folder,
        &["emit", "user_joined", "name=Ann", "email=ann@example.com"],
    );
    let stdout = text(&signup.stdout);
    assert_eq!(
        signup.status.code(),
        Some(0),
        "{stdout}{}",
        text(&signup.stderr)
    );
    assert!(stdout.contains("user_joined: 4 callbacks ran"), "{stdout}");
    assert!(
        stdout.contains("greeter.welcome         ok     \"Welcome, Ann!\""),
        "{stdout}"
    );
    assert!(
        folder.path("users.db").is_file(),
        "the database was written"
    );

    let duplicate = switchboard_exe(
        &folder,
        &["emit", "user_joined", "name=Ann", "email=ann@example.com"],
    );
    let stdout = text(&duplicate.stdout);
    assert_eq!(duplicate.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("database.add_user  error"), "{stdout}");

    let inspect = switchboard_exe(&folder, &["inspect", "plugins\\greeter.dll"]);
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect.stderr));
    assert!(text(&inspect.stdout).contains("plugin      greeter 0.1.0"));

    let list = switchboard_exe(&folder, &["list"]);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));
    assert!(
        text(&list.stdout).contains("plugins\\greeter.dll"),
        "{}",
        text(&list.stdout)
    );
}

#[test]
fn each_platform_names_the_others_library_for_what_it_is() {
    let Some(build) = windows_build() else { return };
    let folder = windows_folder(build);

    // A Linux .so given to the Windows host.
    std::fs::copy(library("probe"), folder.path("libprobe.so")).unwrap();
    folder.write(
        "events.toml",
        &format!("{PROBE_EVENTS}\n[[plugins]]\nname = \"p\"\npath = \"libprobe.so\"\nconfig = {{ label = \"p\" }}\n"),
    );
    let check = switchboard_exe(&folder, &["check"]);
    let stderr = text(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("it is an ELF library (Linux, System V ABI) for x86_64 (64-bit), but this host is Windows on x86_64"),
        "{stderr}"
    );

    // A Windows DLL given to the Linux host.
    let s = Sandbox::new(&format!(
        "{PROBE_EVENTS}\n[[plugins]]\nname = \"p\"\npath = {:?}\nconfig = {{ label = \"p\" }}\n",
        folder.path("plugins").join("probe.dll").to_str().unwrap()
    ));
    let run = s.run(&["check"]);
    run.assert_code(2);
    assert!(
        run.stderr().contains(
            "it is a Windows DLL (PE/COFF) for x86_64 (64-bit), but this host is Linux on x86_64"
        ),
        "{}",
        run.stderr()
    );
}

/// Issue 23: the C plugin cross-built with mingw as a `.dll` loads in `switchboard.exe`
/// under wine beside the Rust `.dll`s, and answers the same emit.
#[test]
fn a_c_plugin_dll_runs_beside_the_rust_dlls() {
    let Some(build) = windows_build() else { return };
    let folder = windows_folder(build);
    let status = Command::new("x86_64-w64-mingw32-gcc")
        .args([
            "-shared", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I",
        ])
        .arg(workspace().join("plugin-api/include"))
        .arg(workspace().join("plugins/c-abi/welcome.c"))
        .arg("-o")
        .arg(folder.path("plugins").join("welcome.dll"))
        .status()
        .unwrap();
    assert!(status.success(), "mingw could not build welcome.dll");
    let manifest = std::fs::read_to_string(folder.manifest()).unwrap();
    folder.write(
        "events.toml",
        &format!(
            "{manifest}\n[[plugins]]\nname = \"welcome\"\nconfig = {{ greeting = \"Hello\" }}\n"
        ),
    );
    let signup = switchboard_exe(
        &folder,
        &["emit", "user_joined", "name=Ann", "email=ann@example.com"],
    );
    let stdout = text(&signup.stdout);
    assert_eq!(
        signup.status.code(),
        Some(0),
        "{stdout}{}",
        text(&signup.stderr)
    );
    assert!(stdout.contains("user_joined: 5 callbacks ran"), "{stdout}");
    assert!(stdout.contains("\"Hello, Ann! (from C)\""), "{stdout}");
    let inspect = switchboard_exe(&folder, &["inspect", "plugins\\welcome.dll"]);
    assert!(
        text(&inspect.stdout).contains("C ABI       1.0"),
        "{}",
        text(&inspect.stdout)
    );
}
