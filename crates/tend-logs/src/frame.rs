//! Turning the bytes read from a pipe into log lines: prefixes, long-line splitting and the
//! carry-over of a line that has not ended yet. Pure functions over byte slices, never a
//! decode: whatever the program wrote is kept byte for byte.

use std::io::{self, Read};

use chrono::{DateTime, FixedOffset};
use memchr::{memchr_iter, memrchr};

use crate::clock::{TS_LEN, format_ts};

/// Bytes asked for per `read` on a pipe once the stream is busy: a full pipe's worth.
pub(crate) const READ_SIZE: usize = 64 * 1024;

/// Bytes asked for by the first `read`. Each read that fills the window doubles it, up to
/// [`READ_SIZE`], so a busy stream gets there within a handful of reads while a quiet one
/// (most services, most of the time) keeps only this much resident in each of its
/// readers: with 100 services that is the difference between 13 MiB and under 1 MiB.
const FIRST_READ_SIZE: usize = 4 * 1024;

/// Used when the spec says `max_line = 0`: some limit must exist or a program writing
/// without newlines would make tend buffer without end.
pub(crate) const DEFAULT_MAX_LINE: usize = 64 * 1024;

pub(crate) fn effective_max_line(max_line: usize) -> usize {
    if max_line == 0 {
        DEFAULT_MAX_LINE
    } else {
        max_line
    }
}

/// One reader's input buffer. It holds the unfinished line carried over from the previous
/// read (at most `max_line` bytes, see [`frame`]) followed by the next read, so a line that
/// spans reads never needs a second buffer.
pub(crate) struct LineBuf {
    /// Zero-filled only when it grows: zero-filling 64 KiB before every read would cost a
    /// noticeable share of the copy it precedes.
    buf: Vec<u8>,
    filled: usize,
    /// Bytes asked for by the next read.
    window: usize,
}

impl LineBuf {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            filled: 0,
            window: FIRST_READ_SIZE,
        }
    }

    pub(crate) fn read_from(&mut self, r: &mut dyn Read) -> io::Result<usize> {
        let end = self.filled + self.window;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let n = r.read(&mut self.buf[self.filled..end])?;
        self.filled += n;
        if n == self.window && self.window < READ_SIZE {
            self.window *= 2;
        }
        Ok(n)
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Forgets the first `n` bytes and moves the rest (the carry-over) to the front.
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Empties the buffer for the next run's pipe. A buffer no bigger than a first read is
    /// kept: a crash-looping program's reader would otherwise allocate and free it (an
    /// `mmap` and `munmap` with musl's allocator, and a page fault) at every restart. A
    /// bigger one, grown by a busy run, is let go, so a quiet next run keeps only
    /// [`FIRST_READ_SIZE`] resident, as a new buffer would.
    pub(crate) fn recycle(&mut self) {
        if self.buf.len() > FIRST_READ_SIZE {
            self.buf = Vec::new();
        }
        self.filled = 0;
        self.window = FIRST_READ_SIZE;
    }
}

/// Builds the per-line prefix (timestamp and/or stream tag), formatting the timestamp only
/// when the millisecond changes.
pub(crate) struct Prefixer {
    cached: Option<(i64, i32)>,
    ts: [u8; TS_LEN],
    buf: [u8; TS_LEN + 8],
    len: usize,
}

impl Prefixer {
    pub(crate) fn new() -> Self {
        Self {
            cached: None,
            ts: [0; TS_LEN],
            buf: [0; TS_LEN + 8],
            len: 0,
        }
    }

    /// The timestamp of `now` (with its trailing space), formatted once per millisecond.
    pub(crate) fn stamp(&mut self, now: &DateTime<FixedOffset>) -> &[u8; TS_LEN] {
        let key = (now.timestamp_millis(), now.offset().local_minus_utc());
        if self.cached != Some(key) {
            format_ts(now, &mut self.ts);
            self.cached = Some(key);
        }
        &self.ts
    }

    /// The prefix for lines read at `now`; `tag` is `b"out "`-style.
    pub(crate) fn prefix(
        &mut self,
        timestamps: bool,
        tag: &[u8],
        now: &DateTime<FixedOffset>,
    ) -> &[u8] {
        let mut len = 0;
        if timestamps {
            self.stamp(now);
            self.buf[..TS_LEN].copy_from_slice(&self.ts);
            len = TS_LEN;
        }
        let tag = &tag[..tag.len().min(self.buf.len() - len)];
        self.buf[len..len + tag.len()].copy_from_slice(tag);
        self.len = len + tag.len();
        &self.buf[..self.len]
    }
}

/// What [`frame`] made of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed {
    /// The first `n` input bytes are complete lines that need no change: write them as they are.
    Passthrough(usize),
    /// The first `n` input bytes were framed into the output buffer.
    Built(usize),
}

/// Frames the complete lines at the start of `data`.
///
/// Afterwards, the unconsumed rest is an unfinished line of at most `max_line` bytes: longer
/// unfinished lines are cut into marked pieces right away, which is what bounds memory when a
/// program writes megabytes without a newline. At `eof` everything is consumed and a missing
/// final newline is added.
pub(crate) fn frame(
    data: &[u8],
    prefix: &[u8],
    max_line: usize,
    eof: bool,
    out: &mut Vec<u8>,
) -> Framed {
    if prefix.is_empty()
        && let Some(n) = passthrough_len(data, max_line)
        && (!eof || n == data.len())
    {
        return Framed::Passthrough(n);
    }
    out.clear();
    Framed::Built(frame_into(out, data, prefix, max_line, eof))
}

/// If no line in `data` is longer than `max_line`, the length of its complete lines.
///
/// Walks in windows of `max_line + 1` bytes and looks only for the last newline in each, so
/// with the default 64 KiB limit a 64 KiB read costs one or two backward searches instead of
/// a visit to every line.
fn passthrough_len(data: &[u8], max_line: usize) -> Option<usize> {
    let mut pos = 0;
    loop {
        let rest = &data[pos..];
        let window = &rest[..rest.len().min(max_line.saturating_add(1))];
        match memrchr(b'\n', window) {
            Some(i) => pos += i + 1,
            None if window.len() > max_line => return None,
            None => return Some(pos),
        }
    }
}

/// See [`frame`]; returns how many bytes of `data` were consumed.
pub(crate) fn frame_into(
    out: &mut Vec<u8>,
    data: &[u8],
    prefix: &[u8],
    max_line: usize,
    eof: bool,
) -> usize {
    let mut pos = 0;
    for nl in memchr_iter(b'\n', data) {
        if nl - pos <= max_line {
            // The common case, kept to two copies per line: this is the hot loop with
            // timestamps on.
            out.extend_from_slice(prefix);
            out.extend_from_slice(&data[pos..=nl]);
        } else {
            emit_line(out, &data[pos..nl], prefix, max_line);
        }
        pos = nl + 1;
    }
    let mut rest = &data[pos..];
    if eof {
        if !rest.is_empty() {
            emit_line(out, rest, prefix, max_line);
            pos = data.len();
        }
    } else {
        while rest.len() > max_line {
            let cut = cut_point(rest, max_line);
            emit_piece(out, prefix, &rest[..cut]);
            rest = &rest[cut..];
            pos += cut;
        }
    }
    pos
}

fn emit_line(out: &mut Vec<u8>, mut line: &[u8], prefix: &[u8], max_line: usize) {
    while line.len() > max_line {
        let cut = cut_point(line, max_line);
        emit_piece(out, prefix, &line[..cut]);
        line = &line[cut..];
    }
    out.extend_from_slice(prefix);
    out.extend_from_slice(line);
    out.push(b'\n');
}

fn emit_piece(out: &mut Vec<u8>, prefix: &[u8], piece: &[u8]) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(piece);
    out.extend_from_slice(crate::CONTINUED_MARKER.as_bytes());
    out.push(b'\n');
}

/// Where to cut a line longer than `max_line`: at `max_line`, or up to 3 bytes earlier so a
/// UTF-8 sequence is not split (which would leave both pieces invalid). No decoding: only
/// the continuation-byte bit pattern is looked at.
pub(crate) fn cut_point(line: &[u8], max_line: usize) -> usize {
    debug_assert!(line.len() > max_line);
    let mut cut = max_line;
    while cut > max_line.saturating_sub(3) && cut > 1 && is_continuation(line[cut]) {
        cut -= 1;
    }
    if is_continuation(line[cut]) {
        max_line
    } else {
        cut
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn run(data: &[u8], prefix: &[u8], max_line: usize, eof: bool) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        match frame(data, prefix, max_line, eof, &mut out) {
            Framed::Passthrough(n) => (data[..n].to_vec(), n),
            Framed::Built(n) => (out, n),
        }
    }

    #[test]
    fn complete_lines_pass_through_unchanged() {
        let data = b"a\nbb\n\xff\xfe\ncc";
        let mut out = Vec::new();
        assert_eq!(
            frame(data, b"", 10, false, &mut out),
            Framed::Passthrough(8)
        );
        assert_eq!(
            frame(b"abc", b"", 10, false, &mut out),
            Framed::Passthrough(0)
        );
    }

    #[test]
    fn eof_completes_the_last_line() {
        assert_eq!(run(b"a\nbc", b"", 10, true), (b"a\nbc\n".to_vec(), 4));
        assert_eq!(run(b"a\n", b"", 10, true), (b"a\n".to_vec(), 2));
        assert_eq!(run(b"", b"", 10, true), (Vec::new(), 0));
    }

    #[test]
    fn prefix_goes_before_every_line() {
        assert_eq!(
            run(b"a\n\nb\nc", b"P ", 10, false),
            (b"P a\nP \nP b\n".to_vec(), 5)
        );
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let (out, n) = run(b"0123456789\nab\n", b"", 4, false);
        assert_eq!(n, 14);
        assert_eq!(out, b"0123 [continued]\n4567 [continued]\n89\nab\n");
        // Exactly max_line is not cut.
        assert_eq!(run(b"0123\n", b"", 4, false).0, b"0123\n");
        // An unfinished line longer than max_line is emitted in pieces right away.
        let (out, n) = run(b"0123456789", b"", 4, false);
        assert_eq!(
            (out.as_slice(), n),
            (&b"0123 [continued]\n4567 [continued]\n"[..], 8)
        );
    }

    #[test]
    fn cuts_avoid_splitting_utf8() {
        // "aé" + "é" = 61 c3 a9 c3 a9: a cut at 2 would split the first é.
        let (out, _) = run("aéé\n".as_bytes(), b"", 2, false);
        assert_eq!(out, "a [continued]\né [continued]\né\n".as_bytes());
        // Invalid UTF-8 (only continuation bytes) still makes progress at max_line.
        let (out, _) = run(b"\x80\x80\x80\x80\x80\n", b"", 2, false);
        assert_eq!(out, b"\x80\x80 [continued]\n\x80\x80 [continued]\n\x80\n");
    }

    #[test]
    fn carry_never_exceeds_max_line() {
        // A huge line with no newline, fed through a LineBuf the way a reader does.
        let max_line = 1000;
        let mut src: &[u8] = &vec![b'x'; 3 * 1024 * 1024];
        let mut buf = LineBuf::new();
        let mut out = Vec::new();
        let mut total = 0;
        loop {
            let n = buf.read_from(&mut src).unwrap();
            let eof = n == 0;
            let consumed = match frame(buf.data(), b"", max_line, eof, &mut out) {
                Framed::Passthrough(c) => {
                    total += c;
                    c
                }
                Framed::Built(c) => {
                    total += out.len();
                    c
                }
            };
            buf.consume(consumed);
            assert!(buf.data().len() <= max_line);
            assert!(buf.capacity() <= READ_SIZE + max_line);
            if eof {
                break;
            }
        }
        let pieces = (3 * 1024 * 1024usize).div_ceil(max_line);
        assert_eq!(
            total,
            3 * 1024 * 1024 + (pieces - 1) * (crate::CONTINUED_MARKER.len() + 1) + 1
        );
    }

    #[test]
    fn reads_start_small_and_grow_while_full() {
        let mut buf = LineBuf::new();
        assert_eq!(buf.capacity(), 0, "nothing resident before the first read");
        let mut quiet: &[u8] = b"one line\n";
        buf.read_from(&mut quiet).unwrap();
        assert_eq!(buf.capacity(), FIRST_READ_SIZE);
        buf.consume(buf.data().len());
        // A busy pipe: every read comes back full, and the window doubles up to READ_SIZE.
        let big = vec![b'x'; 4 * READ_SIZE];
        let mut busy: &[u8] = &big;
        let mut sizes = Vec::new();
        for _ in 0..7 {
            sizes.push(buf.read_from(&mut busy).unwrap());
            buf.consume(buf.data().len());
        }
        assert_eq!(sizes[0], FIRST_READ_SIZE);
        assert_eq!(sizes[5], READ_SIZE);
        assert_eq!(sizes[6], READ_SIZE);
        assert!(buf.capacity() <= READ_SIZE);
    }

    #[test]
    fn a_recycled_buffer_keeps_a_first_read_s_worth_and_starts_small_again() {
        let mut buf = LineBuf::new();
        let mut quiet: &[u8] = b"half a li";
        buf.read_from(&mut quiet).unwrap();
        buf.recycle();
        assert_eq!(buf.data(), b"", "nothing of the last pipe is carried over");
        assert_eq!(buf.capacity(), FIRST_READ_SIZE, "kept for the next pipe");
        let big = vec![b'x'; 4 * READ_SIZE];
        let mut busy: &[u8] = &big;
        for _ in 0..6 {
            buf.read_from(&mut busy).unwrap();
            buf.consume(buf.data().len());
        }
        assert_eq!(buf.capacity(), READ_SIZE);
        buf.recycle();
        assert_eq!(buf.capacity(), 0, "a busy run's big buffer is let go");
        let mut next: &[u8] = &big;
        assert_eq!(buf.read_from(&mut next).unwrap(), FIRST_READ_SIZE);
    }

    #[test]
    fn prefixer_caches_per_millisecond() {
        let tz = FixedOffset::east_opt(3600).unwrap();
        let t = tz.with_ymd_and_hms(2026, 11, 21, 14, 5, 9).unwrap();
        let mut p = Prefixer::new();
        assert_eq!(
            p.prefix(true, b"err ", &t),
            b"2026-11-21T14:05:09.000+01:00 err "
        );
        assert_eq!(p.prefix(false, b"out ", &t), b"out ");
        assert_eq!(p.prefix(false, b"", &t), b"");
        let t2 = t + chrono::Duration::milliseconds(7);
        assert_eq!(p.prefix(true, b"", &t2), b"2026-11-21T14:05:09.007+01:00 ");
    }
}
