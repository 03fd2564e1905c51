//! Whole networks: which trunk ([`BackboneKind`]) and which head
//! ([`HeadKind`]), assembled into a graph with initial weights
//! ([`build`]); an ensemble's heads over landmark subsets ([`add_heads`]).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sld_core::model::{Activation, HeatmapKind, ModelInfo, INPUT};

use super::builder::{ConvSpec, GraphBuilder};
use super::heads::{aspp_head, skip_head, LIGHT_HEAD, SCENE_HEAD, WIDE_HEAD};
use super::lite0::{efficientnet_lite0_atrous8, efficientnet_lite0_s8};
use crate::io::safetensors::NamedTensor;

/// Network architecture, as `--arch` names it. What each value builds
/// depends on the training mode ([`Arch::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Small CPU-friendly backbone + the paper's scene head (demo, tests).
    Small,
    /// EfficientNet-Lite0: in `train full`, SLD*'s stride-8 variant with its
    /// ASPP head (the SLD* baseline); in `train backbone`, the atrous
    /// variant that `train head` freezes (ImageNet weights fit it).
    Lite0,
}

/// Which training mode builds the network ([`Arch::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `sld train full`: one scene, backbone and head trained together.
    Full,
    /// `sld train backbone`: one trunk shared by several scenes, a light head each.
    Backbone,
}

impl Arch {
    /// Every value with its `--arch` name.
    pub const ALL: [(Arch, &'static str); 2] = [(Arch::Small, "small"), (Arch::Lite0, "lite0")];

    /// The trunk and head `self` means in `mode` (`width`: the small
    /// backbone's). The one place the two meanings of `lite0` are decided.
    pub fn resolve(self, width: usize, mode: Mode) -> (BackboneKind, HeadKind) {
        match (self, mode) {
            (Arch::Small, Mode::Full) => (BackboneKind::Small { width }, HeadKind::Scene),
            (Arch::Small, Mode::Backbone) => (BackboneKind::Small { width }, HeadKind::Light),
            (Arch::Lite0, Mode::Full) => (BackboneKind::Lite0S8, HeadKind::Aspp),
            (Arch::Lite0, Mode::Backbone) => (BackboneKind::Lite0Atrous8, HeadKind::Light),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::ALL.iter().find(|(a, _)| a == self).map_or("?", |(_, n)| n);
        f.write_str(name)
    }
}

/// What a network is built for: input size, head width and count,
/// initial-weight seed, and what its maps hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetSpec {
    /// Input width, pixels (multiple of 8).
    pub input_width: usize,
    /// Input height, pixels (multiple of 8).
    pub input_height: usize,
    /// Hidden channels of each head.
    pub head_channels: usize,
    /// Heads in the ensemble ([`landmark_subsets`]).
    pub heads: usize,
    /// Seed of the initial weights.
    pub seed: u64,
    /// What the output maps hold (sets the last layer's initial bias).
    pub heatmaps: HeatmapKind,
    /// What the network sees (input channels and normalisation).
    pub input: crate::train::InputMode,
}

/// Which trunk a network uses. A backbone file written by `sld train
/// backbone` names its kind in the safetensors metadata key
/// [`BACKBONE_KEY`]; a file without it (`sld weights import`) is the
/// ImageNet EfficientNet-Lite0, built as [`BackboneKind::Lite0Atrous8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackboneKind {
    /// [`small_backbone`] of this width (output `2·width` channels at 1/8).
    Small {
        /// Middle-stage channels.
        width: usize,
    },
    /// EfficientNet-Lite0 with SLD*'s strides (320 channels at 1/8).
    Lite0S8,
    /// EfficientNet-Lite0, original strides to 1/8, then dilated (320 channels at 1/8).
    Lite0Atrous8,
    /// XFeat's trunk ([`super::xfeat`]): grey, instance-normalised input,
    /// 64 channels at 1/8.
    XFeat,
    /// XFeat's trunk plus the input's 8×8 pixel blocks as 64 more channels
    /// ([`super::xfeat::pixel_blocks`]): the head sees where in its cell an
    /// edge lies, as XFeat's own keypoint head does.
    XFeatPixels,
}

/// Safetensors metadata key naming a backbone file's [`BackboneKind`].
pub const BACKBONE_KEY: &str = "sld.backbone";

impl BackboneKind {
    /// The metadata value: `small-W`, `lite0-s8` or `lite0-atrous8`.
    pub fn tag(&self) -> String {
        match self {
            BackboneKind::Small { width } => format!("small-{width}"),
            BackboneKind::Lite0S8 => "lite0-s8".into(),
            BackboneKind::Lite0Atrous8 => "lite0-atrous8".into(),
            BackboneKind::XFeat => "xfeat".into(),
            BackboneKind::XFeatPixels => "xfeat-pixels".into(),
        }
    }

    /// Parses [`tag`](Self::tag)'s output.
    pub fn parse(tag: &str) -> Result<Self> {
        Ok(match tag {
            "lite0-s8" => BackboneKind::Lite0S8,
            "lite0-atrous8" => BackboneKind::Lite0Atrous8,
            "xfeat" => BackboneKind::XFeat,
            "xfeat-pixels" => BackboneKind::XFeatPixels,
            t => match t.strip_prefix("small-").and_then(|w| w.parse().ok()) {
                Some(width) if (4..=1024).contains(&width) => BackboneKind::Small { width },
                _ => bail!("unknown backbone kind '{t}' (expected small-W, lite0-s8 or lite0-atrous8)"),
            },
        })
    }

    /// The kind a backbone file holds (from its metadata; none: the ImageNet import).
    pub fn of_file(path: &Path) -> Result<Self> {
        let meta = crate::io::safetensors::read_metadata(path)?;
        match meta.get(BACKBONE_KEY) {
            Some(t) => Self::parse(t).with_context(|| path.display().to_string()),
            None => Ok(BackboneKind::Lite0Atrous8),
        }
    }

    /// Adds the trunk to `b`; returns its output tensor.
    pub fn build(&self, b: &mut GraphBuilder) -> String {
        match *self {
            BackboneKind::Small { width } => small_backbone(b, width),
            BackboneKind::Lite0S8 => efficientnet_lite0_s8(b),
            BackboneKind::Lite0Atrous8 => efficientnet_lite0_atrous8(b),
            BackboneKind::XFeat => super::xfeat::xfeat_backbone(b),
            BackboneKind::XFeatPixels => {
                let f = super::xfeat::xfeat_backbone(b);
                let p = super::xfeat::pixel_blocks(b);
                b.concat("xfeat.features", &[&f, &p])
            }
        }
    }

    /// Input channels and per-image normalisation of a network on this
    /// trunk: its own for XFeat (grey, instance norm), else `mode`'s.
    pub fn input(&self, mode: crate::train::InputMode) -> (usize, sld_core::model::Normalize) {
        match self {
            BackboneKind::XFeat | BackboneKind::XFeatPixels => (1, sld_core::model::Normalize::Instance),
            _ => (mode.channels(), mode.normalize()),
        }
    }
}

/// Which heatmap head a network ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKind {
    /// The paper's scene head ([`SCENE_HEAD`]).
    Scene,
    /// SLD*'s ASPP head ([`aspp_head`]).
    Aspp,
    /// The lighter head of backbone training ([`LIGHT_HEAD`]).
    Light,
    /// The scene head with two more, wider dilated blocks ([`WIDE_HEAD`]).
    Wide,
}

/// A built network: its graph, initial weights and the backbone's output
/// channels (the head's input).
pub struct Network {
    /// Graph and metadata.
    pub info: ModelInfo,
    /// Initial weights, backbone first.
    pub tensors: Vec<NamedTensor>,
    /// Channels of the backbone output.
    pub feature_channels: usize,
}

/// Builds `backbone` + `head` (`o.head_channels` hidden, `landmarks`
/// heatmaps over `o.heads` heads) for an `input_width × input_height`
/// input, weights seeded by `o.seed`. The
/// last layer starts scaled down (×0.1, zero bias) so heatmaps start near 0.
pub fn build(backbone: BackboneKind, head: HeadKind, o: &NetSpec, landmarks: usize, scene: &str) -> Network {
    let (channels, normalize) = backbone.input(o.input);
    let mut b = GraphBuilder::new(channels, o.input_height, o.input_width, o.seed);
    let x = backbone.build(&mut b);
    let feature_channels = b.shape(&x)[0];
    let outs = add_heads(&mut b, head, &x, o.head_channels, landmarks, o.heads);
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let (mut info, mut tensors) = b.finish(&refs, 8, scene);
    info.heatmaps = o.heatmaps;
    info.graph.input.normalize = normalize;
    // Small output weights; logits start with every cell at the prior
    // `1/cells` of the landmark being there, "absent" at about one half.
    let cells = (o.input_height / 8).max(1) * (o.input_width / 8).max(1);
    let bias = match o.heatmaps {
        HeatmapKind::Gaussian => 0.0,
        HeatmapKind::Logits => -(cells as f32).ln(),
    };
    for t in &mut tensors {
        if outs.iter().any(|out| t.name.starts_with(&format!("{out}."))) {
            if t.name.ends_with(".bias") {
                t.data.iter_mut().for_each(|v| *v = bias);
            } else {
                t.data.iter_mut().for_each(|v| *v *= 0.1);
            }
        }
    }
    Network {
        info,
        tensors,
        feature_channels,
    }
}

/// The landmark index ranges of an ensemble of `heads` heads over
/// `landmarks` landmarks: consecutive, in the landmark file's (selection)
/// order as SLD* splits them, sizes differing by at most one (the first
/// `landmarks % heads` one larger). `heads` is clamped to `1..=landmarks`.
pub fn landmark_subsets(landmarks: usize, heads: usize) -> Vec<std::ops::Range<usize>> {
    let n = heads.clamp(1, landmarks.max(1));
    let (q, r) = (landmarks / n, landmarks % n);
    let mut start = 0;
    (0..n)
        .map(|k| {
            let len = q + usize::from(k < r);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

/// Adds `heads` heads of `kind` (`channels` hidden each) reading `input`,
/// over the [`landmark_subsets`] of `landmarks`; returns their outputs in
/// landmark order (the graph's outputs, concatenated, are the landmarks).
/// One head is named `head.*`; an ensemble's `head.eK.*`.
pub fn add_heads(
    b: &mut GraphBuilder,
    kind: HeadKind,
    input: &str,
    channels: usize,
    landmarks: usize,
    heads: usize,
) -> Vec<String> {
    let subsets = landmark_subsets(landmarks, heads);
    let single = subsets.len() == 1;
    subsets
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let name = if single {
                "head".to_string()
            } else {
                format!("head.e{k}")
            };
            let l = r.len();
            match kind {
                HeadKind::Scene => skip_head(b, &name, input, channels, l, SCENE_HEAD),
                HeadKind::Aspp => aspp_head(b, &name, input, channels, l),
                HeadKind::Light => skip_head(b, &name, input, channels, l, LIGHT_HEAD),
                HeadKind::Wide => skip_head(b, &name, input, channels, l, WIDE_HEAD),
            }
        })
        .collect()
}

/// A small stride-8 backbone for CPU training (demo, tests): three
/// stride-2 3×3 convolutions (`w/2`, `w`, `2w` channels, ReLU), each
/// followed by a 3×3 convolution at the same width. Output `2w` channels at 1/8.
pub fn small_backbone(b: &mut GraphBuilder, width: usize) -> String {
    let mut x = INPUT.to_string();
    for (i, c) in [width / 2, width, 2 * width].into_iter().enumerate() {
        x = b.conv(
            &format!("bb.down{i}"),
            &x,
            ConvSpec::new(c.max(4), 3).stride(2).act(Activation::Relu),
        );
        x = b.conv(
            &format!("bb.conv{i}"),
            &x,
            ConvSpec::new(c.max(4), 3).act(Activation::Relu),
        );
    }
    x
}
