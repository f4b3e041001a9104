//! The training objective of the image family: cross-entropy, or the
//! distillation loss (`crate::distill`) against a teacher run on the same
//! augmented batch.

use candle_core::{D, Device};
use rand_chacha::ChaCha8Rng;
use tenfold_datasets::splits::Split;

use super::data::{Augment, ImageSet, Preprocess};
use tenfold_domain::report::ExampleOutcome;

use crate::metrics::Classification;
use crate::train::{BatchLoss, Goal, Metrics, Task};
use crate::{Model, Result};

pub struct SoftTargets<'a> {
    pub teacher: &'a dyn Model,
    pub alpha: f64,
    pub temperature: f64,
}

pub struct ImageTask<'a> {
    pub data: &'a ImageSet,
    pub prep: &'a Preprocess,
    pub model: &'a dyn Model,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub augment: Augment,
    pub device: &'a Device,
    pub soft: Option<SoftTargets<'a>>,
}

pub const EVAL_BATCH: usize = 256;

/// Probabilities for `indices`, in evaluation mode, in batches.
pub fn predict_probs(model: &dyn Model, data: &ImageSet, prep: &Preprocess, indices: &[usize], device: &Device) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(EVAL_BATCH) {
        let xs = data.batch(chunk, prep, None, device)?;
        let probs = candle_nn::ops::softmax_last_dim(&model.forward(&xs, false)?)?;
        out.extend(probs.to_device(&Device::Cpu)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

pub fn classify(model: &dyn Model, data: &ImageSet, prep: &Preprocess, indices: &[usize], device: &Device) -> Result<Classification> {
    Ok(classify_each(model, data, prep, indices, device)?.0)
}

/// The metrics, and how the model did on each example (by its name in the archive).
pub fn classify_each(
    model: &dyn Model,
    data: &ImageSet,
    prep: &Preprocess,
    indices: &[usize],
    device: &Device,
) -> Result<(Classification, Vec<ExampleOutcome>)> {
    let probs = predict_probs(model, data, prep, indices, device)?;
    let labels: Vec<usize> = indices.iter().map(|&i| data.label(i)).collect();
    let outcomes = indices
        .iter()
        .zip(&probs)
        .map(|(&i, row)| {
            let predicted = crate::metrics::argmax(row);
            let label = data.label(i);
            ExampleOutcome {
                id: data.examples[i].name.clone(),
                label: data.classes[label].clone(),
                predicted: data.classes[predicted].clone(),
                score: f64::from(u8::from(predicted == label)),
                confidence: f64::from(row[predicted]),
            }
        })
        .collect();
    Ok((crate::metrics::classification(&data.classes, &probs, &labels), outcomes))
}

impl Task for ImageTask<'_> {
    fn train_len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, batch: &[usize], rng: &mut ChaCha8Rng) -> Result<BatchLoss> {
        let indices: Vec<usize> = batch.iter().map(|&i| self.train[i]).collect();
        let augment = self.augment.any().then_some((&self.augment, rng));
        let xs = self.data.batch(&indices, self.prep, augment, self.device)?;
        let labels = self.data.labels(&indices, self.device)?;
        let logits = self.model.forward(&xs, true)?;
        let hits = logits.argmax(D::Minus1)?.eq(&labels)?;
        let correct = Some(hits.to_dtype(candle_core::DType::F32)?.sum_all()?.to_scalar::<f32>()? as usize);
        let Some(soft) = &self.soft else { return Ok(BatchLoss { loss: candle_nn::loss::cross_entropy(&logits, &labels)?, correct }) };
        let teacher = soft.teacher.forward(&xs, false)?;
        let softening = crate::distill::Softening { alpha: soft.alpha, temperature: soft.temperature };
        Ok(BatchLoss { loss: crate::distill::loss(&logits, &teacher, &labels, softening)?, correct })
    }

    fn validate(&self) -> Result<Option<Metrics>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let m = classify(self.model, self.data, self.prep, &self.val, self.device)?;
        Ok(Some(Metrics::from([("val_accuracy".to_owned(), m.accuracy), ("val_loss".to_owned(), m.mean_loss)])))
    }

    fn monitor(&self) -> (&'static str, Goal) {
        ("val_accuracy", Goal::Maximize)
    }
}

/// The split a final evaluation uses: test, or validation when there is no test split.
pub fn held_out(data: &ImageSet) -> (Split, Vec<usize>) {
    let test = data.indices(Split::Test);
    if test.is_empty() { (Split::Val, data.indices(Split::Val)) } else { (Split::Test, test) }
}
