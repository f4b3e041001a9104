//! Trains recommenders on an interactions file with the RecBole protocol
//! and prints the test metrics (a quick look while tuning defaults):
//! `cargo run --release -p tenfold-ml --example recsys_probe -- FILE ARCH SEEDS [key=value ...]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::PathBuf;

use tenfold_ml::recsys::train::{Prepared, RecConfig, train_factors};
use tenfold_ml::split::SplitSpec;
use tenfold_ml::train::{Control, Event};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(&args[1]);
    let arch = args[2].clone();
    let seeds: u64 = args[3].parse().unwrap();
    let mut cfg = RecConfig::default();
    for kv in &args[4..] {
        let (k, v) = kv.split_once('=').unwrap();
        match k {
            "dim" => cfg.dim = v.parse().unwrap(),
            "epochs" => cfg.epochs = v.parse().unwrap(),
            "batch" => cfg.batch_size = v.parse().unwrap(),
            "lr" => cfg.learning_rate = v.parse().unwrap(),
            "l2" => cfg.l2 = v.parse().unwrap(),
            "std" => cfg.init_std = v.parse().unwrap(),
            "candidates" => cfg.candidates = v.parse().unwrap(),
            "negatives" => cfg.negatives = v.parse().unwrap(),
            "patience" => cfg.patience = Some(v.parse().unwrap()),
            _ => panic!("unknown {k}"),
        }
    }
    let mut sums = [0f64; 5];
    for seed in 0..seeds {
        let p = Prepared::load(&path, SplitSpec::default(), 2020 + seed).unwrap();
        if seed == 0 {
            let pop = p.test_ranking(&p.popularity).unwrap();
            println!("popularity ndcg@10 {:.4}", pop.ndcg10());
        }
        let c = RecConfig { seed: 42 + seed, ..cfg.clone() };
        let mut on_event = |e: Event<'_>| {
            if let Event::Epoch(r) = e
                && r.epoch % 25 == 0
            {
                println!("  epoch {} loss {:.4} val {:?}", r.epoch, r.train_loss, r.val);
            }
        };
        let start = std::time::Instant::now();
        let fitted =
            train_factors(&p, &arch, &c, Control { on_event: &mut on_event, cancel: None, checkpoint_dir: None, resume: false }).unwrap();
        let (f, out) = (fitted.factors, fitted.outcome);
        if arch == "mf-explicit" {
            let t: Vec<(u32, u32, f32)> = p.split.test.iter().map(|&i| p.data.rows[i]).map(|r| (r.user, r.item, r.rating)).collect();
            let e = tenfold_ml::recsys::explicit::errors(|u, i| f.predict(u, i), &t);
            println!("test rmse {:.4} mae {:.4}", e.rmse, e.mae);
        }
        let r = p.test_ranking(&f).unwrap();
        let a = r.at(10).unwrap();
        println!(
            "seed {seed}: best epoch {:?} of {} in {:.1}s — recall {:.4} ndcg {:.4} mrr {:.4} hit {:.4} precision {:.4}",
            out.best_epoch,
            out.history.len(),
            start.elapsed().as_secs_f64(),
            a.recall,
            a.ndcg,
            a.mrr,
            a.hit,
            a.precision
        );
        for (s, v) in sums.iter_mut().zip([a.recall, a.ndcg, a.mrr, a.hit, a.precision]) {
            *s += v / seeds as f64;
        }
    }
    println!(
        "mean: recall {:.4} ndcg {:.4} mrr {:.4} hit {:.4} precision {:.4}  (RecBole BPR: 0.2523 0.2920 0.4855 0.7953 0.1962)",
        sums[0], sums[1], sums[2], sums[3], sums[4]
    );
}
