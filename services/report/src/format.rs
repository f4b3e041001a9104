//! Escaping and number formatting shared by the charts and the page.
//!
//! Everything a user or a dataset provides (class names, ids, labels, facts)
//! goes through [`escape`] before it reaches markup; numbers are written so a
//! reader can compare them at a glance rather than with every digit.

/// Escapes text for HTML and SVG, in element content and in quoted attributes alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// What a value that could not be measured (NaN, ∞) reads as.
pub const MISSING: &str = "—";

/// A metric: 4 decimals in [-1, 1] (accuracy 0.9612, F1, ECE), 3 significant digits otherwise (perplexity, loss).
pub fn metric(value: f64) -> String {
    if !value.is_finite() {
        MISSING.to_owned()
    } else if value.abs() <= 1.0 {
        format!("{value:.4}")
    } else {
        significant(value, 3)
    }
}

/// A share as a percentage with one decimal: `96.1 %` (no-break space, so it never wraps).
pub fn percent(share: f64) -> String {
    if share.is_finite() { format!("{:.1}\u{a0}%", share * 100.0) } else { MISSING.to_owned() }
}

/// Milliseconds with 3 significant digits: `0.0123 ms`, `4.56 ms`, `1234 ms`.
pub fn millis(ms: f64) -> String {
    if ms.is_finite() { format!("{}\u{a0}ms", significant(ms, 3)) } else { MISSING.to_owned() }
}

/// Bytes in decimal units (as disks and downloads count them): `812 B`, `4.27 MB`.
pub fn bytes(count: u64) -> String {
    scaled(count, &["B", "KB", "MB", "GB", "TB"], "\u{a0}")
}

/// A large count, compact: `11.2 M` parameters; small counts stay exact.
pub fn count(value: u64) -> String {
    scaled(value, &["", "K", "M", "G", "T"], "\u{a0}").trim_end().to_owned()
}

/// An exact count with its thousands apart (narrow no-break spaces): `10 000` examples.
pub fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(digit);
    }
    out
}

fn scaled(value: u64, units: &[&str], space: &str) -> String {
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1000.0 && unit + 1 < units.len() {
        scaled /= 1000.0;
        unit += 1;
    }
    let name = units.get(unit).copied().unwrap_or_default();
    if unit == 0 { format!("{value}{space}{name}") } else { format!("{}{space}{name}", significant(scaled, 3)) }
}

/// `digits` significant digits, but never drops integer digits (1234 stays 1234).
pub fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value == 0.0 { "0".to_owned() } else { MISSING.to_owned() };
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 12) as usize;
    format!("{value:.decimals$}")
}

/// Decimals for axis tick labels so that neighbouring ticks differ (span 2 → 1 decimal, span 0.05 → 3).
pub fn tick_decimals(span: f64) -> usize {
    if !span.is_finite() || span <= 0.0 {
        return 2;
    }
    (1 - span.log10().floor() as i32).clamp(0, 5) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape(r#"<b>&"'x"#), "&lt;b&gt;&amp;&quot;&#39;x");
    }

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(metric(0.96123), "0.9612");
        assert_eq!(metric(12.345), "12.3");
        assert_eq!(metric(f64::NAN), MISSING);
        assert_eq!(percent(0.9612), "96.1\u{a0}%");
        assert_eq!(millis(0.012345), "0.0123\u{a0}ms");
        assert_eq!(millis(4.5678), "4.57\u{a0}ms");
        assert_eq!(millis(1234.4), "1234\u{a0}ms");
        assert_eq!(bytes(812), "812\u{a0}B");
        assert_eq!(bytes(4_270_000), "4.27\u{a0}MB");
        assert_eq!(count(11_200_000), "11.2\u{a0}M");
        assert_eq!(count(950), "950");
        assert_eq!(grouped(10_000), "10\u{202f}000");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(tick_decimals(2.0), 1);
        assert_eq!(tick_decimals(0.05), 3);
    }
}
