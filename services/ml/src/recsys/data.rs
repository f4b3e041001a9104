//! An interactions file read into dense ids.
//!
//! The file first goes through the upload validator (its words are the
//! error). Users and items get dense indices in order of first appearance;
//! the external ids are kept to answer in them. A user–item pair that occurs
//! more than once is one interaction (its last rating counts): a pair in both
//! the training and the test split would test the model on what it was shown.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use tenfold_datasets::{Family, Limits, validate_file};

use super::features::{FeatureBuilder, FeatureTable};
use crate::artifact::sha256_file;
use crate::{MlError, Result};

const PROBLEMS_SHOWN: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    /// The explicit rating, when the file has a rating column.
    pub rating: f32,
}

#[derive(Debug, Clone)]
pub struct Interactions {
    /// External user ids by index.
    pub users: Vec<String>,
    /// External item ids by index.
    pub items: Vec<String>,
    pub rows: Vec<Interaction>,
    pub has_rating: bool,
    /// Rows that repeated an earlier user–item pair (merged into it).
    pub duplicates: usize,
    pub file: String,
    pub sha256: String,
    /// Features of users and items (empty tables when the file has none).
    pub user_features: FeatureTable,
    pub item_features: FeatureTable,
}

pub(crate) fn invalid(path: &Path, summary: impl Into<String>) -> MlError {
    MlError::InvalidDataset { path: path.into(), family: "recommendation", summary: summary.into() }
}

/// A column name as the validator reads it: RecBole's `name:type` headers
/// name their column before the colon.
fn column_name(raw: &str) -> String {
    raw.trim().split(':').next().unwrap_or("").trim().trim_matches('"').to_ascii_lowercase()
}

/// Interns ids in order of first appearance.
#[derive(Default)]
struct Index {
    names: Vec<String>,
    by_name: HashMap<String, u32>,
}

impl Index {
    fn get(&mut self, name: &str) -> Result<u32> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(i);
        }
        let i = u32::try_from(self.names.len()).map_err(|_| MlError::arg("data", "more than 4 billion distinct ids"))?;
        self.names.push(name.to_owned());
        self.by_name.insert(name.to_owned(), i);
        Ok(i)
    }
}

impl Interactions {
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let file = File::open(path).map_err(MlError::io(path))?;
        let outcome = validate_file(Family::Recommendation, &name, file, &Limits::default());
        if !outcome.is_valid() {
            return Err(invalid(path, outcome.errors.summary(PROBLEMS_SHOWN)));
        }
        let tab = outcome.stats.get("delimiter").and_then(|d| d.as_str()) == Some("tab");
        let file = File::open(path).map_err(MlError::io(path))?;
        let mut reader = csv::ReaderBuilder::new().delimiter(if tab { b'\t' } else { b',' }).flexible(true).from_reader(file);
        let header: Vec<String> = reader.headers().map_err(|e| invalid(path, e.to_string()))?.iter().map(column_name).collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(user_col), Some(item_col)) = (col("user_id"), col("item_id")) else {
            return Err(invalid(path, "the header must name user_id and item_id"));
        };
        let rating_col = col("rating");
        let feature_columns = |prefix: &str| -> Vec<usize> {
            (0..header.len())
                .filter(|&c| c != user_col && c != item_col && header[c].len() > prefix.len() && header[c].starts_with(prefix))
                .collect()
        };
        let (user_feature_cols, item_feature_cols) = (feature_columns("user_"), feature_columns("item_"));
        let named = |cols: &[usize]| cols.iter().map(|&c| header[c].clone()).collect::<Vec<_>>();
        let mut user_features = FeatureBuilder::new(named(&user_feature_cols));
        let mut item_features = FeatureBuilder::new(named(&item_feature_cols));
        let (mut users, mut items) = (Index::default(), Index::default());
        let mut rows: Vec<Interaction> = Vec::new();
        let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
        let mut duplicates = 0;
        for record in reader.records() {
            let record = record.map_err(|e| invalid(path, e.to_string()))?;
            let field = |c: usize| record.get(c).map(str::trim).unwrap_or("");
            let user = users.get(field(user_col))?;
            let item = items.get(field(item_col))?;
            // The validator checked that ratings are numbers.
            let rating = rating_col.and_then(|c| field(c).parse::<f32>().ok()).unwrap_or(1.0);
            user_features.observe(user as usize, user_feature_cols.iter().map(|&c| field(c)));
            item_features.observe(item as usize, item_feature_cols.iter().map(|&c| field(c)));
            match seen.get(&(user, item)) {
                Some(&at) => {
                    rows[at].rating = rating;
                    duplicates += 1;
                }
                None => {
                    seen.insert((user, item), rows.len());
                    rows.push(Interaction { user, item, rating });
                }
            }
        }
        let (n_users, n_items) = (users.names.len(), items.names.len());
        Ok(Self {
            users: users.names,
            items: items.names,
            user_features: user_features.finish(n_users),
            item_features: item_features.finish(n_items),
            rows,
            has_rating: rating_col.is_some(),
            duplicates,
            file: name,
            sha256: sha256_file(path)?,
        })
    }

    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, name: &str) -> Result<Interactions> {
        let dir = tempfile::tempdir().map_err(MlError::io("tmp"))?;
        let path = dir.path().join(name);
        std::fs::write(&path, text).map_err(MlError::io(&path))?;
        Interactions::load(&path)
    }

    #[test]
    fn ids_are_dense_in_order_of_appearance_and_repeated_pairs_merge() {
        let d = load("user_id,item_id,rating\nu9,a,1\nu2,b,2\nu9,b,3\nu9,a,5\n", "x.csv").unwrap();
        assert_eq!(d.users, ["u9", "u2"]);
        assert_eq!(d.items, ["a", "b"]);
        assert_eq!(d.rows.len(), 3);
        assert_eq!(d.duplicates, 1);
        assert_eq!(d.rows[0], Interaction { user: 0, item: 0, rating: 5.0 });
        assert!(d.has_rating);
    }

    #[test]
    fn user_and_item_columns_become_feature_tables() {
        let d = load("user_id,item_id,user_gender,item_genres\nu1,a,F,Action|Drama\nu2,a,M,\nu1,b,F,Drama\n", "x.csv").unwrap();
        assert_eq!(d.user_features.columns, ["user_gender"]);
        assert_eq!(d.user_features.vocabulary, ["user_gender=F", "user_gender=M"]);
        assert_eq!((d.user_features.of(0), d.user_features.of(1)), (&[0][..], &[1][..]));
        assert_eq!(d.item_features.vocabulary, ["item_genres=Action", "item_genres=Drama"]);
        assert_eq!((d.item_features.of(0), d.item_features.of(1)), (&[0, 1][..], &[1][..]));
        let plain = load("user_id,item_id\nu1,a\n", "x.csv").unwrap();
        assert!(plain.user_features.is_empty() && plain.item_features.columns.is_empty());
    }

    #[test]
    fn recbole_atomic_files_are_read() {
        let d = load("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n", "ml.inter").unwrap();
        assert_eq!((d.n_users(), d.n_items(), d.has_rating), (1, 1, false));
        assert_eq!(d.rows[0].rating, 1.0);
    }

    #[test]
    fn ratings_that_are_not_numbers_are_refused_with_their_place() {
        let e = load("user_id,item_id,rating\n1,2,4\n1,3,great\n", "x.csv").unwrap_err().to_string();
        assert!(e.contains("line 3, column 3") && e.contains("great"), "{e}");
    }
}
