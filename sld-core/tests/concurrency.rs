//! Several `Localizer`s used from several threads at once give exactly the
//! results of sequential use (poses, detections, inlier counts), sharing
//! one model buffer (zero-copy weights). Run in CI under `--release` too
//! (`cargo test --release -p sld-core --test concurrency`), where the
//! vectorised kernels and the optimiser's reorderings are in play.

use sld_core::{Camera, Image, Localizer, PixelFormat};

const MODEL: &[u8] = include_bytes!("../../tests/miri/fixtures/model.sld");
const PPM: &[u8] = include_bytes!("../../tests/miri/fixtures/image.ppm");

/// The fixture image (P6, 96×64) as RGB bytes.
fn rgb() -> Vec<u8> {
    let header_end = PPM
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(2)
        .map(|(i, _)| i + 1)
        .unwrap();
    PPM[header_end..].to_vec()
}

/// Frame `k`: the kit image shifted by `k % 5` pixels, and a camera whose
/// focal length varies with `k` (so frames differ in result).
fn frame(base: &[u8], k: usize) -> (Vec<u8>, Camera) {
    let (w, h) = (96usize, 64usize);
    let s = k % 5;
    let mut img = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in s..w {
            let (d, src) = (3 * (y * w + x), 3 * (y * w + x - s));
            img[d..d + 3].copy_from_slice(&base[src..src + 3]);
        }
    }
    let cam = Camera::pinhole(96, 64, 86.4 + k as f64 * 0.25, 47.5, 31.5).unwrap();
    (img, cam)
}

/// Everything a frame's localisation returns, as bits.
fn run(loc: &mut Localizer<&[u8]>, img: &[u8], cam: &Camera) -> Vec<u64> {
    let image = Image::new(96, 64, 96 * 3, PixelFormat::Rgb8, img).unwrap();
    let mut out = Vec::new();
    match loc.localize(&image, cam) {
        Ok(l) => {
            out.extend(l.pose.to_rows().iter().flatten().map(|v| v.to_bits()));
            out.push(l.inliers as u64);
        }
        Err(e) => out.push(format!("{e}").len() as u64),
    }
    for d in loc.last_detections() {
        out.extend([
            d.landmark as u64,
            d.u.to_bits() as u64,
            d.v.to_bits() as u64,
            d.confidence.to_bits() as u64,
        ]);
    }
    out
}

#[test]
fn localizers_on_several_threads_match_sequential_use() {
    let base = rgb();
    let frames: Vec<(Vec<u8>, Camera)> = (0..12).map(|k| frame(&base, k)).collect();
    let mut seq_loc = Localizer::new(MODEL).unwrap();
    let sequential: Vec<Vec<u64>> = frames.iter().map(|(i, c)| run(&mut seq_loc, i, c)).collect();
    assert!(
        sequential.iter().filter(|r| r.len() > 13).count() >= 6,
        "most frames should localise (else the comparison is weak)"
    );
    // 4 threads, each with its own Localizer over the same model bytes,
    // each walking the frames in a different order, 3 rounds.
    let results: Vec<Vec<(usize, Vec<u64>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let frames = &frames;
                s.spawn(move || {
                    let mut loc = Localizer::new(MODEL).unwrap();
                    let mut got = Vec::new();
                    for round in 0..3 {
                        for j in 0..frames.len() {
                            let k = (j * (2 * t + 1) + round + t) % frames.len();
                            got.push((k, run(&mut loc, &frames[k].0, &frames[k].1)));
                        }
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, got) in results.iter().enumerate() {
        for (k, r) in got {
            assert_eq!(
                r, &sequential[*k],
                "thread {t}, frame {k} differs from sequential use"
            );
        }
    }
}
