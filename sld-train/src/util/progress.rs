//! Progress bars for long work (rendering, loading, feature extraction,
//! training), one style for all.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps drawn with `template` (indicatif syntax), or a
/// hidden one when `show` is false (tests, library use).
pub fn bar(len: usize, show: bool, template: &str) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(len as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}
