//! Server-side SVG charts for the desk's stats page: pure functions from numbers to markup.
//!
//! The output is one inline `<svg>` element with no scripts and no external references, so it
//! can be embedded in a page as-is. Every number is also written as text ("67% (2 of 3)"), and
//! each series has its own colour, fill pattern and heading, so nothing depends on colour alone.

use std::fmt::Write as _;

/// One bar: `value` out of `of`, e.g. 30 confirmed of 40 reminded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// Row label, e.g. a reminder rule as the clinic calls it.
    pub label: String,
    /// The count being measured (confirmed, no-show, ...).
    pub value: u64,
    /// The total it is a share of; 0 is drawn as "no data".
    pub of: u64,
}

/// One group of bars under a heading, e.g. "Confirmed" or "No-show".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Heading shown above the group and used in the screen-reader description.
    pub name: String,
    /// The bars, drawn top to bottom in this order.
    pub bars: Vec<Bar>,
}

/// Fill colours, each at least 4.5:1 against white; series past the end reuse them with a new pattern.
const COLOURS: [&str; 4] = ["#1f5fa8", "#a84300", "#6a3d9a", "#2b6e2f"];
/// Where the bar track starts and how wide it is, in viewBox units (the viewBox is 720 wide).
const TRACK: (u32, u32) = (240, 280);
const MAX_LABEL_CHARS: usize = 24;

/// A horizontal grouped bar chart of `value / of` as percentages (0–100 %), as an inline `<svg>`.
///
/// Series without bars are left out. A `value` above `of` fills its bar to the end; its text
/// still shows the real counts (e.g. "150% (3 of 2)"), so bad input stays visible.
pub fn rate_chart(title: &str, groups: &[Series]) -> String {
    // Ids only need to differ between charts on one page; hashing the input keeps them stable.
    let fnv = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    let id = format!("{title:?}{groups:?}");
    let id = format!("rc{:016x}", id.bytes().fold(0xcbf2_9ce4_8422_2325, fnv));
    let (title, (x, w)) = (escape(title), TRACK);
    if groups.iter().all(|s| s.bars.is_empty()) {
        // As wide as a chart with bars, so both draw their text at the same size.
        let msg = "Nothing to chart in this range";
        let body = format!("<text x=\"360\" y=\"52\" text-anchor=\"middle\">{msg}</text>");
        return svg(&id, (720, 64), &title, msg, "", &body);
    }
    // Labels in wide glyphs can outrun the character limit; the clip keeps them off the page edge.
    let mut defs = format!(
        "<clipPath id=\"{id}-c\"><rect x=\"16\" width=\"{}\" height=\"100%\"/></clipPath>",
        x - 20
    );
    let (mut body, mut desc, mut y) = (String::new(), Vec::new(), 44);
    for (i, series) in groups
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.bars.is_empty())
    {
        let (colour, name) = (COLOURS[i % COLOURS.len()], escape(&series.name));
        let fill = pattern(&mut defs, &id, i, colour);
        let paint = format!("fill=\"{fill}\" stroke=\"{colour}\"");
        let _ = write!(
            body,
            "<rect x=\"16\" y=\"{}\" width=\"14\" height=\"14\" {paint}/>\
             <text x=\"36\" y=\"{}\" font-weight=\"bold\">{name}</text>",
            y + 5,
            y + 17
        );
        let mut parts = Vec::new();
        for bar in &series.bars {
            y += 24;
            let (label, text) = (escape(&bar.label), bar_text(bar));
            let (dash, share) = match bar.of {
                0 => (" stroke-dasharray=\"4 3\"", 0.0),
                of => ("", bar.value.min(of) as f64 / of as f64),
            };
            let _ = write!(
                body,
                "<g><title>{name}: {label}: {text}</title>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\" clip-path=\"url(#{id}-c)\">{}</text>\
                 <rect x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"14\" fill=\"#f2f2f2\" stroke=\"#767676\"{dash}/>\
                 <rect x=\"{x}\" y=\"{}\" width=\"{:.1}\" height=\"14\" {paint}/>\
                 <text x=\"{}\" y=\"{}\">{text}</text></g>",
                x - 8,
                y + 16,
                escape(&shorten(&bar.label)),
                y + 5,
                y + 5,
                share * f64::from(w),
                x + w + 8,
                y + 16
            );
            parts.push(format!("{label} {text}"));
        }
        desc.push(format!("{name}: {}.", parts.join("; ")));
        y += 32;
    }
    let desc = format!("Each bar is a share of its row's total. {}", desc.join(" "));
    svg(&id, (720, y), &title, &desc, &defs, &body)
}

/// The root element around `body`, with a visible title and the screen-reader title and description.
fn svg(id: &str, (w, h): (u32, u32), title: &str, desc: &str, defs: &str, body: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" \
         viewBox=\"0 0 {w} {h}\" width=\"100%\" font-family=\"system-ui, sans-serif\" font-size=\"13\" \
         fill=\"#1a1a1a\"><title id=\"{id}-t\">{title}</title><desc id=\"{id}-d\">{desc}</desc>\
         <defs>{defs}</defs><text x=\"16\" y=\"26\" font-size=\"16\" font-weight=\"bold\">{title}</text>{body}</svg>"
    )
}

/// `value / of` in whole percent, rounded half up; `None` when `of` is 0.
fn percent(value: u64, of: u64) -> Option<u64> {
    (of > 0).then(|| ((u128::from(value) * 200 + u128::from(of)) / (u128::from(of) * 2)) as u64)
}

/// The bar's reading as text: "67% (2 of 3)" or "no data".
fn bar_text(bar: &Bar) -> String {
    match percent(bar.value, bar.of) {
        Some(p) => format!("{p}% ({} of {})", bar.value, bar.of),
        None => "no data".to_owned(),
    }
}

/// Adds the fill for series `i` to `defs` and returns it: solid, then hatched, dotted, cross-hatched.
fn pattern(defs: &mut String, id: &str, i: usize, colour: &str) -> String {
    let marks = match (i / COLOURS.len() + i) % 4 {
        0 => return colour.to_owned(),
        1 => "<path d=\"M0 0V6\" stroke=\"#fff\" stroke-width=\"2\"/>",
        2 => "<circle cx=\"3\" cy=\"3\" r=\"1.2\" fill=\"#fff\"/>",
        _ => "<path d=\"M0 0V6M0 3H6\" stroke=\"#fff\" stroke-width=\"1.2\"/>",
    };
    let _ = write!(
        defs,
        "<pattern id=\"{id}-p{i}\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"{colour}\"/>{marks}</pattern>"
    );
    format!("url(#{id}-p{i})")
}

/// Cuts a label to fit the label column, marking the cut with an ellipsis.
fn shorten(label: &str) -> String {
    match label.chars().nth(MAX_LABEL_CHARS) {
        Some(_) => label
            .chars()
            .take(MAX_LABEL_CHARS - 1)
            .chain(['…'])
            .collect(),
        None => label.to_owned(),
    }
}

/// Escapes text for XML content and attributes; characters XML 1.0 forbids become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, bars: &[(&str, u64, u64)]) -> Series {
        let bar = |&(label, value, of): &(&str, u64, u64)| Bar {
            label: label.into(),
            value,
            of,
        };
        Series {
            name: name.into(),
            bars: bars.iter().map(bar).collect(),
        }
    }

    /// A small stand-in for an XML parser: one root, balanced tags, no stray `>`, known entities.
    fn assert_well_formed(svg: &str) {
        let (mut stack, mut roots) = (Vec::new(), 0);
        assert!(svg.starts_with('<'), "text before the root");
        for piece in svg.split('<').skip(1) {
            let (tag, text) = piece.split_once('>').unwrap_or((piece, ">"));
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched close");
            } else if !tag.ends_with('/') {
                roots += usize::from(stack.is_empty());
                stack.push(tag.split(' ').next().unwrap_or_default());
            }
            assert!(!text.contains('>') && (text.is_empty() || !stack.is_empty()));
            let entities = ["amp;", "lt;", "gt;", "quot;", "apos;"];
            for rest in piece.split('&').skip(1) {
                assert!(entities.iter().any(|e| rest.starts_with(e)), "bad &{rest}");
            }
        }
        assert!(stack.is_empty() && roots == 1, "{stack:?} {roots}");
    }

    #[test]
    fn percentages_round_half_up() {
        for (value, of, want) in [(2, 3, 67), (1, 3, 33), (1, 200, 1), (199, 200, 100)] {
            assert_eq!(percent(value, of), Some(want), "{value} of {of}");
        }
        assert_eq!(percent(0, 5), Some(0));
        assert_eq!(percent(u64::MAX, u64::MAX), Some(100));
        let svg = rate_chart("Rates", &[series("Confirmed", &[("48h", 2, 3)])]);
        assert!(svg.contains(">67% (2 of 3)</text>") && svg.contains("width=\"186.7\""));
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let label = "<script>alert('x')</script> & \"co\"\u{1}";
        let evil = [series("No-show & <b>", &[(label, 1, 2)])];
        let svg = rate_chart("A & B <script>", &evil);
        assert!(!svg.contains("<script") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("\">A &amp; B &lt;script&gt;</title>"));
        assert!(svg.contains(">No-show &amp; &lt;b&gt;</text>"));
        assert!(svg.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; &quot;co"));
        assert!(svg.contains("&quot;co&quot;\u{fffd}"), "control char");
        assert_well_formed(&svg);
    }

    #[test]
    fn zero_total_is_no_data_and_empty_input_says_so() {
        let bars = [("Night before", 0, 0), ("Week", 1, 1)];
        let svg = rate_chart("Rates", &[series("Confirmed", &bars)]);
        assert!(svg.contains(">no data</text>") && svg.contains("Night before no data"));
        assert!(svg.contains("stroke-dasharray") && !svg.contains("NaN") && !svg.contains("inf"));
        assert!(svg.contains(">100% (1 of 1)</text>"));
        assert_well_formed(&svg);
        for groups in [vec![], vec![series("Confirmed", &[])]] {
            let svg = rate_chart("Rates", &groups);
            assert!(svg.contains(">Nothing to chart in this range</text>"));
            assert!(svg.contains("viewBox=\"0 0 720 64\""));
            assert_well_formed(&svg);
        }
    }

    #[test]
    fn chart_is_accessible_self_contained_and_deterministic() {
        let long = "long name ".repeat(5);
        let groups = [
            series("Confirmed", &[("48h before", 30, 40), ("2h before", 5, 9)]),
            series("No-show", &[("48h before", 2, 40), (&long, 1, 9)]),
        ];
        let svg = rate_chart("Last 30 days", &groups);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-"));
        assert!(svg.contains("viewBox=\"0 0 720 204\" width=\"100%\"") && svg.ends_with("</svg>"));
        assert!(svg.contains("Confirmed: 48h before 75% (30 of 40); 2h before 56% (5 of 9)."));
        assert!(svg.contains(">No-show</text>") && svg.contains(">5% (2 of 40)</text>"));
        assert!(svg.contains(">long name long name lon…</text>"));
        for banned in ["<script", "href", "javascript:", " on", "<image"] {
            assert!(!svg.contains(banned), "{banned} in {svg}");
        }
        assert_eq!(svg, rate_chart("Last 30 days", &groups));
        let other = rate_chart("Last 7 days", &groups);
        assert_ne!(svg[..99], other[..99], "ids differ between charts");
        assert_well_formed(&svg);
    }

    #[test]
    fn series_differ_by_pattern_and_colours_contrast_with_white() {
        let contrast = |hex: &str| {
            let linear = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(255)) / 255.0;
                if c <= 0.039_28 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            1.05 / (0.2126 * linear(1) + 0.7152 * linear(3) + 0.0722 * linear(5) + 0.05)
        };
        let mut looks: Vec<(&str, String)> = Vec::new();
        for i in 0..8 {
            let (colour, mut defs) = (COLOURS[i % COLOURS.len()], String::new());
            let fill = pattern(&mut defs, "x", i, colour);
            let look = (colour, defs.split_once("/>").map_or(fill, |d| d.1.into()));
            assert!(contrast(colour) >= 4.5, "{colour} is too light");
            assert!(!looks.contains(&look), "series {i} looks like another");
            assert!(i >= 4 || looks.iter().all(|l| l.1 != look.1), "{i}");
            looks.push(look);
        }
    }
}
