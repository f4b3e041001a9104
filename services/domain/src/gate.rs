//! The ship gate: a model's promotion rules, checked against a candidate
//! version's report (and the current `production`'s) before `production`
//! moves. Pure: the app loads the reports, this decides.

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::report::ModelReport;

/// A threshold on one of the report's headline metrics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricThreshold {
    pub metric: String,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
}

/// A model's promotion rules; an empty set lets any version with a report through.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PromotionRules {
    #[serde(default)]
    pub metrics: Vec<MetricThreshold>,
    /// No class's recall may fall by more than this many percentage points
    /// against the version now in `production`.
    pub max_class_recall_drop_points: Option<f64>,
    /// Median-of-runs p95 latency per example at batch 1, in milliseconds.
    pub max_latency_p95_ms: Option<f64>,
    /// The artifact's size in MB (10⁶ bytes).
    pub max_size_mb: Option<f64>,
    /// Every baseline the report names must be beaten.
    #[serde(default)]
    pub must_beat_baselines: bool,
}

impl PromotionRules {
    /// Checks the rules themselves: metric names the family reports, and
    /// thresholds that can be met. `known` lists the family's metric names.
    pub fn validate(&self, known: &[&str]) -> Result<(), DomainError> {
        for t in &self.metrics {
            if !known.contains(&t.metric.as_str()) {
                return Err(DomainError::invalid(
                    "metrics",
                    format!("unknown metric {:?}; this family reports {}", t.metric, known.join(", ")),
                ));
            }
            match (t.at_least, t.at_most) {
                (None, None) => {
                    return Err(DomainError::invalid("metrics", format!("give {} an atLeast or an atMost value", t.metric)));
                }
                (Some(lo), Some(hi)) if lo > hi => {
                    return Err(DomainError::invalid("metrics", format!("{}: atLeast {lo} is above atMost {hi}", t.metric)));
                }
                _ => {}
            }
            if [t.at_least, t.at_most].into_iter().flatten().any(|v| !v.is_finite()) {
                return Err(DomainError::invalid("metrics", format!("{}: thresholds must be finite numbers", t.metric)));
            }
        }
        let positive = |name: &'static str, v: Option<f64>| match v {
            Some(v) if !(v.is_finite() && v >= 0.0) => Err(DomainError::invalid(name, format!("{v} is not a number of 0 or more"))),
            _ => Ok(()),
        };
        positive("maxClassRecallDropPoints", self.max_class_recall_drop_points)?;
        positive("maxLatencyP95Ms", self.max_latency_p95_ms)?;
        positive("maxSizeMb", self.max_size_mb)?;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One rule's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuleVerdict {
    /// The rule as people read it: "accuracy ≥ 0.9".
    pub rule: String,
    pub passed: bool,
    /// The candidate's value (none when it could not be measured).
    pub value: Option<f64>,
    pub threshold: f64,
    /// Why, in words.
    pub message: String,
}

/// Checks every rule (none is skipped when an earlier one fails, so the
/// answer lists everything to fix). `production` is the report of the
/// version `production` points at now, if any; `size_bytes` the candidate's.
pub fn check(rules: &PromotionRules, candidate: &ModelReport, size_bytes: u64, production: Option<&ModelReport>) -> Vec<RuleVerdict> {
    let mut out = Vec::new();
    for t in &rules.metrics {
        let value = candidate.metric(&t.metric).map(|m| m.value);
        for (bound, at_least) in [(t.at_least, true), (t.at_most, false)] {
            let Some(threshold) = bound else { continue };
            let sign = if at_least { "≥" } else { "≤" };
            let passed = value.is_some_and(|v| if at_least { v >= threshold } else { v <= threshold });
            let message = match value {
                None => format!("the report has no {}", t.metric),
                Some(v) if passed => format!("{} is {v:.4}, within the rule", t.metric),
                Some(v) => format!("{} is {v:.4}; the rule needs {sign} {threshold}", t.metric),
            };
            out.push(RuleVerdict { rule: format!("{} {sign} {threshold}", t.metric), passed, value, threshold, message });
        }
    }
    if let Some(max) = rules.max_class_recall_drop_points {
        out.push(recall_drop(max, candidate, production));
    }
    if let Some(max) = rules.max_latency_p95_ms {
        let value = candidate.latency.as_ref().map(|l| l.batch_1_p95_ms);
        let passed = value.is_some_and(|v| v <= max);
        let message = match value {
            None => "the report has no latency measurement".to_owned(),
            Some(v) if passed => format!("p95 latency at batch 1 is {v:.3} ms"),
            Some(v) => format!("p95 latency at batch 1 is {v:.3} ms, over {max} ms"),
        };
        out.push(RuleVerdict { rule: format!("p95 latency at batch 1 ≤ {max} ms"), passed, value, threshold: max, message });
    }
    if let Some(max) = rules.max_size_mb {
        let mb = size_bytes as f64 / 1e6;
        let passed = mb <= max;
        let message = if passed { format!("the artifact is {mb:.2} MB") } else { format!("the artifact is {mb:.2} MB, over {max} MB") };
        out.push(RuleVerdict { rule: format!("size ≤ {max} MB"), passed, value: Some(mb), threshold: max, message });
    }
    if rules.must_beat_baselines {
        for b in &candidate.baselines {
            let passed = b.beaten == Some(true);
            out.push(RuleVerdict {
                rule: format!("beats the {} baseline", b.label),
                passed,
                value: Some(b.model_value),
                threshold: b.value.unwrap_or(f64::NAN),
                message: b.verdict.clone(),
            });
        }
    }
    out
}

fn recall_drop(max: f64, candidate: &ModelReport, production: Option<&ModelReport>) -> RuleVerdict {
    let rule = format!("no class recall drops more than {max} points against production");
    let verdict =
        |passed: bool, value: Option<f64>, message: String| RuleVerdict { rule: rule.clone(), passed, value, threshold: max, message };
    let Some(prod) = production else {
        return verdict(true, None, "nothing is in production yet to compare with".into());
    };
    let classes = |r: &ModelReport| r.per_class.iter().map(|c| c.class.clone()).collect::<Vec<_>>();
    if classes(prod) != classes(candidate) || candidate.per_class.is_empty() {
        return verdict(false, None, "the version in production predicts other classes; recalls cannot be compared".into());
    }
    let worst = candidate
        .per_class
        .iter()
        .zip(&prod.per_class)
        .map(|(c, p)| (c.class.as_str(), (p.recall - c.recall) * 100.0))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match worst {
        Some((class, drop)) if drop > max => {
            verdict(false, Some(drop), format!("recall of class {class:?} drops {drop:.1} points against production"))
        }
        Some((class, drop)) => verdict(true, Some(drop.max(0.0)), format!("the largest change is class {class:?}: {:+.1} points", -drop)),
        None => verdict(true, Some(0.0), "no classes to compare".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Family;
    use crate::report::{ClassScores, LatencyStats, Metric, ModelSize};

    fn report(accuracy: f64, recalls: &[f64], p95: f64) -> ModelReport {
        ModelReport {
            family: Family::ImageClassification,
            task: "train".into(),
            architecture: "a".into(),
            split: "test".into(),
            examples: 10,
            metrics: vec![Metric { name: "accuracy".into(), label: "Accuracy".into(), value: accuracy, higher_is_better: true }],
            summary: String::new(),
            baselines: vec![],
            curves: vec![],
            confusion: None,
            per_class: recalls
                .iter()
                .enumerate()
                .map(|(i, &r)| ClassScores { class: format!("c{i}"), precision: 1.0, recall: r, f1: r, support: 5 })
                .collect(),
            calibration: None,
            size: ModelSize { parameters: 1, bytes: 1 },
            latency: Some(LatencyStats { batch_1_ms: p95 / 2.0, batch_1_p95_ms: p95, batch_64_ms: 0.1 }),
            distillation: None,
            outcomes: vec![],
            thumbnails: Default::default(),
        }
    }

    fn rules() -> PromotionRules {
        PromotionRules {
            metrics: vec![MetricThreshold { metric: "accuracy".into(), at_least: Some(0.9), at_most: None }],
            max_class_recall_drop_points: Some(5.0),
            max_latency_p95_ms: Some(2.0),
            max_size_mb: Some(1.0),
            must_beat_baselines: false,
        }
    }

    #[test]
    fn every_rule_is_answered_with_its_value() {
        let production = report(0.95, &[0.9, 0.9], 1.0);
        let good = check(&rules(), &report(0.93, &[0.88, 0.95], 1.5), 500_000, Some(&production));
        assert_eq!(good.len(), 4);
        assert!(good.iter().all(|v| v.passed), "{good:?}");
        let bad = check(&rules(), &report(0.85, &[0.80, 0.95], 3.0), 2_000_000, Some(&production));
        let failed: Vec<&str> = bad.iter().filter(|v| !v.passed).map(|v| v.rule.as_str()).collect();
        assert_eq!(failed.len(), 4, "{bad:?}");
        assert_eq!(bad[0].value, Some(0.85));
        let drop = bad.iter().find(|v| v.rule.contains("recall")).unwrap();
        assert!((drop.value.unwrap() - 10.0).abs() < 1e-9 && drop.message.contains("\"c0\""), "{drop:?}");
        // Nothing in production yet: the recall rule has nothing to compare with.
        let first = check(&rules(), &report(0.93, &[0.1, 0.1], 1.0), 1, None);
        assert!(first.iter().find(|v| v.rule.contains("recall")).unwrap().passed);
        // Production with other classes fails closed.
        let other = check(&rules(), &report(0.93, &[0.9], 1.0), 1, Some(&production));
        assert!(!other.iter().find(|v| v.rule.contains("recall")).unwrap().passed);
    }

    #[test]
    fn rules_are_checked_themselves() {
        assert!(rules().validate(&["accuracy"]).is_ok());
        let unknown =
            PromotionRules { metrics: vec![MetricThreshold { metric: "acc".into(), at_least: Some(0.9), at_most: None }], ..rules() };
        assert!(unknown.validate(&["accuracy", "macro_f1"]).unwrap_err().message().contains("accuracy, macro_f1"));
        let empty =
            PromotionRules { metrics: vec![MetricThreshold { metric: "accuracy".into(), at_least: None, at_most: None }], ..rules() };
        assert!(empty.validate(&["accuracy"]).is_err());
        let negative = PromotionRules { max_size_mb: Some(-1.0), ..rules() };
        assert_eq!(negative.validate(&["accuracy"]).unwrap_err().field(), "maxSizeMb");
        assert!(PromotionRules::default().is_empty());
    }
}
