//! Classification metrics, as scikit-learn computes them: accuracy, top-k,
//! per-class precision/recall/F1 with support, macro and weighted F1, the
//! confusion matrix (rows = true class), and expected calibration error.

use serde::{Deserialize, Serialize};
use tenfold_domain::report;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Classification {
    pub examples: usize,
    pub accuracy: f64,
    /// `top_k[k]` = share of examples whose class is among the k most probable.
    pub top_k: std::collections::BTreeMap<usize, f64>,
    pub per_class: Vec<ClassMetrics>,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub confusion_matrix: Vec<Vec<usize>>,
    /// Expected calibration error over 15 equal-width confidence bins.
    pub ece: f64,
    /// The bins themselves (a reliability diagram).
    #[serde(default)]
    pub reliability: Vec<ReliabilityBin>,
    pub mean_loss: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean confidence of the bin's predictions (0 when empty).
    pub confidence: f64,
    /// Share of them that were right (0 when empty).
    pub accuracy: f64,
}

const ECE_BINS: usize = 15;

/// The most probable class; ties go to the lower index, as argmax does.
impl Classification {
    /// The report's confusion matrix (rows: the true class).
    pub fn confusion(&self) -> report::Confusion {
        report::Confusion {
            classes: self.per_class.iter().map(|c| c.class.clone()).collect(),
            counts: self.confusion_matrix.iter().map(|row| row.iter().map(|&n| n as u64).collect()).collect(),
        }
    }

    /// The report's per-class precision, recall and F1.
    pub fn class_scores(&self) -> Vec<report::ClassScores> {
        self.per_class
            .iter()
            .map(|c| report::ClassScores {
                class: c.class.clone(),
                precision: c.precision,
                recall: c.recall,
                f1: c.f1,
                support: c.support as u64,
            })
            .collect()
    }

    /// The report's reliability diagram.
    pub fn calibration(&self) -> report::Calibration {
        report::Calibration {
            ece: self.ece,
            bins: self
                .reliability
                .iter()
                .map(|b| report::CalibrationBin {
                    lower: b.lower,
                    upper: b.upper,
                    count: b.count as u64,
                    confidence: b.confidence,
                    accuracy: b.accuracy,
                })
                .collect(),
        }
    }
}

pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// `probs` holds one row of class probabilities per example.
pub fn classification(classes: &[String], probs: &[Vec<f32>], labels: &[usize]) -> Classification {
    let k = classes.len();
    let n = labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut top_hits = vec![0usize; k + 1];
    let mut bins = vec![(0usize, 0f64, 0f64); ECE_BINS];
    let mut loss = 0f64;
    for (row, &label) in probs.iter().zip(labels) {
        let mut order: Vec<usize> = (0..row.len()).collect();
        // Ties broken by class index, as argmax does.
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let predicted = order[0];
        confusion[label][predicted] += 1;
        if let Some(rank) = order.iter().position(|&c| c == label) {
            for hits in top_hits.iter_mut().skip(rank + 1) {
                *hits += 1;
            }
        }
        let confidence = f64::from(row[predicted]);
        let bin = ((confidence * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bins[bin].0 += 1;
        bins[bin].1 += confidence;
        bins[bin].2 += f64::from(u8::from(predicted == label));
        loss -= f64::from(row[label].max(1e-12)).ln();
    }
    let per_class: Vec<ClassMetrics> = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted: usize = (0..k).map(|r| confusion[r][c]).sum();
            let support: usize = confusion[c].iter().sum();
            let precision = ratio(tp, predicted as f64);
            let recall = ratio(tp, support as f64);
            ClassMetrics { class: classes[c].clone(), precision, recall, f1: ratio(2.0 * precision * recall, precision + recall), support }
        })
        .collect();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let top_k = [1, 3, 5].into_iter().filter(|&t| t <= k).map(|t| (t, ratio(top_hits[t] as f64, n as f64))).collect();
    let ece = bins
        .iter()
        .map(|&(count, conf, acc)| if count == 0 { 0.0 } else { (count as f64 / n as f64) * ((acc - conf) / count as f64).abs() })
        .sum();
    let reliability = bins
        .iter()
        .enumerate()
        .map(|(i, &(count, conf, acc))| ReliabilityBin {
            lower: i as f64 / ECE_BINS as f64,
            upper: (i + 1) as f64 / ECE_BINS as f64,
            count,
            confidence: ratio(conf, count as f64),
            accuracy: ratio(acc, count as f64),
        })
        .collect();
    Classification {
        reliability,
        examples: n,
        accuracy: ratio(correct as f64, n as f64),
        top_k,
        macro_f1: ratio(per_class.iter().map(|m| m.f1).sum(), k as f64),
        weighted_f1: ratio(per_class.iter().map(|m| m.f1 * m.support as f64).sum(), n as f64),
        per_class,
        confusion_matrix: confusion,
        ece,
        mean_loss: ratio(loss, n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(c: usize, p: f32) -> Vec<f32> {
        let mut v = vec![(1.0 - p) / 2.0; 3];
        v[c] = p;
        v
    }

    #[test]
    fn matches_hand_computed_values() {
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        // true:      a    a    b    b    c    c
        // predicted: a    b    b    b    a    c
        let probs = vec![one_hot(0, 0.9), one_hot(1, 0.6), one_hot(1, 0.8), one_hot(1, 0.7), one_hot(0, 0.5), one_hot(2, 0.95)];
        let labels = [0, 0, 1, 1, 2, 2];
        let m = classification(&classes, &probs, &labels);
        assert_eq!(m.confusion_matrix, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // a: P = 1/2, R = 1/2; b: P = 2/3, R = 1; c: P = 1, R = 1/2.
        let f1 = |p: f64, r: f64| 2.0 * p * r / (p + r);
        let expect = [f1(0.5, 0.5), f1(2.0 / 3.0, 1.0), f1(1.0, 0.5)];
        for (got, want) in m.per_class.iter().zip(expect) {
            assert!((got.f1 - want).abs() < 1e-12, "{got:?}");
        }
        assert!((m.macro_f1 - expect.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        assert_eq!(m.top_k[&3], 1.0);
        // Bins: 0.9 ✓, 0.6 ✗, 0.8 ✓, 0.7 ✓, 0.5 ✗, 0.95 ✓ — each alone in its bin.
        let expect_ece = (0.1 + 0.6 + 0.2 + 0.3 + 0.5 + 0.05) / 6.0;
        assert!((m.ece - expect_ece).abs() < 1e-6, "{} vs {expect_ece}", m.ece);
    }
}
