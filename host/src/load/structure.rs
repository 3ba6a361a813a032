//! A library's structure, checked before the system loader maps it. The loader maps every
//! loadable segment straight from the file: a segment that reaches past the end of a file
//! cut short (a build still writing it, an interrupted copy) is mapped all the same, and
//! the first touch of a page past the end kills the process with SIGBUS. So every segment
//! must lie inside the bytes that are there, and the headers that say where they are must
//! parse.

use object::{FileKind, Object, ObjectSegment, ObjectSymbol};

/// Why `bytes`, a file in a library format, must not be handed to the system loader; `None`
/// when its headers parse and every segment it maps lies inside the file. Files in no
/// library format pass: the system loader refuses those itself, without mapping them.
pub(crate) fn damage(bytes: &[u8]) -> Option<String> {
    examine(bytes).err()
}

/// One parse of a library's headers: whether it brings a Go runtime (see [`brings_go`]), or
/// why it must not be mapped (see [`damage`]).
pub(crate) fn examine(bytes: &[u8]) -> Result<bool, String> {
    let Ok(kind) = FileKind::parse(bytes) else {
        return Ok(false);
    };
    if !matches!(
        kind,
        FileKind::Elf32
            | FileKind::Elf64
            | FileKind::Pe32
            | FileKind::Pe64
            | FileKind::MachO32
            | FileKind::MachO64
    ) {
        return Ok(false);
    }
    let file = object::File::parse(bytes).map_err(|error| {
        format!(
            "its headers do not parse ({error}) in its {} bytes",
            bytes.len()
        )
    })?;
    let size = bytes.len() as u64;
    for (n, segment) in file.segments().enumerate() {
        let (offset, length) = segment.file_range();
        let end = offset.checked_add(length);
        if end.is_none_or(|end| end > size) {
            return Err(format!(
                "segment {n} takes bytes {offset} to {} of the file, but the file has only {size} bytes",
                offset.saturating_add(length)
            ));
        }
    }
    Ok(brings_go(&file))
}

/// The symbol every Go library built with `-buildmode=c-shared` exports: the mark of a
/// library that brings a Go runtime.
const GO_RUNTIME_SYMBOL: &str = "_cgo_wait_runtime_init_done";

/// Whether `bytes` is a library that starts a Go runtime when it is loaded. Go supports one
/// Go runtime per process (golang/go#18976), so the host runs such plugins in worker
/// processes by default, and never loads two different ones into one process.
fn brings_go(file: &object::File<'_>) -> bool {
    let found = file
        .exports()
        .map(|exports| {
            exports
                .iter()
                .any(|e| e.name() == GO_RUNTIME_SYMBOL.as_bytes())
        })
        .unwrap_or(false);
    found
        || file
            .dynamic_symbols()
            .any(|symbol| symbol.name_bytes() == Ok(GO_RUNTIME_SYMBOL.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::damage;

    /// This test binary itself: a whole file of the platform's format.
    fn whole() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn a_whole_file_passes_and_every_cut_is_refused() {
        let bytes = whole();
        assert_eq!(damage(&bytes), None);
        for fraction in [2, 3, 10, 100] {
            let cut = &bytes[..bytes.len() - bytes.len() / fraction];
            let why = damage(cut).expect("a cut file is refused");
            assert!(why.contains("bytes"), "the reason names the size: {why}");
        }
        // A file cut inside its first header is in no format at all: the loader refuses it
        // without mapping anything.
        assert_eq!(damage(&bytes[..3]), None);
        assert_eq!(damage(b"not a library"), None);
    }
}
