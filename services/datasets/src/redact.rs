//! Opt-in redaction of personal data in chat datasets: email addresses,
//! phone numbers and payment card numbers (Luhn-checked) in message texts
//! are replaced by `[EMAIL]`, `[PHONE]`, `[CARD]` before the file is stored,
//! so the original never reaches storage. Counts are reported.

use std::io::{BufRead, Read, Write};

use crate::Limits;
use crate::text::{BoundedLines, LINE_TOO_LONG, Line, LineCapReader};
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RedactionCounts {
    pub emails: u64,
    pub phones: u64,
    pub cards: u64,
}

struct Patterns {
    email: Regex,
    card: Regex,
    phone: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // The patterns are constants; a failure here is a bug caught by the tests.
        email: Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b").unwrap_or_else(|_| unreachable!()),
        card: Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").unwrap_or_else(|_| unreachable!()),
        phone: Regex::new(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,3}").unwrap_or_else(|_| unreachable!()),
    })
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Masks one text; counts what it masked.
pub fn redact_text(text: &str, counts: &mut RedactionCounts) -> String {
    let p = patterns();
    let step1 = p.email.replace_all(text, |_: &regex::Captures<'_>| {
        counts.emails += 1;
        "[EMAIL]"
    });
    let step2 = p.card.replace_all(&step1, |c: &regex::Captures<'_>| {
        let digits: Vec<u8> = c[0].bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
        if (13..=19).contains(&digits.len()) && luhn(&digits) {
            counts.cards += 1;
            "[CARD]".to_owned()
        } else {
            c[0].to_owned()
        }
    });
    let step3 = p.phone.replace_all(&step2, |c: &regex::Captures<'_>| {
        let digits = c[0].bytes().filter(u8::is_ascii_digit).count();
        // Seven to fifteen digits (E.164); shorter runs are years, amounts, ids.
        if (7..=15).contains(&digits) {
            counts.phones += 1;
            "[PHONE]".to_owned()
        } else {
            c[0].to_owned()
        }
    });
    step3.into_owned()
}

/// Why a file cannot be redacted: it breaks a cap that validation would
/// refuse anyway (so nothing unredacted is ever stored), or I/O failed.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("line {line} is longer than {max} bytes; redaction reads lines (and CSV records) of at most {max} bytes — split it")]
    TooLong { line: u64, max: usize },
    #[error("line {line} is not UTF-8 text (the bytes after {valid_up_to} are not); save the file as UTF-8")]
    NotUtf8 { line: u64, valid_up_to: usize },
    #[error("the CSV could not be read: {0}")]
    Csv(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Redacts the message contents of a chat JSONL file, line by line within
/// the validators' line cap (memory stays flat in the file's size). Lines
/// that are not JSON pass through as they are; validation reports them.
pub fn redact_chat_jsonl(input: impl BufRead, mut output: impl Write, limits: &Limits) -> Result<RedactionCounts, RedactError> {
    let mut counts = RedactionCounts::default();
    let mut lines = BoundedLines::new(input, limits.max_line_bytes);
    while let Some(line) = lines.next_line()? {
        let line = match line {
            Line::Text(t) => t,
            Line::TooLong => return Err(RedactError::TooLong { line: lines.number, max: limits.max_line_bytes }),
            Line::NotUtf8 { valid_up_to } => return Err(RedactError::NotUtf8 { line: lines.number, valid_up_to }),
        };
        match serde_json::from_str::<Value>(&line) {
            Ok(mut value) => {
                if let Some(messages) = value.get_mut("messages").and_then(Value::as_array_mut) {
                    for m in messages {
                        if let Some(Value::String(c)) = m.get_mut("content") {
                            *c = redact_text(c, &mut counts);
                        }
                    }
                }
                serde_json::to_writer(&mut output, &value).map_err(std::io::Error::other)?;
            }
            Err(_) => output.write_all(line.as_bytes())?,
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(counts)
}

/// Redacts the `text` and `response` columns of an intent table, record by
/// record, each record within the line cap (a quoted field cannot grow one
/// without bound).
pub fn redact_intents_csv(input: impl Read, output: impl Write, limits: &Limits) -> Result<RedactionCounts, RedactError> {
    let mut counts = RedactionCounts::default();
    let capped = LineCapReader::new(input, limits.max_line_bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(capped);
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(output);
    let mut header: Vec<String> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| match e.kind() {
            csv::ErrorKind::Io(io) if io.to_string() == LINE_TOO_LONG => {
                RedactError::TooLong { line: e.position().map_or(0, |p| p.line()) + 1, max: limits.max_line_bytes }
            }
            _ => RedactError::Csv(e.to_string()),
        })?;
        if i == 0 {
            header = record.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
            writer.write_record(&record).map_err(|e| RedactError::Csv(e.to_string()))?;
            continue;
        }
        let fields: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(c, f)| {
                if matches!(header.get(c).map(String::as_str), Some("text" | "response")) {
                    redact_text(f, &mut counts)
                } else {
                    f.to_owned()
                }
            })
            .collect();
        writer.write_record(&fields).map_err(|e| RedactError::Csv(e.to_string()))?;
    }
    writer.flush()?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_emails_phones_and_valid_cards_only() {
        let mut c = RedactionCounts::default();
        let out = redact_text(
            "Mail ada@example.co.uk or call +44 20 7946 0958. Card 4111 1111 1111 1111, not 1234 5678 9012 3456. Order 42 in 2024.",
            &mut c,
        );
        assert_eq!(out, "Mail [EMAIL] or call [PHONE]. Card [CARD], not 1234 5678 9012 3456. Order 42 in 2024.");
        assert_eq!(c, RedactionCounts { emails: 1, phones: 1, cards: 1 });
    }

    #[test]
    fn redacts_message_contents_in_jsonl_and_csv() {
        let input = "{\"messages\":[{\"role\":\"user\",\"content\":\"I am bob@corp.com\"},{\"role\":\"assistant\",\"content\":\"Thanks!\"}]}\nnot json\n";
        let mut out = Vec::new();
        let c = redact_chat_jsonl(input.as_bytes(), &mut out, &Limits::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("I am [EMAIL]") && !text.contains("bob@corp.com") && text.contains("not json"));
        assert_eq!(c.emails, 1);
        let mut out = Vec::new();
        let c = redact_intents_csv("text,intent,response\ncall 555-123-4567,phone,ok\n".as_bytes(), &mut out, &Limits::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "text,intent,response\ncall [PHONE],phone,ok\n");
        assert_eq!(c.phones, 1);
    }

    #[test]
    fn long_lines_and_endless_quoted_fields_are_refused_not_read_whole() {
        let limits = Limits { max_line_bytes: 64, ..Limits::default() };
        let long = format!("{{\"messages\":[]}}\n{}\n", "x".repeat(1000));
        let err = redact_chat_jsonl(long.as_bytes(), Vec::new(), &limits).unwrap_err();
        assert!(matches!(err, RedactError::TooLong { line: 2, max: 64 }), "{err}");
        // One quoted field of many short lines: each line is short, the record is not.
        let endless = format!("text,intent\n\"{}\",greet\n", "hi\n".repeat(100));
        let err = redact_intents_csv(endless.as_bytes(), Vec::new(), &limits).unwrap_err();
        assert!(matches!(err, RedactError::TooLong { .. }), "{err}");
        let ok = redact_intents_csv("text,intent\n\"two\nlines\",greet\n".as_bytes(), Vec::new(), &limits);
        assert!(ok.is_ok(), "{ok:?}");
    }
}
