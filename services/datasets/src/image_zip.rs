//! Image classification: a ZIP in ImageFolder layout, `class/file.png`,
//! optionally under `train/`, `val/`, `test/` (then those splits are kept).
//!
//! Every hostile archive of SECURITY-TESTS §7 is refused: path traversal in
//! any spelling, links and special files, bombs (bytes actually
//! decompressed are capped per entry and in total, and compared with the
//! compressed size), image header bombs (dimensions read from the header
//! before decoding), and files that are not what their extension says.
//! Nothing is ever extracted to disk: entries are read into memory one at a
//! time, within the caps.

use crate::ProblemCode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{Cursor, Read, Seek};

use image::{ImageFormat, ImageReader};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::splits::{DEFAULT_SEED, Split, plan};
use crate::{Limits, Problems, Report};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageStats {
    pub images: u64,
    /// Images per class, all splits together.
    pub classes: BTreeMap<String, u64>,
    /// Split → class → images, when the archive has split folders.
    pub splits: BTreeMap<String, BTreeMap<String, u64>>,
    pub formats: BTreeMap<String, u64>,
    /// Longest side of each image, bucketed (`≤32`, `≤64`, … `>2048`).
    pub size_histogram: BTreeMap<String, u64>,
    pub duplicates: u64,
    pub bytes_decompressed: u64,
}

const SPLITS: [&str; 3] = ["train", "val", "test"];
const IGNORED: [&str; 3] = ["__MACOSX", ".DS_Store", "Thumbs.db"];
const FIX_LAYOUT: &str = "put each image in a folder named after its class, e.g. cats/001.png (optionally under train/, val/ or test/)";
const FIX_PATH: &str = "use plain relative names made of letters, digits, '-', '_' and '.', without '..', '\\', ':' or a leading '/'";
const FIX_BOMB: &str = "upload the images themselves; archives that expand far beyond their size are refused";
const FIX_IMAGE: &str = "export the file again as a real PNG or JPEG whose extension matches its content";

fn size_bucket(side: u32) -> &'static str {
    match side {
        0..=32 => "≤32",
        33..=64 => "≤64",
        65..=128 => "≤128",
        129..=256 => "≤256",
        257..=512 => "≤512",
        513..=1024 => "≤1024",
        1025..=2048 => "≤2048",
        _ => ">2048",
    }
}

/// Why a stored name is unsafe, if it is. Names are checked as text: they
/// never become paths (zip's own `enclosed_name` accepts `..\x` on Linux).
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 1024 {
        return Some("the name is empty or longer than 1024 bytes");
    }
    if name.chars().any(char::is_control) {
        return Some("the name contains control characters");
    }
    if name.contains('\\') {
        return Some("the name contains a backslash");
    }
    if name.starts_with('/') {
        return Some("the name is an absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' || name.contains(':') {
        return Some("the name contains ':' (a drive letter or stream name)");
    }
    for part in name.trim_end_matches('/').split('/') {
        if part == ".." {
            return Some("the name climbs out of the archive with '..'");
        }
        if part.is_empty() || part == "." {
            return Some("the name has an empty or '.' component");
        }
        if part.len() > 255 {
            return Some("a component of the name is longer than 255 bytes");
        }
        let stem = part.split('.').next().unwrap_or("").to_ascii_uppercase();
        let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
            || (stem.len() == 4 && (stem.starts_with("COM") || stem.starts_with("LPT")) && stem.as_bytes()[3].is_ascii_digit());
        if reserved {
            return Some("a component of the name is a reserved device name");
        }
    }
    None
}

fn declared_format(name: &str) -> Option<ImageFormat> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some(ImageFormat::Png),
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        _ => None,
    }
}

/// Where an image of an archive that passed `validate_image_zip` belongs:
/// its split folder (if any) and class. `None` for folders, system files
/// the validator ignores, and anything that is not a .png/.jpg/.jpeg, so
/// the ML engine reads exactly the images the validator counted.
pub fn image_entry(name: &str) -> Option<(Option<Split>, &str)> {
    let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if name.ends_with('/') || name.split('/').any(|p| IGNORED.contains(&p)) || base.starts_with("._") {
        return None;
    }
    declared_format(name)?;
    let (split, class) = place(name)?;
    let split = split.map(|s| match s.to_ascii_lowercase().as_str() {
        "val" => Split::Val,
        "test" => Split::Test,
        _ => Split::Train,
    });
    Some((split, class))
}

/// Where an image sits: its split (if any) and class.
fn place(name: &str) -> Option<(Option<&str>, &str)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [first, class, _file, ..] if SPLITS.contains(&first.to_ascii_lowercase().as_str()) => Some((Some(first), class)),
        [class, _file, ..] => Some((None, class)),
        _ => None,
    }
}

struct Seen {
    digest_to_entry: HashMap<u64, usize>,
    duplicates: Vec<(usize, usize)>,
}

/// Validates an ImageFolder ZIP. Memory stays bounded by one entry (capped
/// by `max_entry_bytes`) plus 16 bytes per image for duplicate detection.
pub fn validate_image_zip<R: Read + Seek>(reader: R, limits: &Limits) -> Report<ImageStats> {
    let mut errors = Problems::default();
    let mut warnings = Problems::default();
    let mut stats = ImageStats::default();
    let mut archive = match zip::ZipArchive::new(reader) {
        Ok(a) => a,
        Err(e) => {
            errors.push(
                "archive",
                ProblemCode::NotAZip,
                format!("the file is not a readable ZIP archive ({e})"),
                "upload a .zip of class folders",
            );
            return Report { stats, errors, warnings, preview: serde_json::Value::Null, splits: None };
        }
    };
    if archive.len() > limits.max_zip_entries {
        errors.push(
            "archive",
            ProblemCode::TooManyEntries,
            format!("the archive has {} entries; at most {} are allowed", archive.len(), limits.max_zip_entries),
            "split the dataset into several uploads",
        );
        return Report { stats, errors, warnings, preview: serde_json::Value::Null, splits: None };
    }
    let mut class_dirs: BTreeSet<(Option<String>, String)> = BTreeSet::new();
    let mut layout_with_splits: Option<bool> = None;
    let mut seen = Seen { digest_to_entry: HashMap::new(), duplicates: Vec::new() };
    let mut thumbnails: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut buf = Vec::new();

    for index in 0..archive.len() {
        let mut entry = match archive.by_index(index) {
            Ok(e) => e,
            Err(e) => {
                errors.push(
                    format!("entry {}", index + 1),
                    ProblemCode::CorruptEntry,
                    format!("the entry cannot be read ({e})"),
                    "create the archive again",
                );
                continue;
            }
        };
        let Ok(name) = entry.name().map(|n| n.into_owned()) else {
            errors.push(format!("entry {}", index + 1), ProblemCode::NameNotUtf8, "the entry's name is not valid UTF-8", FIX_PATH);
            continue;
        };
        let at = format!("archive:{}", name.escape_debug());
        if let Some(why) = unsafe_name(&name) {
            errors.push(at, ProblemCode::UnsafePath, why, FIX_PATH);
            continue;
        }
        let file_type = entry.unix_mode().map(|m| m & 0o170000);
        if entry.is_symlink() || file_type == Some(0o120000) {
            errors.push(at, ProblemCode::Symlink, "the entry is a symbolic link", "replace links with the files themselves");
            continue;
        }
        if file_type.is_some_and(|t| t != 0 && t != 0o100000 && t != 0o040000) {
            errors.push(at, ProblemCode::SpecialFile, "the entry is a device, pipe or socket", "include only folders and image files");
            continue;
        }
        let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        if name.split('/').any(|p| IGNORED.contains(&p)) || base.starts_with("._") {
            warnings.push(at, ProblemCode::IgnoredFile, "system file skipped", "nothing to do; it is ignored");
            continue;
        }
        if entry.is_dir() {
            let parts: Vec<&str> = name.trim_end_matches('/').split('/').collect();
            match parts.as_slice() {
                [split, class] if SPLITS.contains(&split.to_ascii_lowercase().as_str()) => {
                    class_dirs.insert((Some((*split).to_owned()), (*class).to_owned()));
                }
                [class] if !SPLITS.contains(&class.to_ascii_lowercase().as_str()) => {
                    class_dirs.insert((None, (*class).to_owned()));
                }
                _ => {}
            }
            continue;
        }
        let Some((split, class)) = place(&name) else {
            errors.push(at, ProblemCode::NotInClassFolder, "the file is not inside a class folder", FIX_LAYOUT);
            continue;
        };
        let (split, class) = (split.map(str::to_owned), class.to_owned());
        let with_splits = split.is_some();
        if *layout_with_splits.get_or_insert(with_splits) != with_splits {
            errors.push(at, ProblemCode::MixedLayout, "some images are under train/val/test folders and some are not", FIX_LAYOUT);
            continue;
        }
        let Some(declared) = declared_format(&name) else {
            errors.push(at, ProblemCode::UnsupportedFile, "only .png, .jpg and .jpeg files are accepted", FIX_IMAGE);
            continue;
        };

        // Read at most one byte past the cap: declared sizes can lie.
        buf.clear();
        let compressed = entry.compressed_size().max(1);
        let read = (&mut entry).take(limits.max_entry_bytes + 1).read_to_end(&mut buf);
        if let Err(e) = read {
            errors.push(at, ProblemCode::CorruptEntry, format!("the entry cannot be decompressed ({e})"), "create the archive again");
            continue;
        }
        let len = buf.len() as u64;
        stats.bytes_decompressed += len;
        if len > limits.max_entry_bytes {
            errors.push(at, ProblemCode::EntryTooLarge, format!("the entry expands beyond {} bytes", limits.max_entry_bytes), FIX_BOMB);
            continue;
        }
        if len > 1024 * 1024 && len / compressed > limits.max_compression_ratio {
            errors.push(
                at,
                ProblemCode::CompressionRatio,
                format!("the entry expands {}× its compressed size", len / compressed),
                FIX_BOMB,
            );
            continue;
        }
        if stats.bytes_decompressed > limits.max_total_bytes {
            errors.push(at, ProblemCode::ArchiveTooLarge, format!("the archive expands beyond {} bytes", limits.max_total_bytes), FIX_BOMB);
            break;
        }
        drop(entry);

        let Some(actual) = image::guess_format(&buf).ok().filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg)) else {
            errors.push(at, ProblemCode::NotAnImage, "the file's content is not a PNG or JPEG image", FIX_IMAGE);
            continue;
        };
        if actual != declared {
            let got = format!("{actual:?}").to_uppercase();
            errors.push(at, ProblemCode::ExtensionMismatch, format!("the file is named like a {declared:?} but holds a {got}"), FIX_IMAGE);
            continue;
        }
        let decoded = match check_image(&buf, actual, limits) {
            Ok(image) => image,
            Err(msg) => {
                errors.push(at, msg.0, msg.1, msg.2);
                continue;
            }
        };
        let shown = thumbnails.entry(class.clone()).or_default();
        if shown.len() < THUMBNAILS_PER_CLASS {
            shown.push(thumbnail(&decoded, &name));
        }
        let side = match ImageReader::with_format(Cursor::new(&buf), actual).into_dimensions() {
            Ok((w, h)) => w.max(h),
            Err(_) => 0,
        };
        *stats.size_histogram.entry(size_bucket(side).to_owned()).or_default() += 1;
        *stats.formats.entry(format!("{actual:?}").to_lowercase()).or_default() += 1;
        *stats.classes.entry(class.clone()).or_default() += 1;
        if let Some(split) = &split {
            *stats.splits.entry(split.to_ascii_lowercase()).or_default().entry(class.clone()).or_default() += 1;
        }
        class_dirs.insert((split, class));
        stats.images += 1;

        let digest = Sha256::digest(&buf);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        digest.hash(&mut h);
        let key = h.finish();
        if let Some(&first) = seen.digest_to_entry.get(&key) {
            seen.duplicates.push((index, first));
        } else {
            seen.digest_to_entry.insert(key, index);
        }
    }

    for (dup, first) in seen.duplicates {
        let name = |i: usize| archive.name_for_index(i).and_then(Result::ok).map(|n| n.into_owned()).unwrap_or_default();
        warnings.push(
            format!("archive:{}", name(dup)),
            ProblemCode::DuplicateImage,
            format!("the image is identical to {}", name(first)),
            "remove duplicates: they weigh some examples twice and can leak between splits",
        );
        stats.duplicates += 1;
    }
    finish(&mut stats, &class_dirs, &mut errors, &mut warnings);
    let splits = Some(if stats.splits.is_empty() {
        plan(DEFAULT_SEED, "stratified", stats.classes.values().copied())
    } else {
        let mut p = plan(DEFAULT_SEED, "given", std::iter::empty());
        for (name, classes) in &stats.splits {
            let split = match name.as_str() {
                "val" => Split::Val,
                "test" => Split::Test,
                _ => Split::Train,
            };
            *p.counts.entry(split).or_default() += classes.values().sum::<u64>();
        }
        p
    });
    Report { stats, errors, warnings, preview: serde_json::json!({ "thumbnails": thumbnails }), splits }
}

type Refusal = (ProblemCode, String, &'static str);

const THUMBNAILS_PER_CLASS: usize = 3;
const THUMBNAIL_SIDE: u32 = 48;

/// A small PNG as a data URL, re-encoded from the decoded pixels (so no
/// byte of the upload itself is ever shown to a browser).
fn thumbnail(image: &image::DynamicImage, name: &str) -> serde_json::Value {
    use base64::Engine;
    let small = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let mut png = Cursor::new(Vec::new());
    let data = match small.write_to(&mut png, ImageFormat::Png) {
        Ok(()) => format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png.into_inner())),
        Err(_) => String::new(),
    };
    serde_json::json!({ "name": name, "width": image.width(), "height": image.height(), "dataUrl": data })
}

/// Checks the header's dimensions first (a 1 KB file can claim 100000×100000
/// pixels), then decodes within allocation limits to prove the file is whole.
fn check_image(buf: &[u8], format: ImageFormat, limits: &Limits) -> Result<image::DynamicImage, Refusal> {
    let (w, h) = ImageReader::with_format(Cursor::new(buf), format)
        .into_dimensions()
        .map_err(|e| (ProblemCode::CorruptImage, format!("the image header cannot be read ({e})"), FIX_IMAGE))?;
    if w == 0 || h == 0 || w > limits.max_image_side || h > limits.max_image_side || u64::from(w) * u64::from(h) > limits.max_image_pixels {
        return Err((
            ProblemCode::ImageTooLarge,
            format!("the image claims {w}×{h} pixels; at most {} per side and {} in all", limits.max_image_side, limits.max_image_pixels),
            "resize the image; training uses small images anyway",
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(buf), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_image_side);
    image_limits.max_image_height = Some(limits.max_image_side);
    image_limits.max_alloc = Some(limits.max_image_pixels * 4 + 1024 * 1024);
    reader.limits(image_limits);
    reader.decode().map_err(|e| (ProblemCode::CorruptImage, format!("the image cannot be decoded ({e})"), FIX_IMAGE))
}

fn finish(stats: &mut ImageStats, class_dirs: &BTreeSet<(Option<String>, String)>, errors: &mut Problems, warnings: &mut Problems) {
    for (split, class) in class_dirs {
        let count = match split {
            Some(s) => stats.splits.get(&s.to_ascii_lowercase()).and_then(|c| c.get(class)).copied().unwrap_or(0),
            None => stats.classes.get(class).copied().unwrap_or(0),
        };
        if count == 0 {
            let folder = split.as_ref().map_or(class.clone(), |s| format!("{s}/{class}"));
            errors.push(
                format!("archive:{folder}/"),
                ProblemCode::EmptyClass,
                "the class folder has no images",
                "add images to the folder or remove it",
            );
        }
    }
    if stats.images == 0 {
        if errors.total() == 0 {
            errors.push("archive", ProblemCode::NoImages, "the archive holds no images", FIX_LAYOUT);
        }
        return;
    }
    if stats.classes.len() < 2 {
        errors.push(
            "archive",
            ProblemCode::SingleClass,
            format!(
                "the archive has only one class ({:?}); a classifier needs at least two",
                stats.classes.keys().next().cloned().unwrap_or_default()
            ),
            FIX_LAYOUT,
        );
    }
    if let Some(train) = stats.splits.get("train") {
        for (split, classes) in stats.splits.iter().filter(|(s, _)| s.as_str() != "train") {
            for class in classes.keys().filter(|c| !train.contains_key(*c)) {
                warnings.push(
                    format!("archive:{split}/{class}/"),
                    ProblemCode::ClassNotInTrain,
                    "the class has no training images",
                    "add training images for it",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
