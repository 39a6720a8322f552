//! Line breaking for mixed Chinese, Japanese, Korean and Latin text. Pure: widths come from a
//! closure, so tests measure with fixed-width characters.
//!
//! - CJK text has no spaces: a line may break between any two CJK characters.
//! - Latin words break at spaces; a word longer than a line is cut by characters.
//! - Closing punctuation (`，。！？）」` and `,.!?)`…) never starts a line and opening brackets
//!   never end one: they stay with their neighbour (the simple form of kinsoku shori).
//! - Spaces at a break vanish; a newline in the text always breaks.

/// Breaks `text` into lines no wider than `max_width`, except where a single character is.
pub fn wrap(text: &str, max_width: f32, advance: &dyn Fn(char) -> f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        wrap_paragraph(paragraph, max_width, advance, &mut lines);
    }
    lines
}

enum Atom {
    Space,
    /// Characters that stay together on one line.
    Word(String),
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF       // Hangul Jamo
        | 0x2E80..=0x2FDF     // CJK radicals
        | 0x3000..=0x303F     // CJK symbols and punctuation
        | 0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3100..=0x31FF     // Bopomofo, Katakana extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0xFE30..=0xFE4F     // CJK compatibility forms
        | 0xFF00..=0xFFEF     // Half- and full-width forms
        | 0x20000..=0x3FFFF   // CJK extensions B onwards
    )
}

/// May not begin a line.
fn closes(c: char) -> bool {
    "，。、！？；：）」』》〉】〕｝］…—～·,.!?;:)]}%".contains(c)
}

/// May not end a line.
fn opens(c: char) -> bool {
    "（「『《〈【〔｛［([{".contains(c)
}

fn atoms(paragraph: &str) -> Vec<Atom> {
    let mut atoms: Vec<Atom> = Vec::new();
    // Whether the last atom may take more characters: a Latin word under way, or an opening
    // bracket waiting for what it opens.
    let mut open_word = false;
    for c in paragraph.chars() {
        if c.is_whitespace() {
            atoms.push(Atom::Space);
            open_word = false;
            continue;
        }
        let glue_to_previous = match atoms.last() {
            Some(Atom::Word(word)) => {
                (open_word && !is_cjk(c)) || closes(c) || word.chars().last().is_some_and(opens)
            }
            _ => false,
        };
        if glue_to_previous && let Some(Atom::Word(word)) = atoms.last_mut() {
            word.push(c);
        } else {
            atoms.push(Atom::Word(c.to_string()));
        }
        open_word = !is_cjk(c);
    }
    atoms
}

fn wrap_paragraph(
    paragraph: &str,
    max_width: f32,
    advance: &dyn Fn(char) -> f32,
    lines: &mut Vec<String>,
) {
    let width = |s: &str| s.chars().map(advance).sum::<f32>();
    let space = advance(' ');
    let mut line = String::new();
    let mut line_width = 0.0;
    let mut pending_space = false;
    for atom in atoms(paragraph) {
        let word = match atom {
            Atom::Space => {
                pending_space = !line.is_empty();
                continue;
            }
            Atom::Word(word) => word,
        };
        let word_width = width(&word);
        let gap = if pending_space { space } else { 0.0 };
        pending_space = false;
        if !line.is_empty() && line_width + gap + word_width <= max_width {
            if gap > 0.0 {
                line.push(' ');
            }
            line.push_str(&word);
            line_width += gap + word_width;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line_width = 0.0;
        }
        if word_width <= max_width {
            line = word;
            line_width = word_width;
            continue;
        }
        // Longer than a whole line: cut it wherever the line is full.
        for c in word.chars() {
            let w = advance(c);
            if !line.is_empty() && line_width + w > max_width {
                lines.push(std::mem::take(&mut line));
                line_width = 0.0;
            }
            line.push(c);
            line_width += w;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mono(text: &str, width: f32) -> Vec<String> {
        wrap(text, width, &|_| 1.0)
    }

    #[test]
    fn cjk_breaks_between_any_characters() {
        assert_eq!(
            mono("参考图片的风格生成旅游海报", 5.0),
            ["参考图片的", "风格生成旅", "游海报"]
        );
    }

    #[test]
    fn closing_punctuation_never_starts_a_line() {
        assert_eq!(mono("一二三四，五六", 4.0), ["一二三", "四，五六"]);
        assert_eq!(mono("旅游「海报」。", 3.0), ["旅游", "「海", "报」。"]);
    }

    #[test]
    fn latin_breaks_at_spaces_and_cuts_overlong_words() {
        assert_eq!(
            mono("the quick brown fox", 10.0),
            ["the quick", "brown fox"]
        );
        assert_eq!(mono("abcdefghijkl", 5.0), ["abcde", "fghij", "kl"]);
        assert_eq!(mono("hi   there", 20.0), ["hi there"]);
    }

    #[test]
    fn mixed_text_keeps_latin_words_whole() {
        assert_eq!(
            mono("生成 9:16 旅游海报", 6.0),
            ["生成", "9:16 旅", "游海报"]
        );
        assert_eq!(mono("生成9:16旅游海报", 6.0), ["生成9:16", "旅游海报"]);
    }

    #[test]
    fn newlines_break_and_widths_are_measured() {
        assert_eq!(mono("a\nb", 10.0), ["a", "b"]);
        // Wide letters: each "W" is 3, each "i" 1.
        let lines = wrap("WW ii WW", 6.0, &|c| if c == 'W' { 3.0 } else { 1.0 });
        assert_eq!(lines, ["WW", "ii", "WW"]);
        assert_eq!(mono("", 5.0), [""]);
    }
}
