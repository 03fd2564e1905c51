//! `sld pnp` end to end: exact poses back from a file, clear errors on bad
//! files.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

fn sld() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sld"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sld-pnp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A world-to-camera pose: rotation by 0.3 rad about (1, 2, 3)/|·|, t.
fn pose() -> ([[f64; 3]; 3], [f64; 3]) {
    let k = [1.0f64, 2.0, 3.0];
    let n = (k[0] * k[0] + k[1] * k[1] + k[2] * k[2]).sqrt();
    let (x, y, z) = (k[0] / n, k[1] / n, k[2] / n);
    let (s, c) = 0.3f64.sin_cos();
    let r = [
        [
            c + x * x * (1.0 - c),
            x * y * (1.0 - c) - z * s,
            x * z * (1.0 - c) + y * s,
        ],
        [
            y * x * (1.0 - c) + z * s,
            c + y * y * (1.0 - c),
            y * z * (1.0 - c) - x * s,
        ],
        [
            z * x * (1.0 - c) - y * s,
            z * y * (1.0 - c) + x * s,
            c + z * z * (1.0 - c),
        ],
    ];
    (r, [0.1, -0.2, 0.5])
}

fn case(n: usize) -> Value {
    let (r, t) = pose();
    let (f, cx, cy) = (550.0, 320.0, 240.0);
    let mut p2 = vec![];
    let mut p3 = vec![];
    for i in 0..n {
        // Camera-frame point, then back to the world: X = Rᵀ (x − t).
        let xc = [
            ((i * 7) % 11) as f64 * 0.3 - 1.5,
            ((i * 5) % 7) as f64 * 0.3 - 1.0,
            3.0 + (i % 4) as f64,
        ];
        let d = [xc[0] - t[0], xc[1] - t[1], xc[2] - t[2]];
        let xw: Vec<f64> = (0..3)
            .map(|j| r[0][j] * d[0] + r[1][j] * d[1] + r[2][j] * d[2])
            .collect();
        p2.push(vec![f * xc[0] / xc[2] + cx, f * xc[1] / xc[2] + cy]);
        p3.push(xw);
    }
    json!({"camera": {"width": 640, "height": 480, "fx": f, "fy": f, "cx": cx, "cy": cy, "note": "ignored"},
           "points2d": p2, "points3d": p3})
}

#[test]
fn solves_cases_in_order_with_exact_poses() {
    let input = tmp("ok.json");
    let output = tmp("ok.out.json");
    let mut degenerate = case(4);
    degenerate["points3d"] = json!([[0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]]);
    std::fs::write(
        &input,
        json!({"cases": [case(30), degenerate, case(12)]}).to_string(),
    )
    .unwrap();
    let st = sld()
        .args(["pnp", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .status()
        .unwrap();
    assert!(st.success());
    let out: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let res = out["results"].as_array().unwrap();
    assert_eq!(res.len(), 3);
    let (r, t) = pose();
    for k in [0, 2] {
        assert_eq!(res[k]["ok"], true);
        for i in 0..3 {
            assert!((res[k]["t"][i].as_f64().unwrap() - t[i]).abs() < 1e-6);
            for j in 0..3 {
                assert!((res[k]["R"][i][j].as_f64().unwrap() - r[i][j]).abs() < 1e-6);
            }
        }
        assert!(res[k]["time_us"].as_f64().unwrap() > 0.0);
        assert!(res[k]["iterations"].as_u64().unwrap() >= 1);
    }
    assert_eq!(res[0]["inliers"], 30);
    // A degenerate case is reported, not dropped.
    assert_eq!(res[1]["ok"], false);
    assert!(res[1]["error"].as_str().unwrap().contains("coincident"));
}

/// Runs `sld pnp` on an input file holding `text`.
fn run_pnp(text: &str, name: &str) -> std::process::Output {
    let input = tmp(&format!("{name}.json"));
    std::fs::write(&input, text).unwrap();
    sld()
        .args(["pnp", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(tmp(&format!("{name}.out.json")))
        .output()
        .unwrap()
}

fn expect_error(cases: Value, needle: &str) {
    let out = run_pnp(&cases.to_string(), "bad");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

/// Solves `cases`; returns the results (the run must succeed).
fn results(cases: Value) -> Vec<Value> {
    let out = run_pnp(&cases.to_string(), "cases");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(tmp("cases.out.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["results"].as_array().unwrap().clone()
}

/// A bad case is that case's error, naming the case and the field; the
/// cases around it are still solved (one camera with fx = 0 used to abort
/// the whole batch). A file that is not a cases file fails as a whole.
#[test]
fn bad_cases_are_reported_per_case_and_bad_files_fail() {
    let mut short = case(6);
    short["points3d"].as_array_mut().unwrap().pop();
    let mut no_focal = case(6);
    no_focal["camera"]["fx"] = json!(0.0);
    let mut negative = case(6);
    negative["confidence"] = json!([1, 1, 1, -1, 1, 1]);
    let mut few = case(6);
    few["confidence"] = json!([1, 1]);
    let r = results(json!({"cases": [case(6), short, no_focal, case(6), negative, few]}));
    assert_eq!(r.len(), 6);
    for k in [0, 3] {
        assert_eq!(r[k]["ok"], true, "case {k}: {}", r[k]);
    }
    for (k, needle) in [
        (1, "case 1: field \"points3d\" has 5 entries"),
        (2, "case 2: field \"camera\""),
        (4, "case 4: field \"confidence\"[3]"),
        (5, "case 5: field \"confidence\" has 2 entries"),
    ] {
        assert_eq!(r[k]["ok"], false);
        let e = r[k]["error"].as_str().unwrap();
        assert!(e.contains(needle), "case {k}: '{needle}' not in '{e}'");
    }
    expect_error(json!({"cases": [{"camera": {"width": 1}}]}), "missing field");
    expect_error(json!({"nothing": []}), "missing field `cases`");
    assert!(!run_pnp("{\"cases\": [", "truncated").status.success());
    let out = sld()
        .args(["pnp", "--input", "/nonexistent/cases.json", "--output", "x.json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/cases.json"));
}
