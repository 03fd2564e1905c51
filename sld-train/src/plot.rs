//! Training curves as a PNG (the faster-training paper's Figure 7): loss,
//! validation pixel error and validation recall at 5 cm / 5° against the
//! epoch, read from a run's `metrics.jsonl`. One panel per quantity, one
//! line per scene for `sld train backbone` runs. Drawn with
//! embedded-graphics' built-in bitmap font, so no system font is needed.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;

use anyhow::{Context, Result};
use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Text};
use image::RgbImage;

/// One named line: `(epoch, value)` points in epoch order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend text (the scene, or empty for a single-scene run).
    pub name: String,
    /// Points; NaN or infinite values are skipped.
    pub points: Vec<(f64, f64)>,
}

/// The three quantities of a run, each as series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curves {
    /// Mean training loss per image.
    pub loss: Vec<Series>,
    /// Validation median pixel error, network-input pixels.
    pub pixel_error: Vec<Series>,
    /// Validation recall at 5 cm / 5°, percent.
    pub recall: Vec<Series>,
}

/// Reads the curves from `metrics.jsonl` text: lines of `sld train
/// full|head` (`loss`, `val_pixel_error`, `val_recall_5cm_5deg`) or of
/// `sld train backbone` (the same per scene under `scenes`). Lines that
/// are not JSON objects with an `epoch` are skipped.
pub fn curves(metrics_jsonl: &str) -> Curves {
    let mut by: [BTreeMap<String, Vec<(f64, f64)>>; 3] = Default::default();
    for line in metrics_jsonl.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(epoch) = v.get("epoch").and_then(|e| e.as_f64()) else {
            continue;
        };
        let rows: Vec<(String, &serde_json::Value)> = match v.get("scenes").and_then(|s| s.as_array()) {
            Some(scenes) => scenes
                .iter()
                .map(|s| {
                    (
                        s.get("scene").and_then(|n| n.as_str()).unwrap_or("?").to_string(),
                        s,
                    )
                })
                .collect(),
            None => vec![(String::new(), &v)],
        };
        for (name, row) in rows {
            for (k, (key, scale)) in [
                ("loss", 1.0),
                ("val_pixel_error", 1.0),
                ("val_recall_5cm_5deg", 100.0),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(y) = row.get(key).and_then(|y| y.as_f64()) {
                    by[k].entry(name.clone()).or_default().push((epoch, y * scale));
                }
            }
        }
    }
    let [l, p, r] = by.map(|m| {
        m.into_iter()
            .map(|(name, points)| Series { name, points })
            .collect::<Vec<_>>()
    });
    Curves {
        loss: l,
        pixel_error: p,
        recall: r,
    }
}

const PANEL_W: u32 = 320;
const PANEL_H: u32 = 240;
const COLOURS: [Rgb888; 6] = [
    Rgb888::new(31, 119, 180),
    Rgb888::new(214, 39, 40),
    Rgb888::new(44, 160, 44),
    Rgb888::new(148, 103, 189),
    Rgb888::new(255, 127, 14),
    Rgb888::new(23, 190, 207),
];

/// An `RgbImage` as an embedded-graphics target (pixels outside are dropped).
struct Canvas<'a>(&'a mut RgbImage);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Infallible> {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.0
                    .put_pixel(p.x as u32, p.y as u32, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// A short label for an axis value.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e4 || (a > 0.0 && a < 1e-2) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws one panel at `x0` (titled `title`, y from 0 when `from_zero`).
fn panel(c: &mut Canvas, x0: i32, title: &str, series: &[Series], from_zero: bool) {
    let black = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
    let grey = PrimitiveStyle::with_stroke(Rgb888::new(200, 200, 200), 1);
    let axis = PrimitiveStyle::with_stroke(Rgb888::BLACK, 1);
    let (left, top, right, bottom) = (x0 + 56, 24, x0 + PANEL_W as i32 - 12, PANEL_H as i32 - 30);
    let _ = Text::with_alignment(
        title,
        Point::new(x0 + PANEL_W as i32 / 2, 14),
        black,
        Alignment::Center,
    )
    .draw(c);
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.is_empty() {
        let _ = Text::with_alignment(
            "no data",
            Point::new((left + right) / 2, (top + bottom) / 2),
            black,
            Alignment::Center,
        )
        .draw(c);
        return;
    }
    let (mut xmin, mut xmax) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut ymin, mut ymax) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if from_zero {
        ymin = ymin.min(0.0);
    }
    if xmax - xmin < 1.0 {
        xmin -= 0.5;
        xmax += 0.5;
    }
    if ymax - ymin < 1e-12 {
        ymin -= 0.5;
        ymax += 0.5;
    }
    let px = |x: f64| left + ((x - xmin) / (xmax - xmin) * (right - left) as f64).round() as i32;
    let py = |y: f64| bottom - ((y - ymin) / (ymax - ymin) * (bottom - top) as f64).round() as i32;
    for k in 0..=4 {
        let y = ymin + (ymax - ymin) * k as f64 / 4.0;
        let _ = Line::new(Point::new(left, py(y)), Point::new(right, py(y)))
            .into_styled(grey)
            .draw(c);
        let _ =
            Text::with_alignment(&tick(y), Point::new(left - 4, py(y) + 3), black, Alignment::Right).draw(c);
    }
    let _ = Rectangle::with_corners(Point::new(left, top), Point::new(right, bottom))
        .into_styled(axis)
        .draw(c);
    for x in [xmin, xmax] {
        let _ = Text::with_alignment(
            &format!("{x:.0}"),
            Point::new(px(x), bottom + 12),
            black,
            Alignment::Center,
        )
        .draw(c);
    }
    let _ = Text::with_alignment(
        "epoch",
        Point::new((left + right) / 2, bottom + 24),
        black,
        Alignment::Center,
    )
    .draw(c);
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let style = PrimitiveStyle::with_stroke(colour, 2);
        let p: Vec<Point> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| Point::new(px(x), py(y)))
            .collect();
        for w in p.windows(2) {
            let _ = Line::new(w[0], w[1]).into_styled(style).draw(c);
        }
        if p.len() == 1 {
            let _ = Rectangle::new(p[0] - Point::new(2, 2), Size::new(5, 5))
                .into_styled(PrimitiveStyle::with_fill(colour))
                .draw(c);
        }
        if !s.name.is_empty() {
            let _ = Text::new(
                &s.name,
                Point::new(left + 6, top + 12 + 11 * i as i32),
                MonoTextStyle::new(&FONT_6X10, colour),
            )
            .draw(c);
        }
    }
}

/// Renders the three panels side by side (960 × 240 pixels).
pub fn render(c: &Curves) -> RgbImage {
    let mut img = RgbImage::from_pixel(3 * PANEL_W, PANEL_H, image::Rgb([255, 255, 255]));
    let mut canvas = Canvas(&mut img);
    panel(&mut canvas, 0, "training loss", &c.loss, false);
    panel(
        &mut canvas,
        PANEL_W as i32,
        "val pixel error (px)",
        &c.pixel_error,
        true,
    );
    panel(
        &mut canvas,
        2 * PANEL_W as i32,
        "val recall 5cm/5deg (%)",
        &c.recall,
        true,
    );
    img
}

/// Plots `metrics` (a `metrics.jsonl`) into the PNG `out`, atomically.
pub fn plot_metrics(metrics: &Path, out: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(metrics).with_context(|| format!("cannot read {}", metrics.display()))?;
    let img = render(&curves(&text));
    crate::io::atomic::save_image_atomic(&img, out, image::ImageFormat::Png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_metrics_layouts() {
        let full = "{\"epoch\":1,\"loss\":9.0,\"val_pixel_error\":null}\n\
                    {\"epoch\":2,\"loss\":4.0,\"val_pixel_error\":3.5,\"val_recall_5cm_5deg\":0.25}\nnot json\n";
        let c = curves(full);
        assert_eq!(
            c.loss,
            vec![Series {
                name: String::new(),
                points: vec![(1.0, 9.0), (2.0, 4.0)]
            }]
        );
        assert_eq!(c.pixel_error[0].points, vec![(2.0, 3.5)]);
        assert_eq!(c.recall[0].points, vec![(2.0, 25.0)]);
        let bb = "{\"epoch\":1,\"loss\":5,\"scenes\":[{\"scene\":\"a\",\"loss\":6},{\"scene\":\"b\",\"loss\":4,\"val_pixel_error\":2}]}\n";
        let c = curves(bb);
        assert_eq!(c.loss.len(), 2);
        assert_eq!((c.loss[0].name.as_str(), c.loss[0].points[0].1), ("a", 6.0));
        assert_eq!(c.pixel_error.len(), 1);
    }

    /// The line lands where the axes say: a falling loss is drawn in the
    /// series colour near the top-left and bottom-right of the plot area.
    #[test]
    fn draws_lines_inside_the_axes() {
        let c = curves("{\"epoch\":1,\"loss\":10}\n{\"epoch\":5,\"loss\":0}\n");
        let img = render(&c);
        assert_eq!(img.dimensions(), (960, 240));
        let blue = image::Rgb([31u8, 119, 180]);
        let near = |x: u32, y: u32| {
            (x.saturating_sub(3)..x + 3)
                .any(|i| (y.saturating_sub(3)..y + 3).any(|j| *img.get_pixel(i, j) == blue))
        };
        assert!(near(56, 24), "start of the line at the top left");
        assert!(near(308, 210), "end of the line at the bottom right");
        assert!(!near(308, 24) && !near(56, 210));
        // Empty panels render (no data) without failing.
        assert_ne!(*img.get_pixel(500, 120), blue);
    }
}
