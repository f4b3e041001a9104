//! Each kernel against candle's reference op (values and gradients) and
//! against finite differences of a scalar loss.

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn close(a: &Tensor, b: &Tensor, tol: f32) {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
    }
}

/// A fixed random projection makes a scalar loss whose gradient is `r`.
fn project(y: &Tensor, seed: u64) -> Tensor {
    (y * random(y.dims(), seed)).unwrap().sum_all().unwrap()
}

#[test]
fn conv2d_matches_candle_values_and_gradients() {
    // 7×7: with stride 2, candle's own backward (conv_transpose2d without
    // output padding) fails on sizes like 7×6; ours is checked there by
    // finite differences below.
    for &(stride, pad) in &[(1, 0), (1, 1), (2, 1)] {
        let x = Var::from_tensor(&random(&[3, 2, 7, 7], 1)).unwrap();
        let k = Var::from_tensor(&random(&[4, 2, 3, 3], 2)).unwrap();
        let ours = conv2d(&x, &k, stride, pad).unwrap();
        let theirs = x.conv2d(&k, pad, stride, 1, 1).unwrap();
        close(&ours, &theirs, 1e-5);
        let g1 = project(&ours, 3).backward().unwrap();
        let g2 = project(&theirs, 3).backward().unwrap();
        close(g1.get(&x).unwrap(), g2.get(&x).unwrap(), 1e-4);
        close(g1.get(&k).unwrap(), g2.get(&k).unwrap(), 1e-4);
    }
}

#[test]
fn fused_conv_bias_relu_matches_the_three_ops() {
    for relu in [false, true] {
        let x = Var::from_tensor(&random(&[2, 3, 6, 6], 20)).unwrap();
        let k = Var::from_tensor(&random(&[4, 3, 3, 3], 21)).unwrap();
        let b = Var::from_tensor(&random(&[4], 22)).unwrap();
        let ours = conv2d_bias(&x, &k, &b, 1, 1, relu).unwrap();
        let pre = x.conv2d(&k, 1, 1, 1, 1).unwrap().broadcast_add(&b.reshape((1, 4, 1, 1)).unwrap()).unwrap();
        let theirs = if relu { pre.relu().unwrap() } else { pre };
        close(&ours, &theirs, 1e-5);
        let g1 = project(&ours, 23).backward().unwrap();
        let g2 = project(&theirs, 23).backward().unwrap();
        for v in [&x, &k, &b] {
            close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-4);
        }
    }
    let k = random(&[2, 2, 3, 3], 24);
    let b = Tensor::new(&[0.05f32, -0.05], &Device::Cpu).unwrap();
    finite_difference_check(&spread(&[1, 2, 4, 4], 25), |x| project(&conv2d_bias(x, &k, &b, 1, 0, false).unwrap(), 26));
}

#[test]
fn fused_conv_relu_pool_matches_the_separate_ops() {
    let x = Var::from_tensor(&random(&[2, 2, 7, 8], 40)).unwrap();
    let k = Var::from_tensor(&random(&[3, 2, 3, 3], 41)).unwrap();
    let b = Var::from_tensor(&random(&[3], 42)).unwrap();
    let ours = conv2d_relu_pool(&x, &k, &b, 1, 1, 2).unwrap();
    let theirs = max_pool2d(&conv2d_bias(&x, &k, &b, 1, 1, true).unwrap(), 2).unwrap();
    close(&ours, &theirs, 0.0);
    let g1 = project(&ours, 43).backward().unwrap();
    let g2 = project(&theirs, 43).backward().unwrap();
    for v in [&x, &k, &b] {
        close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-5);
    }
}

#[test]
fn fused_dense_matches_matmul_bias_relu() {
    for relu in [false, true] {
        let x = Var::from_tensor(&random(&[5, 7], 50)).unwrap();
        let w = Var::from_tensor(&random(&[3, 7], 51)).unwrap();
        let b = Var::from_tensor(&random(&[3], 52)).unwrap();
        let ours = dense(&x, &w, &b, relu).unwrap();
        let pre = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
        let theirs = if relu { pre.relu().unwrap() } else { pre };
        close(&ours, &theirs, 1e-5);
        let g1 = project(&ours, 53).backward().unwrap();
        let g2 = project(&theirs, 53).backward().unwrap();
        for v in [&x, &w, &b] {
            close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-5);
        }
    }
    let w = random(&[3, 4], 54);
    let b = random(&[3], 55);
    finite_difference_check(&random(&[2, 4], 56), |x| project(&dense(x, &w, &b, false).unwrap(), 57));
}

#[test]
fn conv2d_skips_the_input_gradient_of_data() {
    let x = random(&[2, 1, 5, 5], 1);
    let k = Var::from_tensor(&random(&[3, 1, 3, 3], 2)).unwrap();
    let grads = project(&conv2d(&x, &k, 1, 0).unwrap(), 3).backward().unwrap();
    assert!(grads.get(&x).is_none());
    assert!(grads.get(&k).is_some());
}

#[test]
fn max_pool_matches_candle_values_and_gradients() {
    let x = Var::from_tensor(&random(&[2, 3, 6, 8], 4)).unwrap();
    let ours = max_pool2d(&x, 2).unwrap();
    let theirs = x.max_pool2d(2).unwrap();
    close(&ours, &theirs, 0.0);
    let g1 = project(&ours, 5).backward().unwrap();
    let g2 = project(&theirs, 5).backward().unwrap();
    // candle 0.11.1's MaxPool2D backward scales the gradient by the average
    // of the max mask, i.e. divides it by k² for a unique maximum. The
    // derivative of a max is 1 at the argmax (finite differences below
    // agree with ours), so ours is candle's times 4 here.
    close(g1.get(&x).unwrap(), &(g2.get(&x).unwrap() * 4.0).unwrap(), 1e-6);
}

/// Central differences of `loss(input)` against the analytic gradient, on
/// every element. f32 with eps 1e-2 is exact for linear ops up to rounding;
/// inputs are spread so no ReLU or max switches inside ±eps.
fn finite_difference_check(input: &Tensor, f: impl Fn(&Tensor) -> Tensor) {
    let var = Var::from_tensor(input).unwrap();
    let analytic = f(var.as_tensor()).backward().unwrap().get(&var).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let base = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let eps = 1e-2f32;
    for i in 0..base.len() {
        let at = |delta: f32| {
            let mut v = base.clone();
            v[i] += delta;
            f(&Tensor::from_vec(v, input.dims(), &Device::Cpu).unwrap()).to_scalar::<f32>().unwrap()
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        assert!((numeric - analytic[i]).abs() <= 2e-2 * (1.0 + numeric.abs()), "element {i}: numeric {numeric}, analytic {}", analytic[i]);
    }
}

/// Values on a grid with gaps of 0.05: no two within 2·eps of each other or of 0.
fn spread(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..n).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let v: Vec<f32> = order.iter().map(|&i| (i as f32 - n as f32 / 2.0) * 0.05 + 0.025).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

#[test]
fn finite_differences_agree_for_conv_input_and_kernel() {
    let k = random(&[2, 2, 3, 3], 9);
    finite_difference_check(&random(&[1, 2, 5, 4], 10), |x| project(&conv2d(x, &k, 2, 1).unwrap(), 11));
    let x = random(&[2, 2, 5, 4], 12);
    finite_difference_check(&k, |k| project(&conv2d(&x, k, 1, 1).unwrap(), 13));
}

#[test]
fn finite_differences_agree_for_pool_and_bias_relu() {
    finite_difference_check(&spread(&[1, 2, 4, 6], 14), |x| project(&max_pool2d(x, 2).unwrap(), 15));
    // relu(x + b) through the fused dense op with an identity weight.
    let b = Tensor::new(&[0.0125f32, -0.0125, 0.0375], &Device::Cpu).unwrap();
    let eye = Tensor::eye(3, candle_core::DType::F32, &Device::Cpu).unwrap();
    finite_difference_check(&spread(&[8, 3], 16), |x| project(&dense(x, &eye, &b, true).unwrap(), 17));
}

/// The composed formula batch norm used before (and still uses off the CPU).
fn batch_norm_reference(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let c = gamma.dim(0).unwrap();
    let flat = x.transpose(0, 1).unwrap().flatten_from(1).unwrap();
    let mean = flat.mean(1).unwrap();
    let var = flat.broadcast_sub(&mean.unsqueeze(1).unwrap()).unwrap().sqr().unwrap().mean(1).unwrap();
    let scale = (gamma / (var + 1e-5).unwrap().sqrt().unwrap()).unwrap();
    let shift = (beta - (&mean * &scale).unwrap()).unwrap();
    x.broadcast_mul(&scale.reshape((1, c, 1, 1)).unwrap()).unwrap().broadcast_add(&shift.reshape((1, c, 1, 1)).unwrap()).unwrap()
}

#[test]
fn fused_batch_norm_matches_the_composed_formula() {
    let x = Var::from_tensor(&(random(&[4, 3, 5, 5], 30) * 3.0).unwrap()).unwrap();
    let g = Var::from_tensor(&random(&[3], 31)).unwrap();
    let b = Var::from_tensor(&random(&[3], 32)).unwrap();
    let (ours, mean, var) = batch_norm_train(&x, &g, &b, 1e-5).unwrap();
    let theirs = batch_norm_reference(&x, &g, &b);
    close(&ours, &theirs, 1e-4);
    let flat = x.transpose(0, 1).unwrap().flatten_from(1).unwrap();
    close(&Tensor::new(mean.as_slice(), &Device::Cpu).unwrap(), &flat.mean(1).unwrap(), 1e-5);
    assert_eq!(var.len(), 3);
    let g1 = project(&ours, 33).backward().unwrap();
    let g2 = project(&theirs, 33).backward().unwrap();
    for v in [&x, &g, &b] {
        close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-3);
    }
    let (gt, bt) = (random(&[2], 34), random(&[2], 35));
    finite_difference_check(&random(&[3, 2, 2, 2], 36), |x| project(&batch_norm_train(x, &gt, &bt, 1e-5).unwrap().0, 37));
}
