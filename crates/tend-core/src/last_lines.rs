//! The last lines a program wrote before it died, kept small: the "address already in use"
//! that says why a service fails belongs in the exit line, `status` and the alert, not
//! only in a log file nobody has opened yet.
//!
//! [`LastLines`] keeps the last few KiB of a stream as bytes (cheap enough to feed on every
//! read) and turns them into short, printable lines only when asked.

/// How many bytes of a stream's end are kept by default.
pub const KEEP_BYTES: usize = 2048;

/// How much of a stream's end is shown: lines, and bytes in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// At most this many lines (the newest).
    pub lines: usize,
    /// At most this many bytes in all; a longer line is cut, older lines are dropped.
    pub bytes: usize,
}

impl Bound {
    /// For `status` and alerts: a few lines.
    pub const STATUS: Self = Self {
        lines: 5,
        bytes: 600,
    };
    /// For the one-line exit and give-up messages.
    pub const LINE: Self = Self {
        lines: 3,
        bytes: 300,
    };
    /// For a crash record's stderr.
    pub const CRASH: Self = Self {
        lines: 20,
        bytes: 3000,
    };
    /// For a crash record's stdout.
    pub const CRASH_STDOUT: Self = Self {
        lines: 10,
        bytes: 1500,
    };
}

/// The end of a stream, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastLines {
    tail: Vec<u8>,
    /// Whether bytes before `tail` were dropped (its first line may be a fragment).
    cut: bool,
    /// How many bytes are kept.
    keep: usize,
}

impl Default for LastLines {
    fn default() -> Self {
        Self::keeping(KEEP_BYTES)
    }
}

impl LastLines {
    /// Nothing yet; keeps the last [`KEEP_BYTES`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Nothing yet; keeps the last `keep` bytes.
    #[must_use]
    pub fn keeping(keep: usize) -> Self {
        Self {
            tail: Vec::new(),
            cut: false,
            keep: keep.max(1),
        }
    }

    /// Adds what the stream wrote next.
    pub fn push(&mut self, bytes: &[u8]) {
        let keep = self.keep;
        if bytes.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
            self.cut = true;
            return;
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > keep {
            let extra = self.tail.len() - keep;
            self.tail.drain(..extra);
            self.cut = true;
        }
    }

    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tail.is_empty()
    }

    /// The newest non-blank lines within `bound`, oldest first, as printable text: invalid
    /// UTF-8 replaced, terminal escape sequences removed, control characters as spaces.
    #[must_use]
    pub fn lines(&self, bound: Bound) -> Vec<String> {
        let mut pieces: Vec<&[u8]> = self.tail.split(|b| *b == b'\n').collect();
        if self.cut && pieces.len() > 1 {
            // The first piece starts mid-line.
            pieces.remove(0);
        }
        let mut out: Vec<String> = Vec::new();
        let mut used = 0;
        for piece in pieces.iter().rev() {
            if out.len() == bound.lines {
                break;
            }
            let line = printable(piece);
            if line.is_empty() {
                continue;
            }
            let room = bound.bytes.saturating_sub(used);
            if room == 0 {
                break;
            }
            let line = cut_to(line, room);
            used += line.len();
            out.push(line);
        }
        out.reverse();
        out
    }
}

/// Lines as one: `a | b | c`.
#[must_use]
pub fn one_line(lines: &[String]) -> String {
    lines.join(" | ")
}

/// A line as printable text, trimmed.
fn printable(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI (`ESC [ ... final`): colours and cursor moves. Other escapes: ESC + one.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

/// `s` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
fn cut_to(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mark = '…';
    let mut end = max.saturating_sub(mark.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push(mark);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(writes: &[&[u8]], bound: Bound) -> Vec<String> {
        let mut l = LastLines::new();
        for w in writes {
            l.push(w);
        }
        l.lines(bound)
    }

    #[test]
    fn table() {
        let b = |lines, bytes| Bound { lines, bytes };
        type Case<'a> = (&'a [&'a [u8]], Bound, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (&[], b(5, 600), vec![]),
            (&[b"one\ntwo\n"], b(5, 600), vec!["one", "two"]),
            // The newest lines, across writes; an unfinished last line counts.
            (&[b"a\nb\n", b"c\nd"], b(2, 600), vec!["c", "d"]),
            // Blank lines and CRLF endings say nothing.
            (&[b"x\r\n\r\n  \n"], b(5, 600), vec!["x"]),
            // Colours go, control characters become spaces, bad UTF-8 is replaced.
            (
                &[b"\x1b[31merror\x1b[0m:\tbad\xff\n"],
                b(5, 600),
                vec!["error: bad\u{fffd}"],
            ),
            // Bytes bound: older lines dropped first, a long newest line cut.
            (&[b"older\nnewest line\n"], b(5, 11), vec!["newest line"]),
            (&[b"abcdefghij\n"], b(5, 8), vec!["abcde…"]),
        ];
        for (writes, bound, want) in cases {
            assert_eq!(lines_of(writes, bound), want, "{writes:?}");
        }
    }

    #[test]
    fn keeps_only_the_end_and_drops_the_fragment_it_cut() {
        let mut l = LastLines::new();
        let long = vec![b'x'; KEEP_BYTES * 3];
        l.push(&long);
        l.push(b"\nlisten tcp :8080: bind: address already in use\n");
        assert_eq!(
            l.lines(Bound::STATUS),
            ["listen tcp :8080: bind: address already in use"]
        );
        // Many small writes: the same as one.
        let mut m = LastLines::new();
        for i in 0..10_000 {
            m.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(
            m.lines(Bound::LINE),
            ["line 9997", "line 9998", "line 9999"]
        );
        assert!(m.tail.len() <= KEEP_BYTES);
    }

    #[test]
    fn a_cut_inside_a_multibyte_character_stays_valid() {
        // 6 bytes: the mark takes 3, and "é" is 2, so one fits.
        assert_eq!(cut_to("ééééé".to_owned(), 6), "é…");
        assert_eq!(one_line(&["a".into(), "b".into()]), "a | b");
    }
}
