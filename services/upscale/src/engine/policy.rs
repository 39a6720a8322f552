//! The size policy: which output size a target asks for, and which sizes the limits allow.

use atelier_media::gate::{self, ImageLimits, Refusal};

use super::UpscaleError;

/// A named output resolution, by long edge; the aspect ratio is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Long edge 2048 pixels.
    TwoK,
    /// Long edge 4096 pixels.
    FourK,
}

impl Preset {
    pub fn long_edge(self) -> u32 {
        match self {
            Self::TwoK => 2048,
            Self::FourK => 4096,
        }
    }
}

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Enlarge until the long edge matches the preset. A source already at or above that edge
    /// is never shrunk: it keeps its size (and is still re-encoded by `upscale`).
    Resolution(Preset),
    /// Multiply both sides by a factor in `[1.0, 8.0]`, rounding to the nearest pixel.
    Scale(f32),
}

/// The smallest and largest accepted [`Target::Scale`] factors. Downscaling is not this
/// capability's job, and past 8x Lanczos only invents blur while the output grows quadratically.
pub const SCALE_RANGE: std::ops::RangeInclusive<f32> = 1.0..=8.0;

/// Bounds on untrusted input and on the work it may cause; checked before anything is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_input_bytes: usize,
    /// Longest accepted side of the source, in pixels.
    pub max_input_dimension: u32,
    pub max_input_pixels: u64,
    /// Bounds the output buffer: 64 MP of RGBA8 is 256 MiB before encoding.
    pub max_output_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 50 * 1024 * 1024,
            max_input_dimension: 16_384,
            max_input_pixels: 40_000_000,
            max_output_pixels: 64_000_000,
        }
    }
}

/// Output size for a `src_w`x`src_h` source, or why that source or target is refused.
///
/// Pure, so the worker can reject a job from the header alone and tests can pin the policy with
/// vectors. The target is validated first so a bad request is reported as such whatever the image.
pub fn plan(
    src_w: u32,
    src_h: u32,
    target: &Target,
    limits: &Limits,
) -> Result<(u32, u32), UpscaleError> {
    if let Target::Scale(factor) = *target
        && !SCALE_RANGE.contains(&factor)
    {
        // `contains` is false for NaN too, so non-finite factors land here.
        return Err(UpscaleError::InvalidTarget {
            reason: format!(
                "scale factor {factor} is outside {} to {}",
                SCALE_RANGE.start(),
                SCALE_RANGE.end()
            ),
        });
    }
    check_input(src_w, src_h, limits)?;

    let (w, h) = match *target {
        Target::Resolution(preset) => fit_long_edge(src_w, src_h, preset.long_edge()),
        Target::Scale(factor) => (scale_side(src_w, factor), scale_side(src_h, factor)),
    };
    let too_large = || UpscaleError::OutputTooLarge {
        width: u32::try_from(w).unwrap_or(u32::MAX),
        height: u32::try_from(h).unwrap_or(u32::MAX),
        max_pixels: limits.max_output_pixels,
    };
    if w.saturating_mul(h) > limits.max_output_pixels {
        return Err(too_large());
    }
    match (u32::try_from(w), u32::try_from(h)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(too_large()),
    }
}

fn check_input(w: u32, h: u32, limits: &Limits) -> Result<(), UpscaleError> {
    gate::check_size(w, h, &limits.input()).map_err(|refusal| match refusal {
        Refusal::TooLarge {
            width,
            height,
            limit,
        } => UpscaleError::ImageTooLarge {
            width,
            height,
            limit,
        },
        other => UpscaleError::decode(other),
    })
}

impl Limits {
    /// The input limits as the shared gate's.
    pub(crate) fn input(&self) -> ImageLimits {
        ImageLimits {
            max_bytes: self.max_input_bytes,
            max_dimension: self.max_input_dimension,
            max_pixels: self.max_input_pixels,
        }
    }
}

/// Integer arithmetic so the long edge lands exactly on the preset and the short side rounds to
/// nearest (the presets are powers of two above the long side, so an exact half cannot occur).
fn fit_long_edge(w: u32, h: u32, edge: u32) -> (u64, u64) {
    let (w, h, edge) = (u64::from(w), u64::from(h), u64::from(edge));
    let long = w.max(h);
    if long >= edge {
        return (w, h);
    }
    let fit = |side: u64| (side * edge * 2 + long) / (2 * long);
    (fit(w), fit(h))
}

fn scale_side(side: u32, factor: f32) -> u64 {
    // Both operands are finite and positive here, and the product fits f64 exactly enough that
    // rounding decides the pixel; the cast saturates rather than wraps.
    (f64::from(side) * f64::from(factor)).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_default(w: u32, h: u32, target: Target) -> Result<(u32, u32), UpscaleError> {
        plan(w, h, &target, &Limits::default())
    }

    #[test]
    fn presets_fit_the_long_edge_and_keep_the_aspect() {
        let two_k = Target::Resolution(Preset::TwoK);
        let four_k = Target::Resolution(Preset::FourK);
        assert_eq!(plan_default(640, 480, two_k).unwrap(), (2048, 1536));
        assert_eq!(plan_default(100, 50, four_k).unwrap(), (4096, 2048));
        assert_eq!(plan_default(480, 640, two_k).unwrap(), (1536, 2048));
        assert_eq!(plan_default(1, 1, four_k).unwrap(), (4096, 4096));
    }

    #[test]
    fn presets_round_the_short_side_to_nearest() {
        let two_k = Target::Resolution(Preset::TwoK);
        // 333 * 2048 / 1001 = 681.3 -> 681; 2 * 2048 / 3 = 1365.3 -> 1365; 2048 / 3 = 682.7 -> 683.
        assert_eq!(plan_default(1001, 333, two_k).unwrap(), (2048, 681));
        assert_eq!(plan_default(3, 2, two_k).unwrap(), (2048, 1365));
        assert_eq!(plan_default(1, 3, two_k).unwrap(), (683, 2048));
        // A short side never rounds to zero, even on extreme aspect ratios.
        assert_eq!(plan_default(1024, 1, two_k).unwrap(), (2048, 2));
        assert_eq!(
            plan_default(4000, 1, Target::Resolution(Preset::FourK)).unwrap(),
            (4096, 1)
        );
    }

    #[test]
    fn a_source_at_or_above_the_preset_keeps_its_size() {
        let two_k = Target::Resolution(Preset::TwoK);
        assert_eq!(plan_default(3000, 2000, two_k).unwrap(), (3000, 2000));
        assert_eq!(plan_default(2048, 10, two_k).unwrap(), (2048, 10));
        assert_eq!(plan_default(10, 2048, two_k).unwrap(), (10, 2048));
    }

    #[test]
    fn scale_multiplies_both_sides_and_rounds() {
        assert_eq!(
            plan_default(333, 222, Target::Scale(2.0)).unwrap(),
            (666, 444)
        );
        // 333 * 1.5 = 499.5 -> 500 (half away from zero); 222 * 1.5 = 333.
        assert_eq!(
            plan_default(333, 222, Target::Scale(1.5)).unwrap(),
            (500, 333)
        );
        // 1.1f32 is a hair above 1.1: 333 * 1.1000000238 = 366.3 -> 366.
        assert_eq!(
            plan_default(333, 222, Target::Scale(1.1)).unwrap(),
            (366, 244)
        );
        assert_eq!(plan_default(7, 5, Target::Scale(1.0)).unwrap(), (7, 5));
        assert_eq!(plan_default(7, 5, Target::Scale(8.0)).unwrap(), (56, 40));
    }

    #[test]
    fn scale_outside_the_range_is_an_invalid_target() {
        for factor in [0.5, 0.999, 8.001, 100.0, -2.0, f32::NAN, f32::INFINITY] {
            let err = plan_default(10, 10, Target::Scale(factor)).unwrap_err();
            assert_eq!(err.code(), "invalid_target", "factor {factor}");
        }
    }

    #[test]
    fn an_invalid_target_wins_over_an_oversized_image() {
        let err = plan_default(60_000, 60_000, Target::Scale(9.0)).unwrap_err();
        assert_eq!(err.code(), "invalid_target");
    }

    #[test]
    fn output_over_the_pixel_limit_is_refused() {
        // 4000x2000 = 8 MP fits the input limits; x3 is 72 MP, over 64 MP.
        let err = plan_default(4000, 2000, Target::Scale(3.0)).unwrap_err();
        assert!(
            matches!(
                err,
                UpscaleError::OutputTooLarge {
                    width: 12_000,
                    height: 6_000,
                    max_pixels: 64_000_000
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "output would be 12000x6000, over the 64000000 pixel limit"
        );

        let tight = Limits {
            max_output_pixels: 2048 * 1536 - 1,
            ..Limits::default()
        };
        let err = plan(640, 480, &Target::Resolution(Preset::TwoK), &tight).unwrap_err();
        assert_eq!(err.code(), "output_too_large");
    }

    #[test]
    fn a_source_at_or_above_the_preset_still_obeys_the_output_limit() {
        let limits = Limits {
            max_output_pixels: 1_000_000,
            ..Limits::default()
        };
        let err = plan(3000, 2000, &Target::Resolution(Preset::TwoK), &limits).unwrap_err();
        assert_eq!(err.code(), "output_too_large");
    }

    #[test]
    fn input_over_the_limits_is_refused() {
        let err = plan_default(16_385, 10, Target::Scale(1.0)).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        assert_eq!(
            err.to_string(),
            "image is 16385x10, over the 16384 pixel side limit"
        );

        // 8000x6000 = 48 MP: each side is fine, the area is not.
        let err = plan_default(8000, 6000, Target::Scale(1.0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "image is 8000x6000, over the 40000000 pixel limit"
        );
    }

    #[test]
    fn an_empty_image_cannot_be_planned() {
        let err = plan_default(0, 10, Target::Scale(2.0)).unwrap_err();
        assert_eq!(err.code(), "decode_failed");
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let limits = Limits {
            max_input_bytes: usize::MAX,
            max_input_dimension: u32::MAX,
            max_input_pixels: u64::MAX,
            max_output_pixels: u64::MAX,
        };
        let err = plan(u32::MAX, u32::MAX, &Target::Scale(8.0), &limits).unwrap_err();
        assert_eq!(err.code(), "output_too_large");
    }
}
