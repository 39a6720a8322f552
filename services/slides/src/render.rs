//! One slide as a picture: the style's background, the title, the bullets and the page
//! number, laid out so nothing overflows — long text wraps, then shrinks, and only at the
//! smallest size is cut with an ellipsis. Pure and deterministic: the same scene, style,
//! size and fonts give the same pixels.

use atelier_image::canvas::{disc, linear_gradient, rounded_rect};
use atelier_image::text::{Fonts, LINE_SPACING, wrap};
use image::RgbImage;

use crate::catalog::Style;
use crate::params::Scene;

/// Where a slide sits in its deck.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub index: usize,
    pub total: usize,
}

/// Lines of the bullets at one size, each line tagged with whether it starts a bullet.
struct Laid {
    size: f32,
    lines: Vec<(bool, String)>,
}

fn lay_out_bullets(
    fonts: &Fonts,
    bullets: &[String],
    width: f32,
    height: f32,
    largest: f32,
) -> Laid {
    let smallest = largest * 0.55;
    let mut size = largest;
    loop {
        let lines: Vec<(bool, String)> = bullets
            .iter()
            .flat_map(|bullet| {
                wrap(bullet, width, &|c| fonts.advance(c, size))
                    .into_iter()
                    .enumerate()
                    .map(|(i, line)| (i == 0, line))
            })
            .collect();
        let gaps = bullets.len().saturating_sub(1) as f32 * size * 0.6;
        let needed = lines.len() as f32 * size * LINE_SPACING + gaps;
        if needed <= height || size <= smallest {
            return Laid { size, lines };
        }
        size = (size * 0.92).max(smallest);
    }
}

/// Draws `scene` as slide `page` of a deck in `style`, `width` x `height`.
pub fn render(
    scene: &Scene,
    page: Page,
    style: &Style,
    fonts: &Fonts,
    width: u32,
    height: u32,
) -> RgbImage {
    let mut canvas = RgbImage::new(width, height);
    linear_gradient(
        &mut canvas,
        &style.background,
        std::f32::consts::FRAC_PI_2,
        true,
    );
    let (w, h) = (width as f32, height as f32);
    let short = w.min(h);
    let margin = short * 0.08;
    if page.index == 0 {
        title_slide(&mut canvas, scene, style, fonts, margin);
    } else {
        content_slide(&mut canvas, scene, style, fonts, margin);
    }
    // Page number, bottom right.
    let label = format!("{} / {}", page.index + 1, page.total);
    let size = short * 0.03;
    let x = w - margin - fonts.line_width(&label, size);
    fonts.draw_line(
        &mut canvas,
        &label,
        (x, h - margin * 0.6 - size * LINE_SPACING),
        size,
        style.text,
        0.7,
    );
    canvas
}

fn title_slide(canvas: &mut RgbImage, scene: &Scene, style: &Style, fonts: &Fonts, margin: f32) {
    let (w, h) = (canvas.width() as f32, canvas.height() as f32);
    let short = w.min(h);
    let block = fonts.fit(
        &scene.title,
        w - 2.0 * margin,
        h * 0.45,
        short * 0.1,
        short * 0.05,
    );
    let subtitle = scene.bullets.join("  ·  ");
    let sub_size = short * 0.04;
    let total = block.height + short * 0.08 + sub_size * LINE_SPACING;
    let mut y = (h - total) / 2.0;
    for line in &block.lines {
        let x = (w - fonts.line_width(line, block.size)) / 2.0;
        fonts.draw_line(canvas, line, (x, y), block.size, style.title, 1.0);
        y += block.size * LINE_SPACING;
    }
    y += short * 0.03;
    let bar = short * 0.12;
    rounded_rect(
        canvas,
        ((w - bar) / 2.0, y, (w + bar) / 2.0, y + short * 0.012),
        short * 0.006,
        style.accent,
        1.0,
    );
    y += short * 0.05;
    let sub = fonts.fit(
        &subtitle,
        w - 2.0 * margin,
        sub_size * LINE_SPACING,
        sub_size,
        sub_size * 0.6,
    );
    for line in &sub.lines {
        let x = (w - fonts.line_width(line, sub.size)) / 2.0;
        fonts.draw_line(canvas, line, (x, y), sub.size, style.text, 0.9);
    }
}

fn content_slide(canvas: &mut RgbImage, scene: &Scene, style: &Style, fonts: &Fonts, margin: f32) {
    let (w, h) = (canvas.width() as f32, canvas.height() as f32);
    let short = w.min(h);
    // Accent bar above the title.
    rounded_rect(
        canvas,
        (margin, margin, margin + short * 0.1, margin + short * 0.012),
        short * 0.006,
        style.accent,
        1.0,
    );
    let title_top = margin + short * 0.04;
    let title = fonts.fit(
        &scene.title,
        w - 2.0 * margin,
        h * 0.22,
        short * 0.075,
        short * 0.04,
    );
    let mut y = title_top;
    for line in &title.lines {
        fonts.draw_line(canvas, line, (margin, y), title.size, style.title, 1.0);
        y += title.size * LINE_SPACING;
    }
    let top = y + short * 0.05;
    let bottom = h - margin * 1.4;
    let indent = short * 0.05;
    let laid = lay_out_bullets(
        fonts,
        &scene.bullets,
        w - 2.0 * margin - indent,
        bottom - top,
        short * 0.05,
    );
    let step = laid.size * LINE_SPACING;
    let mut y = top;
    let mut first = true;
    let count = laid.lines.len();
    for (i, (starts, line)) in laid.lines.iter().enumerate() {
        if *starts && !first {
            y += laid.size * 0.6;
        }
        first = false;
        if y + step > bottom {
            break;
        }
        let last_that_fits = y + 2.0 * step > bottom && i + 1 < count;
        if *starts {
            disc(
                canvas,
                (margin + indent * 0.35, y + step / 2.0),
                laid.size * 0.16,
                1.0,
                style.accent,
                1.0,
            );
        }
        let shown = if last_that_fits {
            ellipsised(fonts, line, w - 2.0 * margin - indent, laid.size)
        } else {
            line.clone()
        };
        fonts.draw_line(
            canvas,
            &shown,
            (margin + indent, y),
            laid.size,
            style.text,
            1.0,
        );
        y += step;
    }
}

/// `line` with an ellipsis, cut so it still fits `width`.
fn ellipsised(fonts: &Fonts, line: &str, width: f32, size: f32) -> String {
    let mut out: String = line.to_owned();
    while !out.is_empty() && fonts.line_width(&out, size) + fonts.advance('…', size) > width {
        out.pop();
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::STYLES;

    fn fonts() -> Fonts {
        Fonts::discover(None).expect("fonts")
    }

    fn scene(title: &str, bullets: &[&str]) -> Scene {
        Scene {
            title: title.to_owned(),
            bullets: bullets.iter().map(|b| b.to_string()).collect(),
            narration: String::new(),
        }
    }

    /// Pixels that differ from the background's colour at their row.
    fn inked(image: &RgbImage, rows: std::ops::Range<u32>) -> usize {
        rows.flat_map(|y| {
            let reference = image.get_pixel(1, y).0;
            (0..image.width()).filter(move |&x| {
                let p = image.get_pixel(x, y).0;
                p.iter().zip(reference).any(|(a, b)| a.abs_diff(b) > 40)
            })
        })
        .count()
    }

    #[test]
    fn same_scene_same_pixels_and_styles_differ() {
        let fonts = fonts();
        let s = scene("注意力机制", &["查询、键和值", "加权求和"]);
        let page = Page { index: 1, total: 6 };
        let a = render(&s, page, &STYLES[0], &fonts, 640, 360);
        let b = render(&s, page, &STYLES[0], &fonts, 640, 360);
        assert_eq!(a.as_raw(), b.as_raw());
        let c = render(&s, page, &STYLES[2], &fonts, 640, 360);
        assert_ne!(a.as_raw(), c.as_raw());
    }

    #[test]
    fn cjk_text_is_drawn_not_boxed() {
        let fonts = fonts();
        if !fonts.covers('注') {
            panic!("no CJK font: deploy/local/deps.sh installs fonts-wqy-microhei");
        }
        let image = render(
            &scene("注意力", &["查询"]),
            Page { index: 1, total: 2 },
            &STYLES[0],
            &fonts,
            640,
            360,
        );
        // The title band has ink.
        assert!(inked(&image, 30..90) > 200);
    }

    #[test]
    fn overlong_bullets_stay_inside_the_slide() {
        let fonts = fonts();
        let long = "a very long bullet that goes on and on ".repeat(30);
        let bullets: Vec<&str> = std::iter::repeat_n(long.as_str(), 8).collect();
        let image = render(
            &scene("Title", &bullets),
            Page { index: 1, total: 2 },
            &STYLES[0],
            &fonts,
            640,
            360,
        );
        // Nothing is drawn into the bottom margin band (the page number sits at the right).
        let margin = (360.0_f32 * 0.08) as u32;
        let bottom_left: usize = (360 - margin / 2..360)
            .flat_map(|y| (0..400).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = image.get_pixel(x, y).0;
                let r = image.get_pixel(1, y).0;
                p.iter().zip(r).any(|(a, b)| a.abs_diff(b) > 40)
            })
            .count();
        assert_eq!(bottom_left, 0);
        let laid = lay_out_bullets(&fonts, &[long.repeat(4)], 500.0, 200.0, 18.0);
        assert!(
            (laid.size - 18.0 * 0.55).abs() < 0.01,
            "shrunk to the smallest size"
        );
    }
}
