//! `sld model` and `sld localize` from the command line.

use std::process::Command;

use serde_json::Value;

fn sld() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sld"))
}

/// `sld synth` of a 4-image, one-session, 64×48 room into `scene`.
fn tiny_scene(scene: &std::path::Path) -> Command {
    let mut c = sld();
    c.args([
        "synth",
        "--images",
        "4",
        "--sessions",
        "1",
        "--width",
        "64",
        "--height",
        "48",
        "--out",
    ])
    .arg(scene);
    c
}

#[test]
fn random_model_info_and_localize_json_lines() {
    let dir = std::env::temp_dir().join(format!("sld-localize-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("m.sld");
    let st = sld()
        .args([
            "model",
            "random",
            "--landmarks",
            "12",
            "--width",
            "64",
            "--height",
            "48",
            "--out",
        ])
        .arg(&model)
        .status()
        .unwrap();
    assert!(st.success());
    let info = sld().args(["model", "info"]).arg(&model).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("input          64x48x3") && text.contains("landmarks      12"),
        "{text}"
    );

    // An Indoor6-style image with its sidecar intrinsics, at twice the size.
    let img = image::RgbImage::from_fn(128, 96, |x, y| image::Rgb([(x * 2) as u8, (y * 2) as u8, 90]));
    let png = dir.join("frame-000001.color.png");
    img.save(&png).unwrap();
    std::fs::write(
        dir.join("frame-000001.intrinsics.txt"),
        "128 96 100 63.5 47.5 0.0 frame-000001.jpg\n",
    )
    .unwrap();
    let out = sld()
        .args(["localize", "--model"])
        .arg(&model)
        .arg(&png)
        .output()
        .unwrap();
    let line: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["image"], png.display().to_string());
    // Random weights rarely give a pose, but either way the line is complete.
    if line["ok"] == true {
        assert!(
            line["R"].is_array() && line["t"].is_array() && line["times_us"]["cnn"].as_f64().unwrap() > 0.0
        );
    } else {
        assert!(line["error"].is_string());
    }

    // No intrinsics: a JSON error line for that image and a failing exit code.
    let bare = dir.join("bare.png");
    img.save(&bare).unwrap();
    let out = sld()
        .args(["localize", "--model"])
        .arg(&model)
        .arg(&bare)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let line: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(line["ok"], false);
    assert!(line["error"].as_str().unwrap().contains("intrinsics"));
    // --camera works instead.
    let out = sld()
        .args(["localize", "--camera", "100,100,63.5,47.5", "--model"])
        .arg(&model)
        .arg(&bare)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Not a model: a clear error.
    let out = sld()
        .args(["localize", "--model"])
        .arg(&png)
        .arg(&png)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable model"));
}

/// `sld eval` with a model of another scene warns (issue 19, item 14):
/// here none of its landmarks projects into the scene's images.
#[test]
fn eval_warns_when_the_model_is_not_this_scenes() {
    let dir = std::env::temp_dir().join(format!("sld-eval-warn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scene = dir.join("scene");
    let model = dir.join("m.sld");
    let ok = |c: &mut Command| assert!(c.output().unwrap().status.success(), "{c:?}");
    ok(&mut tiny_scene(&scene));
    ok(sld()
        .args([
            "model",
            "random",
            "--landmarks",
            "12",
            "--width",
            "64",
            "--height",
            "48",
            "--out",
        ])
        .arg(&model));
    let run = || {
        let out = sld()
            .args(["eval", "--split", "train", "--model"])
            .arg(&model)
            .arg("--scene")
            .arg(&scene)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The random model's landmarks (seeded, in a 4 m box by the origin)
    // lie where none of the rendered room's cameras looks.
    let err = run();
    assert!(
        err.contains("warning: no landmark of") && err.contains("projects into any evaluated image"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Absurd sizes fail with an `error:` line before anything is allocated
/// (issue 19, item 5): out of range at parse time, or over the machine's
/// memory by the training estimate; no output folder is left behind.
#[test]
fn absurd_training_sizes_fail_before_allocating() {
    let dir = std::env::temp_dir().join(format!("sld-absurd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scene = dir.join("scene");
    let st = tiny_scene(&scene).output().unwrap();
    assert!(st.status.success());
    let lm = dir.join("lm.txt");
    std::fs::write(&lm, "4\n0 0 0 3\n1 1 0 3\n2 0 1 3\n3 1 1 4\n").unwrap();
    let out = dir.join("run");
    let train = |extra: &[&str]| {
        let o = sld()
            .args(["train", "full", "--scene"])
            .arg(&scene)
            .arg("--landmarks")
            .arg(&lm)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = train(&["--input-width", "65536", "--input-height", "65536"]);
    assert!(
        e.starts_with("error: invalid value '65536' for '--input-width"),
        "{e}"
    );
    let e = train(&[
        "--input-width",
        "4096",
        "--input-height",
        "4096",
        "--batch",
        "1024",
        "--width",
        "1024",
    ]);
    assert!(
        e.starts_with("error: training needs at least") && e.contains("GB are available"),
        "{e}"
    );
    assert!(!e.contains("panicked") && !e.contains("memory allocation"), "{e}");
    assert!(!out.exists(), "an empty output folder was left behind");
    let _ = std::fs::remove_dir_all(&dir);
}
