//! Features of users and items: the tokens their `user_…` / `item_…`
//! columns hold (`item_genres` = `Action|Comedy` is two tokens,
//! `item_genres=Action` and `item_genres=Comedy`), as a vocabulary and
//! each entity's token list. The two-tower model embeds them.

use serde::{Deserialize, Serialize};

/// Values of one column are split into tokens on this.
pub const TOKEN_SEPARATOR: char = '|';

/// Each entity's feature tokens, in a CSR layout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureTable {
    /// The feature columns, e.g. `item_genres`.
    pub columns: Vec<String>,
    /// Token names (`column=value`) by index.
    pub vocabulary: Vec<String>,
    /// Entity `e`'s tokens are `tokens[offsets[e]..offsets[e + 1]]`.
    pub offsets: Vec<u32>,
    pub tokens: Vec<u32>,
}

impl FeatureTable {
    pub fn n_entities(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn of(&self, entity: usize) -> &[u32] {
        match (self.offsets.get(entity), self.offsets.get(entity + 1)) {
            (Some(&a), Some(&b)) => &self.tokens[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Whether any entity has a feature.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Entities that have no feature tokens.
    pub fn without_features(&self) -> usize {
        (0..self.n_entities()).filter(|&e| self.of(e).is_empty()).count()
    }

    /// Checks the layout against an entity count (a loaded file).
    pub fn consistent_with(&self, entities: usize) -> bool {
        (self.columns.is_empty() && self.offsets.is_empty() && self.tokens.is_empty())
            || (self.offsets.len() == entities + 1
                && self.offsets.first() == Some(&0)
                && self.offsets.windows(2).all(|w| w[0] <= w[1])
                && self.offsets.last().is_some_and(|&l| l as usize == self.tokens.len())
                && self.tokens.iter().all(|&t| (t as usize) < self.vocabulary.len()))
    }
}

/// Builds a table while a file is read: each entity's first non-empty
/// values count.
#[derive(Debug, Default)]
pub struct FeatureBuilder {
    columns: Vec<String>,
    vocabulary: Vec<String>,
    by_name: std::collections::HashMap<String, u32>,
    /// Per entity, its tokens once known.
    entities: Vec<Option<Vec<u32>>>,
}

impl FeatureBuilder {
    pub fn new(columns: Vec<String>) -> Self {
        Self { columns, ..Self::default() }
    }

    pub fn is_active(&self) -> bool {
        !self.columns.is_empty()
    }

    /// Records `entity`'s values (one per column, in column order) unless
    /// it already has tokens.
    pub fn observe<'a>(&mut self, entity: usize, values: impl Iterator<Item = &'a str>) {
        if !self.is_active() {
            return;
        }
        if self.entities.len() <= entity {
            self.entities.resize(entity + 1, None);
        }
        if self.entities[entity].as_ref().is_some_and(|t| !t.is_empty()) {
            return;
        }
        let mut tokens = Vec::new();
        for (column, value) in self.columns.iter().zip(values) {
            for part in value.split(TOKEN_SEPARATOR).map(str::trim).filter(|p| !p.is_empty()) {
                let name = format!("{column}={part}");
                let next = self.vocabulary.len() as u32;
                let id = *self.by_name.entry(name.clone()).or_insert(next);
                if id == next {
                    self.vocabulary.push(name);
                }
                if !tokens.contains(&id) {
                    tokens.push(id);
                }
            }
        }
        self.entities[entity] = Some(tokens);
    }

    pub fn finish(self, entities: usize) -> FeatureTable {
        if !self.is_active() {
            return FeatureTable::default();
        }
        let mut offsets = Vec::with_capacity(entities + 1);
        let mut tokens = Vec::new();
        offsets.push(0);
        for e in 0..entities {
            if let Some(Some(t)) = self.entities.get(e) {
                tokens.extend_from_slice(t);
            }
            offsets.push(tokens.len() as u32);
        }
        FeatureTable { columns: self.columns, vocabulary: self.vocabulary, offsets, tokens }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_on_the_separator_and_the_first_non_empty_value_counts() {
        let mut b = FeatureBuilder::new(vec!["item_genres".into(), "item_year".into()]);
        b.observe(1, ["", ""].into_iter());
        b.observe(1, ["Action|Comedy", "1995"].into_iter());
        b.observe(1, ["Drama", "1995"].into_iter());
        b.observe(0, ["Comedy", ""].into_iter());
        let t = b.finish(3);
        assert_eq!(t.vocabulary, ["item_genres=Action", "item_genres=Comedy", "item_year=1995"]);
        assert_eq!(t.of(0), [1]);
        assert_eq!(t.of(1), [0, 1, 2]);
        assert!(t.of(2).is_empty());
        assert_eq!(t.without_features(), 1);
        assert!(t.consistent_with(3) && !t.consistent_with(4));
    }
}
