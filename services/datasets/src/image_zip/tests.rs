use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;

use super::*;

fn png(w: u32, h: u32, shade: u8) -> Vec<u8> {
    let img = image::GrayImage::from_pixel(w, h, image::Luma([shade]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, SimpleFileOptions::default()).unwrap();
        } else {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

fn check(bytes: Vec<u8>) -> Report<ImageStats> {
    validate_image_zip(Cursor::new(bytes), &Limits::default())
}

fn codes(r: &Report<ImageStats>) -> Vec<&'static str> {
    r.errors.first().iter().map(|p| p.code.as_str()).collect()
}

fn two_classes() -> Vec<(&'static str, Vec<u8>)> {
    vec![("cats/1.png", png(8, 8, 1)), ("cats/2.png", png(8, 8, 2)), ("dogs/1.png", png(16, 8, 3)), ("dogs/2.jpg", jpeg(40, 30))]
}

#[test]
fn a_valid_image_folder_has_stats() {
    let r = check(zip_of(&two_classes()));
    assert!(r.is_valid(), "{:?}", r.errors);
    assert_eq!(r.stats.images, 4);
    assert_eq!(r.stats.classes.get("cats"), Some(&2));
    assert_eq!(r.stats.formats.get("jpeg"), Some(&1));
    assert_eq!(r.stats.size_histogram.get("≤64"), Some(&1));
    assert!(r.stats.splits.is_empty());
}

#[test]
fn split_folders_are_kept() {
    let r = check(zip_of(&[
        ("train/cats/1.png", png(8, 8, 1)),
        ("train/dogs/1.png", png(8, 8, 2)),
        ("val/cats/2.png", png(8, 8, 3)),
        ("val/dogs/2.png", png(8, 8, 4)),
    ]));
    assert!(r.is_valid(), "{:?}", r.errors);
    assert_eq!(r.stats.splits["train"].len(), 2);
    assert_eq!(r.stats.splits["val"]["cats"], 1);
    let mixed = check(zip_of(&[("train/cats/1.png", png(8, 8, 1)), ("dogs/1.png", png(8, 8, 2))]));
    assert!(codes(&mixed).contains(&"mixed_layout"));
}

#[test]
fn zip_slip_in_every_spelling_is_refused() {
    for name in [
        "../evil.png",
        "/etc/evil.png",
        "cats/../../evil.png",
        "..\\evil.png",
        "C:\\win\\evil.png",
        "c:/evil.png",
        "cats/..././x.png",
        "cats/./x.png",
        "CON/x.png",
        "cats/lpt1.png",
    ] {
        let mut entries = two_classes();
        entries.push((name, png(8, 8, 9)));
        let r = check(zip_of(&entries));
        assert_eq!(codes(&r), ["unsafe_path"], "{name}: {:?}", r.errors);
    }
}

#[test]
fn links_are_refused() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in two_classes() {
        w.start_file(name, SimpleFileOptions::default()).unwrap();
        w.write_all(&data).unwrap();
    }
    w.add_symlink("cats/link.png", "/etc/passwd", SimpleFileOptions::default()).unwrap();
    let r = check(w.finish().unwrap().into_inner());
    assert_eq!(codes(&r), ["symlink"]);
}

#[test]
fn bombs_are_stopped_by_bytes_actually_read() {
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let mut entries = two_classes();
    entries.push(("cats/bomb.png", zeros));
    // Per entry: more than the cap is never read.
    let limits = Limits { max_entry_bytes: 1024 * 1024, ..Limits::default() };
    let r = validate_image_zip(Cursor::new(zip_of(&entries)), &limits);
    assert_eq!(codes(&r), ["entry_too_large"]);
    assert!(r.stats.bytes_decompressed <= 5 * 1024 * 1024, "read {} bytes", r.stats.bytes_decompressed);
    // Ratio: 8 MiB of zeros compress about a thousandfold.
    let r = check(zip_of(&entries));
    assert_eq!(codes(&r), ["compression_ratio"]);
    // Total: many modest entries together.
    let limits = Limits { max_total_bytes: 100, ..Limits::default() };
    let r = validate_image_zip(Cursor::new(zip_of(&two_classes())), &limits);
    assert!(codes(&r).contains(&"archive_too_large"), "{:?}", r.errors);
    // Entry count.
    let limits = Limits { max_zip_entries: 3, ..Limits::default() };
    assert_eq!(codes(&validate_image_zip(Cursor::new(zip_of(&two_classes())), &limits)), ["too_many_entries"]);
}

/// A PNG whose header claims `w`×`h` pixels (CRC fixed up), with 1×1 data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = png(1, 1, 0);
    // IHDR data starts after the 8-byte signature, 4-byte length and "IHDR".
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn image_header_bombs_are_refused_before_decoding() {
    let mut entries = two_classes();
    entries.push(("cats/huge.png", png_claiming(100_000, 100_000)));
    let r = check(zip_of(&entries));
    assert_eq!(codes(&r), ["image_too_large"], "{:?}", r.errors);
}

#[test]
fn files_that_are_not_what_their_extension_says() {
    for (name, data, code) in [
        ("cats/x.png", jpeg(8, 8), "extension_mismatch"),
        ("cats/x.jpg", png(8, 8, 1), "extension_mismatch"),
        ("cats/x.png", b"<html><script>alert(1)</script></html>".to_vec(), "not_an_image"),
        ("cats/x.png", png(8, 8, 1)[..40].to_vec(), "corrupt_image"),
        ("cats/x.gif", b"GIF89a".to_vec(), "unsupported_file"),
        ("readme.png", png(8, 8, 1), "not_in_class_folder"),
    ] {
        let mut entries = two_classes();
        entries.push((name, data));
        let r = check(zip_of(&entries));
        assert_eq!(codes(&r), [code], "{name}: {:?}", r.errors);
    }
}

#[test]
fn empty_and_single_classes() {
    let r = check(zip_of(&[("cats/1.png", png(8, 8, 1)), ("cats/2.png", png(8, 8, 2)), ("dogs/", Vec::new())]));
    assert_eq!(codes(&r), ["empty_class", "single_class"]);
    assert_eq!(codes(&check(zip_of(&[("cats/1.png", png(8, 8, 1))]))), ["single_class"]);
    assert_eq!(codes(&check(zip_of(&[("cats/", Vec::new())]))), ["empty_class"]);
    assert_eq!(codes(&check(b"not a zip at all".to_vec())), ["not_a_zip"]);
}

#[test]
fn duplicates_are_reported_and_system_files_skipped() {
    let mut entries = two_classes();
    entries.push(("dogs/copy.png", png(8, 8, 1)));
    entries.push(("__MACOSX/cats/._1.png", vec![0, 1, 2]));
    entries.push(("cats/.DS_Store", vec![0]));
    let r = check(zip_of(&entries));
    assert!(r.is_valid(), "{:?}", r.errors);
    assert_eq!(r.stats.duplicates, 1);
    let dup = r.warnings.first().iter().find(|w| w.code == "duplicate_image").unwrap();
    assert!(dup.location.contains("dogs/copy.png") && dup.message.contains("cats/1.png"), "{dup:?}");
    assert_eq!(r.warnings.first().iter().filter(|w| w.code == "ignored_file").count(), 2);
}
