//! The fonts prompts are drawn with: found once at start-up, tried in order per character.
//!
//! The chain is the files named by `ATELIER_FONT_PATH` (colon-separated, each must load), then
//! the first CJK font found at a well-known path, then the first Latin one. The seed's prompts
//! are Chinese, so a CJK font matters most: deploy/local/deps.sh and the container image
//! install WenQuanYi Micro Hei (`fonts-wqy-microhei`, which covers Latin too) and DejaVu Sans.
//! A character no font has is drawn with the first font's "missing glyph" box.
//!
//! Output bytes depend on the font files: the same prompt and seed give the same image on
//! every worker of one deployment, not across deployments with different fonts.

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontArc, FontVec, GlyphId};

/// Searched in order; the first that loads joins the chain.
pub const CJK_FONT_PATHS: [&str; 7] = [
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
];

pub const LATIN_FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

#[derive(Debug, thiserror::Error)]
#[error("font {path}: {reason}")]
pub struct FontError {
    pub path: String,
    pub reason: String,
}

#[derive(Clone)]
struct Face {
    path: PathBuf,
    font: FontArc,
}

/// A fallback chain of fonts; may be empty, in which case nothing is drawn as text.
#[derive(Clone, Default)]
pub struct Fonts {
    faces: Vec<Face>,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Fonts {
    /// `explicit` is `ATELIER_FONT_PATH`'s value. Files named there must load; the
    /// well-known paths are used when they exist.
    pub fn discover(explicit: Option<&str>) -> Result<Self, FontError> {
        let mut faces = Vec::new();
        for path in explicit
            .unwrap_or_default()
            .split(':')
            .filter(|p| !p.trim().is_empty())
        {
            faces.push(load(Path::new(path.trim()))?);
        }
        for list in [&CJK_FONT_PATHS[..], &LATIN_FONT_PATHS[..]] {
            if let Some(face) = list.iter().find_map(|path| load(Path::new(path)).ok()) {
                faces.push(face);
            }
        }
        Ok(Self { faces })
    }

    /// Exactly these files, in this order.
    pub fn from_paths(paths: &[&Path]) -> Result<Self, FontError> {
        let faces = paths
            .iter()
            .map(|path| load(path))
            .collect::<Result<_, _>>()?;
        Ok(Self { faces })
    }

    pub fn is_empty(&self) -> bool {
        self.faces.is_empty()
    }

    /// The chain as file names, for the start-up log.
    pub fn describe(&self) -> String {
        if self.faces.is_empty() {
            return "no fonts".to_owned();
        }
        let names: Vec<String> = self
            .faces
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        names.join(", ")
    }

    /// Whether some font in the chain has a glyph for `c`.
    pub fn covers(&self, c: char) -> bool {
        self.faces
            .iter()
            .any(|face| face.font.glyph_id(c) != GlyphId(0))
    }

    /// The font that draws `c`, and its glyph there.
    pub(crate) fn glyph(&self, c: char) -> Option<(&FontArc, GlyphId)> {
        let found = self.faces.iter().find_map(|face| {
            let id = face.font.glyph_id(c);
            (id != GlyphId(0)).then_some((&face.font, id))
        });
        found.or_else(|| self.faces.first().map(|face| (&face.font, GlyphId(0))))
    }

    /// The first font, whose metrics set the line height and baseline.
    pub(crate) fn primary(&self) -> Option<&FontArc> {
        self.faces.first().map(|face| &face.font)
    }
}

/// Reads one font file; a collection (`.ttc`) gives its first face.
fn load(path: &Path) -> Result<Face, FontError> {
    let failed = |reason: String| FontError {
        path: path.display().to_string(),
        reason,
    };
    let data = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
    let font = FontVec::try_from_vec_and_index(data, 0)
        .map_err(|_| failed("not a TrueType or OpenType font".to_owned()))?;
    Ok(Face {
        path: path.to_owned(),
        font: FontArc::new(font),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_font_must_load() {
        let err = Fonts::discover(Some("/nonexistent/font.ttf")).unwrap_err();
        assert!(
            err.to_string().starts_with("font /nonexistent/font.ttf: "),
            "{err}"
        );
        let not_a_font = std::env::current_exe().unwrap();
        let err = Fonts::from_paths(&[&not_a_font]).unwrap_err();
        assert!(err.to_string().contains("not a TrueType"), "{err}");
    }

    #[test]
    fn an_empty_chain_draws_nothing() {
        let fonts = Fonts::default();
        assert!(fonts.is_empty());
        assert!(fonts.glyph('a').is_none());
        assert_eq!(fonts.describe(), "no fonts");
    }
}
