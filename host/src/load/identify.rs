//! What a file that the system loader refused actually is: an ELF library for another
//! machine or system, a Windows DLL, a macOS library, a static archive, a text file. Read
//! with the `object` crate, which knows all of these formats.

use std::io::Read;
use std::path::Path;

use object::{FileKind, Object};

/// How much of a file is read to tell what it is: headers sit at the start, and the
/// unified parser wants the tables they point to.
const READ_AT_MOST: u64 = 64 * 1024 * 1024;

/// Why `path` cannot be loaded here, in words; `None` where the file looks like a library
/// for this very platform (then the loader's own message says more).
pub(crate) fn explain_not_loadable(path: &Path) -> Option<String> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(READ_AT_MOST)
        .read_to_end(&mut data)
        .ok()?;
    let host = format!(
        "{} on {}",
        os_name(std::env::consts::OS),
        std::env::consts::ARCH
    );
    let Ok(kind) = FileKind::parse(&*data) else {
        return Some(format!(
            "it is {}, not a shared library",
            unknown_kind(&data)
        ));
    };
    let what = match kind {
        FileKind::Archive => {
            return Some(
                "it is a static library archive (.a/.lib), not a shared library; build the plugin with crate-type = [\"cdylib\"]"
                    .to_owned(),
            )
        }
        FileKind::Elf32 | FileKind::Elf64 => format!("an ELF library ({})", elf_os(&data)),
        FileKind::Pe32 | FileKind::Pe64 => "a Windows DLL (PE/COFF)".to_owned(),
        FileKind::MachO32 | FileKind::MachO64 | FileKind::MachOFat32 | FileKind::MachOFat64 => {
            "a macOS library (Mach-O)".to_owned()
        }
        other => format!("an object file of another kind ({other:?})"),
    };
    let arch = object::File::parse(&*data)
        .ok()
        .map(|file| arch_name(file.architecture()));
    let bits = match kind {
        FileKind::Elf32 | FileKind::Pe32 | FileKind::MachO32 => 32,
        _ => 64,
    };
    let built_for = match &arch {
        Some(arch) => format!("{what} for {arch} ({bits}-bit)"),
        None => what.clone(),
    };
    let this_system = match std::env::consts::OS {
        "windows" => matches!(kind, FileKind::Pe32 | FileKind::Pe64),
        "macos" | "ios" => what.starts_with("a macOS"),
        _ => what.starts_with("an ELF"),
    };
    let this_machine = arch.as_deref().is_none_or(|a| a == std::env::consts::ARCH);
    if this_system && this_machine && bits == usize::BITS {
        return None;
    }
    Some(format!("it is {built_for}, but this host is {host}"))
}

/// A friendlier name for `std::env::consts::OS`.
fn os_name(os: &str) -> &str {
    match os {
        "linux" => "Linux",
        "windows" => "Windows",
        "macos" => "macOS",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

/// The system an ELF file is for, from its OS ABI byte.
fn elf_os(data: &[u8]) -> &'static str {
    match data.get(7) {
        Some(0) | Some(3) => "Linux, System V ABI",
        Some(9) => "FreeBSD",
        Some(12) => "OpenBSD",
        Some(6) => "Solaris",
        Some(2) => "NetBSD",
        _ => "another system",
    }
}

/// The name Rust gives a machine (`std::env::consts::ARCH`), where there is one.
fn arch_name(arch: object::Architecture) -> String {
    use object::Architecture as A;
    match arch {
        A::X86_64 | A::X86_64_X32 => "x86_64".to_owned(),
        A::I386 => "x86".to_owned(),
        A::Aarch64 | A::Aarch64_Ilp32 => "aarch64".to_owned(),
        A::Arm => "arm".to_owned(),
        A::Riscv64 => "riscv64".to_owned(),
        A::Riscv32 => "riscv32".to_owned(),
        A::PowerPc64 => "powerpc64".to_owned(),
        A::S390x => "s390x".to_owned(),
        A::Mips64 => "mips64".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A file no object parser recognises: empty, text, or something else.
fn unknown_kind(data: &[u8]) -> &'static str {
    if data.is_empty() {
        return "an empty file";
    }
    let sample = &data[..data.len().min(4096)];
    let text = std::str::from_utf8(sample)
        .is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()));
    if text {
        "a text file"
    } else {
        "a file of no library format this host knows (ELF, PE/COFF, Mach-O)"
    }
}
