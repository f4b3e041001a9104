use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer as _;

use super::*;

fn param(values: &[f32]) -> Var {
    Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap()
}

/// A loss whose gradient changes with the parameters: Σ (p·c − 1)².
fn grads_of(p: &Var) -> GradStore {
    let c = Tensor::new(&[0.5f32, -1.5, 2.0, 3.0], &Device::Cpu).unwrap();
    ((p.as_tensor() * &c).unwrap() - 1.0).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap()
}

fn values(v: &Var) -> Vec<f32> {
    v.as_tensor().to_vec1().unwrap()
}

fn assert_close(a: &[f32], b: &[f32]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

/// The same optimizer with tensor state, as it runs on a GPU.
fn on_tensor_path(config: OptimizerConfig, p: &Var) -> Optimizer {
    let mut opt = Optimizer::new(config, vec![("p".into(), p.clone())]).unwrap();
    opt.slots = vec![Slot::Device { m: p.zeros_like().unwrap(), v: p.zeros_like().unwrap() }];
    opt
}

#[test]
fn fused_adamw_follows_candle_nn_adamw_over_many_steps() {
    let start = [0.3f32, -0.2, 0.9, -1.1];
    let (ours, theirs, tensor_path) = (param(&start), param(&start), param(&start));
    let config = OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
    let mut a = Optimizer::new(config, vec![("p".into(), ours.clone())]).unwrap();
    let mut c = on_tensor_path(config, &tensor_path);
    let params = candle_nn::ParamsAdamW { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
    let mut b = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
    for _ in 0..25 {
        a.step(&grads_of(&ours), 0.05, 1.0).unwrap();
        c.step(&grads_of(&tensor_path), 0.05, 1.0).unwrap();
        b.step(&grads_of(&theirs)).unwrap();
    }
    assert_close(&values(&ours), &values(&theirs));
    assert_close(&values(&tensor_path), &values(&theirs));
    assert_ne!(values(&ours), start.to_vec(), "the parameters must have moved");
}

#[test]
fn sgd_momentum_follows_the_pytorch_recurrence() {
    let start = [0.3f32, -0.2, 0.9, -1.1];
    for nesterov in [false, true] {
        let config = OptimizerConfig::Sgd { momentum: 0.9, nesterov, weight_decay: 0.1 };
        let (p, q) = (param(&start), param(&start));
        let mut opt = Optimizer::new(config, vec![("p".into(), p.clone())]).unwrap();
        let mut tensor_opt = on_tensor_path(config, &q);
        // By hand: buf = g (first), then 0.9·buf + g.
        let mut expect = start.to_vec();
        let mut buf = [0f32; 4];
        let c = [0.5f32, -1.5, 2.0, 3.0];
        for step in 0..10 {
            let grads = grads_of(&p);
            opt.step(&grads, 0.01, 1.0).unwrap();
            tensor_opt.step(&grads_of(&q), 0.01, 1.0).unwrap();
            for i in 0..4 {
                let g = 2.0 * (expect[i] * c[i] - 1.0) * c[i] + 0.1 * expect[i];
                buf[i] = if step == 0 { g } else { 0.9 * buf[i] + g };
                expect[i] -= 0.01 * if nesterov { g + 0.9 * buf[i] } else { buf[i] };
            }
        }
        assert_close(&values(&p), &expect);
        assert_close(&values(&q), &expect);
    }
}

#[test]
fn gradient_scale_and_norm_clip_the_update() {
    let p = param(&[1.0, 1.0, 1.0, 1.0]);
    let grads = grads_of(&p);
    let norm = grad_norm(&[("p".into(), p.clone())], &grads).unwrap();
    // g = 2(p·c − 1)·c = [-0.5, 7.5, 4, 12]
    let expect = (0.25f64 + 7.5f64.powi(2) + 16.0 + 144.0).sqrt();
    assert!((norm - expect).abs() < 1e-4, "{norm} vs {expect}");
    // Plain SGD with scale s moves each value by lr·s·g.
    let mut opt = Optimizer::new(OptimizerConfig::sgd(0.0), vec![("p".into(), p.clone())]).unwrap();
    opt.step(&grads, 0.1, 0.5).unwrap();
    assert_close(&values(&p), &[1.025, 0.625, 0.8, 0.4]);
}

#[test]
fn state_round_trips_through_a_checkpoint() {
    let p = param(&[0.1, 0.2, 0.3, 0.4]);
    let mut opt = Optimizer::new(OptimizerConfig::adamw(), vec![("p".into(), p.clone())]).unwrap();
    for _ in 0..3 {
        opt.step(&grads_of(&p), 0.01, 1.0).unwrap();
    }
    let saved = opt.state().unwrap();
    let q = param(&values(&p));
    let mut restored = Optimizer::new(OptimizerConfig::adamw(), vec![("p".into(), q.clone())]).unwrap();
    restored.load_state(&saved).unwrap();
    assert_eq!(restored.steps_taken(), 3);
    opt.step(&grads_of(&p), 0.01, 1.0).unwrap();
    restored.step(&grads_of(&q), 0.01, 1.0).unwrap();
    assert_eq!(values(&p), values(&q));
}

#[test]
fn bad_hyperparameters_are_named() {
    let err = OptimizerConfig::AdamW { beta1: 1.5, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }.validate().unwrap_err();
    assert!(err.to_string().starts_with("beta1:"), "{err}");
    assert!(OptimizerConfig::parse("rmsprop").unwrap_err().to_string().contains("use adamw or sgd"));
}
