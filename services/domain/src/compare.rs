//! Comparing two model versions on the same test examples: every metric
//! side by side, whether each difference is beyond noise (a paired
//! bootstrap over the examples both were scored on), per-class changes and
//! the examples that flipped.
//!
//! Paired, because both models answered the same examples: resampling the
//! examples (not the models' scores separately) keeps the correlation
//! between them, so a real 1-point gain on 500 images can be told from
//! seed noise (Koehn 2004; Dror et al. 2018).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::report::{ExampleOutcome, ModelReport};

/// Resamples of the paired bootstrap; 2000 gives stable 95 % bounds.
pub const RESAMPLES: usize = 2000;
/// Fixed, so the same two versions always get the same answer.
const SEED: u64 = 0x7e1f01d;
/// Flipped examples listed each way.
pub const FLIPS_SHOWN: usize = 6;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    /// Examples both versions were scored on.
    pub examples: u64,
    /// `None` when both were scored on the same examples; otherwise what the
    /// comparison was restricted to, in words.
    pub restricted: Option<String>,
    pub metrics: Vec<MetricDiff>,
    pub per_class: Vec<ClassDiff>,
    /// Wrong in A, right in B.
    pub fixed: Vec<Flip>,
    /// Right in A, wrong in B.
    pub broken: Vec<Flip>,
    pub fixed_count: u64,
    pub broken_count: u64,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricDiff {
    pub name: String,
    pub label: String,
    pub a: f64,
    pub b: f64,
    /// b − a.
    pub difference: f64,
    /// 95 % paired-bootstrap interval of the difference, when the metric
    /// can be recomputed per example.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The interval excludes 0; `None` when there is no interval.
    pub beyond_noise: Option<bool>,
    pub higher_is_better: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassDiff {
    pub class: String,
    pub recall_a: f64,
    pub recall_b: f64,
    pub precision_a: f64,
    pub precision_b: f64,
    pub support: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flip {
    pub id: String,
    pub label: String,
    pub predicted_a: String,
    pub predicted_b: String,
    pub thumbnail: Option<String>,
}

/// A metric recomputed from per-example outcomes (so it can be resampled).
#[derive(Clone, Copy)]
enum Recomputed {
    Accuracy,
    MacroF1,
    WeightedF1,
    Ece,
}

impl Recomputed {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "accuracy" => Some(Self::Accuracy),
            "macro_f1" => Some(Self::MacroF1),
            "weighted_f1" => Some(Self::WeightedF1),
            "ece" => Some(Self::Ece),
            _ => None,
        }
    }

    fn value(self, rows: &[&ExampleOutcome]) -> f64 {
        match self {
            Self::Accuracy => mean(rows.iter().map(|o| o.score)),
            Self::MacroF1 => f1s(rows).0,
            Self::WeightedF1 => f1s(rows).1,
            Self::Ece => ece(rows),
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Macro and weighted F1 over the classes present as labels.
fn f1s(rows: &[&ExampleOutcome]) -> (f64, f64) {
    let mut tp: HashMap<&str, f64> = HashMap::new();
    let mut predicted: HashMap<&str, f64> = HashMap::new();
    let mut support: HashMap<&str, f64> = HashMap::new();
    for o in rows {
        *support.entry(&o.label).or_default() += 1.0;
        *predicted.entry(&o.predicted).or_default() += 1.0;
        if o.label == o.predicted {
            *tp.entry(&o.label).or_default() += 1.0;
        }
    }
    let (mut macro_sum, mut weighted_sum, mut classes) = (0.0, 0.0, 0.0);
    for (class, &s) in &support {
        let t = tp.get(class).copied().unwrap_or(0.0);
        let p = if let Some(&n) = predicted.get(class) { t / n } else { 0.0 };
        let r = t / s;
        let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
        macro_sum += f1;
        weighted_sum += f1 * s;
        classes += 1.0;
    }
    if classes == 0.0 { (0.0, 0.0) } else { (macro_sum / classes, weighted_sum / rows.len() as f64) }
}

/// Expected calibration error over 15 equal-width bins (as the engine computes it).
fn ece(rows: &[&ExampleOutcome]) -> f64 {
    const BINS: usize = 15;
    let mut bins = [(0usize, 0f64, 0f64); BINS];
    for o in rows {
        let b = ((o.confidence * BINS as f64) as usize).min(BINS - 1);
        bins[b].0 += 1;
        bins[b].1 += o.confidence;
        bins[b].2 += o.score;
    }
    let n = rows.len().max(1) as f64;
    bins.iter().filter(|b| b.0 > 0).map(|&(c, conf, acc)| (c as f64 / n) * ((acc - conf) / c as f64).abs()).sum()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Compares version A with version B. Errors say why they cannot be compared.
pub fn compare(a: &ModelReport, b: &ModelReport) -> Result<Comparison, DomainError> {
    if a.family != b.family {
        return Err(DomainError::invalid(
            "b",
            format!("the versions are of different families ({} and {}); compare versions of one family", a.family, b.family),
        ));
    }
    if a.outcomes.is_empty() || b.outcomes.is_empty() {
        return Err(DomainError::invalid(
            "b",
            "a version has no per-example results in its report; it cannot be compared example by example",
        ));
    }
    let by_id_b: HashMap<&str, &ExampleOutcome> = b.outcomes.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut pairs: Vec<(&ExampleOutcome, &ExampleOutcome)> = Vec::new();
    for oa in &a.outcomes {
        if let Some(ob) = by_id_b.get(oa.id.as_str()) {
            if oa.label != ob.label {
                return Err(DomainError::invalid(
                    "b",
                    format!(
                        "example {:?} is labelled {:?} for A and {:?} for B: the versions were tested on different data",
                        oa.id, oa.label, ob.label
                    ),
                ));
            }
            pairs.push((oa, ob));
        }
    }
    if pairs.is_empty() {
        return Err(DomainError::invalid(
            "b",
            "the versions share no test example (they were tested on different datasets or splits); compare versions tested on the same data",
        ));
    }
    let same_set = pairs.len() == a.outcomes.len() && pairs.len() == b.outcomes.len();
    let restricted = (!same_set).then(|| {
        format!(
            "restricted to the {} examples both were tested on (A was tested on {}, B on {}); the numbers are recomputed on those",
            pairs.len(),
            a.outcomes.len(),
            b.outcomes.len()
        )
    });
    let rows_a: Vec<&ExampleOutcome> = pairs.iter().map(|p| p.0).collect();
    let rows_b: Vec<&ExampleOutcome> = pairs.iter().map(|p| p.1).collect();
    let metrics = metric_diffs(a, b, &rows_a, &rows_b, same_set);
    let per_class = class_diffs(&rows_a, &rows_b);
    let thumb = |id: &str| a.thumbnails.get(id).or_else(|| b.thumbnails.get(id)).cloned();
    let flip = |(x, y): &(&ExampleOutcome, &ExampleOutcome)| Flip {
        id: x.id.clone(),
        label: x.label.clone(),
        predicted_a: x.predicted.clone(),
        predicted_b: y.predicted.clone(),
        thumbnail: thumb(&x.id),
    };
    let fixed_all: Vec<_> = pairs.iter().filter(|(x, y)| x.score < 1.0 && y.score >= 1.0).collect();
    let broken_all: Vec<_> = pairs.iter().filter(|(x, y)| x.score >= 1.0 && y.score < 1.0).collect();
    let summary = summary(&metrics, fixed_all.len(), broken_all.len(), pairs.len());
    Ok(Comparison {
        examples: pairs.len() as u64,
        restricted,
        metrics,
        per_class,
        fixed_count: fixed_all.len() as u64,
        broken_count: broken_all.len() as u64,
        fixed: fixed_all.iter().take(FLIPS_SHOWN).map(|p| flip(p)).collect(),
        broken: broken_all.iter().take(FLIPS_SHOWN).map(|p| flip(p)).collect(),
        summary,
    })
}

fn metric_diffs(
    a: &ModelReport,
    b: &ModelReport,
    rows_a: &[&ExampleOutcome],
    rows_b: &[&ExampleOutcome],
    same_set: bool,
) -> Vec<MetricDiff> {
    let n = rows_a.len();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let samples: Vec<Vec<usize>> = (0..RESAMPLES).map(|_| (0..n).map(|_| rng.random_range(0..n)).collect()).collect();
    let names: BTreeSet<&str> = b.metrics.iter().map(|m| m.name.as_str()).collect();
    a.metrics
        .iter()
        .filter(|m| names.contains(m.name.as_str()))
        .filter_map(|ma| {
            let mb = b.metric(&ma.name)?;
            let recomputed = Recomputed::from_name(&ma.name);
            // On a restricted set only recomputable metrics mean anything.
            let (va, vb) = match (recomputed, same_set) {
                (_, true) => (ma.value, mb.value),
                (Some(r), false) => (r.value(rows_a), r.value(rows_b)),
                (None, false) => return None,
            };
            let (ci_low, ci_high) = match recomputed {
                Some(r) => {
                    let mut diffs: Vec<f64> = samples
                        .iter()
                        .map(|idx| {
                            let sa: Vec<&ExampleOutcome> = idx.iter().map(|&i| rows_a[i]).collect();
                            let sb: Vec<&ExampleOutcome> = idx.iter().map(|&i| rows_b[i]).collect();
                            r.value(&sb) - r.value(&sa)
                        })
                        .collect();
                    diffs.sort_by(f64::total_cmp);
                    (Some(percentile(&diffs, 0.025)), Some(percentile(&diffs, 0.975)))
                }
                None => (None, None),
            };
            let beyond_noise = ci_low.zip(ci_high).map(|(lo, hi)| lo > 0.0 || hi < 0.0);
            Some(MetricDiff {
                name: ma.name.clone(),
                label: ma.label.clone(),
                a: va,
                b: vb,
                difference: vb - va,
                ci_low,
                ci_high,
                beyond_noise,
                higher_is_better: ma.higher_is_better,
            })
        })
        .collect()
}

fn class_diffs(rows_a: &[&ExampleOutcome], rows_b: &[&ExampleOutcome]) -> Vec<ClassDiff> {
    // (support, tp a, tp b, predicted a, predicted b) per class.
    let mut stats: BTreeMap<&str, [f64; 5]> = BTreeMap::new();
    for (x, y) in rows_a.iter().zip(rows_b) {
        let s = stats.entry(&x.label).or_default();
        s[0] += 1.0;
        s[1] += f64::from(u8::from(x.predicted == x.label));
        s[2] += f64::from(u8::from(y.predicted == y.label));
        stats.entry(&x.predicted).or_default()[3] += 1.0;
        stats.entry(&y.predicted).or_default()[4] += 1.0;
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    stats
        .into_iter()
        .filter(|(_, s)| s[0] > 0.0)
        .map(|(class, s)| ClassDiff {
            class: class.to_owned(),
            recall_a: ratio(s[1], s[0]),
            recall_b: ratio(s[2], s[0]),
            precision_a: ratio(s[1], s[3]),
            precision_b: ratio(s[2], s[4]),
            support: s[0] as u64,
        })
        .collect()
}

fn summary(metrics: &[MetricDiff], fixed: usize, broken: usize, n: usize) -> String {
    let Some(primary) = metrics.first() else { return format!("{n} examples compared") };
    let verdict = match primary.beyond_noise {
        Some(true) if (primary.difference > 0.0) == primary.higher_is_better => "B is better, beyond noise",
        Some(true) => "B is worse, beyond noise",
        Some(false) => "the difference is within noise",
        None => "no interval could be computed",
    };
    format!(
        "{}: A {:.4}, B {:.4} ({:+.4}); {verdict}. On {n} examples B fixed {fixed} of A's mistakes and broke {broken} of its right answers.",
        primary.label, primary.a, primary.b, primary.difference
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Family;
    use crate::report::{Metric, ModelReport, ModelSize};

    /// A report whose examples `0..n` are right where `right(i)` holds.
    fn report(family: Family, n: usize, right: impl Fn(usize) -> bool) -> ModelReport {
        let outcomes: Vec<ExampleOutcome> = (0..n)
            .map(|i| {
                let label = format!("c{}", i % 4);
                let predicted = if right(i) { label.clone() } else { format!("c{}", (i + 1) % 4) };
                ExampleOutcome { id: format!("x{i}"), score: f64::from(u8::from(right(i))), label, predicted, confidence: 0.8 }
            })
            .collect();
        let accuracy = outcomes.iter().map(|o| o.score).sum::<f64>() / n as f64;
        ModelReport {
            family,
            task: "train".into(),
            architecture: "a".into(),
            split: "test".into(),
            examples: n as u64,
            metrics: vec![
                Metric { name: "accuracy".into(), label: "Accuracy".into(), value: accuracy, higher_is_better: true },
                Metric { name: "top_3".into(), label: "Top-3".into(), value: 1.0, higher_is_better: true },
            ],
            summary: String::new(),
            baselines: vec![],
            curves: vec![],
            confusion: None,
            per_class: vec![],
            calibration: None,
            size: ModelSize { parameters: 1, bytes: 1 },
            latency: None,
            distillation: None,
            outcomes,
            thumbnails: BTreeMap::from([("x3".to_owned(), "data:image/png;base64,AA".to_owned())]),
        }
    }

    fn accuracy(c: &Comparison) -> &MetricDiff {
        c.metrics.iter().find(|m| m.name == "accuracy").unwrap()
    }

    #[test]
    fn a_few_flips_each_way_are_noise_and_a_large_gain_is_not() {
        let a = report(Family::ImageClassification, 500, |i| i % 10 != 0);
        // B differs from A on 20 examples, 10 each way: same accuracy.
        let b = report(Family::ImageClassification, 500, |i| match (i < 100, i % 10) {
            (true, 0) => true,
            (true, 1) => false,
            _ => i % 10 != 0,
        });
        let c = compare(&a, &b).unwrap();
        assert_eq!(c.examples, 500);
        assert!(c.restricted.is_none());
        assert_eq!(accuracy(&c).beyond_noise, Some(false), "{:?}", accuracy(&c));
        // B right on everything A got wrong: +10 points.
        let better = report(Family::ImageClassification, 500, |_| true);
        let c = compare(&a, &better).unwrap();
        let acc = accuracy(&c);
        assert_eq!(acc.beyond_noise, Some(true), "{acc:?}");
        assert!(acc.ci_low.unwrap() > 0.0 && (acc.difference - 0.1).abs() < 1e-9);
        assert_eq!((c.fixed_count, c.broken_count), (50, 0));
        assert_eq!(c.fixed.len(), FLIPS_SHOWN);
        // Top-k cannot be resampled per example: shown without an interval.
        let top = c.metrics.iter().find(|m| m.name == "top_3").unwrap();
        assert_eq!((top.beyond_noise, top.ci_low), (None, None));
        assert!(c.summary.contains("B is better, beyond noise"), "{}", c.summary);
    }

    #[test]
    fn what_cannot_be_compared_is_refused_and_partial_overlaps_are_labelled() {
        let a = report(Family::ImageClassification, 100, |i| i % 3 != 0);
        let chat = report(Family::Chat, 100, |_| true);
        assert!(compare(&a, &chat).unwrap_err().message().contains("different families"));
        let mut elsewhere = report(Family::ImageClassification, 100, |_| true);
        elsewhere.outcomes.iter_mut().for_each(|o| o.id = format!("other/{}", o.id));
        assert!(compare(&a, &elsewhere).unwrap_err().message().contains("share no test example"));
        let mut relabelled = report(Family::ImageClassification, 100, |_| true);
        relabelled.outcomes[5].label = "zebra".into();
        assert!(compare(&a, &relabelled).unwrap_err().message().contains("different data"));
        let mut half = report(Family::ImageClassification, 100, |_| true);
        half.outcomes.truncate(50);
        let c = compare(&a, &half).unwrap();
        assert_eq!(c.examples, 50);
        assert!(c.restricted.as_deref().unwrap().contains("restricted to the 50 examples"));
        // Recomputed on the shared half; metrics that cannot be are left out.
        assert!(c.metrics.iter().all(|m| m.name != "top_3"));
        let expected_a = (0..50).filter(|i| i % 3 != 0).count() as f64 / 50.0;
        assert!((accuracy(&c).a - expected_a).abs() < 1e-12);
    }
}
