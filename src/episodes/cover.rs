//! The show's default cover, for a show with no artwork configured: a 1400x1400 PNG (Apple
//! Podcasts' smallest accepted size), a plain background whose colour comes from the title,
//! dark enough for white text, the title in large white letters, word-wrapped and centred, and
//! "Booth" small at the bottom.
//!
//! Pure: a title in, PNG bytes out, with the fonts Booth already carries (egui's default fonts:
//! Ubuntu Light, and Noto Emoji for emoji in titles). It must never touch files, and never
//! panic on any title: characters no font has are left out.

use skrifa::instance::{LocationRef, Size};
use skrifa::outline::OutlinePen;
use skrifa::{FontRef, GlyphId, MetadataProvider};

/// Side of the square cover, px.
pub const COVER_SIDE: u32 = 1400;
const SIDE: usize = COVER_SIDE as usize;
/// Space kept clear on every side, px.
const MARGIN: f32 = 150.0;
/// The title's largest size, px; it shrinks until it fits.
const TITLE_MAX_PX: f32 = 190.0;
const TITLE_MIN_PX: f32 = 56.0;
/// At most this many lines of title before it shrinks.
const MAX_LINES: usize = 6;
const BRAND_PX: f32 = 56.0;

/// Why a cover could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoverError {
    /// A bundled font could not be read (a broken build).
    #[error("the cover's font cannot be read: {0}")]
    Font(String),
    /// PNG encoding failed.
    #[error("cannot encode the cover as PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// The default cover for a show called `title`: PNG bytes, [`COVER_SIDE`] px square.
///
/// # Errors
/// Only if a bundled font is unreadable or PNG encoding fails.
pub fn default_cover(title: &str) -> Result<Vec<u8>, CoverError> {
    let fonts = Fonts::load()?;
    let mut ink = Coverage::new(SIDE, SIDE);
    let brand_top = SIDE as f32 - MARGIN * 0.55 - BRAND_PX;
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    let title = if title.is_empty() { "Booth" } else { &title };
    let (px, lines) = fit_title(&fonts, title);
    let line_height = px * 1.2;
    let block = line_height * lines.len() as f32;
    let area = brand_top - MARGIN * 0.5;
    let mut baseline = (area - block) / 2.0 + px * 0.95;
    for line in &lines {
        let width = fonts.width(line, px);
        fonts.draw(&mut ink, line, px, (SIDE as f32 - width) / 2.0, baseline);
        baseline += line_height;
    }
    let brand_width = fonts.width("Booth", BRAND_PX);
    fonts.draw(
        &mut ink,
        "Booth",
        BRAND_PX,
        (SIDE as f32 - brand_width) / 2.0,
        brand_top + BRAND_PX * 0.8,
    );
    encode(&ink, background(title))
}

/// The background for `title`: a hue from the title's hash, saturated and dark, so white text
/// on it keeps a contrast ratio above 4.5 (WCAG AA) whatever the hue.
#[must_use]
pub fn background(title: &str) -> [u8; 3] {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = title.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let hue = (hash % 360) as f32;
    hsl_to_rgb(hue, 0.55, 0.27)
}

fn hsl_to_rgb(h: f32, s: f32, l: f32) -> [u8; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match h {
        h if h < 60.0 => (c, x, 0.0),
        h if h < 120.0 => (x, c, 0.0),
        h if h < 180.0 => (0.0, c, x),
        h if h < 240.0 => (0.0, x, c),
        h if h < 300.0 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [byte(r), byte(g), byte(b)]
}

/// The largest size at which `title` wraps into at most [`MAX_LINES`] lines that each fit
/// between the margins, and those lines. A word too long for a line even at the smallest size
/// is broken between characters.
fn fit_title(fonts: &Fonts, title: &str) -> (f32, Vec<String>) {
    let max_width = SIDE as f32 - 2.0 * MARGIN;
    let mut px = TITLE_MAX_PX;
    loop {
        let lines = wrap(fonts, title, px, max_width);
        let fits =
            lines.len() <= MAX_LINES && lines.iter().all(|l| fonts.width(l, px) <= max_width);
        if fits || px <= TITLE_MIN_PX {
            return (px, lines);
        }
        px = (px * 0.9).max(TITLE_MIN_PX);
    }
}

fn wrap(fonts: &Fonts, text: &str, px: f32, max_width: f32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if fonts.width(&candidate, px) <= max_width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // A word wider than a line on its own: break it between characters.
        for c in word.chars() {
            line.push(c);
            if fonts.width(&line, px) > max_width && line.chars().count() > 1 {
                line.pop();
                lines.push(std::mem::replace(&mut line, c.to_string()));
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if px <= TITLE_MIN_PX && lines.len() > MAX_LINES {
        lines.truncate(MAX_LINES);
        if let Some(last) = lines.last_mut() {
            last.push('…');
        }
    }
    lines
}

/// The text fonts in the order a character is looked for.
struct Fonts {
    faces: Vec<FontRef<'static>>,
}

impl Fonts {
    fn load() -> Result<Self, CoverError> {
        let faces = [
            epaint_default_fonts::UBUNTU_LIGHT,
            epaint_default_fonts::NOTO_EMOJI_REGULAR,
        ]
        .into_iter()
        .map(|bytes| FontRef::new(bytes).map_err(|e| CoverError::Font(e.to_string())))
        .collect::<Result<_, _>>()?;
        Ok(Self { faces })
    }

    /// The face that has `c`, and its glyph.
    fn glyph(&self, c: char) -> Option<(&FontRef<'static>, GlyphId)> {
        self.faces
            .iter()
            .find_map(|f| f.charmap().map(c).map(|g| (f, g)))
    }

    fn advance(&self, face: &FontRef<'static>, glyph: GlyphId, px: f32) -> f32 {
        face.glyph_metrics(Size::new(px), LocationRef::default())
            .advance_width(glyph)
            .unwrap_or(0.0)
    }

    fn width(&self, text: &str, px: f32) -> f32 {
        text.chars()
            .filter_map(|c| self.glyph(c))
            .map(|(f, g)| self.advance(f, g, px))
            .sum()
    }

    /// Draws `text` at `px` with its baseline at `y`, starting at `x` (y grows downwards).
    fn draw(&self, ink: &mut Coverage, text: &str, px: f32, mut x: f32, y: f32) {
        for (face, glyph) in text.chars().filter_map(|c| self.glyph(c)) {
            if let Some(outline) = face.outline_glyphs().get(glyph) {
                let mut pen = Pen {
                    ink: &mut *ink,
                    origin: (x, y),
                    start: (0.0, 0.0),
                    at: (0.0, 0.0),
                };
                // A glyph that fails to draw is left out, like a character no font has.
                let _ = outline.draw(Size::new(px), &mut pen);
            }
            x += self.advance(face, glyph, px);
        }
    }
}

/// Draws a glyph's outline (font units scaled to px, y up) onto the canvas (y down), curves
/// flattened into lines.
struct Pen<'a> {
    ink: &'a mut Coverage,
    origin: (f32, f32),
    start: (f32, f32),
    at: (f32, f32),
}

impl Pen<'_> {
    fn to_canvas(&self, x: f32, y: f32) -> (f32, f32) {
        (self.origin.0 + x, self.origin.1 - y)
    }

    fn line(&mut self, to: (f32, f32)) {
        let (a, b) = (
            self.to_canvas(self.at.0, self.at.1),
            self.to_canvas(to.0, to.1),
        );
        self.ink.line(a, b);
        self.at = to;
    }
}

/// Segments a curve is flattened into.
const CURVE_STEPS: u16 = 12;

impl OutlinePen for Pen<'_> {
    fn move_to(&mut self, x: f32, y: f32) {
        self.start = (x, y);
        self.at = (x, y);
    }

    fn line_to(&mut self, x: f32, y: f32) {
        self.line((x, y));
    }

    fn quad_to(&mut self, cx: f32, cy: f32, x: f32, y: f32) {
        let p0 = self.at;
        for i in 1..=CURVE_STEPS {
            let t = f32::from(i) / f32::from(CURVE_STEPS);
            let u = 1.0 - t;
            self.line((
                u * u * p0.0 + 2.0 * u * t * cx + t * t * x,
                u * u * p0.1 + 2.0 * u * t * cy + t * t * y,
            ));
        }
    }

    fn curve_to(&mut self, c0x: f32, c0y: f32, c1x: f32, c1y: f32, x: f32, y: f32) {
        let p0 = self.at;
        for i in 1..=CURVE_STEPS {
            let t = f32::from(i) / f32::from(CURVE_STEPS);
            let u = 1.0 - t;
            let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            self.line((
                a * p0.0 + b * c0x + c * c1x + d * x,
                a * p0.1 + b * c0y + c * c1y + d * y,
            ));
        }
    }

    fn close(&mut self) {
        if self.at != self.start {
            self.line(self.start);
        }
    }
}

/// Anti-aliased coverage of closed outlines by signed-area accumulation (as font-rs does):
/// each edge adds the area it covers to its cells; a running sum along the rows gives each
/// pixel's coverage.
struct Coverage {
    width: usize,
    height: usize,
    acc: Vec<f32>,
}

impl Coverage {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            acc: vec![0.0; width * height + 4],
        }
    }

    fn add(&mut self, i: usize, v: f32) {
        if let Some(cell) = self.acc.get_mut(i) {
            *cell += v;
        }
    }

    /// Adds the edge from `p0` to `p1`. Points off the canvas are pulled onto its edges, so
    /// nothing is written outside it.
    fn line(&mut self, p0: (f32, f32), p1: (f32, f32)) {
        let max_x = (self.width - 2) as f32;
        let clamp = |p: (f32, f32)| (p.0.clamp(0.0, max_x), p.1);
        let (p0, p1) = (clamp(p0), clamp(p1));
        if (p0.1 - p1.1).abs() <= f32::EPSILON {
            return;
        }
        let (dir, p0, p1) = if p0.1 < p1.1 {
            (1.0, p0, p1)
        } else {
            (-1.0, p1, p0)
        };
        let dxdy = (p1.0 - p0.0) / (p1.1 - p0.1);
        let mut x = p0.0;
        if p0.1 < 0.0 {
            x -= p0.1 * dxdy;
        }
        let first = p0.1.max(0.0) as usize;
        let last = (p1.1.ceil().max(0.0) as usize).min(self.height);
        for y in first..last {
            let row = y * self.width;
            let dy = ((y + 1) as f32).min(p1.1) - (y as f32).max(p0.1);
            let next = x + dxdy * dy;
            self.row_span(row, x, next, dy * dir);
            x = next;
        }
    }

    /// One row's share of an edge crossing it from `xa` to `xb`, `d` its signed height.
    fn row_span(&mut self, row: usize, xa: f32, xb: f32, d: f32) {
        let (x0, x1) = if xa < xb { (xa, xb) } else { (xb, xa) };
        let x0_floor = x0.floor();
        let x0i = x0_floor as usize;
        let x1_ceil = x1.ceil();
        let x1i = x1_ceil as usize;
        let at = row + x0i;
        if x1i <= x0i + 1 {
            let xmf = 0.5 * (xa + xb) - x0_floor;
            self.add(at, d - d * xmf);
            self.add(at + 1, d * xmf);
            return;
        }
        let s = (x1 - x0).recip();
        let x0f = x0 - x0_floor;
        let a0 = 0.5 * s * (1.0 - x0f) * (1.0 - x0f);
        let x1f = x1 - x1_ceil + 1.0;
        let am = 0.5 * s * x1f * x1f;
        self.add(at, d * a0);
        if x1i == x0i + 2 {
            self.add(at + 1, d * (1.0 - a0 - am));
        } else {
            let a1 = s * (1.5 - x0f);
            self.add(at + 1, d * (a1 - a0));
            for xi in x0i + 2..x1i - 1 {
                self.add(row + xi, d * s);
            }
            let a2 = a1 + (x1i - x0i - 3) as f32 * s;
            self.add(row + x1i - 1, d * (1.0 - a2 - am));
        }
        self.add(row + x1i, d * am);
    }
}

/// White text of coverage `ink` over `bg`, as an RGB PNG.
fn encode(ink: &Coverage, bg: [u8; 3]) -> Result<Vec<u8>, CoverError> {
    let mut rgb = Vec::with_capacity(ink.width * ink.height * 3);
    let mut sum = 0.0f32;
    for &delta in &ink.acc[..ink.width * ink.height] {
        sum += delta;
        let alpha = sum.abs().min(1.0);
        for channel in bg {
            let v = f32::from(channel) + (255.0 - f32::from(channel)) * alpha;
            rgb.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, COVER_SIDE, COVER_SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    /// WCAG relative luminance of an sRGB colour.
    fn luminance(c: [u8; 3]) -> f64 {
        let lin = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
    }

    #[test]
    fn a_cover_is_a_1400_px_square_png_with_white_text_on_its_background() {
        let png = default_cover("Friday Night Boss Rush").unwrap();
        let (info, pixels) = decode(&png);
        assert_eq!((info.width, info.height), (1400, 1400));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let bg = background("Friday Night Boss Rush");
        let px: Vec<[u8; 3]> = pixels.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(px[0], bg, "the corner is the background");
        let white = px.iter().filter(|p| **p == [255, 255, 255]).count();
        let share = white as f64 / px.len() as f64;
        assert!(
            (0.01..0.4).contains(&share),
            "white text covers {:.1}% of the cover",
            share * 100.0
        );
        // The brand sits in the bottom band, under the title.
        let bottom_white = px[1250 * 1400..].iter().filter(|p| **p == [255; 3]).count();
        assert!(bottom_white > 100, "'Booth' at the bottom");
    }

    #[test]
    fn titles_pick_different_covers_all_readable() {
        let a = default_cover("Speedrun Sunday").unwrap();
        let b = default_cover("Speedrun Saturday").unwrap();
        assert_ne!(a, b);
        for title in [
            "a",
            "b",
            "Speedrun Sunday",
            "Speedrun Saturday",
            "🎮",
            "x & y",
        ] {
            let contrast = 1.05 / (luminance(background(title)) + 0.05);
            assert!(
                contrast >= 4.5,
                "{title}: white on its background is {contrast:.1}:1"
            );
        }
    }

    #[test]
    fn any_title_makes_a_cover() {
        let long = "Supercalifragilisticexpialidocious".repeat(8);
        for title in [
            "",
            "   ",
            "🎮 Boss & <Co> \"live\"",
            "\u{0}\u{7}ctrl",
            &long,
            "日本語のタイトル",
        ] {
            let (info, _) = decode(&default_cover(title).unwrap());
            assert_eq!((info.width, info.height), (1400, 1400), "{title:?}");
        }
    }
}
