//! Validation throughput and memory peak, at growing upload sizes.
//!
//!     scripts/fixtures && cargo run --release -p tenfold-datasets --example validation_bench
//!
//! Each measurement runs in a child process of its own, so the peak
//! resident memory it reports (Linux `VmHWM`) belongs to that validation
//! alone. Inputs are the real fixtures, scaled up: the MNIST-5k ZIP with its
//! entries copied ×1/×2/×4 under new names (raw copies: no recompression),
//! and MovieLens-100k with its rows repeated ×1/×4/×16.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tenfold_datasets::{Limits, validate_image_zip, validate_interactions};

fn fixtures() -> PathBuf {
    let home = std::env::var("HOME").unwrap();
    std::env::var_os("TENFOLD_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(home).join(".cache/tenfold/fixtures"))
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn scaled_zip(source: &Path, times: usize, out: &Path) {
    let mut input = zip::ZipArchive::new(File::open(source).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(BufWriter::new(File::create(out).unwrap()));
    for copy in 0..times {
        for i in 0..input.len() {
            let entry = input.by_index_raw(i).unwrap();
            let name = entry.name().unwrap().into_owned();
            let (class, file) = name.split_once('/').unwrap();
            w.raw_copy_file_rename(entry, format!("{class}/c{copy}-{file}")).unwrap();
        }
    }
    w.finish().unwrap();
}

/// The first `n` digits of the fixture, resized to `side`×`side` with
/// noise added (so PNG cannot compress the upscaled pixels away).
fn resized_zip(source: &Path, n: usize, side: u32, out: &Path) {
    use std::io::Read;
    let mut input = zip::ZipArchive::new(File::open(source).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(BufWriter::new(File::create(out).unwrap()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n.min(input.len()) {
        let mut entry = input.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let mut img = image::load_from_memory(&bytes).unwrap().resize_exact(side, side, image::imageops::FilterType::Triangle).to_luma8();
        for (k, p) in img.pixels_mut().enumerate() {
            p.0[0] = p.0[0].wrapping_add(((k as u32).wrapping_mul(2654435761) >> 28) as u8);
        }
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        w.start_file(name, options).unwrap();
        w.write_all(&png.into_inner()).unwrap();
    }
    w.finish().unwrap();
}

fn scaled_csv(source: &Path, times: usize, out: &Path) {
    let text = std::fs::read_to_string(source).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let mut w = BufWriter::new(File::create(out).unwrap());
    writeln!(w, "{header}").unwrap();
    for _ in 0..times {
        w.write_all(rows.as_bytes()).unwrap();
    }
}

/// In the child: validate one file, print `items seconds peak_kib`.
fn child(kind: &str, path: &Path) {
    let started = Instant::now();
    let items = match kind {
        "zip" => validate_image_zip(BufReader::new(File::open(path).unwrap()), &Limits::default()).stats.images,
        _ => validate_interactions(BufReader::new(File::open(path).unwrap()), "x.csv", &Limits::default()).stats.interactions,
    };
    println!("{items} {} {}", started.elapsed().as_secs_f64(), peak_rss_kib());
}

fn measure(kind: &str, path: &Path) -> (u64, f64, u64) {
    let out = Command::new(std::env::current_exe().unwrap()).args(["--child", kind, path.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    (parts.next().unwrap().parse().unwrap(), parts.next().unwrap().parse().unwrap(), parts.next().unwrap().parse().unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2], Path::new(&args[3]));
    }
    let dir = fixtures();
    let work = std::env::temp_dir().join("tenfold-validation-bench");
    std::fs::create_dir_all(&work).unwrap();
    println!("| input | size (MB) | items | seconds | items/s | MB/s | peak RSS (MiB) |");
    println!("|---|---|---|---|---|---|---|");
    for times in [1, 2, 4] {
        let path = work.join(format!("mnist-x{times}.zip"));
        scaled_zip(&dir.join("mnist-5k.zip"), times, &path);
        report(&format!("MNIST ZIP ×{times}"), "zip", &path);
    }
    // Same entry count, bytes ×64: memory must stay flat.
    for side in [28u32, 224] {
        let path = work.join(format!("mnist-1000-{side}px.zip"));
        resized_zip(&dir.join("mnist-5k.zip"), 1000, side, &path);
        report(&format!("1000 digits at {side}×{side}"), "zip", &path);
    }
    for times in [1, 4, 16] {
        let path = work.join(format!("ml-100k-x{times}.csv"));
        scaled_csv(&dir.join("ml-100k.csv"), times, &path);
        report(&format!("MovieLens CSV ×{times}"), "csv", &path);
    }
    std::fs::remove_dir_all(work).unwrap();
}

fn report(label: &str, kind: &str, path: &Path) {
    let mb = std::fs::metadata(path).unwrap().len() as f64 / 1e6;
    let (items, secs, peak) = measure(kind, path);
    println!("| {label} | {mb:.1} | {items} | {secs:.2} | {:.0} | {:.1} | {:.1} |", items as f64 / secs, mb / secs, peak as f64 / 1024.0);
}
