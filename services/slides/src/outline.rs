//! The local outliner: no language model runs offline, so this one is a TEMPLATE, and says
//! so (`generator: "template-v1"` on the creation). It makes a title scene from the prompt,
//! a summary scene at the end, and between them scenes whose headings follow a fixed
//! teaching structure (why it matters, the core idea, how it works, …) and whose bullets are
//! the prompt's own clauses when it has several, or generic prompts about the topic when it
//! has one. The same prompt, language and count always give the same scenes.

use crate::params::Scene;

/// The name the creation shows for how its outline was made.
pub const GENERATOR: &str = "template-v1";

struct Template {
    /// Scene titles of the middle scenes, in teaching order; cycled when more are needed.
    headings: &'static [&'static str],
    /// Bullets about the topic when the prompt gives too few of its own; `{}` is the topic.
    bullets: &'static [&'static [&'static str]],
    opening: fn(&str, usize) -> String,
    middle: fn(&str, &str, &[String]) -> String,
    summary_title: &'static str,
    closing: fn(&[String]) -> String,
    pages: fn(usize) -> String,
}

const ZH: Template = Template {
    headings: &[
        "为什么重要",
        "核心概念",
        "它是如何工作的",
        "关键步骤",
        "一个具体的例子",
        "常见误区",
        "延伸与应用",
    ],
    bullets: &[
        &["{} 要解决什么问题", "没有它时会遇到的困难"],
        &["{} 的基本定义", "最重要的一个直觉"],
        &["输入是什么，输出是什么", "中间发生了哪些计算"],
        &["第一步：准备", "第二步：计算", "第三步：汇总"],
        &["用一个小例子走一遍", "观察每一步的结果"],
        &["容易混淆的地方", "如何避免"],
        &["{} 的典型应用", "下一步可以学什么"],
    ],
    opening: |topic, n| format!("今天我们用{n}页来讲清楚：{topic}。"),
    middle: |heading, topic, bullets| {
        format!(
            "这一页讲{heading}。围绕{topic}，我们关注{}。",
            bullets.join("，以及")
        )
    },
    summary_title: "总结",
    closing: |headings| format!("最后回顾一下：{}。谢谢观看。", headings.join("，")),
    pages: |n| format!("共 {n} 页"),
};

const EN: Template = Template {
    headings: &[
        "Why it matters",
        "The core idea",
        "How it works",
        "The key steps",
        "A worked example",
        "Common pitfalls",
        "Where it goes next",
    ],
    bullets: &[
        &["The problem {} solves", "What goes wrong without it"],
        &["A plain definition of {}", "The one intuition to keep"],
        &["What goes in and what comes out", "What happens in between"],
        &[
            "Step one: prepare",
            "Step two: compute",
            "Step three: combine",
        ],
        &["A small example, step by step", "What each step produces"],
        &["What is easy to confuse", "How to avoid it"],
        &["Where {} is used", "What to learn next"],
    ],
    opening: |topic, n| format!("In {n} slides, we will walk through {topic}."),
    middle: |heading, topic, bullets| {
        format!(
            "{heading}. Looking at {topic}, we focus on {}.",
            bullets.join(", and ").to_lowercase()
        )
    },
    summary_title: "Summary",
    closing: |headings| format!("To sum up: {}. Thanks for watching.", headings.join(", ")),
    pages: |n| format!("{n} slides"),
};

fn template(language: &str) -> &'static Template {
    match language {
        "zh" | "ja" => &ZH,
        _ => &EN,
    }
}

/// Clause and sentence ends, in Latin and CJK punctuation.
pub fn is_clause_end(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ';' | ',' | '。' | '！' | '？' | '；' | '，' | '、' | '\n'
    )
}

fn clauses(text: &str) -> Vec<String> {
    text.split(is_clause_end)
        .map(|c| c.trim().to_owned())
        .filter(|c| c.chars().count() >= 2)
        .collect()
}

/// The subject of the prompt: instructions such as "用 6 页讲清楚" or "explain in 6 slides"
/// are dropped from its front, and it is cut to a title's length.
pub fn topic(prompt: &str) -> String {
    let mut text = prompt.trim();
    // "用 6 页" / "用6页" …, then a verb of explaining.
    if let Some(rest) = text.strip_prefix('用') {
        let rest = rest.trim_start();
        let digits = rest
            .char_indices()
            .find(|(_, c)| !c.is_ascii_digit() && !c.is_whitespace())
            .map_or(rest.len(), |(i, _)| i);
        if let Some(after) = rest[digits..].strip_prefix('页') {
            text = after.trim_start();
        }
    }
    for verb in ["讲清楚", "讲解", "介绍", "说明", "解释"] {
        if let Some(rest) = text.strip_prefix(verb) {
            text = rest.trim_start();
        }
    }
    let lower = text.to_lowercase();
    for lead in ["explain ", "introduce ", "describe "] {
        if lower.starts_with(lead) {
            text = text[lead.len()..].trim_start();
            break;
        }
    }
    let text = text.trim_end_matches(|c: char| is_clause_end(c) || c.is_whitespace());
    let cut: String = text.chars().take(60).collect();
    if cut.is_empty() {
        prompt.trim().chars().take(60).collect()
    } else {
        cut
    }
}

/// `count` scenes for `prompt` in `language`.
pub fn outline(prompt: &str, language: &str, count: usize) -> Vec<Scene> {
    let t = template(language);
    let topic = topic(prompt);
    let mut scenes = vec![Scene {
        title: topic.clone(),
        bullets: vec![(t.pages)(count)],
        narration: (t.opening)(&topic, count),
    }];
    if count == 1 {
        return scenes;
    }
    let middle = count.saturating_sub(2);
    let own = clauses(prompt);
    // The prompt's own clauses go to the middle scenes in order when there are enough of them
    // to give each scene one; otherwise each scene takes its template bullets.
    let use_own = own.len() >= middle.max(2);
    let mut headings = Vec::with_capacity(middle);
    for i in 0..middle {
        let k = i % t.headings.len();
        let round = i / t.headings.len();
        let heading = if round == 0 {
            t.headings[k].to_owned()
        } else {
            format!("{} ({})", t.headings[k], round + 1)
        };
        let bullets: Vec<String> = if use_own {
            own.iter()
                .skip(i)
                .step_by(middle.max(1))
                .take(4)
                .cloned()
                .collect()
        } else {
            t.bullets[k]
                .iter()
                .map(|b| b.replace("{}", &topic))
                .collect()
        };
        scenes.push(Scene {
            narration: (t.middle)(&heading, &topic, &bullets),
            title: heading.clone(),
            bullets,
        });
        headings.push(heading);
    }
    let recap: Vec<String> = if headings.is_empty() {
        vec![topic.clone()]
    } else {
        headings.iter().take(4).cloned().collect()
    };
    scenes.push(Scene {
        title: t.summary_title.to_owned(),
        narration: (t.closing)(&recap),
        bullets: recap,
    });
    scenes
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "用 6 页讲清楚 transformer 的 attention 是怎么工作的";

    #[test]
    fn the_seed_prompt_gives_six_scenes_about_its_topic() {
        let scenes = outline(SEED, "zh", 6);
        assert_eq!(scenes.len(), 6);
        assert_eq!(scenes[0].title, "transformer 的 attention 是怎么工作的");
        assert!(scenes[0].narration.contains("6页"));
        assert_eq!(scenes[5].title, "总结");
        for scene in &scenes {
            assert!(!scene.title.is_empty());
            assert!(!scene.narration.is_empty());
        }
        assert!(scenes[1].bullets[0].contains("transformer"));
    }

    #[test]
    fn same_input_same_outline() {
        assert_eq!(outline(SEED, "zh", 9), outline(SEED, "zh", 9));
        assert_ne!(outline(SEED, "zh", 9), outline(SEED, "en", 9));
    }

    #[test]
    fn every_count_in_the_catalog_range_is_met_exactly() {
        for count in 1..=20 {
            assert_eq!(outline("photosynthesis", "en", count).len(), count);
        }
        let many = outline("photosynthesis", "en", 20);
        assert_eq!(many[8].title, "Why it matters (2)");
    }

    #[test]
    fn a_prompt_with_many_clauses_is_structured_by_them() {
        let prompt = "Light hits the leaf, chlorophyll absorbs it, water is split, \
                      oxygen is released, sugar is built";
        let scenes = outline(prompt, "en", 4);
        assert_eq!(
            scenes[1].bullets,
            ["Light hits the leaf", "water is split", "sugar is built"]
        );
        assert_eq!(
            scenes[2].bullets,
            ["chlorophyll absorbs it", "oxygen is released"]
        );
    }

    #[test]
    fn instructions_are_not_the_topic() {
        assert_eq!(topic("用6页介绍光合作用"), "光合作用");
        assert_eq!(topic("Explain black holes."), "black holes");
        assert_eq!(topic("   "), "");
    }
}
