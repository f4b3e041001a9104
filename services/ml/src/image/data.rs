//! Reading an image dataset ZIP into memory, splitting it, and making
//! normalised (optionally augmented) batches.
//!
//! The archive first goes through the same validator as uploads, so every
//! hostile-archive defence applies here too, and a ZIP that is not a
//! dataset is refused with the validator's own words. Images are kept
//! decoded at the model's input size as bytes (one per channel and pixel):
//! 5,000 MNIST digits take 4 MB.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::{ColorType, DynamicImage, ImageDecoder};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tenfold_datasets::splits::{Split, rank};
use tenfold_datasets::{Limits, image_entry, validate_image_zip};

use super::arch::InputShape;
use crate::artifact::sha256_file;
pub use crate::split::SplitSpec;
use crate::{MlError, Result};

/// Random crop (pad by ~1/10 of the side, crop back) and horizontal flip,
/// applied to training batches only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    pub crop: bool,
    pub flip: bool,
}

impl Augment {
    pub fn parse(raw: &str) -> Result<Self> {
        let mut a = Self::default();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "none" => {}
                "crop" => a.crop = true,
                "flip" => a.flip = true,
                other => {
                    return Err(MlError::arg("augment", format!("'{other}' is not an augmentation; use crop, flip, crop,flip or none")));
                }
            }
        }
        Ok(a)
    }

    pub fn any(&self) -> bool {
        self.crop || self.flip
    }
}

/// How pixels become model inputs; saved in `model.json` so predictions
/// preprocess exactly like training did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Per channel, of pixel values scaled to [0, 1] (training split).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub resize: String,
}

impl Preprocess {
    pub fn shape(&self) -> InputShape {
        InputShape { channels: self.channels, height: self.height, width: self.width }
    }
}

pub struct Example {
    pub name: String,
    pub label: usize,
    pub split: Split,
}

pub struct ImageSet {
    pub classes: Vec<String>,
    pub examples: Vec<Example>,
    pub shape: InputShape,
    pub sha256: String,
    pub file_name: String,
    /// `given` (the archive's own train/val/test folders) or `stratified`.
    pub split_method: &'static str,
    pixels: Vec<u8>,
}

/// The input shape to decode to: what a base model or teacher expects, or
/// inferred from the data (grayscale when every image is; the most common
/// size, at most `max_side`).
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Fixed(InputShape),
    Infer { side: Option<usize>, max_side: usize },
}

const IMAGE_PROBLEMS_SHOWN: usize = 3;

fn invalid(path: &Path, summary: String) -> MlError {
    MlError::InvalidDataset { path: path.into(), family: "image", summary }
}

/// Each accepted image entry's name, class and given split, in archive order.
type Entries = Vec<(usize, String, String, Option<Split>)>;

fn entries(archive: &mut zip::ZipArchive<File>) -> Entries {
    (0..archive.len())
        .filter_map(|i| {
            let name = archive.name_for_index(i)?.ok()?.into_owned();
            let (split, class) = image_entry(&name)?;
            let class = class.to_owned();
            Some((i, name, class, split))
        })
        .collect()
}

fn read_entry(archive: &mut zip::ZipArchive<File>, index: usize, path: &Path, name: &str) -> Result<Vec<u8>> {
    let mut entry = archive.by_index(index).map_err(|e| invalid(path, format!("{name}: cannot be read ({e})")))?;
    let mut buf = Vec::new();
    (&mut entry)
        .take(Limits::default().max_entry_bytes)
        .read_to_end(&mut buf)
        .map_err(|e| invalid(path, format!("{name}: cannot be read ({e})")))?;
    Ok(buf)
}

fn read_image(archive: &mut zip::ZipArchive<File>, index: usize, path: &Path, name: &str) -> Result<DynamicImage> {
    image::load_from_memory(&read_entry(archive, index, path, name)?)
        .map_err(|e| invalid(path, format!("{name}: not a readable image ({e})")))
}

/// Height, width and colour type from the image's header, without decoding it.
fn read_header(archive: &mut zip::ZipArchive<File>, index: usize, path: &Path, name: &str) -> Result<(usize, usize, ColorType)> {
    let buf = read_entry(archive, index, path, name)?;
    let unreadable = |e: image::ImageError| invalid(path, format!("{name}: not a readable image ({e})"));
    let decoder = image::ImageReader::new(std::io::Cursor::new(&buf))
        .with_guessed_format()
        .map_err(|e| invalid(path, format!("{name}: cannot be read ({e})")))?
        .into_decoder()
        .map_err(unreadable)?;
    let (w, h) = decoder.dimensions();
    Ok((h as usize, w as usize, decoder.color_type()))
}

fn is_gray(color: ColorType) -> bool {
    matches!(color, ColorType::L8 | ColorType::La8 | ColorType::L16 | ColorType::La16)
}

/// The image resized to `shape` as planar bytes (channel, row, column).
pub fn planar(image: &DynamicImage, shape: InputShape) -> Vec<u8> {
    let mut out = Vec::with_capacity(shape.channels * shape.height * shape.width);
    to_planar(image, shape, &mut out);
    out
}

fn to_planar(image: &DynamicImage, shape: InputShape, out: &mut Vec<u8>) {
    let (w, h) = (shape.width as u32, shape.height as u32);
    let resized;
    let image = if image.width() != w || image.height() != h {
        resized = image.resize_exact(w, h, FilterType::Triangle);
        &resized
    } else {
        image
    };
    if shape.channels == 1 {
        out.extend_from_slice(image.to_luma8().as_raw());
    } else {
        let rgb = image.to_rgb8();
        for c in 0..3 {
            out.extend(rgb.pixels().map(|p| p.0[c]));
        }
    }
}

impl ImageSet {
    pub fn load(path: &Path, target: Target, split: SplitSpec, seed: u64) -> Result<Self> {
        if !path.is_file() {
            return Err(MlError::Io { path: path.into(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file") });
        }
        let report = validate_image_zip(File::open(path).map_err(MlError::io(path))?, &Limits::default());
        if !report.is_valid() {
            return Err(invalid(path, report.errors.summary(IMAGE_PROBLEMS_SHOWN)));
        }
        let sha256 = sha256_file(path)?;
        let mut archive = zip::ZipArchive::new(File::open(path).map_err(MlError::io(path))?)
            .map_err(|e| invalid(path, format!("not a readable ZIP archive ({e})")))?;
        let found = entries(&mut archive);
        let classes: Vec<String> = found.iter().map(|e| e.2.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let shape = match target {
            Target::Fixed(shape) => shape,
            Target::Infer { side, max_side } => infer_shape(&mut archive, &found, path, side, max_side)?,
        };
        let label_of: BTreeMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let mut pixels = Vec::with_capacity(found.len() * shape.channels * shape.height * shape.width);
        let mut examples = Vec::with_capacity(found.len());
        for (index, name, class, given) in &found {
            let image = read_image(&mut archive, *index, path, name)?;
            to_planar(&image, shape, &mut pixels);
            examples.push(Example { name: name.clone(), label: label_of[class.as_str()], split: given.unwrap_or(Split::Train) });
        }
        let given = found.iter().any(|e| e.3.is_some());
        if !given {
            assign_splits(&mut examples, classes.len(), split, seed);
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self { classes, examples, shape, sha256, file_name, split_method: if given { "given" } else { "stratified" }, pixels })
    }

    pub fn indices(&self, split: Split) -> Vec<usize> {
        self.examples.iter().enumerate().filter(|(_, e)| e.split == split).map(|(i, _)| i).collect()
    }

    fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.channels * self.shape.height * self.shape.width;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Example `i` as the model saw it (before normalisation), as a PNG
    /// `data:` URL for reports. `None` if it cannot be encoded.
    pub fn thumbnail(&self, i: usize) -> Option<String> {
        use base64::Engine;
        let s = self.shape;
        let planar = self.image(i);
        let plane = s.height * s.width;
        let (w, h) = (u32::try_from(s.width).ok()?, u32::try_from(s.height).ok()?);
        let image = if s.channels == 1 {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, planar.to_vec())?)
        } else {
            let interleaved: Vec<u8> = (0..plane).flat_map(|p| (0..3).map(move |c| planar[c * plane + p])).collect();
            image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, interleaved)?)
        };
        let mut png = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).ok()?;
        Some(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
    }

    /// Per-channel mean and standard deviation over `indices`, for
    /// normalisation (a constant channel gets std 1).
    pub fn fit_preprocess(&self, indices: &[usize]) -> Preprocess {
        let s = self.shape;
        let plane = s.height * s.width;
        let mut mean = vec![0f32; s.channels];
        let mut std = vec![1f32; s.channels];
        for c in 0..s.channels {
            let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
            for &i in indices {
                for &p in &self.image(i)[c * plane..(c + 1) * plane] {
                    let v = f64::from(p) / 255.0;
                    sum += v;
                    sq += v * v;
                    n += 1.0;
                }
            }
            if n > 0.0 {
                let m = sum / n;
                mean[c] = m as f32;
                let var = (sq / n - m * m).max(0.0);
                std[c] = if var > 1e-12 { var.sqrt() as f32 } else { 1.0 };
            }
        }
        Preprocess { channels: s.channels, height: s.height, width: s.width, mean, std, resize: "bilinear".into() }
    }

    /// A normalised batch (b, c, h, w), augmented when `augment` is given.
    pub fn batch(
        &self,
        indices: &[usize],
        prep: &Preprocess,
        augment: Option<(&Augment, &mut ChaCha8Rng)>,
        device: &Device,
    ) -> Result<Tensor> {
        let s = self.shape;
        let (h, w) = (s.height, s.width);
        let mut out = Vec::with_capacity(indices.len() * s.channels * h * w);
        let mut augment = augment;
        let pad = (h.min(w) / 10).max(1) as i64;
        for &i in indices {
            let (dy, dx, flip) = match augment.as_mut() {
                Some((a, rng)) => {
                    let (dy, dx) =
                        if a.crop { (rng.random_range(-pad..=pad) as isize, rng.random_range(-pad..=pad) as isize) } else { (0, 0) };
                    (dy, dx, a.flip && rng.random_bool(0.5))
                }
                None => (0, 0, false),
            };
            let img = self.image(i);
            for c in 0..s.channels {
                let (m, sd) = (prep.mean[c], prep.std[c]);
                let plane = &img[c * h * w..(c + 1) * h * w];
                for y in 0..h as isize {
                    for x in 0..w as isize {
                        let sx = if flip { w as isize - 1 - x } else { x } + dx;
                        let sy = y + dy;
                        // Outside the image is the zero padding of a padded crop.
                        let p =
                            if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize { 0 } else { plane[sy as usize * w + sx as usize] };
                        out.push((f32::from(p) / 255.0 - m) / sd);
                    }
                }
            }
        }
        Ok(Tensor::from_vec(out, (indices.len(), s.channels, h, w), device)?)
    }

    pub fn labels(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let labels: Vec<u32> = indices.iter().map(|&i| self.examples[i].label as u32).collect();
        Ok(Tensor::from_vec(labels, indices.len(), device)?)
    }

    pub fn label(&self, i: usize) -> usize {
        self.examples[i].label
    }
}

fn infer_shape(
    archive: &mut zip::ZipArchive<File>,
    found: &Entries,
    path: &Path,
    side: Option<usize>,
    max_side: usize,
) -> Result<InputShape> {
    let mut gray = true;
    let mut sizes: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (index, name, ..) in found {
        let (h, w, color) = read_header(archive, *index, path, name)?;
        gray &= is_gray(color);
        *sizes.entry((h, w)).or_default() += 1;
    }
    let channels = if gray { 1 } else { 3 };
    let (height, width) = match side {
        Some(s) => (s, s),
        None => {
            let (&(h, w), _) = sizes.iter().max_by_key(|(_, n)| **n).ok_or_else(|| invalid(path, "the archive holds no images".into()))?;
            let scale = (max_side as f64 / h.max(w) as f64).min(1.0);
            (((h as f64 * scale).round() as usize).max(1), ((w as f64 * scale).round() as usize).max(1))
        }
    };
    Ok(InputShape { channels, height, width })
}

/// Stratified split: within each class, items sorted by their seeded rank
/// (a pure function of seed and name), then cut at the requested sizes.
fn assign_splits(examples: &mut [Example], classes: usize, spec: SplitSpec, seed: u64) {
    for class in 0..classes {
        let mut members: Vec<(u64, usize)> =
            examples.iter().enumerate().filter(|(_, e)| e.label == class).map(|(i, e)| (rank(seed, &e.name), i)).collect();
        members.sort_unstable();
        let (train, val) = spec.sizes(members.len());
        for (pos, (_, i)) in members.into_iter().enumerate() {
            examples[i].split = if pos < train {
                Split::Train
            } else if pos < train + val {
                Split::Val
            } else {
                Split::Test
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sizes_match_the_stored_split() {
        for n in [0, 1, 2, 3, 7, 10, 99, 500, 501] {
            let (train, val) = SplitSpec::default().sizes(n);
            let (t, v, _) = tenfold_datasets::splits::sizes(n as u64);
            assert_eq!((train as u64, val as u64), (t, v), "n = {n}");
        }
        assert_eq!(SplitSpec::parse("80/0/20").unwrap().sizes(500), (400, 0));
    }

    #[test]
    fn bad_split_and_augment_strings_are_explained() {
        for raw in ["80/20", "50/50/50", "a/b/c", "0/50/50"] {
            assert!(SplitSpec::parse(raw).unwrap_err().to_string().contains("adding up to 100"), "{raw}");
        }
        assert!(Augment::parse("rotate").unwrap_err().to_string().contains("use crop, flip"));
        assert_eq!(Augment::parse("crop,flip").unwrap(), Augment { crop: true, flip: true });
    }
}
