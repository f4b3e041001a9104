//! The recommendation benchmark's Tenfold side (`scripts/bench-recsys`
//! runs it beside the `implicit` library on the same split):
//!
//! 1. writes the RecBole split of the file it is given (`train.csv`,
//!    `valid.csv`, `test.csv`: dense user and item indices) for the
//!    reference to train and test on;
//! 2. trains BPR-MF with the family's defaults, recording after every epoch
//!    the cumulative training seconds (ranking excluded) and the test
//!    NDCG@10, into `tenfold.json`;
//! 3. times top-10 queries over a synthetic 100k-item catalogue (64
//!    factors, excludeSeen over 50 seen items) into `queries.json`, and
//!    writes the same factors (`catalogue_users.npy`-free: raw little-endian
//!    f32 files) for the reference to query.
//!
//! `cargo run -p tenfold-ml --example recsys_bench -- DATA.csv OUT_DIR [EPOCHS]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tenfold_ml::recsys::bpr::Bpr;
use tenfold_ml::recsys::factors::Factors;
use tenfold_ml::recsys::model::RecModel;
use tenfold_ml::recsys::popularity::Popularity;
use tenfold_ml::recsys::split::UserItems;
use tenfold_ml::recsys::train::{Prepared, RecConfig, Task};
use tenfold_ml::split::SplitSpec;

fn write_part(p: &Prepared, part: &[usize], path: &PathBuf) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "user,item").unwrap();
    for &i in part {
        let r = p.data.rows[i];
        writeln!(out, "{},{}", r.user, r.item).unwrap();
    }
}

fn write_f32(path: PathBuf, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = PathBuf::from(&args[1]);
    let out = PathBuf::from(&args[2]);
    let epochs: usize = args.get(3).map_or(100, |e| e.parse().unwrap());
    std::fs::create_dir_all(&out).unwrap();
    let p = Prepared::load(&data, SplitSpec::default(), 2020).unwrap();
    write_part(&p, &p.split.train, &out.join("train.csv"));
    write_part(&p, &p.split.val, &out.join("valid.csv"));
    write_part(&p, &p.split.test, &out.join("test.csv"));

    // Training, as the family trains (its defaults), timed per epoch; and
    // with uniform negatives (one draw), as the reference samples them.
    for (candidates, file) in [(RecConfig::default().candidates, "tenfold.json"), (1, "tenfold_uniform.json")] {
        let cfg = RecConfig { candidates, ..RecConfig::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut f = Factors::normal(p.data.n_users(), p.data.n_items(), cfg.dim, cfg.init_std, &mut rng).unwrap();
        let pairs = p.split.train.iter().map(|&i| (p.data.rows[i].user, p.data.rows[i].item)).collect();
        let mut bpr = Bpr::new(&f, pairs, cfg.batch_size, cfg.learning_rate, cfg.l2, cfg.negatives, cfg.candidates);
        let mut seconds = 0f64;
        let mut curve = Vec::new();
        for epoch in 1..=epochs {
            let start = Instant::now();
            bpr.epoch(&mut f, &p.train, &mut rng);
            seconds += start.elapsed().as_secs_f64();
            let ndcg = p.test_ranking(&f).unwrap().ndcg10();
            curve.push(json!({ "epoch": epoch, "seconds": seconds, "ndcg@10": ndcg }));
        }
        let best = curve.iter().map(|c| c["ndcg@10"].as_f64().unwrap()).fold(0.0, f64::max);
        println!(
            "tenfold bpr-mf ({candidates} negative draws): best test NDCG@10 {best:.4} in {epochs} epochs, {seconds:.2} s of training"
        );
        let config =
            json!({ "dim": cfg.dim, "lr": cfg.learning_rate, "batch": cfg.batch_size, "candidates": cfg.candidates, "threads": 1 });
        std::fs::write(out.join(file), serde_json::to_vec_pretty(&json!({ "config": config, "curve": curve })).unwrap()).unwrap();
    }

    // Top-10 over 100k items.
    let (users, items, dim, seen) = (1_000usize, 100_000usize, 64usize, 50usize);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut catalogue = Factors::normal(users, items, dim, 0.1, &mut rng).unwrap();
    catalogue.item_bias = vec![0.0; items];
    let lists: Vec<Vec<u32>> = (0..users).map(|_| (0..seen).map(|_| rng.random_range(0..items as u32)).collect()).collect();
    let seen_items = UserItems::from_lists(lists);
    write_f32(out.join("catalogue_users.f32"), &catalogue.users);
    write_f32(out.join("catalogue_items.f32"), &catalogue.items);
    let mut seen_csv = String::from("user,item\n");
    for u in 0..users {
        for i in seen_items.of(u) {
            seen_csv.push_str(&format!("{u},{i}\n"));
        }
    }
    std::fs::write(out.join("catalogue_seen.csv"), seen_csv).unwrap();
    let model = RecModel {
        architecture: "bpr-mf".into(),
        task: Task::Implicit,
        users: (0..users).map(|u| u.to_string()).collect(),
        items: (0..items).map(|i| i.to_string()).collect(),
        factors: catalogue,
        popularity: Popularity { counts: vec![0; items] },
        seen: seen_items,
        towers: None,
        index: Default::default(),
    }
    .indexed();
    let ids: Vec<String> = (0..users).map(|u| u.to_string()).collect();
    let _ = model.recommend(&ids[0], 10, true, None).unwrap();
    let start = Instant::now();
    let mut answered = 0usize;
    while start.elapsed().as_secs_f64() < 3.0 {
        for id in &ids[..100] {
            let r = model.recommend(id, 10, true, None).unwrap();
            answered += r.item_list.len() / 10;
        }
    }
    let qps = answered as f64 / start.elapsed().as_secs_f64();
    println!("tenfold top-10 over {items} items: {qps:.0} queries/s (one thread)");
    std::fs::write(
        out.join("queries.json"),
        serde_json::to_vec_pretty(&json!({ "items": items, "dim": dim, "queries_per_s": qps, "threads": 1 })).unwrap(),
    )
    .unwrap();
}
