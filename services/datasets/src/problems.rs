use serde::Serialize;

/// One problem in an upload: where, what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `file.zip:cats/01.png`, `line 12, column 3`, …
    pub location: String,
    /// Stable machine-readable code, e.g. `zip_path_traversal`.
    pub code: &'static str,
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

    pub fn push(&mut self, location: impl Into<String>, code: &'static str, message: impl Into<String>, hint: &'static str) {
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

    /// Whether any problem has `code` (for tests and callers that branch).
    pub fn has(&self, code: &str) -> bool {
        self.first.iter().any(|p| p.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_hundred_and_counts_all() {
        let mut p = Problems::default();
        for i in 0..250 {
            p.push(format!("line {i}"), "x", "bad", "fix it");
        }
        assert_eq!(p.total(), 250);
        assert_eq!(p.first().len(), 100);
        assert_eq!(p.first()[99].location, "line 99");
    }
}
