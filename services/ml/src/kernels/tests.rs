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

#[test]
fn bias_relu_matches_the_unfused_ops() {
    for shape in [&[4usize, 3][..], &[2, 3, 4, 5]] {
        let x = Var::from_tensor(&random(shape, 6)).unwrap();
        let b = Var::from_tensor(&random(&[3], 7)).unwrap();
        let ours = bias_relu(&x, &b).unwrap();
        let mut bshape = vec![1; shape.len()];
        bshape[1] = 3;
        let theirs = x.broadcast_add(&b.reshape(bshape).unwrap()).unwrap().relu().unwrap();
        close(&ours, &theirs, 0.0);
        let g1 = project(&ours, 8).backward().unwrap();
        let g2 = project(&theirs, 8).backward().unwrap();
        close(g1.get(&x).unwrap(), g2.get(&x).unwrap(), 1e-6);
        close(g1.get(&b).unwrap(), g2.get(&b).unwrap(), 1e-5);
    }
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
    let b = Tensor::new(&[0.0125f32, -0.0125, 0.0375], &Device::Cpu).unwrap();
    finite_difference_check(&spread(&[2, 3, 2, 2], 16), |x| project(&bias_relu(x, &b).unwrap(), 17));
}
