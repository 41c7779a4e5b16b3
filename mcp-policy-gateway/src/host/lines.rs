//! Reading line-delimited JSON-RPC (MCP's stdio framing) from a pipe, for both hosts: lines
//! end in LF or CRLF (the line end is not part of the line), a line over a size limit is
//! skipped to its end without being kept, and a reader can tell whether it has drained what
//! one read brought (the end of a burst, when buffered writes are sent).

use std::io::{BufRead, BufReader, Read};

/// What the reader buffers from the pipe.
const BUFFER: usize = 64 * 1024;

/// One line read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A line: [`Lines::line`].
    Text,
    /// A line over the limit, skipped.
    TooLong,
    /// The end of the input.
    End,
}

/// A line reader over a pipe, reusing one buffer.
pub struct Lines<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    /// Reads from `input`.
    ///
    /// ```
    /// use mcp_policy_gateway::host::lines::{Line, Lines};
    /// let mut lines = Lines::new("{\"a\":1}\r\nxxxxxxxxxxxx\n".as_bytes());
    /// assert_eq!(lines.read(Some(10)).unwrap(), Line::Text);
    /// assert_eq!(lines.line(), br#"{"a":1}"#);
    /// assert_eq!(lines.read(Some(10)).unwrap(), Line::TooLong);
    /// assert_eq!(lines.read(Some(10)).unwrap(), Line::End);
    /// ```
    pub fn new(input: R) -> Self {
        Lines {
            reader: BufReader::with_capacity(BUFFER, input),
            buf: Vec::with_capacity(1024),
        }
    }

    /// Whether nothing read from the pipe is left unread (the last read's burst is over).
    pub fn drained(&self) -> bool {
        self.reader.buffer().is_empty()
    }

    /// The line last read (valid after [`Line::Text`]).
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Reads the next line, of at most `max` bytes (without its line end) when given.
    pub fn read(&mut self, max: Option<usize>) -> std::io::Result<Line> {
        read_line(&mut self.reader, &mut self.buf, max)
    }
}

impl<R: Read> Iterator for Lines<R> {
    type Item = Vec<u8>;

    /// Each line in turn, in a buffer of its own (the reader keeps none of a long line's
    /// capacity); read errors end the lines, as the end of input does.
    fn next(&mut self) -> Option<Vec<u8>> {
        match self.read(None) {
            Ok(Line::Text) => Some(std::mem::take(&mut self.buf)),
            Ok(Line::TooLong) => Some(Vec::new()),
            Ok(Line::End) | Err(_) => None,
        }
    }
}

/// Reads one line of at most `max` bytes (without its line end) into `buf`; a longer line
/// is skipped to its end without being kept.
fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: Option<usize>,
) -> std::io::Result<Line> {
    buf.clear();
    // At most one byte over the limit (two with a CR) is read into `buf`, so a line over it
    // is known as such without keeping more of it.
    let limit = max.map_or(u64::MAX, |m| {
        u64::try_from(m).unwrap_or(u64::MAX).saturating_add(2)
    });
    if reader.by_ref().take(limit).read_until(b'\n', buf)? == 0 {
        return Ok(Line::End);
    }
    let ended = buf.last() == Some(&b'\n');
    if ended {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if max.is_none_or(|m| buf.len() <= m) {
        // A whole line, or the last line without a line end.
        return Ok(Line::Text);
    }
    buf.clear();
    buf.shrink_to(BUFFER);
    if !ended {
        reader.skip_until(b'\n')?;
    }
    Ok(Line::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &str, max: usize, capacity: usize) -> Vec<String> {
        let mut reader = BufReader::with_capacity(capacity, input.as_bytes());
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, &mut buf, Some(max)).unwrap() {
                Line::Text => out.push(String::from_utf8(buf.clone()).unwrap()),
                Line::TooLong => out.push("(too long)".into()),
                Line::End => return out,
            }
        }
    }

    #[test]
    fn long_lines_are_skipped_without_being_kept() {
        let input = format!("{}\nshort\n{}", "x".repeat(100), "y".repeat(5));
        assert_eq!(all(&input, 10, 8), ["(too long)", "short", "yyyyy"]);
    }

    #[test]
    fn the_limit_is_inclusive_and_a_last_line_needs_no_newline() {
        let input = format!("{}\n{}\n\nabc", "x".repeat(10), "y".repeat(11));
        assert_eq!(
            all(&input, 10, 4),
            [
                "x".repeat(10),
                "(too long)".into(),
                String::new(),
                "abc".into()
            ]
        );
        assert_eq!(all(&"z".repeat(20), 10, 8), ["(too long)"]);
    }

    #[test]
    fn crlf_ends_a_line_as_lf_does() {
        let input = format!("{}\r\nab\r\n\r\nc", "x".repeat(10));
        assert_eq!(
            all(&input, 10, 4),
            ["x".repeat(10), "ab".into(), String::new(), "c".into()]
        );
        let mut lines = Lines::new("a\r\nb\n".as_bytes());
        assert_eq!(
            lines.by_ref().collect::<Vec<_>>(),
            [b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[test]
    fn lines_taken_one_by_one_keep_no_buffer_behind() {
        let long = "x".repeat(100_000);
        let input = format!("{long}\nshort\n");
        let mut lines = Lines::new(input.as_bytes());
        assert_eq!(lines.next().map(|l| l.len()), Some(100_000));
        assert!(lines.buf.capacity() < 100_000);
        assert_eq!(lines.next(), Some(b"short".to_vec()));
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn drained_tells_the_end_of_a_burst() {
        let mut lines = Lines::new("a\nb\n".as_bytes());
        assert!(lines.drained());
        assert_eq!(lines.read(None).unwrap(), Line::Text);
        assert!(!lines.drained());
        assert_eq!(lines.read(None).unwrap(), Line::Text);
        assert!(lines.drained());
        assert_eq!(lines.read(None).unwrap(), Line::End);
    }
}
