//! Reading the input: lines of at most a bound in bytes, handed on in batches, on a
//! thread of its own so that a stop request works while a read blocks.

use std::io::{BufRead, Read};

use crossbeam_channel::{bounded, Receiver};

use super::json_lines::Line;

/// The most lines that travel together from the reader.
const BATCH: usize = 256;

/// Reads lines on a thread of its own and sends them in batches: every line already read
/// when the next read could wait, up to [`BATCH`]. A file or a fast producer fills
/// batches; a slow producer's line travels alone, at once. The thread is left behind if
/// the input never ends.
pub(super) fn read_in_background<R: Read + Send + 'static>(
    input: R,
    max_line: usize,
) -> Receiver<Vec<Line>> {
    let (tx, rx) = bounded::<Vec<Line>>(4);
    std::thread::spawn(move || {
        let mut input = std::io::BufReader::with_capacity(64 * 1024, input);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let (line, done) = match read_line(&mut input, max_line) {
                Ok(None) => (None, true),
                Ok(Some(line)) => (line, false),
                Err(e) => (Some(Line::Unreadable(e.to_string())), true),
            };
            batch.extend(line);
            let would_wait = input.buffer().is_empty();
            if !batch.is_empty() && (done || would_wait || batch.len() == BATCH) {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return;
                }
            }
            if done {
                return;
            }
        }
    });
    rx
}

/// One line, or `Ok(None)` at the end of the input. A line longer than `max` bytes is not
/// kept: the rest of it is read and dropped, and it becomes [`Line::TooLong`]. A blank
/// line is `Some(None)`.
fn read_line(input: &mut impl BufRead, max: usize) -> std::io::Result<Option<Option<Line>>> {
    let mut bytes = Vec::new();
    let mut length = 0usize;
    let mut read_any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        read_any = true;
        let (chunk, end) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at + 1], true),
            None => (available, false),
        };
        let used = chunk.len();
        length = length.saturating_add(used);
        if length <= max.saturating_add(1) {
            bytes.extend_from_slice(chunk);
        } else if !bytes.is_empty() {
            // Past the bound: keep nothing more of it.
            bytes = Vec::new();
        }
        input.consume(used);
        if end {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    let content = length - usize::from(bytes.last() == Some(&b'\n'));
    if content > max {
        return Ok(Some(Some(Line::TooLong { length, max })));
    }
    Ok(Some(Line::from_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], max: usize) -> Vec<String> {
        let mut input = std::io::Cursor::new(text.to_vec());
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut input, max).unwrap() {
            out.push(match line {
                None => "blank".to_owned(),
                Some(Line::Text(t)) => format!("text {}", t.trim_end()),
                Some(Line::TooLong { length, .. }) => format!("too long {length}"),
                Some(_) => "other".to_owned(),
            });
        }
        out
    }

    #[test]
    fn a_line_over_the_bound_is_dropped_and_the_next_one_read() {
        assert_eq!(
            lines(b"abc\n0123456789\n\nxyz", 5),
            ["text abc", "too long 11", "blank", "text xyz"]
        );
        // Exactly at the bound is fine, with or without its newline.
        assert_eq!(lines(b"12345\n12345", 5), ["text 12345", "text 12345"]);
    }
}
