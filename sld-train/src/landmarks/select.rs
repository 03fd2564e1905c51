//! Landmark selection (SLD / SLD*): score every 3D point by how salient and
//! well observed it is, then pick points greedily in score order keeping a
//! minimum distance, halving the distance until enough are chosen.
//!
//! Score of a point seen from cameras `i` (depth `z_i` along the optical
//! axis, unit ray `b_i` from the camera to the point):
//!
//! ```text
//! min(1, std(z) / mean(z)) + 0.25·log2(track length)
//!   + sessions observed / sessions total + angular span
//! angular span = acos(clamp(1 − 2·λmin/λmax, 0, 1)),  λ eigenvalues of mean_i(I − b_i b_iᵀ)
//! ```
//!
//! Points are kept only with track length > `min_track`, mean depth <
//! `max_mean_depth` (metres) and angular span > `min_angle_span` (radians).

use std::collections::HashMap;

use sld_core::nalgebra::{Matrix3, Vector3};
use sld_core::Pose;

use crate::data::scene::TrackedPoint;

/// Selection options (defaults: the issue's SLD constants).
#[derive(Clone, Debug, PartialEq)]
pub struct SelectOptions {
    /// Keep points seen by more than this many images.
    pub min_track: usize,
    /// Keep points whose mean depth is below this, metres.
    pub max_mean_depth: f64,
    /// Keep points whose angular span exceeds this, radians.
    pub min_angle_span: f64,
    /// Starting minimum distance between landmarks, metres (halved per sweep).
    pub radius: f64,
}

impl SelectOptions {
    /// Loose filters for short synthetic camera paths (track > 10 images,
    /// rays spanning > 0.1 rad, 1 m starting spacing): far more candidates,
    /// so every view keeps enough landmarks (EXPERIMENTS.md, "The geometry
    /// ceiling"). Used by `sld demo` and the CI localisation check.
    pub fn loose() -> Self {
        Self {
            min_track: 10,
            min_angle_span: 0.1,
            radius: 1.0,
            ..Self::default()
        }
    }
}

impl Default for SelectOptions {
    fn default() -> Self {
        Self {
            min_track: 25,
            max_mean_depth: 5.0,
            min_angle_span: 0.5,
            radius: 3.0,
        }
    }
}

/// Saliency score of one point, or `None` when a filter rejects it.
/// `sessions[i]` is the recording session of image `i`; `n_sessions` the
/// number of distinct sessions.
pub fn score(
    p: &TrackedPoint,
    poses: &[Pose],
    sessions: &[usize],
    n_sessions: usize,
    o: &SelectOptions,
) -> Option<f64> {
    if p.images.len() <= o.min_track {
        return None;
    }
    let x = Vector3::from(p.xyz);
    let mut depths = Vec::with_capacity(p.images.len());
    let mut m = Matrix3::<f64>::zeros();
    let mut seen_sessions: Vec<usize> = Vec::new();
    for &i in &p.images {
        let pose = poses.get(i)?;
        let z = pose.transform(&x)[2];
        depths.push(z);
        let b = (x - pose.centre()).try_normalize(1e-12)?;
        m += Matrix3::identity() - b * b.transpose();
        let s = *sessions.get(i)?;
        if !seen_sessions.contains(&s) {
            seen_sessions.push(s);
        }
    }
    let n = depths.len() as f64;
    m /= n;
    let mean = depths.iter().sum::<f64>() / n;
    if !(mean > 0.0 && mean < o.max_mean_depth) {
        return None;
    }
    let std = (depths.iter().map(|z| (z - mean) * (z - mean)).sum::<f64>() / n).sqrt();
    let ev = m.symmetric_eigenvalues();
    let (lmin, lmax) = (ev.min(), ev.max());
    if lmax.is_nan() || lmax <= 0.0 {
        return None;
    }
    let span = (1.0 - 2.0 * lmin / lmax).clamp(0.0, 1.0).acos();
    if span.is_nan() || span <= o.min_angle_span {
        return None;
    }
    Some(
        (std / mean).min(1.0)
            + 0.25 * n.log2()
            + seen_sessions.len() as f64 / n_sessions.max(1) as f64
            + span,
    )
}

/// A chosen landmark: its point index and the minimum distance (metres) it
/// keeps from every landmark chosen before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Selected {
    /// Index into the point list.
    pub index: usize,
    /// Radius of the sweep that accepted it.
    pub radius: f64,
}

/// Picks up to `count` landmarks: sweeps the points in decreasing score,
/// accepting each point at least `r` from every accepted one; halves `r`
/// after each sweep until `count` are chosen or `r` < 1 mm. Uses a uniform
/// grid of cell size `r`, so each test looks at 27 cells.
pub fn select(points: &[TrackedPoint], scores: &[Option<f64>], count: usize, radius: f64) -> Vec<Selected> {
    let mut order: Vec<usize> = (0..points.len())
        .filter(|&i| scores.get(i).copied().flatten().is_some())
        .collect();
    order.sort_by(|&a, &b| {
        scores[b]
            .unwrap_or(0.0)
            .total_cmp(&scores[a].unwrap_or(0.0))
            .then(a.cmp(&b))
    });
    let mut chosen: Vec<usize> = Vec::new();
    let mut radii: Vec<f64> = Vec::new();
    let mut taken = vec![false; points.len()];
    let mut r = radius;
    while chosen.len() < count && r >= 1e-3 {
        let cell = |p: &[f64; 3]| {
            [
                (p[0] / r).floor() as i64,
                (p[1] / r).floor() as i64,
                (p[2] / r).floor() as i64,
            ]
        };
        let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
        for &c in &chosen {
            grid.entry(cell(&points[c].xyz)).or_default().push(c);
        }
        for &i in &order {
            if chosen.len() >= count {
                break;
            }
            if taken[i] {
                continue;
            }
            let p = &points[i].xyz;
            let k = cell(p);
            let far = (-1..=1).all(|dx| {
                (-1..=1).all(|dy| {
                    (-1..=1).all(|dz| {
                        grid.get(&[k[0] + dx, k[1] + dy, k[2] + dz]).is_none_or(|v| {
                            v.iter().all(|&c| {
                                let q = &points[c].xyz;
                                (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2) >= r * r
                            })
                        })
                    })
                })
            });
            if far {
                taken[i] = true;
                chosen.push(i);
                radii.push(r);
                grid.entry(k).or_default().push(i);
            }
        }
        r *= 0.5;
    }
    chosen
        .into_iter()
        .zip(radii)
        .map(|(index, radius)| Selected { index, radius })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sld_core::rng::SplitMix64;

    fn cameras_on_circle(n: usize, radius: f64) -> Vec<Pose> {
        // Cameras on a horizontal circle around the origin, looking at it.
        (0..n)
            .map(|i| {
                let a = i as f64 / n as f64 * std::f64::consts::TAU;
                let c = Vector3::new(radius * a.cos(), radius * a.sin(), 0.0);
                let fwd = (-c).normalize();
                let right = fwd.cross(&Vector3::z()).normalize();
                let down = fwd.cross(&right);
                Pose::from_centre(
                    Matrix3::from_rows(&[right.transpose(), down.transpose(), fwd.transpose()]),
                    c,
                )
            })
            .collect()
    }

    #[test]
    fn score_matches_closed_form_for_a_ring_of_cameras() {
        // 32 cameras at 2 m around a point at the origin, two sessions.
        let poses = cameras_on_circle(32, 2.0);
        let sessions: Vec<usize> = (0..32).map(|i| i % 2).collect();
        let p = TrackedPoint {
            xyz: [0.0; 3],
            images: (0..32).collect(),
        };
        let s = score(&p, &poses, &sessions, 2, &SelectOptions::default()).unwrap();
        // All depths 2 m (std 0); rays in a plane: mean(I − bbᵀ) has
        // eigenvalues 1/2, 1/2, 1 → span = acos(1 − 2·(1/2)/1) = π/2.
        let expected = 0.0 + 0.25 * 32f64.log2() + 1.0 + std::f64::consts::FRAC_PI_2;
        assert!((s - expected).abs() < 1e-9, "{s} vs {expected}");
        // Filters: too few observations, too far, too narrow.
        let short = TrackedPoint {
            xyz: [0.0; 3],
            images: (0..20).collect(),
        };
        assert!(score(&short, &poses, &sessions, 2, &SelectOptions::default()).is_none());
        let far = cameras_on_circle(32, 8.0);
        assert!(score(&p, &far, &sessions, 2, &SelectOptions::default()).is_none());
        let one_side = TrackedPoint {
            xyz: [0.0; 3],
            images: (0..30).map(|i| i % 2).collect(),
        };
        assert!(score(&one_side, &poses, &sessions, 2, &SelectOptions::default()).is_none());
    }

    #[test]
    fn greedy_selection_keeps_the_minimum_distance_and_prefers_high_scores() {
        let mut rng = SplitMix64::new(5);
        let points: Vec<TrackedPoint> = (0..20_000)
            .map(|_| TrackedPoint {
                xyz: [rng.unit_f64() * 10.0, rng.unit_f64() * 8.0, rng.unit_f64() * 3.0],
                images: vec![],
            })
            .collect();
        let scores: Vec<Option<f64>> = (0..points.len())
            .map(|i| if i % 7 == 0 { None } else { Some(rng.unit_f64()) })
            .collect();
        for (count, radius) in [(50, 3.0), (300, 3.0), (1000, 1.0)] {
            let sel = select(&points, &scores, count, radius);
            assert_eq!(sel.len(), count);
            assert!(sel.iter().all(|s| scores[s.index].is_some()));
            assert!(
                sel.iter().any(|s| s.radius == radius),
                "the first sweep uses the full radius"
            );
            // Each landmark keeps its sweep's radius from all earlier ones.
            for (b, later) in sel.iter().enumerate() {
                for earlier in &sel[..b] {
                    let (p, q) = (points[later.index].xyz, points[earlier.index].xyz);
                    let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
                    assert!(d >= later.radius, "{d} < {}", later.radius);
                }
            }
        }
        // The best-scoring point is always the first landmark.
        let best = (0..points.len())
            .filter(|&i| scores[i].is_some())
            .max_by(|&a, &b| scores[a].unwrap().total_cmp(&scores[b].unwrap()))
            .unwrap();
        assert_eq!(select(&points, &scores, 10, 3.0)[0].index, best);
    }
}
