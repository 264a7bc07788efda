//! Where the log goes: journald's native protocol when systemd connected stderr to the
//! journal, else lines on stderr (coloured only for a person at a terminal), or JSON when the
//! administrator asks for it.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// What `journalctl -t` and the `SYSLOG_IDENTIFIER` field name the daemon by, whatever the
/// binary was renamed to.
const IDENTIFIER: &str = "reminderd";

/// Where log lines go and how they look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// Native journald entries: a priority per level and the event's fields as fields.
    Journald,
    /// One JSON object a line on stderr.
    Json,
    /// Human lines on stderr, with colour codes or without.
    Text { colour: bool },
}

/// What the process finds around it, gathered once so that `choose` is a pure function.
#[derive(Debug, Default)]
struct Surroundings<'a> {
    /// `REMINDERD_LOG_FORMAT`.
    format: Option<&'a str>,
    /// `JOURNAL_STREAM`, which systemd sets to the device and inode of the journal's stream.
    journal_stream: Option<&'a str>,
    /// The device and inode of what fd 2 is open on.
    stderr: Option<(u64, u64)>,
    /// Whether stderr is a terminal.
    terminal: bool,
    /// `NO_COLOR` (https://no-color.org: set and not empty means no colour).
    no_color: Option<&'a OsStr>,
}

/// JSON when asked for (an explicit choice, kept even under systemd); journald when stderr
/// *is* the journal's stream (a child that inherited `JOURNAL_STREAM` but writes to a pipe or
/// file is not logging to the journal); else text, coloured only at a terminal.
fn choose(s: &Surroundings<'_>) -> Sink {
    if s.format.is_some_and(|f| f.eq_ignore_ascii_case("json")) {
        return Sink::Json;
    }
    if s.journal_stream
        .and_then(parse_journal_stream)
        .is_some_and(|j| Some(j) == s.stderr)
    {
        return Sink::Journald;
    }
    Sink::Text {
        colour: s.terminal && s.no_color.is_none_or(OsStr::is_empty),
    }
}

/// `JOURNAL_STREAM` is `DEVICE:INODE`, both in decimal (systemd.exec(5)).
fn parse_journal_stream(v: &str) -> Option<(u64, u64)> {
    let (dev, ino) = v.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// The device and inode of stderr, through a duplicate of fd 2 (no unsafe code needed).
fn stderr_identity() -> Option<(u64, u64)> {
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Sets up the global subscriber. `default` is the filter when `RUST_LOG` is unset.
pub(super) fn init(default: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let format = std::env::var("REMINDERD_LOG_FORMAT").ok();
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let no_color = std::env::var_os("NO_COLOR");
    let sink = choose(&Surroundings {
        format: format.as_deref(),
        journal_stream: journal_stream.as_deref(),
        stderr: stderr_identity(),
        terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        no_color: no_color.as_deref(),
    });
    let text = || {
        tracing_subscriber::fmt()
            .with_env_filter(filter.clone())
            .with_writer(std::io::stderr)
    };
    match sink {
        Sink::Json => text().with_ansi(false).json().init(),
        Sink::Text { colour } => text().with_ansi(colour).init(),
        Sink::Journald => match tracing_journald::layer() {
            Ok(layer) => tracing_subscriber::registry()
                .with(filter)
                .with(FieldsInMessage(journald(layer)))
                .init(),
            Err(e) => {
                // The journal still reads stderr: plain lines reach it, at one priority.
                text().with_ansi(false).init();
                tracing::warn!(error = %e, "journald socket unavailable; logging lines to stderr");
            }
        },
    }
}

/// Names the daemon `reminderd` and maps levels as syslog reads them: info is routine
/// (priority 6, what the journal gave every stderr line before), so `journalctl -p warning`
/// shows only what needs a look.
fn journald(layer: tracing_journald::Layer) -> tracing_journald::Layer {
    layer
        .with_syslog_identifier(IDENTIFIER.to_string())
        .with_priority_mappings(PriorityMappings {
            error: Priority::Error,
            warn: Priority::Warning,
            info: Priority::Informational,
            debug: Priority::Debug,
            trace: Priority::Debug,
        })
}

/// Sends each event on with its fields also written into `MESSAGE`, as `key=value` after the
/// text, the way the stderr lines show them: `journalctl -u reminderd` prints `MESSAGE` only,
/// and "plan failed" without its `error` would tell the administrator nothing. The fields
/// still go as journald fields too (`F_ERROR=...`), for `journalctl F_OUTBOX=17`.
struct FieldsInMessage<L>(L);

impl<S, L> tracing_subscriber::Layer<S> for FieldsInMessage<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: tracing_subscriber::Layer<S>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        self.0.on_new_span(attrs, id, ctx);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        self.0.on_record(id, values, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let fields = metadata.fields();
        let Some(message) = fields.field("message") else {
            return self.0.on_event(event, ctx);
        };
        let mut rendered = Rendered {
            fields: fields.iter().collect(),
            values: vec![None; fields.len()],
        };
        event.record(&mut rendered);
        let text = message_with_fields(&rendered.fields, &rendered.values);
        let values: Vec<Option<&dyn tracing::Value>> = rendered
            .fields
            .iter()
            .zip(&rendered.values)
            .map(|(field, value)| {
                if *field == message {
                    Some(&text as &dyn tracing::Value)
                } else {
                    value.as_ref().map(|v| &v.text as &dyn tracing::Value)
                }
            })
            .collect();
        // `value_set_all` is hidden from the docs but is what `tracing`'s own macros expand to,
        // so every crate's events depend on it staying.
        let values = fields.value_set_all(&values);
        let rewritten = if event.is_contextual() {
            Event::new(metadata, &values)
        } else {
            Event::new_child_of(event.parent().cloned(), metadata, &values)
        };
        self.0.on_event(&rewritten, ctx);
    }
}

/// One recorded field value: as the journald field carries it, and as the text line shows it.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    shown: String,
}

/// An event's values, by the position of their field in its field set.
struct Rendered {
    fields: Vec<Field>,
    values: Vec<Option<Value>>,
}

impl Rendered {
    fn put(&mut self, field: &Field, text: String, shown: String) {
        if let Some(i) = self.fields.iter().position(|f| f == field) {
            self.values[i] = Some(Value { text, shown });
        }
    }
}

impl Visit for Rendered {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Quoted in the line, as the stderr format shows strings; raw in the field.
        self.put(field, value.to_string(), format!("{value:?}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.put(field, text.clone(), text);
    }
}

/// `message key=value key=value`, in the order the event names its fields.
fn message_with_fields(fields: &[Field], values: &[Option<Value>]) -> String {
    let pairs = || {
        fields
            .iter()
            .zip(values)
            .filter_map(|(f, v)| Some((f.name(), v.as_ref()?)))
    };
    let mut out = pairs()
        .find(|(name, _)| *name == "message")
        .map(|(_, v)| v.text.clone())
        .unwrap_or_default();
    for (name, v) in pairs().filter(|(name, _)| *name != "message") {
        let _ = write!(out, " {name}={}", v.shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERMINAL: Surroundings<'static> = Surroundings {
        format: None,
        journal_stream: None,
        stderr: Some((27, 4321)),
        terminal: true,
        no_color: None,
    };

    #[test]
    fn a_terminal_gets_colour_unless_no_color_is_set_and_not_empty() {
        assert_eq!(choose(&TERMINAL), Sink::Text { colour: true });
        let no_color = Surroundings {
            no_color: Some(OsStr::new("1")),
            ..TERMINAL
        };
        assert_eq!(choose(&no_color), Sink::Text { colour: false });
        let empty = Surroundings {
            no_color: Some(OsStr::new("")),
            ..TERMINAL
        };
        assert_eq!(choose(&empty), Sink::Text { colour: true });
    }

    #[test]
    fn a_file_or_pipe_gets_plain_text() {
        let pipe = Surroundings {
            terminal: false,
            ..TERMINAL
        };
        assert_eq!(choose(&pipe), Sink::Text { colour: false });
    }

    #[test]
    fn journald_only_when_the_stream_systemd_named_is_stderr() {
        let journal = Surroundings {
            journal_stream: Some("27:4321"),
            terminal: false,
            ..TERMINAL
        };
        assert_eq!(choose(&journal), Sink::Journald);
        // A child of the service whose stderr was redirected to a file inherits the variable.
        for other in ["27:4322", "28:4321", "garbage", "", "27:"] {
            let s = Surroundings {
                journal_stream: Some(other),
                ..journal
            };
            assert_eq!(choose(&s), Sink::Text { colour: false }, "{other:?}");
        }
        let unknown = Surroundings {
            stderr: None,
            ..journal
        };
        assert_eq!(choose(&unknown), Sink::Text { colour: false });
    }

    #[test]
    fn json_when_asked_for_even_under_systemd() {
        let journal = Surroundings {
            format: Some("JSON"),
            journal_stream: Some("27:4321"),
            ..TERMINAL
        };
        assert_eq!(choose(&journal), Sink::Json);
        let other = Surroundings {
            format: Some("text"),
            ..TERMINAL
        };
        assert_eq!(choose(&other), Sink::Text { colour: true });
    }
}
