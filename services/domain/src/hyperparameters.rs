//! Hyperparameters as a family declares them (name, type, range, default)
//! and as a job carries them: checked against that schema, defaults filled.
//!
//! Values are checked as the number the user sent (`-1` is "-1 is out of
//! range", never a wrapped unsigned number), and every problem names its
//! field and what to give instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{DomainError, Family};

/// The type and range of one hyperparameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParamKind {
    /// A whole number within `min..=max`.
    Integer {
        min: i64,
        max: i64,
    },
    /// A finite number within the bounds; `min_exclusive` when `min` itself is refused.
    Number {
        min: f64,
        max: f64,
        min_exclusive: bool,
    },
    /// One of the options, or with `multiple` a comma-separated list of them.
    Choice {
        options: Vec<&'static str>,
        multiple: bool,
    },
    Boolean,
    /// Train/validation/test percentages that add up to 100, e.g. `80/10/10`.
    Split,
}

/// One hyperparameter of a family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSpec {
    /// As in the API (camelCase).
    pub name: &'static str,
    pub kind: ParamKind,
    /// `Null`: optional, absent unless given.
    pub default: Value,
    pub description: &'static str,
}

impl ParamSpec {
    pub fn integer(name: &'static str, min: i64, max: i64, default: Option<i64>, description: &'static str) -> Self {
        Self { name, kind: ParamKind::Integer { min, max }, default: default.map_or(Value::Null, Value::from), description }
    }

    /// A number above `min` (exclusive) and at most `max`.
    pub fn positive(name: &'static str, max: f64, default: Option<f64>, description: &'static str) -> Self {
        Self {
            name,
            kind: ParamKind::Number { min: 0.0, max, min_exclusive: true },
            default: default.map_or(Value::Null, Value::from),
            description,
        }
    }

    pub fn number(name: &'static str, min: f64, max: f64, default: f64, description: &'static str) -> Self {
        Self { name, kind: ParamKind::Number { min, max, min_exclusive: false }, default: Value::from(default), description }
    }

    pub fn choice(name: &'static str, options: &[&'static str], multiple: bool, default: &str, description: &'static str) -> Self {
        Self { name, kind: ParamKind::Choice { options: options.to_vec(), multiple }, default: Value::from(default), description }
    }

    pub fn boolean(name: &'static str, default: bool, description: &'static str) -> Self {
        Self { name, kind: ParamKind::Boolean, default: Value::from(default), description }
    }

    pub fn split(name: &'static str, default: &str, description: &'static str) -> Self {
        Self { name, kind: ParamKind::Split, default: Value::from(default), description }
    }

    /// The value in its normal form, or what is wrong with it.
    fn check(&self, value: &Value) -> Result<Value, String> {
        match &self.kind {
            ParamKind::Integer { min, max } => {
                let n = match value {
                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                        n.as_i64().ok_or_else(|| format!("{n} is out of range; use {min} to {max}"))?
                    }
                    Value::Number(n) => return Err(format!("{n} is not a whole number; use {min} to {max}")),
                    other => return Err(format!("{other} is not a whole number; use {min} to {max}")),
                };
                if !(*min..=*max).contains(&n) {
                    return Err(format!("{n} is out of range; use {min} to {max}"));
                }
                Ok(Value::from(n))
            }
            ParamKind::Number { min, max, min_exclusive } => {
                let example = self.default.as_f64().map(|d| format!(", e.g. {d}")).unwrap_or_default();
                let range = if *min_exclusive { format!("a number above {min} and at most {max}") } else { format!("{min} to {max}") };
                let Some(x) = value.as_f64() else { return Err(format!("{value} is not a number; use {range}{example}")) };
                let low_ok = if *min_exclusive { x > *min } else { x >= *min };
                if !(x.is_finite() && low_ok && x <= *max) {
                    return Err(format!("{value} is out of range; use {range}{example}"));
                }
                Ok(value.clone())
            }
            ParamKind::Choice { options, multiple } => {
                let listed = options.join(", ");
                let Some(s) = value.as_str() else { return Err(format!("{value} is not text; use one of {listed}")) };
                let parts: Vec<&str> = if *multiple { s.split(',').map(str::trim).collect() } else { vec![s.trim()] };
                if parts.iter().all(|p| options.contains(p)) {
                    Ok(Value::from(parts.join(",")))
                } else if *multiple {
                    Err(format!("{s:?} is not accepted; use one or more of {listed}, separated by commas"))
                } else {
                    Err(format!("{s:?} is not accepted; use one of {listed}"))
                }
            }
            ParamKind::Boolean => value.as_bool().map(Value::from).ok_or_else(|| format!("{value} is not true or false")),
            ParamKind::Split => {
                let Some(s) = value.as_str() else { return Err(format!("{value} is not a split; give e.g. \"80/10/10\"")) };
                parse_split(s).map(|[a, b, c]| Value::from(format!("{a}/{b}/{c}")))
            }
        }
    }
}

/// The percentages of a `train/val/test` split.
pub fn parse_split(raw: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = raw.split('/').map(str::trim).collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    match numbers.as_deref() {
        Some([train, val, test]) if train + val + test == 100 && *train > 0 => Ok([*train, *val, *test]),
        _ => Err(format!("{raw:?} is not a split; give train/validation/test percentages that add up to 100, e.g. 80/10/10")),
    }
}

/// A job's hyperparameters: every one the family declares, checked, with
/// defaults filled in (optional ones absent unless given). Stored as this
/// JSON object on the job row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hyperparameters(BTreeMap<String, Value>);

impl Hyperparameters {
    /// Checks `given` against `specs`: unknown names and bad values are all
    /// reported at once, each under `hyperparameters.<name>`.
    pub fn normalise(family: Family, specs: &[ParamSpec], given: &Map<String, Value>) -> Result<Self, Vec<DomainError>> {
        let mut problems = Vec::new();
        let mut values = BTreeMap::new();
        for spec in specs {
            let value = match given.get(spec.name) {
                None | Some(Value::Null) => spec.default.clone(),
                Some(v) => match spec.check(v) {
                    Ok(v) => v,
                    Err(message) => {
                        problems.push(DomainError::invalid(field_of(spec.name), message));
                        continue;
                    }
                },
            };
            if !value.is_null() {
                values.insert(spec.name.to_owned(), value);
            }
        }
        // Unknown names last: the first problem names a field the schema has.
        for name in given.keys() {
            if !specs.iter().any(|s| s.name == name) {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                problems.push(DomainError::invalid(
                    "hyperparameters",
                    format!("{name:?} is not a hyperparameter of {family}; use {}", known.join(", ")),
                ));
            }
        }
        if problems.is_empty() { Ok(Self(values)) } else { Err(problems) }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Value::as_i64)
    }

    pub fn float(&self, name: &str) -> Option<f64> {
        self.0.get(name).and_then(Value::as_f64)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.0.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    /// The share of the data trained on, from a `split` hyperparameter.
    pub fn train_fraction(&self) -> f64 {
        self.text("split").and_then(|s| parse_split(s).ok()).map_or(0.8, |[train, _, _]| f64::from(train) / 100.0)
    }

    pub fn as_json(&self) -> Value {
        Value::Object(self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// `hyperparameters.<name>` as a `'static` field name: the names come from
/// the families' static schemas, so leaking is bounded by their number
/// (cached so that each name leaks once).
fn field_of(name: &'static str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static FIELDS: OnceLock<Mutex<BTreeMap<&'static str, &'static str>>> = OnceLock::new();
    let mut fields = FIELDS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    fields.entry(name).or_insert_with(|| Box::leak(format!("hyperparameters.{name}").into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec::integer("epochs", 1, 1000, Some(10), ""),
            ParamSpec::positive("learningRate", 1.0, Some(0.001), ""),
            ParamSpec::choice("augment", &["none", "crop", "flip"], true, "none", ""),
            ParamSpec::split("split", "80/10/10", ""),
            ParamSpec::integer("patience", 0, 1000, None, ""),
        ]
    }

    fn check(given: Value) -> Result<Hyperparameters, Vec<String>> {
        let Value::Object(map) = given else { panic!("an object") };
        Hyperparameters::normalise(Family::ImageClassification, &specs(), &map).map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_fill_in_and_optional_ones_stay_absent() {
        let h = check(json!({ "epochs": 3, "augment": "crop, flip" })).unwrap();
        assert_eq!(h.int("epochs"), Some(3));
        assert_eq!(h.float("learningRate"), Some(0.001));
        assert_eq!(h.text("augment"), Some("crop,flip"));
        assert_eq!(h.get("patience"), None);
        assert!((h.train_fraction() - 0.8).abs() < 1e-12);
    }

    #[test]
    fn numbers_are_checked_as_sent_and_every_problem_is_named() {
        let errors = check(json!({ "epochs": -1, "learningRate": -0.5, "augment": "rotate", "split": "90/20/0", "epoch": 3 })).unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors.contains(&"hyperparameters.epochs: -1 is out of range; use 1 to 1000".to_owned()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("hyperparameters.learningRate: -0.5 is out of range")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("\"epoch\" is not a hyperparameter of IMAGE_CLASSIFICATION")), "{errors:?}");
        let big = check(json!({ "epochs": 4294967295u64 })).unwrap_err();
        assert_eq!(big, ["hyperparameters.epochs: 4294967295 is out of range; use 1 to 1000"]);
        let fraction = check(json!({ "epochs": 2.5, "learningRate": "fast" })).unwrap_err();
        assert!(fraction[0].contains("2.5 is not a whole number"), "{fraction:?}");
        assert!(fraction[1].contains("\"fast\" is not a number"), "{fraction:?}");
    }

    #[test]
    fn splits_parse() {
        assert_eq!(parse_split("70/15/15"), Ok([70, 15, 15]));
        assert!(parse_split("0/50/50").is_err());
    }
}
