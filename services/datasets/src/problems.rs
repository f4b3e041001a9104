use serde::Serialize;

tenfold_domain::code_table! {
    /// The one table of dataset problem codes: stable, machine-readable,
    /// shown as `problems { code }` and kept with INVALID versions.
    pub enum ProblemCode {
        ArchiveTooLarge => "archive_too_large",
        ClassNotInTrain => "class_not_in_train",
        CompressionRatio => "compression_ratio",
        ContentTooLong => "content_too_long",
        CorruptEntry => "corrupt_entry",
        CorruptImage => "corrupt_image",
        DuplicateImage => "duplicate_image",
        EmptyClass => "empty_class",
        EmptyContent => "empty_content",
        EmptyConversation => "empty_conversation",
        EmptyField => "empty_field",
        EmptyFile => "empty_file",
        EmptyId => "empty_id",
        EntryTooLarge => "entry_too_large",
        ExtensionMismatch => "extension_mismatch",
        IgnoredColumn => "ignored_column",
        ImageTooLarge => "image_too_large",
        InconsistentFeature => "inconsistent_feature",
        IgnoredFile => "ignored_file",
        InvalidIntent => "invalid_intent",
        InvalidJson => "invalid_json",
        JsonTooDeep => "json_too_deep",
        LineTooLong => "line_too_long",
        MissingColumns => "missing_columns",
        MissingContent => "missing_content",
        MissingMessages => "missing_messages",
        MissingRole => "missing_role",
        MixedLayout => "mixed_layout",
        NameNotUtf8 => "name_not_utf8",
        NoAssistantMessage => "no_assistant_message",
        NoConversations => "no_conversations",
        NoImages => "no_images",
        NoRows => "no_rows",
        NotAZip => "not_a_zip",
        NotAnImage => "not_an_image",
        NotInClassFolder => "not_in_class_folder",
        NotUtf8 => "not_utf8",
        RatingNotANumber => "rating_not_a_number",
        SingleClass => "single_class",
        SpecialFile => "special_file",
        Symlink => "symlink",
        TimestampNotANumber => "timestamp_not_a_number",
        TooManyEntries => "too_many_entries",
        UnknownRole => "unknown_role",
        Unreadable => "unreadable",
        UnreadableHeader => "unreadable_header",
        UnreadableRow => "unreadable_row",
        UnsafePath => "unsafe_path",
        UnsupportedFile => "unsupported_file",
        UnsupportedFileType => "unsupported_file_type",
        ValidationFailed => "validation_failed",
        WrongFieldCount => "wrong_field_count",
    }
}

impl Serialize for ProblemCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ProblemCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One problem in an upload: where, what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `file.zip:cats/01.png`, `line 12, column 3`, …
    pub location: String,
    /// Stable machine-readable code from the table, e.g. `unsafe_path`.
    pub code: ProblemCode,
    pub message: String,
    /// What to do about it.
    pub hint: &'static str,
}

/// The first problems (up to a cap) and how many there were in all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Problems {
    first: Vec<Problem>,
    total: u64,
}

impl Problems {
    /// Problems kept in full; the rest are only counted.
    pub const KEPT: usize = 100;

    pub fn push(&mut self, location: impl Into<String>, code: ProblemCode, message: impl Into<String>, hint: &'static str) {
        self.total += 1;
        if self.first.len() < Self::KEPT {
            self.first.push(Problem { location: location.into(), code, message: message.into(), hint });
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn first(&self) -> &[Problem] {
        &self.first
    }

    /// One line for an error message: the first `shown` problems with their
    /// place and fix, and how many more there are.
    pub fn summary(&self, shown: usize) -> String {
        let listed: Vec<String> = self.first.iter().take(shown).map(|p| format!("{}: {} ({})", p.location, p.message, p.hint)).collect();
        let more = self.total.saturating_sub(listed.len() as u64);
        let tail = if more > 0 { format!("; and {more} more problems") } else { String::new() };
        format!("{}{tail}", listed.join("; "))
    }

    /// Whether any problem has `code` (for tests and callers that branch).
    pub fn has(&self, code: &str) -> bool {
        self.first.iter().any(|p| p.code.as_str() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_lists_the_first_problems_and_counts_the_rest() {
        let mut p = Problems::default();
        for line in 2..6 {
            p.push(format!("line {line}"), ProblemCode::EmptyId, "no id", "add one");
        }
        assert_eq!(p.summary(2), "line 2: no id (add one); line 3: no id (add one); and 2 more problems");
        assert_eq!(p.summary(9).matches("no id").count(), 4);
        assert!(!p.summary(9).contains("more"));
    }

    #[test]
    fn keeps_the_first_hundred_and_counts_all() {
        let mut p = Problems::default();
        for i in 0..250 {
            p.push(format!("line {i}"), ProblemCode::Unreadable, "bad", "fix it");
        }
        assert_eq!(p.total(), 250);
        assert_eq!(p.first().len(), 100);
        assert_eq!(p.first()[99].location, "line 99");
    }

    #[test]
    fn every_code_has_one_spelling() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ProblemCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }
}
