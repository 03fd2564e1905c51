//! Builds `.sld` graphs layer by layer with initial (random) weights:
//! EfficientNet-Lite0 at output stride 8 (the SLD* backbone), SLD*'s ASPP
//! heatmap head, and arbitrary test graphs.

use std::collections::HashMap;

use sld_core::model::{Activation, Conv2d, Graph, InputSpec, Layer, ModelInfo, Op, Provenance, INPUT};
use sld_core::rng::SplitMix64;

use crate::export::NamedTensor;

/// TF "SAME" padding `(before, after)` for one axis: the output has
/// `ceil(n / stride)` samples; the extra pixel goes after (bottom/right).
pub fn same_padding(n: usize, k: usize, stride: usize, dilation: usize) -> (u32, u32) {
    let out = n.div_ceil(stride);
    let span = dilation * (k - 1) + 1;
    let total = ((out - 1) * stride + span).saturating_sub(n);
    ((total / 2) as u32, (total - total / 2) as u32)
}

/// Parameters of one convolution for [`GraphBuilder::conv`].
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    /// Output channels.
    pub out: usize,
    /// Square kernel size.
    pub k: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Dilation (both axes).
    pub dilation: usize,
    /// Groups (`0` = depthwise: one group per input channel).
    pub groups: usize,
    /// Fused activation.
    pub act: Activation,
    /// Padding `[top, left, bottom, right]`; `None` = TF "SAME".
    pub padding: Option<[u32; 4]>,
}

impl ConvSpec {
    /// A `k×k` convolution to `out` channels, stride 1, SAME padding, bias.
    pub fn new(out: usize, k: usize) -> Self {
        Self {
            out,
            k,
            stride: 1,
            dilation: 1,
            groups: 1,
            act: Activation::None,
            padding: None,
        }
    }
    /// With this stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// With this dilation.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }
    /// With this many groups (0 = depthwise).
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// With this activation.
    pub fn act(mut self, a: Activation) -> Self {
        self.act = a;
        self
    }
    /// With explicit padding `[top, left, bottom, right]`.
    pub fn padding(mut self, p: [u32; 4]) -> Self {
        self.padding = Some(p);
        self
    }
}

/// Accumulates layers and their initial weights.
pub struct GraphBuilder {
    input: InputSpec,
    layers: Vec<Layer>,
    tensors: Vec<NamedTensor>,
    shapes: HashMap<String, [usize; 3]>,
    rng: SplitMix64,
}

impl GraphBuilder {
    /// A graph over a `channels × height × width` input with SLD*'s
    /// normalisation (pixels / 255, no mean/std).
    pub fn new(channels: usize, height: usize, width: usize, seed: u64) -> Self {
        let input = InputSpec {
            width: width as u32,
            height: height as u32,
            channels: channels as u32,
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        };
        let shapes = HashMap::from([(INPUT.to_string(), [channels, height, width])]);
        Self {
            input,
            layers: vec![],
            tensors: vec![],
            shapes,
            rng: SplitMix64::new(seed),
        }
    }

    /// Shape `[C, H, W]` of a tensor built so far.
    pub fn shape(&self, name: &str) -> [usize; 3] {
        self.shapes[name]
    }

    fn normal(&mut self) -> f32 {
        let u1 = self.rng.unit_f64().max(1e-300);
        let u2 = self.rng.unit_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Adds a convolution `name` reading `input`; He-initialised weights,
    /// small random bias. Returns `name`.
    pub fn conv(&mut self, name: &str, input: &str, s: ConvSpec) -> String {
        let [ci, h, w] = self.shapes[input];
        let groups = if s.groups == 0 { ci } else { s.groups };
        let padding = s.padding.unwrap_or_else(|| {
            let (t, b) = same_padding(h, s.k, s.stride, s.dilation);
            let (l, r) = same_padding(w, s.k, s.stride, s.dilation);
            [t, l, b, r]
        });
        let span = s.dilation * (s.k - 1) + 1;
        let ho = (h + padding[0] as usize + padding[2] as usize - span) / s.stride + 1;
        let wo = (w + padding[1] as usize + padding[3] as usize - span) / s.stride + 1;
        let fan_in = (ci / groups) * s.k * s.k;
        let std = (2.0 / fan_in as f32).sqrt();
        let wn = s.out * (ci / groups) * s.k * s.k;
        let weight: Vec<f32> = (0..wn).map(|_| std * self.normal()).collect();
        let bias: Vec<f32> = (0..s.out).map(|_| 0.1 * self.normal()).collect();
        self.tensors.push(NamedTensor {
            name: format!("{name}.weight"),
            shape: vec![s.out, ci / groups, s.k, s.k],
            data: weight,
        });
        self.tensors.push(NamedTensor {
            name: format!("{name}.bias"),
            shape: vec![s.out],
            data: bias,
        });
        self.layers.push(Layer {
            name: name.into(),
            op: Op::Conv2d(Conv2d {
                input: input.into(),
                weight: format!("{name}.weight"),
                bias: Some(format!("{name}.bias")),
                stride: [s.stride as u32; 2],
                padding,
                dilation: [s.dilation as u32; 2],
                groups: groups as u32,
                activation: s.act,
            }),
        });
        self.shapes.insert(name.into(), [s.out, ho, wo]);
        name.into()
    }

    /// Element-wise sum of `inputs`, then `act`.
    pub fn add(&mut self, name: &str, inputs: &[&str], act: Activation) -> String {
        let shape = self.shapes[inputs[0]];
        self.layers.push(Layer {
            name: name.into(),
            op: Op::Add {
                inputs: inputs.iter().map(|s| s.to_string()).collect(),
                activation: act,
            },
        });
        self.shapes.insert(name.into(), shape);
        name.into()
    }

    /// Channel concatenation of `inputs`.
    pub fn concat(&mut self, name: &str, inputs: &[&str]) -> String {
        let [_, h, w] = self.shapes[inputs[0]];
        let c = inputs.iter().map(|i| self.shapes[*i][0]).sum();
        self.layers.push(Layer {
            name: name.into(),
            op: Op::Concat {
                inputs: inputs.iter().map(|s| s.to_string()).collect(),
            },
        });
        self.shapes.insert(name.into(), [c, h, w]);
        name.into()
    }

    /// A standalone activation.
    pub fn activation(&mut self, name: &str, input: &str, act: Activation) -> String {
        let shape = self.shapes[input];
        self.layers.push(Layer {
            name: name.into(),
            op: Op::Activation {
                input: input.into(),
                activation: act,
            },
        });
        self.shapes.insert(name.into(), shape);
        name.into()
    }

    /// Finishes the graph: `outputs` are the heatmap tensors (their
    /// channels concatenated are the landmarks).
    pub fn finish(self, outputs: &[&str], stride: u32, scene: &str) -> (ModelInfo, Vec<NamedTensor>) {
        let landmarks = outputs.iter().map(|o| self.shapes[*o][0]).sum::<usize>() as u32;
        let info = ModelInfo {
            graph: Graph {
                input: self.input,
                layers: self.layers,
                outputs: outputs.iter().map(|s| s.to_string()).collect(),
            },
            stride,
            landmarks,
            heatmaps: Default::default(),
            scene: scene.into(),
            provenance: Provenance {
                command: std::env::args().collect::<Vec<_>>().join(" "),
                date: String::new(),
            },
        };
        (info, self.tensors)
    }
}

/// One EfficientNet-Lite inverted-residual block (expand 1×1 → depthwise
/// k×k → project 1×1; ReLU6; residual when shapes allow). Returns its output.
/// Kernel, stride, expansion and dilation of one MBConv block.
#[derive(Clone, Copy)]
struct Mb {
    k: usize,
    stride: usize,
    expand: usize,
    dilation: usize,
}

fn mbconv(b: &mut GraphBuilder, name: &str, input: &str, out: usize, m: Mb) -> String {
    let Mb {
        k,
        stride,
        expand,
        dilation,
    } = m;
    let ci = b.shape(input)[0];
    let mut x = input.to_string();
    if expand != 1 {
        x = b.conv(
            &format!("{name}.expand"),
            &x,
            ConvSpec::new(ci * expand, 1).act(Activation::Relu6),
        );
    }
    x = b.conv(
        &format!("{name}.dw"),
        &x,
        ConvSpec::new(ci * expand, k)
            .stride(stride)
            .dilation(dilation)
            .groups(0)
            .act(Activation::Relu6),
    );
    x = b.conv(&format!("{name}.project"), &x, ConvSpec::new(out, 1));
    if stride == 1 && ci == out {
        x = b.add(&format!("{name}.add"), &[&x, input], Activation::None);
    }
    x
}

/// EfficientNet-Lite0 trunk at output stride 8, as SLD* uses it: the
/// 40- and 80-channel stages keep stride 1; output 320 channels at 1/8.
pub fn efficientnet_lite0_s8(b: &mut GraphBuilder) -> String {
    efficientnet_lite0(b, 8)
}

/// EfficientNet-Lite0 trunk (stem + 16 MBConv blocks, ReLU6, no SE) at
/// output stride 8 (SLD*) or 32 (the ImageNet original). Layer names
/// (`stem`, `blocks.S.B.{expand,dw,project}`) are what
/// `sld weights import` writes.
pub fn efficientnet_lite0(b: &mut GraphBuilder, output_stride: usize) -> String {
    // Stage strides: the original's, or SLD*'s with stages 2 and 3 at stride 1.
    let strides: [usize; 7] = if output_stride == 32 {
        [1, 2, 2, 2, 1, 2, 1]
    } else {
        [1, 2, 1, 1, 1, 2, 1]
    };
    lite0_trunk(b, strides, false)
}

/// EfficientNet-Lite0 at output stride 8 the DeepLab way: the original
/// strides up to 1/8, then each removed stride doubles the dilation of the
/// depthwise convolutions after it (stages 3–4 dilation 2, 5–6 dilation 4),
/// so every filter sees the scale it was trained at. Used for the frozen
/// ImageNet backbone of head training; 4× cheaper than SLD*'s variant,
/// which runs stages 2–4 at 1/4.
pub fn efficientnet_lite0_atrous8(b: &mut GraphBuilder) -> String {
    lite0_trunk(b, [1, 2, 2, 2, 1, 2, 1], true)
}

fn lite0_trunk(b: &mut GraphBuilder, strides: [usize; 7], atrous_after_8: bool) -> String {
    let mut x = b.conv(
        "stem",
        INPUT,
        ConvSpec::new(32, 3).stride(2).act(Activation::Relu6),
    );
    let (mut total, mut dilation) = (2usize, 1usize);
    for (si, &(n, k, e, c)) in crate::weights::LITE0_STAGES.iter().enumerate() {
        for bi in 0..n {
            let mut s = if bi == 0 { strides[si] } else { 1 };
            let d = dilation;
            if atrous_after_8 && s > 1 && total >= 8 {
                // Keep the resolution; the following blocks dilate instead.
                s = 1;
                dilation *= 2;
            } else {
                total *= s;
            }
            let m = Mb {
                k,
                stride: s,
                expand: e,
                dilation: if bi == 0 { d } else { dilation },
            };
            x = mbconv(b, &format!("blocks.{si}.{bi}"), &x, c, m);
        }
    }
    x
}

/// SLD*'s heatmap head: ASPP (four 3×3 branches, dilation 1–4, ReLU,
/// concatenated) then a 1×1 convolution to `landmarks` heatmaps.
pub fn aspp_head(b: &mut GraphBuilder, name: &str, input: &str, branch: usize, landmarks: usize) -> String {
    let branches: Vec<String> = (1..=4)
        .map(|d| {
            b.conv(
                &format!("{name}.aspp{d}"),
                input,
                ConvSpec::new(branch, 3).dilation(d).act(Activation::Relu),
            )
        })
        .collect();
    let refs: Vec<&str> = branches.iter().map(|s| s.as_str()).collect();
    let cat = b.concat(&format!("{name}.cat"), &refs);
    b.conv(&format!("{name}.heatmaps"), &cat, ConvSpec::new(landmarks, 1))
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

/// The faster-training paper's scene head: two blocks, each a dilated 3×3
/// convolution (ReLU) plus a 1×1-convolution skip, summed and ReLU'd
/// (dilations 2 and 4). `(kernel, dilation)` per block, for [`skip_head`].
pub const SCENE_HEAD: &[(usize, usize)] = &[(3, 2), (3, 4)];

/// The lighter head of backbone training (the faster-training paper): one
/// block of a 1×1 convolution (ReLU) plus a 1×1 skip. Being per-pixel, it
/// leaves all spatial reasoning to the shared backbone. For [`skip_head`].
pub const LIGHT_HEAD: &[(usize, usize)] = &[(1, 1)];

/// A heatmap head of skip blocks (`blocks`: `(kernel, dilation)` each, e.g.
/// [`SCENE_HEAD`] or [`LIGHT_HEAD`]), `channels` wide, then a 1×1
/// convolution to `landmarks` heatmaps. Layers `NAME.blockI.{conv,skip,add}`
/// and `NAME.heatmaps`; returns the heatmap tensor.
pub fn skip_head(
    b: &mut GraphBuilder,
    name: &str,
    input: &str,
    channels: usize,
    landmarks: usize,
    blocks: &[(usize, usize)],
) -> String {
    let mut x = input.to_string();
    for (i, &(k, d)) in blocks.iter().enumerate() {
        x = skip_block(b, &format!("{name}.block{i}"), &x, channels, k, d);
    }
    b.conv(&format!("{name}.heatmaps"), &x, ConvSpec::new(landmarks, 1))
}

/// `relu(conv_k×k,dilation(x) (ReLU) + conv_1×1(x))`: layers `NAME.conv`,
/// `NAME.skip`, `NAME.add`, all `channels` wide. Returns the sum.
fn skip_block(
    b: &mut GraphBuilder,
    name: &str,
    x: &str,
    channels: usize,
    k: usize,
    dilation: usize,
) -> String {
    let y = b.conv(
        &format!("{name}.conv"),
        x,
        ConvSpec::new(channels, k)
            .dilation(dilation)
            .act(Activation::Relu),
    );
    let s = b.conv(&format!("{name}.skip"), x, ConvSpec::new(channels, 1));
    b.add(&format!("{name}.add"), &[&y, &s], Activation::Relu)
}
