//! Reading text line by line with a cap on each line, so that one 10 GB
//! "line" cannot exhaust memory (`BufRead::read_line` has no cap).

use crate::ProblemCode;
use std::io::BufRead;

pub enum Line {
    Text(String),
    TooLong,
    NotUtf8 { valid_up_to: usize },
}

pub struct BoundedLines<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    /// 1-based number of the last line returned.
    pub number: u64,
    pub bytes_read: u64,
}

impl<R: BufRead> BoundedLines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self { reader, max, buf: Vec::new(), number: 0, bytes_read: 0 }
    }

    /// The next line without its line ending; `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            any = true;
            let (chunk, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            let len = chunk.len();
            if !too_long {
                if self.buf.len() + len > self.max + 2 {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            self.reader.consume(len);
            self.bytes_read += len as u64;
            if found_newline {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if too_long {
            return Ok(Some(Line::TooLong));
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        if self.number == 1 && self.buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.buf.drain(..3);
        }
        if self.buf.len() > self.max {
            return Ok(Some(Line::TooLong));
        }
        match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(s) => Ok(Some(Line::Text(s))),
            Err(e) => Ok(Some(Line::NotUtf8 { valid_up_to: e.utf8_error().valid_up_to() })),
        }
    }
}

/// A reader that fails once a CSV record grows past `max` bytes: lets a
/// streaming parser (csv) keep its speed while no single record can
/// exhaust memory. A newline inside a quoted field does not end the record
/// (a quoted field spanning a million short lines is one huge record), so
/// the reader follows CSV quoting: a field quoted from its first byte runs
/// to its closing quote (`""` inside is an escaped quote). Both `,` and tab
/// count as delimiters, since the delimiter is chosen after the first read.
pub struct LineCapReader<R> {
    inner: R,
    max: usize,
    since_newline: usize,
    quote: CsvState,
    /// Set once a record went over the cap: the bytes before it were handed
    /// out, the next read fails.
    failed: bool,
}

/// Where the reader is in CSV quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: closing, or the first of `""`.
    AfterQuote,
}

impl CsvState {
    /// The next state, and whether `b` ends the record.
    fn step(self, b: u8) -> (CsvState, bool) {
        match (self, b) {
            (CsvState::Quoted, b'"') => (CsvState::AfterQuote, false),
            (CsvState::Quoted, _) => (CsvState::Quoted, false),
            (CsvState::AfterQuote, b'"') => (CsvState::Quoted, false),
            (_, b'\n') => (CsvState::FieldStart, true),
            (_, b',' | b'\t') => (CsvState::FieldStart, false),
            (CsvState::FieldStart, b'"') => (CsvState::Quoted, false),
            _ => (CsvState::Unquoted, false),
        }
    }
}

/// The error kind `LineCapReader` fails with; callers turn it into a problem.
pub const LINE_TOO_LONG: &str = "line too long";

impl<R> LineCapReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, max, since_newline: 0, quote: CsvState::FieldStart, failed: false }
    }
}

impl<R: std::io::Read> std::io::Read for LineCapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, LINE_TOO_LONG));
        }
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            let (quote, record_ends) = self.quote.step(b);
            self.quote = quote;
            if record_ends {
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > self.max {
                    self.failed = true;
                    if i == 0 {
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, LINE_TOO_LONG));
                    }
                    // Hand out the complete lines before the long one first.
                    return Ok(i);
                }
            }
        }
        Ok(n)
    }
}

/// One step through a CSV table whose header has `columns` fields.
pub enum RecordStep {
    /// A well-formed row at this line (fields may still be invalid UTF-8).
    Row(u64),
    /// A row that was reported (wrong field count) or a blank line.
    Skip,
    /// The end, or an error after which the reader cannot go on (reported).
    End,
}

/// Reads the next record, reporting what makes it unusable. Shared by the
/// CSV formats so they speak of problems alike.
pub fn next_record<R: std::io::Read>(
    csv: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
    columns: usize,
    max_line_bytes: usize,
    errors: &mut crate::Problems,
    fix: &'static str,
) -> RecordStep {
    match csv.read_byte_record(record) {
        Ok(true) => {}
        Ok(false) => return RecordStep::End,
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line());
            if matches!(e.kind(), csv::ErrorKind::Io(io) if io.to_string() == LINE_TOO_LONG) {
                errors.push(
                    format!("line {}", line + 1),
                    ProblemCode::LineTooLong,
                    format!("a line is longer than {max_line_bytes} bytes"),
                    fix,
                );
            } else {
                errors.push(format!("line {line}"), ProblemCode::UnreadableRow, format!("the row could not be read: {e}"), fix);
            }
            // The reader cannot resynchronise after an I/O error.
            return RecordStep::End;
        }
    }
    let line = record.position().map_or(0, |p| p.line());
    if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
        return RecordStep::Skip;
    }
    if record.len() != columns {
        errors.push(
            format!("line {line}"),
            ProblemCode::WrongFieldCount,
            format!("the row has {} fields; the header has {columns}", record.len()),
            fix,
        );
        return RecordStep::Skip;
    }
    RecordStep::Row(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut r = BoundedLines::new(std::io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(match l {
                Line::Text(s) => s,
                Line::TooLong => "<too long>".into(),
                Line::NotUtf8 { valid_up_to } => format!("<bad utf8 at {valid_up_to}>"),
            });
        }
        out
    }

    fn read_capped(input: &[u8], max: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LineCapReader::new(std::io::BufReader::with_capacity(3, input), max), &mut out)
            .map(|_| out)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_record_cap_follows_csv_quoting() {
        // Short lines, but one quoted field spanning them all: one long record.
        let endless = format!("a,b\n1,\"{}\"\n", "x\n".repeat(50));
        assert_eq!(read_capped(endless.as_bytes(), 20).unwrap_err(), LINE_TOO_LONG);
        // Escaped quotes and a closed quoted field keep the count right.
        assert!(read_capped(b"a,b\n1,\"say \"\"hi\"\"\nthere\"\n2,3\n", 20).is_ok());
        // A quote in the middle of a field is literal (as the csv crate reads it).
        let stray = format!("a,b\n{}", "5\" screen,1\n".repeat(20));
        assert!(read_capped(stray.as_bytes(), 20).is_ok());
    }

    #[test]
    fn splits_caps_and_checks_utf8() {
        assert_eq!(lines(b"\xEF\xBB\xBFa,b\r\nc\n\nlast", 10), ["a,b", "c", "", "last"]);
        assert_eq!(lines(b"short\nthis line is far too long\nok\n", 8), ["short", "<too long>", "ok"]);
        assert_eq!(lines(b"ok\nab\xFFcd\n", 10), ["ok", "<bad utf8 at 2>"]);
    }
}
