//! The image architectures. Parameter names are the keys of
//! `model.safetensors`; everything under `head.` is the classifier that
//! fine-tuning replaces when the classes change.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::Model;
use crate::nn::{BatchNorm2d, Conv2d, ConvSpec, Linear};
use crate::params::{Params, Part};
use crate::{MlError, Result as MlResult};

pub const ARCHITECTURES: [&str; 3] = ["cnn-small", "resnet-s", "cnn-tiny"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

pub fn check_architecture(name: &str) -> MlResult<()> {
    if ARCHITECTURES.contains(&name) {
        Ok(())
    } else {
        Err(MlError::UnknownArchitecture { family: "image", given: name.into(), known: ARCHITECTURES.join(", ") })
    }
}

/// Builds `name` with freshly (seeded) initialised parameters in `params`.
pub fn build(name: &str, input: InputShape, classes: usize, params: &mut Params) -> MlResult<Box<dyn Model>> {
    check_architecture(name)?;
    if classes < 2 {
        return Err(MlError::arg("classes", format!("a classifier needs at least 2 classes, the data has {classes}")));
    }
    let fits = |min: usize| input.height >= min && input.width >= min;
    Ok(match name {
        "cnn-small" if fits(4) => Box::new(CnnSmall::new(params, input, classes)?),
        "cnn-tiny" if fits(8) => Box::new(CnnTiny::new(params, input, classes)?),
        "resnet-s" if fits(4) => Box::new(ResNetS::new(params, input, classes)?),
        _ => return Err(MlError::arg("image size", format!("{}×{} is too small for {name}", input.height, input.width))),
    })
}

/// The classic Keras MNIST model: Conv2D(32, 3×3) + ReLU → MaxPool(2) →
/// Dense(128) + ReLU → Dense(classes). No padding, like Keras' default.
struct CnnSmall {
    conv: Conv2d,
    fc: Linear,
    head: Linear,
}

impl CnnSmall {
    fn new(p: &mut Params, i: InputShape, classes: usize) -> MlResult<Self> {
        let flat = 32 * ((i.height - 2) / 2) * ((i.width - 2) / 2);
        Ok(Self {
            conv: Conv2d::new(
                p,
                "backbone.conv1",
                ConvSpec { inputs: i.channels, outputs: 32, kernel: 3, stride: 1, pad: 0, bias: true },
                Part::Backbone,
            )?,
            fc: Linear::new(p, "backbone.fc1", flat, 128, Part::Backbone)?,
            head: Linear::new(p, "head", 128, classes, Part::Head)?,
        })
    }
}

impl Model for CnnSmall {
    fn forward(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let x = self.conv.forward_relu_pool(xs, 2)?.flatten_from(1)?;
        self.head.forward(&self.fc.forward_relu(&x)?)
    }
}

/// A distillation student (~5k parameters for 28×28 input): two small
/// convolutions and a linear classifier.
struct CnnTiny {
    conv1: Conv2d,
    conv2: Conv2d,
    head: Linear,
}

impl CnnTiny {
    fn new(p: &mut Params, i: InputShape, classes: usize) -> MlResult<Self> {
        let side = |s: usize| ((s - 2) / 2 - 2) / 2;
        let flat = 16 * side(i.height) * side(i.width);
        Ok(Self {
            conv1: Conv2d::new(
                p,
                "backbone.conv1",
                ConvSpec { inputs: i.channels, outputs: 8, kernel: 3, stride: 1, pad: 0, bias: true },
                Part::Backbone,
            )?,
            conv2: Conv2d::new(
                p,
                "backbone.conv2",
                ConvSpec { inputs: 8, outputs: 16, kernel: 3, stride: 1, pad: 0, bias: true },
                Part::Backbone,
            )?,
            head: Linear::new(p, "head", flat, classes, Part::Head)?,
        })
    }
}

impl Model for CnnTiny {
    fn forward(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let x = self.conv1.forward_relu_pool(xs, 2)?;
        let x = self.conv2.forward_relu_pool(&x, 2)?;
        self.head.forward(&x.flatten_from(1)?)
    }
}

/// A basic residual block (two 3×3 conv + BN), with a 1×1 projection on
/// the shortcut when the shape changes.
struct Block {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    project: Option<(Conv2d, BatchNorm2d)>,
}

impl Block {
    fn new(p: &mut Params, name: &str, inputs: usize, outputs: usize, stride: usize) -> MlResult<Self> {
        let conv = |p: &mut Params, n: &str, i, k, s, pad| {
            Conv2d::new(p, &format!("{name}.{n}"), ConvSpec { inputs: i, outputs, kernel: k, stride: s, pad, bias: false }, Part::Backbone)
        };
        let conv1 = conv(p, "conv1", inputs, 3, stride, 1)?;
        let bn1 = BatchNorm2d::new(p, &format!("{name}.bn1"), outputs, Part::Backbone)?;
        let conv2 = conv(p, "conv2", outputs, 3, 1, 1)?;
        let bn2 = BatchNorm2d::new(p, &format!("{name}.bn2"), outputs, Part::Backbone)?;
        let project = if stride != 1 || inputs != outputs {
            Some((conv(p, "project", inputs, 1, stride, 0)?, BatchNorm2d::new(p, &format!("{name}.project_bn"), outputs, Part::Backbone)?))
        } else {
            None
        };
        Ok(Self { conv1, bn1, conv2, bn2, project })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.bn1.forward(&self.conv1.forward(x)?, train)?.relu()?;
        let y = self.bn2.forward(&self.conv2.forward(&y)?, train)?;
        let shortcut = match &self.project {
            Some((conv, bn)) => bn.forward(&conv.forward(x)?, train)?,
            None => x.clone(),
        };
        (y + shortcut)?.relu()
    }
}

/// A small ResNet (~78k parameters): a 16-channel stem, three stages of one
/// basic block (16, 32, 64 channels; the last two halve the resolution),
/// global average pooling and a linear classifier.
struct ResNetS {
    stem: Conv2d,
    stem_bn: BatchNorm2d,
    blocks: Vec<Block>,
    head: Linear,
}

impl ResNetS {
    fn new(p: &mut Params, i: InputShape, classes: usize) -> MlResult<Self> {
        let stem = Conv2d::new(
            p,
            "backbone.stem",
            ConvSpec { inputs: i.channels, outputs: 16, kernel: 3, stride: 1, pad: 1, bias: false },
            Part::Backbone,
        )?;
        let stem_bn = BatchNorm2d::new(p, "backbone.stem_bn", 16, Part::Backbone)?;
        let blocks = vec![
            Block::new(p, "backbone.stage1", 16, 16, 1)?,
            Block::new(p, "backbone.stage2", 16, 32, 2)?,
            Block::new(p, "backbone.stage3", 32, 64, 2)?,
        ];
        Ok(Self { stem, stem_bn, blocks, head: Linear::new(p, "head", 64, classes, Part::Head)? })
    }
}

impl Model for ResNetS {
    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = self.stem_bn.forward(&self.stem.forward(xs)?, train)?.relu()?;
        for block in &self.blocks {
            x = block.forward(&x, train)?;
        }
        self.head.forward(&x.mean((2, 3))?)
    }
}
