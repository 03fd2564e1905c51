//! Builds `.sld` graphs layer by layer with initial (random) weights; the
//! architectures ([`super::lite0`], [`super::heads`], [`super::arch`]) and
//! the tests' hand-made graphs are written with it.

use std::collections::HashMap;

use sld_core::model::{Activation, Conv2d, Graph, InputSpec, Layer, ModelInfo, Op, Provenance, INPUT};
use sld_core::rng::SplitMix64;

use crate::io::safetensors::NamedTensor;

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
            normalize: Default::default(),
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

    /// Bilinear resampling of `input` to the height and width of `like`
    /// (sld-core's `resize` op).
    pub fn resize(&mut self, name: &str, input: &str, like: &str) -> String {
        let [c, _, _] = self.shapes[input];
        let [_, h, w] = self.shapes[like];
        self.layers.push(Layer {
            name: name.into(),
            op: Op::Resize {
                input: input.into(),
                like: like.into(),
            },
        });
        self.shapes.insert(name.into(), [c, h, w]);
        name.into()
    }

    /// The initial values of tensor `name`, to set them (constant layers).
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut NamedTensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
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
