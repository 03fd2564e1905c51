//! The ImageNet import checked honestly: the converted EfficientNet-Lite0,
//! with its classifier, puts the right class in the top 5 of a cat and a
//! cup of coffee. Needs `scripts/fetch-imagenet-weights.sh` (CI runs it);
//! without the files the test prints why it is skipped.

use std::path::PathBuf;

#[test]
fn imported_lite0_classifies_photographs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/imagenet");
    let pth = dir.join("efficientnet-lite0-57934424.pth");
    if !pth.exists() || !dir.join("coffee.png").exists() {
        eprintln!(
            "SKIPPED: {} missing; run scripts/fetch-imagenet-weights.sh",
            pth.display()
        );
        return;
    }
    let sd = sld_train::io::pth::read_legacy_pth(&pth).unwrap();
    // 16 blocks: 5 + 15·8 BN'd convs… every float tensor of the checkpoint is read.
    assert!(sd.len() > 200, "{}", sd.len());
    let t = sld_train::imagenet::lite0_tensors(&sd).unwrap();
    let out = std::env::temp_dir().join(format!("sld-lite0-{}.safetensors", std::process::id()));
    sld_train::imagenet::write_weights(&out, &t, "test").unwrap();
    // ImageNet classes: 281 tabby, 282 tiger cat, 285 Egyptian cat;
    // 967 espresso, 968 cup, 504 coffee mug.
    for (photo, want) in [("chelsea.png", [281, 282, 285]), ("coffee.png", [967, 968, 504])] {
        let top = sld_train::imagenet::classify(&out, &dir.join(photo)).unwrap();
        assert!(
            top.iter().any(|(c, _)| want.contains(c)),
            "{photo}: top-5 {top:?}"
        );
        assert!(want.contains(&top[0].0), "{photo}: top-1 {:?}", top[0]);
    }
    let _ = std::fs::remove_file(out);
}
