//! The validators on real public datasets, fetched by `scripts/fixtures`
//! (which `scripts/test` runs first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use tenfold_datasets::{Limits, validate_chat_jsonl, validate_image_zip, validate_intents_csv, validate_interactions};

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("TENFOLD_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("tenfold/fixtures")
    });
    assert!(dir.join("mnist-5k.zip").exists(), "fixtures missing in {}: run scripts/fixtures", dir.display());
    dir
}

#[test]
fn mnist_5k_is_ready_with_ten_classes_of_500() {
    let file = File::open(fixtures().join("mnist-5k.zip")).unwrap();
    let r = validate_image_zip(BufReader::new(file), &Limits::default());
    assert!(r.is_valid(), "{:?}", r.errors);
    assert_eq!(r.stats.images, 5000);
    assert_eq!(r.stats.classes.len(), 10);
    assert!(r.stats.classes.values().all(|&n| n == 500), "{:?}", r.stats.classes);
    assert_eq!(r.stats.size_histogram.get("≤32"), Some(&5000), "28×28 digits");
}

#[test]
fn movielens_100k_has_943_users_1682_items_100000_interactions() {
    let file = File::open(fixtures().join("ml-100k.csv")).unwrap();
    let r = validate_interactions(BufReader::new(file), "ml-100k.csv", &Limits::default());
    assert!(r.is_valid(), "{:?}", r.errors);
    assert_eq!((r.stats.users, r.stats.items, r.stats.interactions), (943, 1682, 100_000));
    assert_eq!(r.stats.rating_histogram.keys().cloned().collect::<Vec<_>>(), ["1", "2", "3", "4", "5"]);
    assert!((r.stats.density - 100_000.0 / (943.0 * 1682.0)).abs() < 1e-12);
}

/// The corpus's categories, read straight from its YAML files in the wheel.
fn corpus_categories(dir: &std::path::Path) -> BTreeSet<String> {
    let wheel = std::fs::read_dir(dir.join("wheels"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("chatterbot_corpus"))
        .unwrap();
    let mut zip = zip::ZipArchive::new(File::open(wheel.path()).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        if !(name.starts_with("chatterbot_corpus/data/english/") && name.ends_with(".yml")) {
            continue;
        }
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        let mut lines = text.lines().skip_while(|l| !l.starts_with("categories:"));
        lines.next();
        out.insert(lines.next().unwrap().trim_start_matches("- ").trim().to_owned());
    }
    out
}

#[test]
fn the_chatterbot_corpus_gives_its_categories_as_intents() {
    let dir = fixtures();
    let expected = corpus_categories(&dir);
    assert_eq!(expected.len(), 21);
    let r = validate_chat_jsonl(BufReader::new(File::open(dir.join("chatterbot-en.jsonl")).unwrap()), &Limits::default());
    assert!(r.is_valid(), "{:?}", r.errors);
    assert_eq!(r.stats.intents.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(r.stats.conversations, r.stats.intents.values().sum::<u64>());
    let table = validate_intents_csv(File::open(dir.join("chatterbot-en-intents.csv")).unwrap(), &Limits::default());
    assert!(table.is_valid(), "{:?}", table.errors);
    assert_eq!(table.stats.intents.keys().cloned().collect::<BTreeSet<_>>(), expected);
}
