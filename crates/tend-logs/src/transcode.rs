//! `[logs] encoding`: the program's output turned into UTF-8 before it is framed into lines,
//! so a line split, a timestamp or a JSON record never cuts a character in two (UTF-16 has
//! its newline in two bytes). Bytes the encoding cannot map become U+FFFD and are counted:
//! nothing is dropped silently. Without the key nothing here runs and bytes stay as they
//! are.
//!
//! encoding_rs (Firefox's decoder, the WHATWG Encoding Standard) does the work: it decodes
//! as a stream, so a character split across two reads of the pipe is kept whole.

use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding};

/// The encoding a `[logs] encoding` value names: a WHATWG label (`gbk`, `gb18030`,
/// `utf-16le`, `shift_jis`, `windows-1252`, ...). tend-config has already turned Windows'
/// `oem` / `ansi` into the label of the system's code page.
#[must_use]
pub fn encoding_for(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label(label.trim().as_bytes())
}

/// A pipe whose bytes are decoded from `encoding` into UTF-8.
pub(crate) struct Transcoder<R> {
    inner: R,
    decoder: Decoder,
    raw: Vec<u8>,
    /// Holds `decoded[pos..end]`, what `read` has not handed out yet. Its length only grows:
    /// zero-filling room for a read's worth of UTF-8 (up to 3 times the read) before every
    /// decode would cost a good share of the decode itself.
    decoded: Vec<u8>,
    pos: usize,
    end: usize,
    done: bool,
    /// Told the length of each unmappable sequence (it became one U+FFFD): to count them,
    /// and to say so.
    on_bad: Box<dyn FnMut(u64) + Send>,
}

const RAW: usize = 64 * 1024;

/// U+FFFD, what an unmappable sequence becomes.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

impl<R: Read> Transcoder<R> {
    pub(crate) fn new(
        inner: R,
        encoding: &'static Encoding,
        on_bad: Box<dyn FnMut(u64) + Send>,
    ) -> Self {
        Self {
            inner,
            // A byte order mark of the encoding itself is not output.
            decoder: encoding.new_decoder_with_bom_removal(),
            raw: vec![0; RAW],
            decoded: Vec::new(),
            pos: 0,
            end: 0,
            done: false,
            on_bad,
        }
    }

    /// Decodes `raw[..n]` (the last input if `last`) into `decoded`.
    fn decode(&mut self, n: usize, last: bool) {
        self.pos = 0;
        self.end = 0;
        let mut src = &self.raw[..n];
        loop {
            // Room for all of `src` and one U+FFFD, so the decoder never stops for space.
            let room = self
                .decoder
                .max_utf8_buffer_length_without_replacement(src.len())
                .unwrap_or(src.len() * 3 + 16)
                .max(16)
                + REPLACEMENT.len();
            if self.decoded.len() < self.end + room {
                self.decoded.resize(self.end + room, 0);
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                src,
                &mut self.decoded[self.end..],
                last,
            );
            self.end += written;
            src = &src[read..];
            match result {
                DecoderResult::InputEmpty => return,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(bad, _) => {
                    (self.on_bad)(u64::from(bad));
                    self.decoded[self.end..self.end + REPLACEMENT.len()]
                        .copy_from_slice(REPLACEMENT);
                    self.end += REPLACEMENT.len();
                }
            }
        }
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.end {
                let n = buf.len().min(self.end - self.pos);
                buf[..n].copy_from_slice(&self.decoded[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            let n = match self.inner.read(&mut self.raw) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // What is left of an unfinished character is still said (as U+FFFD).
                    self.done = true;
                    self.decode(0, true);
                    if self.end == 0 {
                        return Err(e);
                    }
                    continue;
                }
            };
            self.done = n == 0;
            self.decode(n, self.done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Reads `chunks` (each one read of the pipe) through a transcoder.
    fn through(label: &str, chunks: &[&[u8]]) -> (String, u64) {
        struct Chunks(Vec<Vec<u8>>);
        impl Read for Chunks {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                let c = self.0.remove(0);
                buf[..c.len()].copy_from_slice(&c);
                Ok(c.len())
            }
        }
        let replaced = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&replaced);
        let mut t = Transcoder::new(
            Chunks(chunks.iter().map(|c| c.to_vec()).collect()),
            encoding_for(label).unwrap(),
            Box::new(move |n| {
                count.fetch_add(n, Ordering::Relaxed);
            }),
        );
        let mut out = String::new();
        t.read_to_string(&mut out).unwrap();
        (out, replaced.load(Ordering::Relaxed))
    }

    #[test]
    fn table() {
        // "你好" in GBK is C4 E3 BA C3; in UTF-16LE 60 4F 7D 59.
        let cases: Vec<(&str, Vec<&[u8]>, &str, u64)> = vec![
            ("gbk", vec![b"\xc4\xe3\xba\xc3\n"], "你好\n", 0),
            // A character split across two reads stays whole.
            ("gbk", vec![b"\xc4", b"\xe3\xba", b"\xc3\n"], "你好\n", 0),
            ("gb18030", vec![b"ok \xc4\xe3\n"], "ok 你\n", 0),
            (
                "utf-16le",
                vec![b"\xff\xfe`O}Y\n\x00", b"a\x00"],
                "你好\na",
                0,
            ),
            // Unmappable bytes: replaced and counted, the rest kept.
            ("utf-8", vec![b"a\xffb\n"], "a\u{fffd}b\n", 1),
            // An unfinished character at the end is said, not dropped.
            ("gbk", vec![b"x\xc4"], "x\u{fffd}", 1),
            ("windows-1252", vec![b"caf\xe9\n"], "café\n", 0),
        ];
        for (label, chunks, want, bad) in cases {
            assert_eq!(
                through(label, &chunks),
                (want.to_owned(), bad),
                "{label} {chunks:?}"
            );
        }
    }

    #[test]
    fn a_read_of_nothing_but_bad_bytes_becomes_that_many_replacements() {
        // Every byte is a malformed sequence: the buffer must make room for each U+FFFD.
        let bad = b"\xff".repeat(RAW);
        let (out, n) = through("utf-8", &[&bad, b"ok\n"]);
        assert_eq!(out, format!("{}ok\n", "\u{fffd}".repeat(RAW)));
        assert_eq!(n, RAW as u64);
    }

    #[test]
    fn labels() {
        assert!(encoding_for("GBK").is_some());
        assert!(encoding_for("utf-16le").is_some());
        assert!(encoding_for("klingon").is_none());
    }
}
