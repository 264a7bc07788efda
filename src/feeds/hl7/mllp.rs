//! MLLP framing (pure): a message is `0x0B` + bytes + `0x1C 0x0D`. Bytes before a start
//! byte are skipped (line noise, a sender's keep-alive newline); a frame larger than the
//! limit is reported once and its bytes are dropped.

/// Start of a frame.
pub const START: u8 = 0x0B;
/// End of a frame (followed by a carriage return).
pub const END: u8 = 0x1C;
/// The carriage return after `END`.
pub const CR: u8 = 0x0D;

/// Wraps one message in a frame.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message);
    out.extend_from_slice(&[END, CR]);
    out
}

/// What the bytes so far hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole message (without its framing bytes).
    Frame(Vec<u8>),
    /// A frame grew past the limit; its first bytes, for an ACK that names its MSH-10.
    TooLong(Vec<u8>),
}

/// Reassembles frames from a byte stream.
#[derive(Debug)]
pub struct Deframer {
    max: usize,
    buf: Vec<u8>,
    in_frame: bool,
    too_long: bool,
}

/// How much of an oversized frame is kept to read its MSH.
const HEAD_KEPT: usize = 4096;

impl Deframer {
    /// Frames up to `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            buf: Vec::new(),
            in_frame: false,
            too_long: false,
        }
    }

    /// Whether a frame is started and not finished (bytes are owed).
    pub fn mid_frame(&self) -> bool {
        self.in_frame
    }

    /// Takes the next bytes read; returns the events they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in bytes {
            if !self.in_frame {
                if b == START {
                    self.in_frame = true;
                    self.too_long = false;
                    self.buf.clear();
                }
                continue;
            }
            if b == END {
                self.in_frame = false;
                if !self.too_long {
                    out.push(Event::Frame(std::mem::take(&mut self.buf)));
                }
                self.buf.clear();
                // The CR after END is not a start byte, so the skip above drops it.
                continue;
            }
            if b == START && !self.too_long {
                // A new frame without the previous one's end: the sender gave up on it.
                self.buf.clear();
                continue;
            }
            if self.too_long {
                continue;
            }
            self.buf.push(b);
            if self.buf.len() > self.max {
                self.too_long = true;
                self.buf.truncate(HEAD_KEPT);
                out.push(Event::TooLong(std::mem::take(&mut self.buf)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_and_junk_between_them_are_read() {
        let mut d = Deframer::new(100);
        let mut bytes = b"\r\n junk".to_vec();
        bytes.extend(frame(b"MSH|one"));
        bytes.extend(b"\n");
        bytes.extend(frame(b"MSH|two"));
        let (a, b) = bytes.split_at(12);
        let mut events = d.push(a);
        assert!(d.mid_frame());
        events.extend(d.push(b));
        assert_eq!(
            events,
            vec![
                Event::Frame(b"MSH|one".to_vec()),
                Event::Frame(b"MSH|two".to_vec())
            ]
        );
        assert!(!d.mid_frame());
    }

    #[test]
    fn an_oversized_frame_is_reported_once_with_its_head_and_the_next_frame_still_reads() {
        let mut d = Deframer::new(10);
        let mut bytes = frame(b"MSH|0123456789abcdef");
        bytes.extend(frame(b"MSH|ok"));
        let events = d.push(&bytes);
        assert_eq!(
            events,
            vec![
                Event::TooLong(b"MSH|0123456".to_vec()),
                Event::Frame(b"MSH|ok".to_vec())
            ]
        );
    }

    #[test]
    fn a_restart_byte_mid_frame_drops_the_unfinished_frame() {
        let mut d = Deframer::new(100);
        let mut bytes = vec![START];
        bytes.extend(b"MSH|half");
        bytes.extend(frame(b"MSH|whole"));
        assert_eq!(d.push(&bytes), vec![Event::Frame(b"MSH|whole".to_vec())]);
    }
}
