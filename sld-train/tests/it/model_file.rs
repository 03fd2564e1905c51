//! `.sld` loading rejects every malformed file at load, with a precise error.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use sld_core::model::{Activation, Model, ModelError, ModelInfo, META_MODEL, META_VERSION};
use sld_train::net::builder::{ConvSpec, GraphBuilder};
use sld_train::net::export::{to_sld_bytes, NamedTensor};

fn small() -> (ModelInfo, Vec<NamedTensor>) {
    let mut b = GraphBuilder::new(3, 32, 48, 9);
    let s = b.conv(
        "stem",
        "image",
        ConvSpec::new(8, 3).stride(2).act(Activation::Relu6),
    );
    let d = b.conv("down", &s, ConvSpec::new(8, 3).stride(2).groups(0));
    let h = b.conv("head", &d, ConvSpec::new(4, 1));
    b.finish(&[&h], 4, "unit")
}

fn landmarks(n: usize) -> Vec<[f32; 3]> {
    (0..n).map(|i| [i as f32, 0.5, 2.0]).collect()
}

fn bytes(info: &ModelInfo, t: &[NamedTensor]) -> Vec<u8> {
    to_sld_bytes(info, t, &landmarks(info.landmarks as usize)).unwrap()
}

/// Writes a safetensors file by hand (for cases the exporter refuses).
fn raw(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32 * 0.01).to_le_bytes()).collect()
}

#[test]
fn a_valid_file_loads_with_its_description() {
    let (info, t) = small();
    let b = bytes(&info, &t);
    let m = Model::load(b.as_slice()).unwrap();
    assert_eq!(m.info(), &info);
    assert_eq!(m.landmarks().len(), 4);
    assert_eq!(m.landmarks()[2], [2.0, 0.5, 2.0]);
    assert_eq!(m.plan().heatmap_hw, [8, 12]);
    assert!(m.plan().arena_len > 0);
    // Vec<u8> storage works too (weights owned or borrowed, same values).
    let owned = Model::load(b.clone()).unwrap();
    assert_eq!(owned.weights(), m.weights());
}

#[test]
fn misaligned_bytes_are_copied_not_misread() {
    let (info, t) = small();
    let b = bytes(&info, &t);
    let mut shifted = vec![0u8; b.len() + 1];
    shifted[1..].copy_from_slice(&b);
    let aligned = Model::load(b.as_slice()).unwrap();
    let m = Model::load(&shifted[1..]).unwrap();
    assert!(!m.is_zero_copy());
    assert_eq!(m.weights(), aligned.weights());
}

#[test]
fn truncated_and_garbage_files_are_rejected() {
    let (info, t) = small();
    let b = bytes(&info, &t);
    // Cut inside the header: the container is invalid; cut in the data:
    // the header's declared size names the truncation.
    for cut in [0, 4, 8, 100, b.len() / 2, b.len() - 1] {
        let e = Model::load(&b[..cut]).unwrap_err();
        assert!(
            matches!(e, ModelError::Container(_))
                || matches!(e, ModelError::SizeMismatch { declared, actual } if declared == b.len() && actual == cut),
            "cut at {cut}: {e:?}"
        );
    }
    assert!(matches!(
        Model::load(&b[..b.len() - 1]),
        Err(ModelError::SizeMismatch { .. })
    ));
    assert!(matches!(
        Model::load(&b"not a model at all"[..]),
        Err(ModelError::Container(_))
    ));
}

#[test]
fn version_and_description_are_checked() {
    let lm = f32_bytes(12);
    let t = [("landmarks", Dtype::F32, vec![4, 3], lm)];
    assert_eq!(
        Model::load(raw(&t, &[]).as_slice()).unwrap_err(),
        ModelError::MissingVersion
    );
    assert_eq!(
        Model::load(raw(&t, &[(META_VERSION, "2")]).as_slice()).unwrap_err(),
        ModelError::UnsupportedVersion("2".into())
    );
    assert!(matches!(
        Model::load(raw(&t, &[(META_VERSION, "1")]).as_slice()),
        Err(ModelError::BadDescription(_))
    ));
    assert!(matches!(
        Model::load(raw(&t, &[(META_VERSION, "1"), (META_MODEL, "{\"graph\": 3}")]).as_slice()),
        Err(ModelError::BadDescription(_))
    ));
    let msg = ModelError::UnsupportedVersion("2".into()).to_string();
    assert!(msg.contains("version '2'") && msg.contains("reads 1"), "{msg}");
}

#[test]
fn missing_wrong_dtype_and_misshapen_tensors_are_named() {
    let (info, t) = small();
    // Missing weight.
    let without: Vec<NamedTensor> = t.iter().filter(|x| x.name != "down.weight").cloned().collect();
    assert_eq!(
        Model::load(bytes(&info, &without).as_slice()).unwrap_err(),
        ModelError::MissingTensor("down.weight".into())
    );
    // Wrong shape (bias too long).
    let mut bad = t.clone();
    let k = bad.iter().position(|x| x.name == "stem.bias").unwrap();
    bad[k] = NamedTensor {
        name: "stem.bias".into(),
        shape: vec![9],
        data: vec![0.0; 9],
    };
    assert_eq!(
        Model::load(bytes(&info, &bad).as_slice()).unwrap_err(),
        ModelError::ShapeMismatch {
            tensor: "stem.bias".into(),
            found: vec![9],
            expected: vec![8]
        }
    );
    // Weight with the wrong input channels.
    let mut bad = t.clone();
    let k = bad.iter().position(|x| x.name == "head.weight").unwrap();
    bad[k] = NamedTensor {
        name: "head.weight".into(),
        shape: vec![4, 5, 1, 1],
        data: vec![0.0; 20],
    };
    assert!(matches!(
        Model::load(bytes(&info, &bad).as_slice()),
        Err(ModelError::ShapeMismatch { tensor, .. }) if tensor == "head.weight"
    ));
    // f16 weights.
    let json = serde_json::to_string(&info).unwrap();
    let mut tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = t
        .iter()
        .map(|x| {
            (
                x.name.as_str(),
                Dtype::F32,
                x.shape.clone(),
                x.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    tensors.push(("landmarks", Dtype::F32, vec![4, 3], f32_bytes(12)));
    let k = tensors.iter().position(|x| x.0 == "stem.weight").unwrap();
    let n: usize = tensors[k].2.iter().product();
    tensors[k].1 = Dtype::F16;
    tensors[k].3 = vec![0u8; 2 * n];
    let f = raw(&tensors, &[(META_VERSION, "1"), (META_MODEL, &json)]);
    assert_eq!(
        Model::load(f.as_slice()).unwrap_err(),
        ModelError::WrongDtype {
            tensor: "stem.weight".into(),
            dtype: "F16".into()
        }
    );
    // Landmark table of the wrong size.
    let k = tensors.iter().position(|x| x.0 == "landmarks").unwrap();
    tensors[k] = ("landmarks", Dtype::F32, vec![3, 3], f32_bytes(9));
    tensors.retain(|x| x.0 != "stem.weight");
    let f = raw(&tensors, &[(META_VERSION, "1"), (META_MODEL, &json)]);
    assert!(
        matches!(Model::load(f.as_slice()), Err(ModelError::ShapeMismatch { tensor, .. }) if tensor == "landmarks")
    );
}

#[test]
fn inconsistent_graphs_are_rejected() {
    let (info, t) = small();
    let check = |f: &dyn Fn(&mut ModelInfo), needle: &str| {
        let mut i = info.clone();
        f(&mut i);
        let b = to_sld_bytes(&i, &t, &landmarks(i.landmarks as usize)).unwrap();
        match Model::load(b.as_slice()) {
            Err(ModelError::BadGraph(m)) => assert!(m.contains(needle), "'{needle}' not in '{m}'"),
            other => panic!("expected BadGraph({needle}), got {other:?}"),
        }
    };
    use sld_core::model::Op;
    check(
        &|i| {
            if let Op::Conv2d(c) = &mut i.graph.layers[1].op {
                c.input = "nope".into()
            }
        },
        "reads 'nope'",
    );
    check(&|i| i.graph.layers[1].name = "stem".into(), "not unique");
    check(&|i| i.graph.outputs = vec!["ghost".into()], "reads 'ghost'");
    check(&|i| i.stride = 8, "at stride 8");
    check(
        &|i| {
            if let Op::Conv2d(c) = &mut i.graph.layers[1].op {
                c.groups = 3
            }
        },
        "groups 3",
    );
    check(
        &|i| {
            if let Op::Conv2d(c) = &mut i.graph.layers[1].op {
                c.stride = [0, 1]
            }
        },
        "stride",
    );
    check(&|i| i.graph.input.std = vec![1.0, 0.0, 1.0], "std > 0");
    check(&|i| i.graph.input.channels = 2, "1 or 3 channels");
    // Landmark count that the heads do not produce.
    let mut i = info.clone();
    i.landmarks = 5;
    let b = to_sld_bytes(&i, &t, &landmarks(5)).unwrap();
    assert!(matches!(Model::load(b.as_slice()), Err(ModelError::BadGraph(m)) if m.contains("5 landmarks")));
}
