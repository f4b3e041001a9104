//! The engine's contracts on small synthetic data: gradients reach every
//! trainable tensor of every architecture, runs are deterministic, resume
//! continues bit-for-bit, cancellation stops within a step, fine-tuning
//! keeps or replaces the right parts, and bad inputs are refused clearly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Device, Tensor};
use common::*;
use tenfold_ml::MlError;
use tenfold_ml::image::arch::{self, ARCHITECTURES, InputShape};
use tenfold_ml::image::{LoadedModel, Teacher};
use tenfold_ml::params::Params;
use tenfold_ml::train::{Control, Event};

#[test]
fn every_trainable_tensor_of_every_architecture_gets_a_gradient() {
    let shape = InputShape { channels: 3, height: 16, width: 16 };
    for name in ARCHITECTURES {
        let mut params = Params::new(7, &Device::Cpu);
        let model = arch::build(name, shape, 4, &mut params).unwrap();
        let xs = Tensor::randn(0f32, 1f32, (6, 3, 16, 16), &Device::Cpu).unwrap();
        let labels = Tensor::new(&[0u32, 1, 2, 3, 0, 1], &Device::Cpu).unwrap();
        let loss = candle_nn::loss::cross_entropy(&model.forward(&xs, true).unwrap(), &labels).unwrap();
        let grads = loss.backward().unwrap();
        let trainable = params.trainable();
        assert!(!trainable.is_empty());
        for (pname, var) in trainable {
            let g = grads.get(&var).unwrap_or_else(|| panic!("{name}: {pname} received no gradient"));
            let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm > 0.0 && norm.is_finite(), "{name}: {pname} has gradient norm {norm}");
        }
    }
}

#[test]
fn parameter_counts_are_what_the_architectures_promise() {
    let mnist = InputShape { channels: 1, height: 28, width: 28 };
    let count = |name| {
        let mut p = Params::new(0, &Device::Cpu);
        arch::build(name, mnist, 10, &mut p).unwrap();
        p.count()
    };
    // Conv 32·9+32, Dense 5408·128+128, Dense 128·10+10: Keras' summary.
    assert_eq!(count("cnn-small"), 320 + 692_352 + 1_290);
    assert_eq!(count("cnn-tiny"), 80 + 1_168 + 4_010);
    assert!((70_000..90_000).contains(&count("resnet-s")), "{}", count("resnet-s"));
}

#[test]
fn same_seed_same_run_and_resume_continues_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bars.zip");
    bars_zip(&data, &["a", "b", "c"], 20, 12, 1);
    let straight = |out: &str| {
        let req = request(&data, &dir.path().join(out), "resnet-s", config(3, 0.01, 5));
        run(&req).unwrap()
    };
    let (r1, r2) = (straight("one"), straight("two"));
    let losses = |r: &tenfold_ml::image::Report| r.training.history.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&r1), losses(&r2));
    let weights = |out: &str| std::fs::read(dir.path().join(out).join("model.safetensors")).unwrap();
    assert_eq!(weights("one"), weights("two"));

    // Two epochs, then a new process-like run resumes to three.
    let out = dir.path().join("resumed");
    run(&request(&data, &out, "resnet-s", config(2, 0.01, 5))).unwrap();
    let mut quiet = |_: Event<'_>| {};
    let req = request(&data, &out, "resnet-s", config(3, 0.01, 5));
    let resumed =
        tenfold_ml::image::train(&req, Control { on_event: &mut quiet, cancel: None, checkpoint_dir: None, resume: true }).unwrap();
    assert_eq!(resumed.training.resumed_from_epoch, Some(2));
    assert_eq!(losses(&resumed), losses(&r1));
    assert_eq!(weights("resumed"), weights("one"));
}

#[test]
fn cancellation_stops_within_a_step_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bars.zip");
    bars_zip(&data, &["a", "b"], 40, 12, 2);
    let out = dir.path().join("model");
    let cancel = AtomicBool::new(false);
    let mut steps_after_epoch_one = 0;
    let mut on_event = |e: Event<'_>| match e {
        Event::Step(s) if s.epoch == 2 => {
            steps_after_epoch_one += 1;
            cancel.store(true, Ordering::Relaxed);
        }
        _ => {}
    };
    let req = request(&data, &out, "cnn-small", config(5, 0.001, 1));
    let err =
        tenfold_ml::image::train(&req, Control { on_event: &mut on_event, cancel: Some(&cancel), checkpoint_dir: None, resume: false })
            .unwrap_err();
    assert!(matches!(err, MlError::Cancelled), "{err}");
    assert_eq!(steps_after_epoch_one, 1, "the flag is honoured before the next step");
    let latest = std::fs::read_to_string(out.join("checkpoints/latest")).unwrap();
    assert_eq!(latest.trim(), "epoch-0001");
}

#[test]
fn fine_tuning_reuses_the_backbone_and_replaces_a_head_of_other_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (three, four) = (dir.path().join("three.zip"), dir.path().join("four.zip"));
    bars_zip(&three, &["a", "b", "c"], 20, 16, 3);
    bars_zip(&four, &["a", "b", "c", "d"], 20, 16, 4);
    let base_dir = dir.path().join("base");
    run(&request(&three, &base_dir, "cnn-small", config(2, 0.001, 1))).unwrap();

    let tuned_dir = dir.path().join("tuned");
    let mut req = request(&four, &tuned_dir, "cnn-small", config(2, 0.001, 1));
    req.base = Some(base_dir.clone());
    req.freeze_backbone = true;
    let report = run(&req).unwrap();
    assert_eq!(report.task, "fine_tune");
    let (base, tuned) = (LoadedModel::load(&base_dir, &Device::Cpu).unwrap(), LoadedModel::load(&tuned_dir, &Device::Cpu).unwrap());
    let (b, t) = (base.params.tensors(), tuned.params.tensors());
    let same = |n: &str| (&b[n] - &t[n]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() == 0.0;
    assert!(same("backbone.conv1.weight") && same("backbone.fc1.weight"), "a frozen backbone does not move");
    assert_eq!(t["head.weight"].dims(), &[4, 128]);
    assert_eq!(tuned.card.classes, ["a", "b", "c", "d"]);

    // Another architecture than the base's is refused with the fix.
    let mut req = request(&four, &dir.path().join("x"), "resnet-s", config(1, 0.001, 1));
    req.base = Some(base_dir);
    let err = run(&req).unwrap_err().to_string();
    assert!(err.contains("differs from the base model's architecture cnn-small"), "{err}");
}

#[test]
fn bad_inputs_are_refused_with_what_to_fix_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bars.zip");
    bars_zip(&data, &["a", "b", "c"], 10, 12, 5);
    let out = dir.path().join("out");
    let expect = |req: &tenfold_ml::image::TrainRequest, needle: &str| {
        let err = run(req).unwrap_err().to_string();
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
        assert!(!req.out.join("model.json").exists());
    };

    // A ZIP that is not a dataset: files outside class folders, or not a ZIP.
    let flat = dir.path().join("flat.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&flat).unwrap());
        zip.start_file("notes.txt", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut zip, b"hello").unwrap();
        zip.finish().unwrap();
    }
    expect(&request(&flat, &out, "cnn-small", config(1, 0.001, 1)), "not a usable image dataset");
    let garbage = dir.path().join("garbage.zip");
    std::fs::write(&garbage, b"definitely not a zip").unwrap();
    expect(&request(&garbage, &out, "cnn-small", config(1, 0.001, 1)), "not a readable ZIP");

    expect(
        &request(&data, &out, "vgg-19", config(1, 0.001, 1)),
        "unknown architecture 'vgg-19' for the image family; choose one of: cnn-small",
    );
    for lr in [0.0, -0.1, f64::NAN] {
        expect(&request(&data, &out, "cnn-small", config(1, lr, 1)), "not a positive number");
    }

    // A model directory of another family.
    let model = dir.path().join("model");
    run(&request(&data, &model, "cnn-tiny", config(1, 0.001, 1))).unwrap();
    let chat = dir.path().join("chat-model");
    std::fs::create_dir(&chat).unwrap();
    std::fs::copy(model.join("model.safetensors"), chat.join("model.safetensors")).unwrap();
    let card = std::fs::read_to_string(model.join("model.json")).unwrap().replace("\"family\": \"image\"", "\"family\": \"chat\"");
    std::fs::write(chat.join("model.json"), card).unwrap();
    let mut req = request(&data, &out, "cnn-tiny", config(1, 0.001, 1));
    req.base = Some(chat.clone());
    expect(&req, "holds a chat model");

    // A teacher trained on other classes.
    let other = dir.path().join("other.zip");
    bars_zip(&other, &["x", "y", "z"], 10, 12, 6);
    let mut req = request(&other, &out, "cnn-tiny", config(1, 0.001, 1));
    req.teacher = Some(Teacher { dir: model.clone(), alpha: 0.5, temperature: 4.0 });
    expect(&req, "the teacher was trained on the classes [a, b, c] but the data has [x, y, z]");

    // Weights that do not fit the card.
    std::fs::copy(model.join("model.safetensors"), dir.path().join("keep")).unwrap();
    std::fs::write(model.join("model.safetensors"), b"{}").unwrap();
    let err = LoadedModel::load(&model, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("not a readable safetensors file"), "{err}");
}
