//! Five colours for a composition: drawn from the prompt's hash (a colour harmony around one
//! hue), or sampled from a reference image's dominant colours.

use atelier_media::rng::Rng;

pub type Colour = [u8; 3];

/// Colours sorted from darkest to lightest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    pub colours: [Colour; 5],
}

impl Palette {
    /// A harmony (analogous, complementary, triadic or split-complementary) around a hue
    /// from the generator, spread from dark to light so text always has something to
    /// contrast with.
    pub fn from_rng(rng: &mut Rng) -> Self {
        let hue = rng.range_f32(0.0, 360.0);
        let offsets: [f32; 4] = match rng.below(4) {
            0 => [0.0, 25.0, -25.0, 50.0],
            1 => [0.0, 180.0, 15.0, 195.0],
            2 => [0.0, 120.0, 240.0, 60.0],
            _ => [0.0, 150.0, 210.0, 30.0],
        };
        let saturation = rng.range_f32(0.45, 0.8);
        let colours = [
            hsv(hue + offsets[0], saturation, rng.range_f32(0.12, 0.25)),
            hsv(hue + offsets[1], saturation, rng.range_f32(0.35, 0.5)),
            hsv(hue + offsets[2], saturation * 0.9, rng.range_f32(0.55, 0.7)),
            hsv(hue + offsets[3], saturation, rng.range_f32(0.75, 0.9)),
            hsv(
                hue + offsets[0],
                saturation * 0.25,
                rng.range_f32(0.9, 0.98),
            ),
        ];
        Self::sorted(colours)
    }

    /// The dominant colours of `pixels` (a small thumbnail): a 4-bit-per-channel histogram,
    /// the most common buckets that are not near-duplicates of one already taken, averaged.
    /// Where the image has fewer than five distinct colours, `fill` supplies the rest.
    pub fn from_pixels(pixels: &[Colour], fill: &Palette) -> Self {
        let mut buckets = vec![(0u32, [0u32; 3]); 4096];
        for px in pixels {
            let key = (usize::from(px[0] >> 4) << 8)
                | (usize::from(px[1] >> 4) << 4)
                | usize::from(px[2] >> 4);
            buckets[key].0 += 1;
            for (sum, &v) in buckets[key].1.iter_mut().zip(px) {
                *sum += u32::from(v);
            }
        }
        let mut ranked: Vec<(u32, Colour)> = buckets
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, sum)| (*count, sum.map(|s| (s / count) as u8)))
            .collect();
        // Most common first; ties by colour so the order never depends on anything else.
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut chosen: Vec<Colour> = Vec::with_capacity(5);
        for (_, colour) in ranked {
            if chosen.len() == 5 {
                break;
            }
            if chosen.iter().all(|c| distance(*c, colour) > 48) {
                chosen.push(colour);
            }
        }
        for colour in fill.colours {
            if chosen.len() == 5 {
                break;
            }
            chosen.push(colour);
        }
        Self::sorted([chosen[0], chosen[1], chosen[2], chosen[3], chosen[4]])
    }

    fn sorted(mut colours: [Colour; 5]) -> Self {
        colours.sort_by_key(|c| (luminance(*c) * 1000.0) as u32);
        Self { colours }
    }

    pub fn darkest(&self) -> Colour {
        self.colours[0]
    }

    pub fn lightest(&self) -> Colour {
        self.colours[4]
    }
}

/// Relative luminance, 0 to 1 (sRGB weights on the encoded values: good enough to choose
/// between dark and light text).
pub fn luminance(c: Colour) -> f32 {
    (0.2126 * f32::from(c[0]) + 0.7152 * f32::from(c[1]) + 0.0722 * f32::from(c[2])) / 255.0
}

fn distance(a: Colour, b: Colour) -> u32 {
    (0..3).map(|i| u32::from(a[i].abs_diff(b[i]))).sum()
}

/// Hue in degrees (any value), saturation and value 0 to 1.
pub fn hsv(hue: f32, saturation: f32, value: f32) -> Colour {
    let h = hue.rem_euclid(360.0) / 60.0;
    let c = value * saturation;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = value - c;
    [r, g, b].map(|v| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palettes_run_from_dark_to_light() {
        for seed in 0..20u64 {
            let palette = Palette::from_rng(&mut Rng::from_parts(&[&seed.to_le_bytes(), b"p"]));
            let l = palette.colours.map(luminance);
            assert!(l.windows(2).all(|w| w[0] <= w[1]), "{palette:?}");
            assert!(l[4] - l[0] > 0.4, "too little contrast: {palette:?}");
        }
    }

    #[test]
    fn a_reference_gives_its_dominant_colours() {
        let mut pixels = vec![[200, 30, 30]; 600];
        pixels.extend(vec![[20, 20, 180]; 300]);
        // A near-duplicate in another bucket is not a colour of its own.
        pixels.extend(vec![[203, 33, 30]; 100]);
        let fill = Palette::from_rng(&mut Rng::from_parts(&[&0u64.to_le_bytes(), b"fill"]));
        let palette = Palette::from_pixels(&pixels, &fill);
        assert!(palette.colours.contains(&[200, 30, 30]), "{palette:?}");
        assert!(palette.colours.contains(&[20, 20, 180]), "{palette:?}");
        // Only two distinct colours: three come from the fill palette.
        let from_fill = palette
            .colours
            .iter()
            .filter(|c| fill.colours.contains(c))
            .count();
        assert_eq!(from_fill, 3);
    }

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv(0.0, 1.0, 1.0), [255, 0, 0]);
        assert_eq!(hsv(240.0, 1.0, 1.0), [0, 0, 255]);
        assert_eq!(hsv(-240.0, 1.0, 1.0), [0, 255, 0]);
    }
}
