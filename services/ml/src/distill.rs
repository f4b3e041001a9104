//! Knowledge distillation's objective, shared by the families:
//! α·CE(labels) + (1−α)·T²·KL(teacher‖student) at temperature T (Hinton et
//! al.; the T² keeps the soft term's gradients on the same scale as T
//! changes).

use candle_core::{D, Tensor};
use candle_nn::ops::log_softmax;

use crate::Result;

/// How much the teacher's soft labels weigh, and how soft they are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Softening {
    /// Weight of the hard-label loss (the rest is the teacher's).
    pub alpha: f64,
    pub temperature: f64,
}

/// The distillation loss of a batch: `logits` (the student's, batch ×
/// classes), `teacher` (the teacher's logits for the same rows; no
/// gradient flows into them) and the integer `labels`.
pub fn loss(logits: &Tensor, teacher: &Tensor, labels: &Tensor, s: Softening) -> Result<Tensor> {
    let ce = candle_nn::loss::cross_entropy(logits, labels)?;
    let t = s.temperature;
    let log_p_teacher = log_softmax(&(teacher.detach() / t)?, D::Minus1)?;
    let log_p_student = log_softmax(&(logits / t)?, D::Minus1)?;
    let kl = (log_p_teacher.exp()? * (log_p_teacher - log_p_student)?)?.sum(D::Minus1)?.mean_all()?;
    Ok(((ce * s.alpha)? + (kl * ((1.0 - s.alpha) * t * t))?)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use candle_core::Device;

    use super::*;

    #[test]
    fn a_student_that_matches_its_teacher_pays_only_the_label_loss() {
        let d = Device::Cpu;
        let logits = Tensor::new(&[[2.0f32, 0.5, -1.0], [0.1, 0.2, 3.0]], &d).unwrap();
        let labels = Tensor::new(&[0u32, 2], &d).unwrap();
        let s = Softening { alpha: 0.3, temperature: 4.0 };
        let ce = candle_nn::loss::cross_entropy(&logits, &labels).unwrap().to_scalar::<f32>().unwrap();
        let same = loss(&logits, &logits, &labels, s).unwrap().to_scalar::<f32>().unwrap();
        assert!((same - 0.3 * ce).abs() < 1e-5, "{same} vs {}", 0.3 * ce);
        // A teacher that disagrees costs more, and more as α falls.
        let other = Tensor::new(&[[-1.0f32, 0.5, 2.0], [3.0, 0.2, 0.1]], &d).unwrap();
        let apart = loss(&logits, &other, &labels, s).unwrap().to_scalar::<f32>().unwrap();
        let apart_more = loss(&logits, &other, &labels, Softening { alpha: 0.1, ..s }).unwrap().to_scalar::<f32>().unwrap();
        assert!(apart > same && apart_more > apart, "{same} {apart} {apart_more}");
    }
}
