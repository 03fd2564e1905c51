//! sld-core's GEMM under Miri, against a naive product. Run three ways
//! (RELIABILITY.md): plain (portable kernel), and with
//! `RUSTFLAGS=-Ctarget-feature=+avx2,+fma` or `+avx512f,+avx2,+fma`, which
//! make `is_x86_feature_detected!` true at compile time so the
//! `#[target_feature]` dispatch (the only `unsafe` in sld-core) is taken.

use sld_core::nn::gemm::sgemm;

#[test]
fn gemm_matches_a_naive_product() {
    // Odd sizes: partial register tiles and panels on every edge.
    for &(m, k, n) in &[(1, 1, 1), (5, 7, 19), (9, 3, 70)] {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 13) as f32 - 6.0) / 8.0).collect();
        let mut c = vec![0.5f32; m * n];
        assert!(sgemm(m, k, n, &a, &b, &mut c, true));
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 0.5 + (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                assert!((c[i * n + j] - want).abs() < 1e-4, "({m},{k},{n}) at ({i},{j})");
            }
        }
    }
    // Sizes that do not fit the slices are refused, not read.
    assert!(!sgemm(3, 3, 3, &[0.0; 8], &[0.0; 9], &mut [0.0; 9], false));
    assert!(!sgemm(
        usize::MAX,
        2,
        2,
        &[0.0; 4],
        &[0.0; 4],
        &mut [0.0; 4],
        false
    ));
}

/// A `.sld` file built here: input 3×6×7; `a` 1×1 3→20 (ReLU6), `b`
/// depthwise 3×3 padding 1, `d` 3×3 dilation 2 padding 2 20→8 (ReLU, a
/// direct convolution), `c` 1×1 8→4 (the heatmaps). At AVX2 or AVX-512,
/// `a`, `b` and `d` write channel-blocked tensors, so the blocked kernels
/// (`nn::blocked`, the explicit vectors of `nn::simd`) run.
fn tiny_blocked_model() -> Vec<u8> {
    let graph = r#"{"graph":{"input":{"width":7,"height":6,"channels":3,"mean":[0.0,0.0,0.0],"std":[1.0,1.0,1.0]},"layers":[{"name":"a","op":"conv2d","input":"image","weight":"a.weight","bias":"a.bias","stride":[1,1],"padding":[0,0,0,0],"dilation":[1,1],"groups":1,"activation":"relu6"},{"name":"b","op":"conv2d","input":"a","weight":"b.weight","bias":"b.bias","stride":[1,1],"padding":[1,1,1,1],"dilation":[1,1],"groups":20,"activation":"none"},{"name":"d","op":"conv2d","input":"b","weight":"d.weight","bias":"d.bias","stride":[1,1],"padding":[2,2,2,2],"dilation":[2,2],"groups":1,"activation":"relu"},{"name":"c","op":"conv2d","input":"d","weight":"c.weight","bias":"c.bias","stride":[1,1],"padding":[0,0,0,0],"dilation":[1,1],"groups":1,"activation":"none"}],"outputs":["c"]},"stride":1,"landmarks":4,"heatmaps":"gaussian","scene":"miri","provenance":{"command":"","date":""}}"#;
    let tensors: [(&str, Vec<usize>); 9] = [
        ("a.weight", vec![20, 3, 1, 1]),
        ("a.bias", vec![20]),
        ("b.weight", vec![20, 1, 3, 3]),
        ("b.bias", vec![20]),
        ("d.weight", vec![8, 20, 3, 3]),
        ("d.bias", vec![8]),
        ("c.weight", vec![4, 8, 1, 1]),
        ("c.bias", vec![4]),
        ("landmarks", vec![4, 3]),
    ];
    let mut header = format!(r#"{{"__metadata__":{{"sld.version":"1","sld.model":{graph:?}}}"#);
    let mut data = Vec::new();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let n: usize = shape.iter().product();
        let start = data.len();
        for k in 0..n {
            let v = (((i * 31 + k * 7) % 17) as f32 - 8.0) / 8.0;
            data.extend_from_slice(&v.to_le_bytes());
        }
        header += &format!(
            r#","{name}":{{"dtype":"F32","shape":{shape:?},"data_offsets":[{start},{}]}}"#,
            data.len()
        );
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&data);
    bytes
}

/// The heatmaps, on `threads` threads.
fn forward(m: &sld_core::model::Model<Vec<u8>>, threads: usize) -> Vec<f32> {
    let plan = m.plan();
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len * threads];
    let x = sld_core::nn::input_mut(plan, &mut arena).unwrap();
    for (i, v) in x.iter_mut().enumerate() {
        *v = ((i * 13 % 23) as f32 - 11.0) / 11.0;
    }
    let pool = (threads > 1).then(|| sld_core::nn::Pool::new(threads).unwrap());
    let par = sld_core::nn::Par::new(pool.as_ref());
    sld_core::nn::run_par(plan, m.weights(), &mut arena, &mut scratch, par).unwrap();
    sld_core::nn::output(plan, &arena, 0).unwrap().to_vec()
}

#[test]
fn blocked_layout_matches_the_planar_plan() {
    use sld_core::model::{plan::Layout, Model};
    let bytes = tiny_blocked_model();
    let blocked = Model::load(bytes.clone()).unwrap();
    let planar = Model::load_planar(bytes).unwrap();
    let has_blocked = blocked.plan().tensors.iter().any(|t| t.layout == Layout::Blocked);
    // Blocked exactly where the CPU level prefers it (AVX2 or AVX-512:
    // the RUSTFLAGS runs of this test).
    assert_eq!(has_blocked, sld_core::nn::blocked::preferred());
    let (got, want) = (forward(&blocked, 1), forward(&planar, 1));
    assert_eq!(got.len(), 4 * 6 * 7);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
    }
    // Two threads share each output (split by rows, written through one
    // pointer): Miri checks the parts never race, and the bits match.
    let two = forward(&blocked, 2);
    assert!(two.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
}
