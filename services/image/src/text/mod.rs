//! The prompt as text on the canvas: what is shown, how it is fitted into a box (wrapped,
//! shrunk, and cut with an ellipsis as a last resort), and how its glyphs are drawn.

mod fonts;
mod wrap;

pub use fonts::{CJK_FONT_PATHS, FontError, Fonts, LATIN_FONT_PATHS};
use wrap::is_cjk;
pub use wrap::wrap;

use ab_glyph::{Font, ScaleFont, point};
use image::RgbImage;

use crate::canvas::blend;
use crate::palette::Colour;

/// Line height as a multiple of the font size: room for CJK, whose glyphs fill the em box.
pub const LINE_SPACING: f32 = 1.3;
const ELLIPSIS: char = '…';

/// Lines of text fitted to a box, at one size.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub lines: Vec<String>,
    pub size: f32,
    /// The widest line.
    pub width: f32,
    pub height: f32,
}

/// The prompt as it is drawn: input labels such as `@图片1` (references to inputs, which the
/// palette already reflects) removed, and runs of spaces collapsed.
pub fn display_text(prompt: &str) -> String {
    let chars: Vec<char> = prompt.chars().collect();
    let mut out = String::with_capacity(prompt.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@'
            && let Some(len) = label_len(&chars[i + 1..])
        {
            i += 1 + len;
            // Close the gap the label leaves: the spaces around it go, and one comes back
            // only between two non-CJK words ("use @图片1 as" reads "use as").
            let kept = out.trim_end_matches([' ', '\t']).len();
            out.truncate(kept);
            while chars.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
                i += 1;
            }
            if let (Some(before), Some(after)) = (out.chars().last(), chars.get(i))
                && !before.is_whitespace()
                && !after.is_whitespace()
                && !is_cjk(before)
                && !is_cjk(*after)
            {
                out.push(' ');
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    let lines: Vec<String> = out
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect();
    lines.join("\n")
}

/// The length of a label's name after `@`: up to eight letters (any script), then digits.
fn label_len(after: &[char]) -> Option<usize> {
    let letters = after
        .iter()
        .take(9)
        .take_while(|c| c.is_alphabetic())
        .count();
    if !(1..=8).contains(&letters) {
        return None;
    }
    let digits = after[letters..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    (digits > 0).then_some(letters + digits)
}

impl Fonts {
    pub fn advance(&self, c: char, size: f32) -> f32 {
        self.glyph(c)
            .map(|(font, id)| font.as_scaled(size).h_advance(id))
            .unwrap_or(0.0)
    }

    pub fn line_width(&self, line: &str, size: f32) -> f32 {
        line.chars().map(|c| self.advance(c, size)).sum()
    }

    /// Fits `text` into `max_width` x `max_height`: the largest size from `largest` down to
    /// `smallest` at which the wrapped lines fit; below that, the lines that fit, the last
    /// one ending in an ellipsis.
    pub fn fit(
        &self,
        text: &str,
        max_width: f32,
        max_height: f32,
        largest: f32,
        smallest: f32,
    ) -> Block {
        if self.is_empty() || text.is_empty() {
            return Block {
                lines: Vec::new(),
                size: smallest,
                width: 0.0,
                height: 0.0,
            };
        }
        let smallest = smallest.min(largest);
        let mut size = largest;
        let mut lines = loop {
            let lines = wrap(text, max_width, &|c| self.advance(c, size));
            if lines.len() as f32 * size * LINE_SPACING <= max_height || size <= smallest {
                break lines;
            }
            size = (size * 0.92).max(smallest);
        };
        let max_lines = ((max_height / (size * LINE_SPACING)).floor() as usize).max(1);
        if lines.len() > max_lines {
            lines.truncate(max_lines);
            if let Some(last) = lines.last_mut() {
                while !last.is_empty()
                    && self.line_width(last, size) + self.advance(ELLIPSIS, size) > max_width
                {
                    last.pop();
                }
                let kept = last.trim_end().len();
                last.truncate(kept);
                last.push(ELLIPSIS);
            }
        }
        let width = lines
            .iter()
            .map(|line| self.line_width(line, size))
            .fold(0.0, f32::max);
        Block {
            height: lines.len() as f32 * size * LINE_SPACING,
            lines,
            size,
            width,
        }
    }

    /// Draws one line with its top-left corner at `origin`, vertically centred in a line of
    /// `size * LINE_SPACING`.
    pub fn draw_line(
        &self,
        canvas: &mut RgbImage,
        line: &str,
        origin: (f32, f32),
        size: f32,
        colour: Colour,
        alpha: f32,
    ) {
        let Some(primary) = self.primary() else {
            return;
        };
        let baseline =
            origin.1 + (size * LINE_SPACING - size) / 2.0 + primary.as_scaled(size).ascent();
        let (width, height) = (canvas.width() as i64, canvas.height() as i64);
        let mut x = origin.0;
        for c in line.chars() {
            let Some((font, id)) = self.glyph(c) else {
                continue;
            };
            let glyph = id.with_scale_and_position(size, point(x, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
                outline.draw(|gx, gy, coverage| {
                    let (px, py) = (left + i64::from(gx), top + i64::from(gy));
                    if (0..width).contains(&px) && (0..height).contains(&py) {
                        let pixel = canvas.get_pixel_mut(px as u32, py as u32);
                        blend(&mut pixel.0, colour, coverage * alpha);
                    }
                });
            }
            x += font.as_scaled(size).h_advance(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_removed_from_the_shown_text() {
        assert_eq!(
            display_text("参考 @图片1 的风格，生成 9:16 旅游海报"),
            "参考的风格，生成 9:16 旅游海报"
        );
        assert_eq!(display_text("参考@图片1和 @图片2，生成"), "参考和，生成");
        assert_eq!(display_text("use @image1 as the style"), "use as the style");
        assert_eq!(display_text("@image2: a cat"), ": a cat");
        // Not labels: an address, a bare @, a handle without a number.
        assert_eq!(display_text("mail a@b.c"), "mail a@b.c");
        assert_eq!(display_text("@ home  @team"), "@ home @team");
        assert_eq!(
            display_text("line one\n\n  line two "),
            "line one\nline two"
        );
    }

    #[test]
    fn an_empty_chain_fits_nothing() {
        let block = Fonts::default().fit("任何文字", 100.0, 100.0, 20.0, 10.0);
        assert!(block.lines.is_empty());
    }
}
