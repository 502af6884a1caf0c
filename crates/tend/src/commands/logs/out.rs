//! Where `tend logs` writes: the log bytes untouched to a file or pipe, and on a Windows
//! console the same text converted for display.
//!
//! A Windows console takes text, not bytes: Rust's console writer refuses bytes that are
//! not UTF-8 (a Go program printing GBK, say) with an error. So for a console, and only
//! there, invalid bytes are shown as U+FFFD; a UTF-8 sequence split across two writes is
//! kept whole. Files and pipes get the bytes as they are, so `tend logs > copy` is exact.

use std::io::{self, Write};
use std::process::ExitCode;

use crate::error::CliError;

/// A writer for `tend logs`'s output.
pub(crate) struct Output<W: Write> {
    inner: W,
    /// Convert for a console (lossy) rather than pass bytes through.
    console: bool,
    /// The start of a UTF-8 sequence whose end is in the next write.
    pending: Vec<u8>,
}

impl Output<io::StdoutLock<'static>> {
    /// Standard output, converted when it is a Windows console.
    pub(crate) fn stdout() -> Self {
        use std::io::IsTerminal as _;
        let out = io::stdout();
        let console = cfg!(windows) && out.is_terminal();
        Self::new(out.lock(), console)
    }
}

impl<W: Write> Output<W> {
    pub(crate) fn new(inner: W, console: bool) -> Self {
        Self {
            inner,
            console,
            pending: Vec::new(),
        }
    }

    /// Writes what is still pending (an incomplete sequence at the very end is shown as
    /// U+FFFD) and flushes.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.inner.write_all("\u{FFFD}".as_bytes())?;
        }
        self.inner.flush()
    }
}

/// `bytes` as text: every invalid sequence becomes U+FFFD, except an incomplete one at the
/// end, which is returned to be completed by the next write.
pub(crate) fn to_text(bytes: &[u8]) -> (String, &[u8]) {
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                return (text, &[]);
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        text.push('\u{FFFD}');
                        rest = &bad[n..];
                    }
                    None => return (text, bad),
                }
            }
        }
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if !self.console {
            return self.inner.write_all(buf);
        }
        let joined;
        let bytes = if self.pending.is_empty() {
            buf
        } else {
            let mut b = std::mem::take(&mut self.pending);
            b.extend_from_slice(buf);
            joined = b;
            &joined
        };
        let (text, incomplete) = to_text(bytes);
        let incomplete = incomplete.to_vec();
        self.inner.write_all(text.as_bytes())?;
        self.pending = incomplete;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a failed write of `tend logs` means: a closed pipe (`tend logs -f | head`) ends it
/// quietly; anything else (a full disk, a console that refuses) is an error.
pub(crate) fn write_failed(e: io::Error) -> Result<ExitCode, CliError> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return Ok(ExitCode::SUCCESS);
    }
    Err(CliError::io(
        "cannot write the log lines to standard output",
        e,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 中文 in GBK: not UTF-8.
    const GBK: &[u8] = &[0xd6, 0xd0, 0xce, 0xc4];

    #[test]
    fn files_and_pipes_get_the_bytes_untouched() {
        let mut o = Output::new(Vec::new(), false);
        let mut input = b"line 1\n".to_vec();
        input.extend_from_slice(GBK);
        input.extend_from_slice(b"\nline 3\n");
        o.write_all(&input).unwrap();
        o.finish().unwrap();
        assert_eq!(o.inner, input);
    }

    #[test]
    fn a_console_gets_every_line_with_invalid_bytes_replaced() {
        let mut o = Output::new(Vec::new(), true);
        let mut input = b"line 1\n".to_vec();
        input.extend_from_slice(GBK);
        input.extend_from_slice(b"\nline 3 \xe4\xb8\xad\n");
        o.write_all(&input).unwrap();
        o.finish().unwrap();
        let shown = String::from_utf8(o.inner).unwrap();
        assert_eq!(
            shown,
            "line 1\n\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\nline 3 中\n"
        );
    }

    #[test]
    fn a_sequence_split_across_writes_stays_whole() {
        let zhong = "中".as_bytes();
        for cut in 1..zhong.len() {
            let mut o = Output::new(Vec::new(), true);
            o.write_all(b"a").unwrap();
            o.write_all(&zhong[..cut]).unwrap();
            o.write_all(&zhong[cut..]).unwrap();
            o.write_all(b"b\n").unwrap();
            o.finish().unwrap();
            assert_eq!(
                String::from_utf8(o.inner).unwrap(),
                "a中b\n",
                "cut at {cut}"
            );
        }
        // Cut off for good: shown once as U+FFFD at the end.
        let mut o = Output::new(Vec::new(), true);
        o.write_all(&zhong[..2]).unwrap();
        o.finish().unwrap();
        assert_eq!(String::from_utf8(o.inner).unwrap(), "\u{FFFD}");
    }

    #[test]
    fn to_text_table() {
        let cases: [(&[u8], &str, &[u8]); 5] = [
            (b"abc", "abc", b""),
            (b"a\xffb", "a\u{FFFD}b", b""),
            (b"a\xe4\xb8", "a", b"\xe4\xb8"),
            (b"\xe4\xb8a", "\u{FFFD}a", b""),
            // 0xc4 may begin a sequence: held back until the next write says.
            (GBK, "\u{FFFD}\u{FFFD}\u{FFFD}", b"\xc4"),
        ];
        for (input, text, rest) in cases {
            assert_eq!(to_text(input), (text.to_owned(), rest), "{input:?}");
        }
    }

    struct Failing(io::ErrorKind);
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_quietly_and_other_errors_fail() {
        for (kind, ok) in [
            (io::ErrorKind::BrokenPipe, true),
            (io::ErrorKind::StorageFull, false),
            (io::ErrorKind::InvalidData, false),
        ] {
            let mut o = Output::new(Failing(kind), false);
            let e = o.write_all(b"x\n").unwrap_err();
            let r = write_failed(e);
            assert_eq!(r.is_ok(), ok, "{kind:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("cannot write"), "{e}");
                assert_ne!(e.exit_code(), ExitCode::SUCCESS);
            }
        }
    }
}
