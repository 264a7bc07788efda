//! A CSV file's text read as it goes, never held whole: one pass checks it (checksum,
//! encoding, delimiter), the next reads its rows, and row numbers come from the line breaks
//! the reader passes rather than from a buffer of the whole file.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::{RowError, breaks_in, sheet};

/// Bytes read from a file at a time.
const READ_BYTES: usize = 1 << 16;

/// A file's bytes to import: already in memory (an upload), or a CSV file on disk.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// The whole file.
    Bytes(&'a [u8]),
    /// A CSV file, checked and read again as rows are read.
    File(&'a CsvFile),
}

/// A file opened for import: a spreadsheet is read whole (it is compressed), a CSV file is
/// only checked.
pub enum Opened {
    /// A spreadsheet's bytes.
    Whole(Vec<u8>),
    /// A CSV file on disk.
    Csv(CsvFile),
}

impl Opened {
    /// Reads `path` once through: a spreadsheet whole, a CSV file only to check it.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut head = Vec::with_capacity(4);
        (&mut file).take(4).read_to_end(&mut head)?;
        if sheet::is_spreadsheet(&head) {
            let mut bytes = head;
            file.read_to_end(&mut bytes)?;
            return Ok(Self::Whole(bytes));
        }
        let mut check = TextCheck::default();
        check.feed(&head);
        let mut buf = vec![0u8; READ_BYTES];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => check.feed(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self::Csv(CsvFile {
            path: path.to_path_buf(),
            file,
            checked: check.finish(),
        }))
    }

    /// The file as the importer reads it.
    pub fn input(&self) -> Input<'_> {
        match self {
            Self::Whole(b) => Input::Bytes(b),
            Self::Csv(c) => Input::File(c),
        }
    }
}

/// A CSV file on disk and what checking it found.
pub struct CsvFile {
    path: PathBuf,
    file: File,
    pub(super) checked: Checked,
}

impl CsvFile {
    /// The text's bytes (after any byte-order mark), from the start.
    pub(super) fn text(&self) -> io::Result<impl Read + '_> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(self.checked.bom))?;
        Ok(io::BufReader::with_capacity(READ_BYTES, f))
    }

    /// The text's bytes from `at`, through a handle of its own (only to word an error).
    pub(super) fn text_from(&self, at: u64) -> io::Result<impl Read + use<>> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.checked.bom + at))?;
        Ok(io::BufReader::new(f))
    }
}

/// What one pass over a CSV file found.
#[derive(Debug, Clone)]
pub(super) struct Checked {
    /// sha256 of the bytes, hex.
    pub checksum: String,
    /// The delimiter, or why the file is not text.
    pub text: Result<u8, RowError>,
    /// Length of the byte-order mark (0 or 3).
    pub bom: u64,
    /// Bytes of text after it.
    pub len: u64,
}

/// A file's bytes checked as they come: checksum, UTF-8 (pointing at the first bad row) and
/// the header line's delimiter.
#[derive(Default)]
pub(super) struct TextCheck {
    sha: Sha256,
    /// Bytes seen, in all.
    seen: u64,
    /// The first bytes, until it is known whether they are a byte-order mark.
    head: Vec<u8>,
    bom: u64,
    started: bool,
    /// An unfinished character at the end of the bytes so far.
    carry: Vec<u8>,
    /// Line breaks before the text checked so far.
    lines: usize,
    /// The row of the first byte that is not UTF-8.
    bad: Option<usize>,
    delimiter: Delimiter,
}

impl TextCheck {
    /// Takes the next bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.seen += bytes.len() as u64;
        if self.started {
            self.text(bytes);
        } else {
            self.head.extend_from_slice(bytes);
            if self.head.len() < 3 {
                return;
            }
            let head = std::mem::take(&mut self.head);
            self.start(&head);
        }
    }

    fn start(&mut self, head: &[u8]) {
        self.started = true;
        let rest = match head.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => {
                self.bom = 3;
                rest
            }
            None => head,
        };
        self.text(rest);
    }

    fn text(&mut self, bytes: &[u8]) {
        if self.bad.is_some() {
            return;
        }
        let joined;
        let data = if self.carry.is_empty() {
            bytes
        } else {
            let mut c = std::mem::take(&mut self.carry);
            c.extend_from_slice(bytes);
            joined = c;
            &joined[..]
        };
        let (valid, rest) = match std::str::from_utf8(data) {
            Ok(_) => (data, None),
            Err(e) => {
                let (valid, rest) = data.split_at(e.valid_up_to());
                (valid, Some((rest, e.error_len().is_some())))
            }
        };
        self.lines += valid.iter().filter(|b| **b == b'\n').count();
        self.delimiter.feed(valid);
        match rest {
            None => {}
            Some((_, true)) => self.bad = Some(self.lines + 1),
            Some((rest, false)) => self.carry = rest.to_vec(),
        }
    }

    /// What the bytes were.
    pub fn finish(mut self) -> Checked {
        if !self.started {
            let head = std::mem::take(&mut self.head);
            self.start(&head);
        }
        if !self.carry.is_empty() && self.bad.is_none() {
            self.bad = Some(self.lines + 1);
        }
        Checked {
            checksum: format!("{:x}", self.sha.finalize()),
            text: match self.bad {
                Some(row) => Err(not_utf8(row)),
                None => Ok(self.delimiter.best()),
            },
            bom: self.bom,
            len: self.seen - self.bom,
        }
    }
}

/// The error for a file that is not UTF-8, on the row of its first bad byte.
fn not_utf8(row: usize) -> RowError {
    RowError {
        patient: None,
        row,
        column: String::new(),
        value: String::new(),
        message: "the file is not UTF-8 text; upload the spreadsheet itself (.xlsx or .ods), or in your spreadsheet choose \"Save as\" → \"CSV UTF-8\" and import that file".into(),
    }
}

/// Picks `,`, `;` or tab: whichever occurs most in the header line outside quotes.
#[derive(Default)]
pub(super) struct Delimiter {
    counts: [usize; 3],
    quoted: bool,
    done: bool,
}

impl Delimiter {
    /// Takes the next bytes of text (all the characters it counts are single bytes).
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            if self.done {
                return;
            }
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => self.done = true,
                b',' if !self.quoted => self.counts[0] += 1,
                b';' if !self.quoted => self.counts[1] += 1,
                b'\t' if !self.quoted => self.counts[2] += 1,
                _ => {}
            }
        }
    }

    pub(super) fn best(&self) -> u8 {
        let best = (0..3)
            .max_by_key(|&i| (self.counts[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        [b',', b';', b'\t'][best]
    }
}

/// Where the line breaks (and carriage returns) are among the bytes read and not yet
/// numbered: only those a reader has read ahead, so it stays small.
type Breaks = Rc<RefCell<VecDeque<(u64, u8)>>>;

/// A reader noting where its line breaks are.
pub(super) struct Tracked<R> {
    inner: R,
    at: u64,
    breaks: Breaks,
}

impl<R: Read> Tracked<R> {
    /// `inner`, and the counter that numbers its rows.
    pub fn new(inner: R) -> (Self, RowCounter) {
        let breaks = Breaks::default();
        let counter = RowCounter {
            breaks: breaks.clone(),
            pos: 0,
            row: 1,
            inside: 0,
        };
        (
            Self {
                inner,
                at: 0,
                breaks,
            },
            counter,
        )
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut q = self.breaks.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if matches!(b, b'\n' | b'\r') {
                q.push_back((self.at + i as u64, *b));
            }
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// Spreadsheet row numbers from byte offsets: the line breaks between one record's start and
/// the next, less the breaks inside the earlier record's cells.
pub(super) struct RowCounter {
    breaks: Breaks,
    pos: u64,
    row: usize,
    inside: usize,
}

impl RowCounter {
    /// The row of the record starting at `byte`; `record` is it, when it parsed. The header
    /// is the first record numbered.
    pub fn row_at(&mut self, byte: u64, record: Option<&csv::StringRecord>) -> usize {
        let mut q = self.breaks.borrow_mut();
        let mut byte = byte;
        let mut breaks = 0;
        // csv reports where it started reading, before any blank lines it skipped.
        while let Some(&(at, b)) = q.front() {
            match at.cmp(&byte) {
                std::cmp::Ordering::Less => breaks += usize::from(b == b'\n' && at >= self.pos),
                std::cmp::Ordering::Equal => {
                    breaks += usize::from(b == b'\n');
                    byte += 1;
                }
                std::cmp::Ordering::Greater => break,
            }
            q.pop_front();
        }
        self.row += breaks.saturating_sub(self.inside);
        self.pos = self.pos.max(byte);
        self.inside = record.map_or(0, breaks_in);
        self.row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check, given `bytes` in pieces of `n`.
    fn checked(bytes: &[u8], n: usize) -> Checked {
        let mut c = TextCheck::default();
        for piece in bytes.chunks(n) {
            c.feed(piece);
        }
        c.finish()
    }

    #[test]
    fn a_file_read_in_pieces_checks_as_a_file_read_whole() {
        let text = "\u{feff}naam;tijd\nJosé;9:00\nZoë;10:00\n".as_bytes();
        for n in 1..8 {
            let c = checked(text, n);
            assert_eq!(c.text.as_ref().ok(), Some(&b';'), "pieces of {n}");
            assert_eq!((c.bom, c.len), (3, text.len() as u64 - 3));
            assert_eq!(c.checksum, format!("{:x}", Sha256::digest(text)));
        }
        let bad = b"name,time\nJos\xe9,9:00\n";
        for n in 1..8 {
            assert_eq!(checked(bad, n).text.map_err(|e| e.row), Err(2));
        }
        // A character cut off by the end of the file.
        assert_eq!(checked(b"a,b\n\xc3", 1).text.map_err(|e| e.row), Err(2));
    }
}
