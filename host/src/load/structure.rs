//! A library's structure, checked before the system loader maps it. The loader maps every
//! loadable segment straight from the file: a segment that reaches past the end of a file
//! cut short (a build still writing it, an interrupted copy) is mapped all the same, and
//! the first touch of a page past the end kills the process with SIGBUS. So every segment
//! must lie inside the bytes that are there, and the headers that say where they are must
//! parse.

use object::{FileKind, Object, ObjectSegment};

/// Why `bytes`, a file in a library format, must not be handed to the system loader; `None`
/// when its headers parse and every segment it maps lies inside the file. Files in no
/// library format pass: the system loader refuses those itself, without mapping them.
pub(crate) fn damage(bytes: &[u8]) -> Option<String> {
    let kind = FileKind::parse(bytes).ok()?;
    if !matches!(
        kind,
        FileKind::Elf32
            | FileKind::Elf64
            | FileKind::Pe32
            | FileKind::Pe64
            | FileKind::MachO32
            | FileKind::MachO64
    ) {
        return None;
    }
    let file = match object::File::parse(bytes) {
        Ok(file) => file,
        Err(error) => {
            return Some(format!(
                "its headers do not parse ({error}) in its {} bytes",
                bytes.len()
            ))
        }
    };
    let size = bytes.len() as u64;
    for (n, segment) in file.segments().enumerate() {
        let (offset, length) = segment.file_range();
        let end = offset.checked_add(length);
        if end.is_none_or(|end| end > size) {
            return Some(format!(
                "segment {n} takes bytes {offset} to {} of the file, but the file has only {size} bytes",
                offset.saturating_add(length)
            ));
        }
    }
    None
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
