//! A reply's file on a page: a player for a voice note or video, the photo, or a link to save
//! a document, each with the patient's caption and a plain link that opens the file on its
//! own (where a file WhatsApp no longer has says so in words).

use maud::{Markup, html};

use crate::replies::media_noun;
use crate::store::ReplyMedia;

/// Where the desk serves the file of reply `reply_id`.
fn media_href(reply_id: i64) -> String {
    format!("/desk/replies/media?reply={reply_id}")
}

/// The file of reply `reply_id` (a [`crate::store::ReplyView`]'s `media`), with its caption.
/// Players load nothing until pressed (`preload="none"`): each fetch goes to WhatsApp and is
/// audited, so a list of replies does not fetch every voice note it shows.
pub fn reply_media(reply_id: i64, media: &ReplyMedia) -> Markup {
    let href = media_href(reply_id);
    let noun = media_noun(&media.kind, media.voice);
    // "a voice note" → "voice note", for "Open the voice note".
    let what = noun.split_once(' ').map_or(noun, |(_, w)| w);
    let caption = media
        .caption
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    html! {
        figure.media {
            @match media.kind.as_str() {
                "audio" => {
                    audio controls preload="none" src=(href) {
                        a href=(href) { "Open the " (what) }
                    }
                    p.hint { a href=(href) { "Open the " (what) " on its own" } }
                }
                "video" => {
                    video controls preload="none" src=(href) {
                        a href=(href) { "Open the " (what) }
                    }
                    p.hint { a href=(href) { "Open the " (what) " on its own" } }
                }
                "image" | "sticker" => {
                    img src=(href) loading="lazy" alt=(caption.map_or_else(|| format!("The {what} the patient sent"), str::to_string));
                    p.hint { a href=(href) { "Open the " (what) " on its own" } }
                }
                _ => {
                    p {
                        a href=(href) download[true] {
                            "Save the " (what)
                            @if let Some(name) = media.filename.as_deref().filter(|n| !n.trim().is_empty()) {
                                ": " (name)
                            }
                        }
                    }
                }
            }
            @if let Some(c) = caption {
                figcaption { (c) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(kind: &str, caption: Option<&str>, filename: Option<&str>) -> ReplyMedia {
        ReplyMedia {
            kind: kind.into(),
            mime_type: None,
            filename: filename.map(str::to_string),
            caption: caption.map(str::to_string),
            voice: kind == "audio",
        }
    }

    #[test]
    fn a_voice_note_gets_a_player_that_loads_only_when_pressed() {
        let html = reply_media(12, &media("audio", None, None)).into_string();
        assert!(
            html.contains(r#"<audio controls preload="none" src="/desk/replies/media?reply=12">"#),
            "{html}"
        );
        assert!(html.contains("Open the voice note"), "{html}");
        assert!(!html.contains("figcaption"), "{html}");
    }

    #[test]
    fn photos_videos_and_documents_with_their_captions() {
        let html = reply_media(3, &media("image", Some("my prescription"), None)).into_string();
        assert!(
            html.contains(
                r#"<img src="/desk/replies/media?reply=3" loading="lazy" alt="my prescription">"#
            ),
            "{html}"
        );
        assert!(
            html.contains("<figcaption>my prescription</figcaption>"),
            "{html}"
        );
        let html = reply_media(4, &media("video", None, None)).into_string();
        assert!(html.contains(r#"<video controls preload="none""#), "{html}");
        let html = reply_media(
            5,
            &media("document", Some("<b>report</b>"), Some("Blood test.pdf")),
        )
        .into_string();
        assert!(
            html.contains(r#"<a href="/desk/replies/media?reply=5" download>Save the document: Blood test.pdf</a>"#),
            "{html}"
        );
        // Captions are the patient's words: escaped, never markup.
        assert!(html.contains("&lt;b&gt;report&lt;/b&gt;"), "{html}");
        let html = reply_media(6, &media("image", None, None)).into_string();
        assert!(
            html.contains(r#"alt="The photo the patient sent""#),
            "{html}"
        );
    }
}
