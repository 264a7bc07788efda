//! Forms and instructions: the library of documents staff may send a patient
//! (`[documents.KEY]`) and the preparation notes a reminder carries (`[[prep_notes]]`).
//!
//! A document is checked when the config loads (the file is there, is a type WhatsApp takes
//! as a document, is under WhatsApp's 100 MB limit), so a receptionist never picks a form
//! that cannot go. Preparation notes match an appointment by its provider: the schedule
//! carries no appointment type, so a note per type cannot be told apart yet.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// WhatsApp's limit for a document.
pub const MAX_DOCUMENT_BYTES: u64 = 100 * 1024 * 1024;

/// What a preparation-note parameter says when the appointment has no note: WhatsApp
/// rejects an empty parameter, and a dash reads as "nothing to prepare".
pub const NO_PREP_NOTE: &str = "-";

/// Longest preparation note, in characters: it is one template parameter.
const PREP_NOTE_CHARS: usize = 300;

/// A document of the clinic's library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The section's key (`consent`): stored on each message that sends it.
    pub key: String,
    /// What staff see when they choose it ("Consent form").
    pub title: String,
    /// The file, resolved against the config file's folder.
    pub path: PathBuf,
    /// The file name the patient sees.
    pub filename: String,
    /// Its media type, from its extension (checked against its first bytes).
    pub mime_type: &'static str,
}

/// A preparation note: what a patient of one provider must do before coming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepNote {
    /// The provider as the schedule writes it, trimmed (matched without regard to case).
    pub provider: String,
    /// The note per language code.
    pub text: BTreeMap<String, String>,
}

impl PrepNote {
    /// The note in `language`, else its base language, else the clinic's `default`.
    pub fn text_for(&self, language: &str, default: &str) -> Option<&str> {
        let base = |l: &str| l.split('_').next().unwrap_or(l).to_string();
        [
            language.to_string(),
            base(language),
            default.to_string(),
            base(default),
        ]
        .iter()
        .find_map(|l| self.text.get(l))
        .map(String::as_str)
        .filter(|t| !t.trim().is_empty())
    }
}

/// The note for an appointment with `provider` (exact, trimmed, case-insensitive).
pub fn prep_note_for<'a>(notes: &'a [PrepNote], provider: Option<&str>) -> Option<&'a PrepNote> {
    let provider = provider?.trim();
    notes
        .iter()
        .find(|n| !provider.is_empty() && n.provider.eq_ignore_ascii_case(provider))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocument {
    file: PathBuf,
    title: String,
    filename: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrepNote {
    provider: String,
    text: BTreeMap<String, String>,
}

/// The types WhatsApp accepts as a document, by extension, with the first bytes of each.
const TYPES: [(&str, &str, &[u8]); 8] = [
    ("pdf", "application/pdf", b"%PDF-"),
    ("txt", "text/plain", b""),
    ("doc", "application/msword", b"\xD0\xCF\x11\xE0"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04",
    ),
    ("xls", "application/vnd.ms-excel", b"\xD0\xCF\x11\xE0"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"PK\x03\x04",
    ),
    ("ppt", "application/vnd.ms-powerpoint", b"\xD0\xCF\x11\xE0"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        b"PK\x03\x04",
    ),
];

/// Checks each `[documents.KEY]`: the file exists, is a document type, under the limit.
pub(super) fn validate_documents(
    raw: BTreeMap<String, RawDocument>,
    base: &Path,
    push: &mut impl FnMut(String, String),
) -> BTreeMap<String, Document> {
    let mut out = BTreeMap::new();
    for (key, d) in raw {
        let k = |f: &str| format!("documents.{}.{f}", super::seg(&key));
        if !super::validate::is_valid_key(&key) {
            push(
                format!("documents.{}", super::seg(&key)),
                "a document key may hold only letters, digits, '-' and '_'".into(),
            );
            continue;
        }
        let title = d.title.trim().to_string();
        if title.is_empty() {
            push(
                k("title"),
                "must not be empty: it is what staff choose, e.g. \"Consent form\"".into(),
            );
        }
        let path = base.join(&d.file);
        let ext = d
            .file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let Some(&(_, mime_type, magic)) = TYPES.iter().find(|(e, _, _)| *e == ext) else {
            push(
                k("file"),
                format!(
                    "{} is not a type WhatsApp sends as a document; give a PDF (or .txt, .doc, .docx, .xls, .xlsx, .ppt, .pptx)",
                    d.file.display()
                ),
            );
            continue;
        };
        match check_file(&path, magic) {
            Ok(()) => {}
            Err(why) => {
                push(k("file"), format!("{}: {why}", path.display()));
                continue;
            }
        }
        let filename = d
            .filename
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| {
                d.file.file_name().map_or_else(
                    || format!("{key}.{ext}"),
                    |f| f.to_string_lossy().into_owned(),
                )
            });
        if filename.contains(['/', '\\', '\n', '\r']) {
            push(
                k("filename"),
                "must be a plain file name, without folders or line breaks".into(),
            );
            continue;
        }
        out.insert(
            key.clone(),
            Document {
                key,
                title,
                path,
                filename,
                mime_type,
            },
        );
    }
    out
}

/// Reads a document's size and first bytes (WhatsApp's limit, the type its name says).
fn check_file(path: &Path, magic: &[u8]) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!("cannot be read ({e}); put the file there or correct the path (relative paths start at the config file's folder)")
    })?;
    if !meta.is_file() {
        return Err("is not a file; name the document file itself".into());
    }
    if meta.len() == 0 {
        return Err("is empty; WhatsApp refuses empty documents".into());
    }
    if meta.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "is {} MB, over WhatsApp's 100 MB limit for documents; make it smaller",
            meta.len() / (1024 * 1024)
        ));
    }
    let mut head = vec![0u8; magic.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| format!("cannot be read ({e})"))?;
    if head != magic {
        return Err(
            "does not hold what its name says (its first bytes are not those of that file type); export the document again".into(),
        );
    }
    Ok(())
}

/// Checks each `[[prep_notes]]`: a provider, a note per known language, each a valid
/// template parameter (one line, no tabs or runs of spaces).
pub(super) fn validate_prep_notes(
    raw: Vec<RawPrepNote>,
    push: &mut impl FnMut(String, String),
) -> Vec<PrepNote> {
    let mut out: Vec<PrepNote> = Vec::new();
    for (i, n) in raw.into_iter().enumerate() {
        let k = |f: &str| format!("prep_notes[{i}].{f}");
        let provider = n.provider.trim().to_string();
        if provider.is_empty() {
            push(
                k("provider"),
                "must name the provider as the schedule writes it, e.g. \"Dr. Mehta\"".into(),
            );
            continue;
        }
        if out
            .iter()
            .any(|o| o.provider.eq_ignore_ascii_case(&provider))
        {
            push(
                k("provider"),
                format!("{provider:?} has a note already; keep one note per provider"),
            );
            continue;
        }
        if n.text.is_empty() {
            push(
                k("text"),
                "give the note in at least one language, e.g. text = { en = \"Fast for 8 hours\" }"
                    .into(),
            );
        }
        let mut text = BTreeMap::new();
        for (lang, t) in n.text {
            let t = t.trim().to_string();
            let problem = crate::template::check_param(&t).err().or_else(|| {
                (t.chars().count() > PREP_NOTE_CHARS).then_some("is too long for one message line")
            });
            if let Some(problem) = problem {
                push(
                    k(&format!("text.{lang}")),
                    format!(
                        "{problem}; write the note on one line, at most {PREP_NOTE_CHARS} characters"
                    ),
                );
                continue;
            }
            let Some(code) = crate::model::normalize_language(&lang) else {
                push(
                    k(&format!("text.{lang}")),
                    "is not a language code; use one such as en, hi or mr".into(),
                );
                continue;
            };
            text.insert(code, t);
        }
        out.push(PrepNote { provider, text });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(dir: &Path, file: &str, bytes: &[u8]) -> (BTreeMap<String, Document>, Vec<String>) {
        std::fs::write(dir.join(file), bytes).expect("write");
        let raw = BTreeMap::from([(
            "consent".to_string(),
            RawDocument {
                file: file.into(),
                title: "Consent form".into(),
                filename: None,
            },
        )]);
        let mut problems = Vec::new();
        let out = validate_documents(raw, dir, &mut |k, m| problems.push(format!("{k}: {m}")));
        (out, problems)
    }

    #[test]
    fn a_pdf_loads_and_other_files_are_refused_naming_the_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let (ok, problems) = docs(dir.path(), "consent.pdf", b"%PDF-1.7\n...");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(ok["consent"].mime_type, "application/pdf");
        assert_eq!(ok["consent"].filename, "consent.pdf");

        let (_, problems) = docs(dir.path(), "photo.png", b"\x89PNG");
        assert!(
            problems[0].starts_with("documents.consent.file: ") && problems[0].contains("PDF"),
            "{problems:?}"
        );
        let (_, problems) = docs(dir.path(), "fake.pdf", b"<html>");
        assert!(
            problems[0].contains("does not hold what its name says"),
            "{problems:?}"
        );
        let raw = BTreeMap::from([(
            "leaflet".to_string(),
            RawDocument {
                file: "missing.pdf".into(),
                title: "Leaflet".into(),
                filename: Some("Diet leaflet.pdf".into()),
            },
        )]);
        let mut problems = Vec::new();
        validate_documents(raw, dir.path(), &mut |k, m| {
            problems.push(format!("{k}: {m}"));
        });
        assert!(
            problems[0].starts_with("documents.leaflet.file: ")
                && problems[0].contains("put the file there"),
            "{problems:?}"
        );
    }

    #[test]
    fn prep_notes_match_the_provider_in_any_case_and_fall_back_to_the_clinic_language() {
        let mut problems = Vec::new();
        let notes = validate_prep_notes(
            vec![RawPrepNote {
                provider: " Dr. Mehta ".into(),
                text: BTreeMap::from([
                    ("en".to_string(), "Fast for 8 hours".to_string()),
                    ("hi".to_string(), "8 घंटे उपवास रखें".to_string()),
                ]),
            }],
            &mut |k, m| problems.push(format!("{k}: {m}")),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let note = prep_note_for(&notes, Some("dr. mehta")).expect("matched");
        assert_eq!(note.text_for("hi", "en"), Some("8 घंटे उपवास रखें"));
        assert_eq!(note.text_for("mr", "en"), Some("Fast for 8 hours"));
        assert!(prep_note_for(&notes, Some("Dr. Rao")).is_none());
        assert!(prep_note_for(&notes, None).is_none());

        let mut problems = Vec::new();
        validate_prep_notes(
            vec![RawPrepNote {
                provider: "Dr. Rao".into(),
                text: BTreeMap::from([("en".to_string(), "Line one\nline two".to_string())]),
            }],
            &mut |k, m| problems.push(format!("{k}: {m}")),
        );
        assert!(
            problems[0].starts_with("prep_notes[0].text.en: "),
            "{problems:?}"
        );
    }
}
