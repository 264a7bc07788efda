//! What a text costs: GSM-7 or UCS-2, characters counted as the network counts them, and segments.
//!
//! A text whose every character is in the GSM 03.38 alphabet goes as GSM-7: a basic-set
//! character takes one septet, one of the extension table (`^ { } \ [ ~ ] | €` and form feed)
//! two (an escape and the character). Any other character (é is in the basic set, á is not;
//! every Devanagari letter and emoji) makes the whole text UCS-2, counted in UTF-16 code units,
//! so an emoji outside the Basic Multilingual Plane takes two.
//!
//! One segment holds 160 septets or 70 units. A longer text is sent concatenated, and each
//! segment then loses room to the concatenation header: 153 septets or 67 units. Characters
//! are never split across segments: a two-septet escape, or a surrogate pair, that would
//! straddle a boundary starts the next segment (as handsets and Twilio do), so a long text
//! can take one segment more than `units / 153` rounded up.

/// How the network carries a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The GSM 03.38 7-bit alphabet.
    Gsm7,
    /// UTF-16 (UCS-2 on the air), for anything outside GSM-7.
    Ucs2,
}

/// What a text costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// The encoding the whole text needs.
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Segments billed (an empty text still takes one message).
    pub segments: u32,
}

/// The GSM 03.38 basic character set (one septet each), in table order.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table (two septets each: escape and character).
const EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets for one character, or `None` when it is not in GSM-7.
fn septets(c: char) -> Option<usize> {
    if c.is_ascii_alphanumeric() || c == ' ' || BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Segments for characters of these widths: `single` fits one segment, else `per` a segment
/// without splitting a character.
fn segments(widths: impl Iterator<Item = usize> + Clone, single: usize, per: usize) -> u32 {
    let total: usize = widths.clone().sum();
    if total <= single {
        return 1;
    }
    let mut count = 1u32;
    let mut used = 0usize;
    for w in widths {
        if used + w > per {
            count += 1;
            used = 0;
        }
        used += w;
    }
    count
}

/// What `text` costs to send as one SMS.
pub fn cost(text: &str) -> Cost {
    let gsm: Option<Vec<usize>> = text.chars().map(septets).collect();
    match gsm {
        Some(widths) => Cost {
            encoding: Encoding::Gsm7,
            units: widths.iter().sum(),
            segments: segments(widths.iter().copied(), 160, 153),
        },
        None => {
            let widths = text.chars().map(char::len_utf16);
            Cost {
                encoding: Encoding::Ucs2,
                units: widths.clone().sum(),
                segments: segments(widths, 70, 67),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_latin_is_gsm7_and_160_fit_one_segment() {
        let c = cost(&"a".repeat(160));
        assert_eq!(
            c,
            Cost {
                encoding: Encoding::Gsm7,
                units: 160,
                segments: 1
            }
        );
        assert_eq!(cost(&"a".repeat(161)).segments, 2);
        assert_eq!(cost(&"a".repeat(306)).segments, 2);
        assert_eq!(cost(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_characters_cost_two_septets() {
        let c = cost("€");
        assert_eq!((c.encoding, c.units), (Encoding::Gsm7, 2));
        assert_eq!(cost("{[~]}|^\\\u{c}").units, 18);
        // 159 basic + one euro = 161 septets: no longer one segment.
        assert_eq!(cost(&format!("{}€", "a".repeat(159))).segments, 2);
    }

    #[test]
    fn an_escape_is_never_split_across_segments() {
        // 152 septets, then a euro would straddle 153: it opens the second segment.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(150));
        let c = cost(&text);
        assert_eq!(c.units, 304);
        assert_eq!(c.segments, 2);
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(cost(&text).units, 306);
        assert_eq!(
            cost(&text).segments,
            3,
            "the euro moved, so 306 no longer fit two"
        );
    }

    #[test]
    fn accented_letters_of_the_basic_set_stay_gsm7_and_others_do_not() {
        assert_eq!(cost("café à Zürich, ¿qué?").encoding, Encoding::Gsm7);
        assert_eq!(cost("mañana").encoding, Encoding::Gsm7);
        assert_eq!(cost("está").encoding, Encoding::Ucs2, "á is not GSM-7");
        assert_eq!(cost("line\nbreak\r").encoding, Encoding::Gsm7);
        assert_eq!(cost("tab\there").encoding, Encoding::Ucs2);
    }

    #[test]
    fn hindi_is_ucs2_counted_in_utf16_units() {
        let c = cost("नमस्ते");
        assert_eq!(c.encoding, Encoding::Ucs2);
        assert_eq!(c.units, 6);
        assert_eq!(c.segments, 1);
        assert_eq!(cost(&"न".repeat(70)).segments, 1);
        assert_eq!(cost(&"न".repeat(71)).segments, 2);
        assert_eq!(cost(&"न".repeat(134)).segments, 2);
        assert_eq!(cost(&"न".repeat(135)).segments, 3);
    }

    #[test]
    fn an_emoji_is_two_units_and_makes_the_text_ucs2() {
        let c = cost("OK 👍");
        assert_eq!(c.encoding, Encoding::Ucs2);
        assert_eq!(c.units, 5);
        // 66 units then a surrogate pair: the pair opens the second segment.
        let text = format!("{}👍{}", "a".repeat(66), "a".repeat(60));
        assert_eq!(cost(&text).units, 128);
        assert_eq!(cost(&text).segments, 2);
        let text = format!("{}👍{}", "a".repeat(66), "a".repeat(67));
        assert_eq!(cost(&text).segments, 3);
    }

    #[test]
    fn the_empty_text_is_one_message_of_nothing() {
        assert_eq!(
            cost(""),
            Cost {
                encoding: Encoding::Gsm7,
                units: 0,
                segments: 1
            }
        );
    }
}
