//! Interactions for recommendation: CSV or TSV with a header,
//! `user_id,item_id[,rating][,timestamp]` (MovieLens / RecBole conventions;
//! RecBole's `name:type` headers are accepted), optionally with feature
//! columns: any other column named `user_…` describes the row's user and any
//! named `item_…` its item (`item_genres` = `Action|Comedy`: tokens split on
//! `|`), which the two-tower model learns from. One file carries them, so a
//! dataset stays one upload; an entity's first non-empty value counts.

use crate::ProblemCode;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Read;

use serde::Serialize;

use crate::splits::{DEFAULT_SEED, plan};
use crate::text::{LineCapReader, RecordStep, next_record};
use crate::{Limits, Problems, Report};

#[derive(Debug, Clone, Default, Serialize)]
pub struct RecommendationStats {
    pub users: u64,
    pub items: u64,
    pub interactions: u64,
    /// interactions / (users × items)
    pub density: f64,
    pub has_rating: bool,
    pub has_timestamp: bool,
    /// Rating value → count (values rounded to one decimal).
    pub rating_histogram: BTreeMap<String, u64>,
    pub delimiter: String,
    /// Feature columns describing users (`user_age`, …) and items (`item_genres`, …).
    pub user_features: Vec<String>,
    pub item_features: Vec<String>,
}

const FIX_HEADER: &str = "start the file with a header line naming the columns, e.g. user_id,item_id,rating,timestamp";
const FIX_ROW: &str = "give every row the same columns as the header";
const FIX_NUMBER: &str = "write ratings and timestamps as plain numbers, e.g. 4 or 4.5 and 881250949";
const FIX_ENCODING: &str = "save the file as UTF-8";
const FIX_FEATURE: &str = "give every row of a user (or item) the same feature values; the first non-empty value is used";
/// Inconsistent-feature warnings listed (the total is still counted).
const MAX_FEATURE_WARNINGS: usize = 20;
/// Distinct rating values kept in the histogram; beyond that they are bucketed.
const MAX_HISTOGRAM_KEYS: usize = 64;

fn column_name(raw: &str) -> String {
    raw.trim().split(':').next().unwrap_or("").trim().trim_matches('"').to_ascii_lowercase()
}

/// A 64-bit digest of an id: distinct users and items are counted without
/// keeping every id string (collisions are ~1e-7 at a million ids).
fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Validates interactions. `file_name` decides the delimiter (`.tsv`, else
/// the header's tabs, else commas).
pub fn validate_interactions(reader: impl Read, file_name: &str, limits: &Limits) -> Report<RecommendationStats> {
    let mut errors = Problems::default();
    let mut warnings = Problems::default();
    let mut stats = RecommendationStats::default();
    let mut buffered = std::io::BufReader::new(LineCapReader::new(reader, limits.max_line_bytes));

    // Peek at the header to choose the delimiter.
    let header_probe = match std::io::BufRead::fill_buf(&mut buffered) {
        Ok(b) => b.iter().take_while(|&&c| c != b'\n').copied().collect::<Vec<u8>>(),
        Err(_) => Vec::new(),
    };
    let delimiter = if file_name.to_ascii_lowercase().ends_with(".tsv") || header_probe.contains(&b'\t') { b'\t' } else { b',' };
    stats.delimiter = if delimiter == b'\t' { "tab".into() } else { "comma".into() };

    let mut csv = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(buffered);
    let mut record = csv::ByteRecord::new();
    let header: Vec<String> = match csv.read_byte_record(&mut record) {
        Ok(true) => record.iter().map(|f| column_name(&String::from_utf8_lossy(f))).collect(),
        Ok(false) => {
            errors.push("line 1", ProblemCode::EmptyFile, "the file is empty", FIX_HEADER);
            return Report { stats, errors, warnings, preview: serde_json::Value::Null, splits: None };
        }
        Err(e) => {
            errors.push("line 1", ProblemCode::UnreadableHeader, format!("the header could not be read: {e}"), FIX_HEADER);
            return Report { stats, errors, warnings, preview: serde_json::Value::Null, splits: None };
        }
    };
    let find = |name: &str| header.iter().position(|h| h == name);
    let (Some(user_col), Some(item_col)) = (find("user_id"), find("item_id")) else {
        let got = header.join(", ");
        errors.push("line 1", ProblemCode::MissingColumns, format!("the header must name user_id and item_id; it has: {got}"), FIX_HEADER);
        return Report { stats, errors, warnings, preview: serde_json::Value::Null, splits: None };
    };
    let rating_col = find("rating");
    let ts_col = find("timestamp");
    stats.has_rating = rating_col.is_some();
    stats.has_timestamp = ts_col.is_some();
    let features = FeatureColumns::of(&header, user_col, item_col);
    stats.user_features = features.user.iter().map(|&c| header[c].clone()).collect();
    stats.item_features = features.item.iter().map(|&c| header[c].clone()).collect();
    for (i, name) in header.iter().enumerate() {
        if ![Some(user_col), Some(item_col), rating_col, ts_col].contains(&Some(i)) && !features.contains(i) {
            warnings.push(
                "line 1",
                ProblemCode::IgnoredColumn,
                format!("column {} ({name:?}) is not used", i + 1),
                "remove it, or leave it: it is ignored",
            );
        }
    }

    // Interactions per user (by digest): for the per-user split.
    let mut users: HashMap<u64, u64> = HashMap::new();
    let mut items = HashSet::new();
    let mut preview = Vec::new();
    let (mut user_values, mut item_values) = (HashMap::new(), HashMap::new());
    let mut inconsistent = 0usize;
    loop {
        let line = match next_record(&mut csv, &mut record, header.len(), limits.max_line_bytes, &mut errors, FIX_ROW) {
            RecordStep::Row(line) => line,
            RecordStep::Skip => continue,
            RecordStep::End => break,
        };
        if let Some(bad) = record.iter().position(|f| std::str::from_utf8(f).is_err()) {
            errors.push(format!("line {line}, column {}", bad + 1), ProblemCode::NotUtf8, "the field is not valid UTF-8", FIX_ENCODING);
            continue;
        }
        let field = |i: usize| std::str::from_utf8(record.get(i).unwrap_or_default()).unwrap_or("").trim();
        let (user, item) = (field(user_col), field(item_col));
        if user.is_empty() || item.is_empty() {
            let col = if user.is_empty() { user_col } else { item_col };
            errors.push(format!("line {line}, column {}", col + 1), ProblemCode::EmptyId, "user_id and item_id must not be empty", FIX_ROW);
            continue;
        }
        if let Some(col) = rating_col {
            match field(col).parse::<f64>() {
                Ok(r) if r.is_finite() => {
                    let key = format!("{}", (r * 10.0).round() / 10.0);
                    if stats.rating_histogram.len() < MAX_HISTOGRAM_KEYS || stats.rating_histogram.contains_key(&key) {
                        *stats.rating_histogram.entry(key).or_default() += 1;
                    } else {
                        *stats.rating_histogram.entry("other".into()).or_default() += 1;
                    }
                }
                _ => {
                    errors.push(
                        format!("line {line}, column {}", col + 1),
                        ProblemCode::RatingNotANumber,
                        format!("the rating {:?} is not a number", field(col)),
                        FIX_NUMBER,
                    );
                    continue;
                }
            }
        }
        if let Some(col) = ts_col
            && !field(col).parse::<f64>().is_ok_and(f64::is_finite)
        {
            errors.push(
                format!("line {line}, column {}", col + 1),
                ProblemCode::TimestampNotANumber,
                format!("the timestamp {:?} is not a number", field(col)),
                FIX_NUMBER,
            );
            continue;
        }
        for (id, columns, seen) in [(user, &features.user, &mut user_values), (item, &features.item, &mut item_values)] {
            if let Some(column) = features.disagreeing(id, columns, &field, seen) {
                inconsistent += 1;
                if inconsistent <= MAX_FEATURE_WARNINGS {
                    warnings.push(
                        format!("line {line}, column {}", column + 1),
                        ProblemCode::InconsistentFeature,
                        format!("{:?} has a different {} here than on an earlier line", id, header[column]),
                        FIX_FEATURE,
                    );
                }
            }
        }
        *users.entry(digest(user.as_bytes())).or_default() += 1;
        items.insert(digest(item.as_bytes()));
        if preview.len() < 5 {
            preview.push(
                header.iter().enumerate().map(|(i, h)| (h.clone(), serde_json::Value::from(field(i)))).collect::<serde_json::Map<_, _>>(),
            );
        }
        stats.interactions += 1;
    }
    stats.users = users.len() as u64;
    stats.items = items.len() as u64;
    if stats.users > 0 && stats.items > 0 {
        stats.density = stats.interactions as f64 / (stats.users as f64 * stats.items as f64);
    }
    if stats.interactions == 0 && errors.total() == 0 {
        errors.push(
            "line 2",
            ProblemCode::NoRows,
            "the file has a header but no interactions",
            "add one row per interaction under the header",
        );
    }
    let splits = Some(plan(DEFAULT_SEED, "per_user", users.values().copied()));
    Report { stats, errors, warnings, preview: serde_json::json!({ "rows": preview }), splits }
}

/// The feature columns of a header: `user_…` and `item_…` besides the ids.
struct FeatureColumns {
    user: Vec<usize>,
    item: Vec<usize>,
}

impl FeatureColumns {
    fn of(header: &[String], user_col: usize, item_col: usize) -> Self {
        let named = |prefix: &str| -> Vec<usize> {
            header
                .iter()
                .enumerate()
                .filter(|&(i, h)| i != user_col && i != item_col && h.len() > prefix.len() && h.starts_with(prefix))
                .map(|(i, _)| i)
                .collect()
        };
        Self { user: named("user_"), item: named("item_") }
    }

    fn contains(&self, column: usize) -> bool {
        self.user.contains(&column) || self.item.contains(&column)
    }

    /// Remembers an entity's first non-empty feature values (as a digest
    /// per column); the first column where a later row disagrees.
    fn disagreeing<'a>(
        &self,
        id: &str,
        columns: &[usize],
        field: &impl Fn(usize) -> &'a str,
        seen: &mut HashMap<u64, Vec<u64>>,
    ) -> Option<usize> {
        if columns.is_empty() {
            return None;
        }
        let values: Vec<u64> = columns.iter().map(|&c| if field(c).is_empty() { 0 } else { digest(field(c).as_bytes()) }).collect();
        let known = seen.entry(digest(id.as_bytes())).or_insert_with(|| vec![0; columns.len()]);
        let mut disagreement = None;
        for ((k, v), &c) in known.iter_mut().zip(values).zip(columns) {
            if *k == 0 {
                *k = v;
            } else if v != 0 && v != *k && disagreement.is_none() {
                disagreement = Some(c);
            }
        }
        disagreement
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, name: &str) -> Report<RecommendationStats> {
        validate_interactions(input.as_bytes(), name, &Limits::default())
    }

    #[test]
    fn counts_users_items_and_ratings() {
        let r = check("user_id,item_id,rating,timestamp\n1,10,4,100\n1,11,5,101\n2,10,3.5,102\n", "x.csv");
        assert!(r.is_valid(), "{:?}", r.errors);
        assert_eq!((r.stats.users, r.stats.items, r.stats.interactions), (2, 2, 3));
        assert!((r.stats.density - 0.75).abs() < 1e-9);
        assert_eq!(r.stats.rating_histogram.get("3.5"), Some(&1));
    }

    #[test]
    fn recbole_tsv_headers_are_understood() {
        let r = check("user_id:token\titem_id:token\trating:float\n196\t242\t3\n", "ml.inter");
        assert!(r.is_valid(), "{:?}", r.errors);
        assert_eq!(r.stats.delimiter, "tab");
    }

    #[test]
    fn ratings_that_are_not_numbers_are_named_with_their_place() {
        let r = check("user_id,item_id,rating\n1,2,4\n1,3,great\n", "x.csv");
        assert!(!r.is_valid());
        let p = &r.errors.first()[0];
        assert_eq!(p.code, "rating_not_a_number");
        assert_eq!(p.location, "line 3, column 3");
        assert!(p.message.contains("great"));
    }

    #[test]
    fn missing_columns_wrong_counts_and_empty_files() {
        assert!(check("user,item\n1,2\n", "x.csv").errors.has("missing_columns"));
        assert!(check("user_id,item_id\n1,2,3\n", "x.csv").errors.has("wrong_field_count"));
        assert!(check("", "x.csv").errors.has("empty_file"));
        assert!(check("user_id,item_id\n", "x.csv").errors.has("no_rows"));
    }

    #[test]
    fn user_and_item_columns_are_features_and_disagreements_are_warned() {
        let r = check(
            "user_id,item_id,rating,user_age,item_genres,comment\n1,10,4,24,Action|Comedy,x\n2,10,3,,Action|Comedy,y\n2,11,5,31,Drama,z\n1,10,2,24,Drama,w\n",
            "x.csv",
        );
        assert!(r.is_valid(), "{:?}", r.errors);
        assert_eq!(r.stats.user_features, ["user_age"]);
        assert_eq!(r.stats.item_features, ["item_genres"]);
        // Only the column nobody reads is called ignored.
        let ignored: Vec<_> = r.warnings.first().iter().filter(|p| p.code == "ignored_column").map(|p| p.message.clone()).collect();
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert!(ignored[0].contains("comment"));
        // Item 10 was Action|Comedy, then Drama on line 5; user 2's empty age then 31 is no disagreement.
        let odd: Vec<_> = r.warnings.first().iter().filter(|p| p.code == "inconsistent_feature").map(|p| p.location.clone()).collect();
        assert_eq!(odd, ["line 5, column 5"]);
    }

    #[test]
    fn over_long_lines_and_bad_encoding_are_refused() {
        let limits = Limits { max_line_bytes: 64, ..Limits::default() };
        let long = format!("user_id,item_id\n1,{}\n", "9".repeat(1000));
        let r = validate_interactions(long.as_bytes(), "x.csv", &limits);
        assert!(r.errors.has("line_too_long"), "{:?}", r.errors);
        let bad = b"user_id,item_id\n1,\xFF\xFE\n";
        assert!(validate_interactions(&bad[..], "x.csv", &Limits::default()).errors.has("not_utf8"));
    }
}
