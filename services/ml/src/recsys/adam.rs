//! Adam over the rows of an embedding table, lazily: only rows that had a
//! gradient in the step move (TensorFlow's LazyAdam, PyTorch's SparseAdam).
//! A catalogue of 100k items then costs a step what its batch touched, not
//! the whole table.

/// Adam state for one `rows × dim` table.
#[derive(Debug, Clone)]
pub struct RowAdam {
    dim: usize,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Steps taken by each row (its own bias correction).
    steps: Vec<i32>,
}

impl RowAdam {
    pub fn new(rows: usize, dim: usize, lr: f32) -> Self {
        Self { dim, lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, m: vec![0.0; rows * dim], v: vec![0.0; rows * dim], steps: vec![0; rows] }
    }

    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// Grows the state for rows added to the table (fine-tuning's newcomers).
    pub fn grow(&mut self, rows: usize) {
        self.m.resize(rows * self.dim, 0.0);
        self.v.resize(rows * self.dim, 0.0);
        self.steps.resize(rows, 0);
    }

    /// Moves each listed row of `params` against its gradient (plus `l2`
    /// times itself) and zeroes the gradient for the next step.
    pub fn step(&mut self, params: &mut [f32], grads: &mut [f32], rows: &[u32], l2: f32) {
        let d = self.dim;
        for &r in rows {
            let r = r as usize;
            self.steps[r] += 1;
            let t = self.steps[r];
            let c1 = 1.0 - self.beta1.powi(t);
            let c2 = 1.0 - self.beta2.powi(t);
            let step = self.lr * c2.sqrt() / c1;
            let range = r * d..(r + 1) * d;
            let (p, g) = (&mut params[range.clone()], &mut grads[range.clone()]);
            let (m, v) = (&mut self.m[range.clone()], &mut self.v[range]);
            for k in 0..d {
                let grad = g[k] + l2 * p[k];
                m[k] = self.beta1 * m[k] + (1.0 - self.beta1) * grad;
                v[k] = self.beta2 * v[k] + (1.0 - self.beta2) * grad * grad;
                p[k] -= step * m[k] / (v[k].sqrt() + self.eps * c2.sqrt());
                g[k] = 0.0;
            }
        }
    }
}

/// The rows a step touched, each once, in first-touch order.
#[derive(Debug, Clone)]
pub struct Touched {
    mark: Vec<bool>,
    pub rows: Vec<u32>,
}

impl Touched {
    pub fn new(n: usize) -> Self {
        Self { mark: vec![false; n], rows: Vec::new() }
    }

    pub fn grow(&mut self, n: usize) {
        self.mark.resize(n, false);
    }

    #[inline]
    pub fn touch(&mut self, r: u32) {
        let slot = &mut self.mark[r as usize];
        if !*slot {
            *slot = true;
            self.rows.push(r);
        }
    }

    pub fn clear(&mut self) {
        for &r in &self.rows {
            self.mark[r as usize] = false;
        }
        self.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_step_moves_by_the_learning_rate_and_untouched_rows_stay() {
        let mut adam = RowAdam::new(2, 2, 0.1);
        let mut p = vec![1.0, 1.0, 5.0, 5.0];
        let mut g = vec![3.0, -0.5, 9.0, 9.0];
        adam.step(&mut p, &mut g, &[0], 0.0);
        // Adam's first step is lr · sign(g).
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6, "{p:?}");
        assert_eq!(&p[2..], &[5.0, 5.0]);
        assert_eq!(&g[..2], &[0.0, 0.0]);
    }
}
