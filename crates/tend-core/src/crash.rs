//! Why a program died, in the words people search for: Windows NTSTATUS names for the exit
//! codes a crash leaves (`0xC0000005 STATUS_ACCESS_VIOLATION`), and a Go program's panic
//! message found in what it wrote (`panic: runtime error: index out of range [5] with
//! length 3`) rather than `exit code 2`.

/// The NTSTATUS name of a Windows exit code, for the codes that mean a crash or a forced
/// end. `code` is the exit code as Windows reports it (a `u32`; as an `i32` it is negative).
#[must_use]
pub fn ntstatus_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x4001_0004 => "DBG_TERMINATE_PROCESS",
        0x8000_0003 => "STATUS_BREAKPOINT",
        0xC000_0005 => "STATUS_ACCESS_VIOLATION",
        0xC000_0006 => "STATUS_IN_PAGE_ERROR",
        0xC000_0008 => "STATUS_INVALID_HANDLE",
        0xC000_000D => "STATUS_INVALID_PARAMETER",
        0xC000_0017 => "STATUS_NO_MEMORY",
        0xC000_001D => "STATUS_ILLEGAL_INSTRUCTION",
        0xC000_0025 => "STATUS_NONCONTINUABLE_EXCEPTION",
        0xC000_0026 => "STATUS_INVALID_DISPOSITION",
        0xC000_008C => "STATUS_ARRAY_BOUNDS_EXCEEDED",
        0xC000_008D => "STATUS_FLOAT_DENORMAL_OPERAND",
        0xC000_008E => "STATUS_FLOAT_DIVIDE_BY_ZERO",
        0xC000_008F => "STATUS_FLOAT_INEXACT_RESULT",
        0xC000_0090 => "STATUS_FLOAT_INVALID_OPERATION",
        0xC000_0091 => "STATUS_FLOAT_OVERFLOW",
        0xC000_0092 => "STATUS_FLOAT_STACK_CHECK",
        0xC000_0093 => "STATUS_FLOAT_UNDERFLOW",
        0xC000_0094 => "STATUS_INTEGER_DIVIDE_BY_ZERO",
        0xC000_0095 => "STATUS_INTEGER_OVERFLOW",
        0xC000_0096 => "STATUS_PRIVILEGED_INSTRUCTION",
        0xC000_00FD => "STATUS_STACK_OVERFLOW",
        0xC000_0135 => "STATUS_DLL_NOT_FOUND",
        0xC000_0138 => "STATUS_ORDINAL_NOT_FOUND",
        0xC000_0139 => "STATUS_ENTRYPOINT_NOT_FOUND",
        0xC000_013A => "STATUS_CONTROL_C_EXIT",
        0xC000_0142 => "STATUS_DLL_INIT_FAILED",
        0xC000_0374 => "STATUS_HEAP_CORRUPTION",
        0xC000_0409 => "STATUS_STACK_BUFFER_OVERRUN",
        0xC000_0417 => "STATUS_INVALID_CRUNTIME_PARAMETER",
        0xC000_0420 => "STATUS_ASSERTION_FAILURE",
        0xC000_070A => "STATUS_THREADPOOL_HANDLE_EXCEPTION",
        0xE043_4352 => "CLR_EXCEPTION (an unhandled .NET exception)",
        0xE06D_7363 => "MSVC_CPP_EXCEPTION (an unhandled C++ exception)",
        _ => return None,
    })
}

/// An exit code as people search for it: `0xC0000005 STATUS_ACCESS_VIOLATION` for a
/// Windows crash code (when `windows`), the number otherwise.
#[must_use]
pub fn exit_code_text(code: i32, windows: bool) -> String {
    // Reinterpreting the bits is the point: Windows reports a u32.
    #[allow(clippy::cast_sign_loss)]
    let raw = code as u32;
    match (windows, ntstatus_name(raw)) {
        (true, Some(name)) => format!("0x{raw:08X} {name}"),
        // Other large codes read better in hex too (HRESULTs, NTSTATUS not in the table).
        (true, None) if raw >= 0x8000_0000 => format!("0x{raw:08X}"),
        _ => code.to_string(),
    }
}

/// What a Go program said when it crashed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoCrash {
    /// `panic: ...` or `fatal error: ...`, the first line of the crash.
    pub message: String,
    /// The first goroutine's top frame: the function, and where it is (`main.main()
    /// /app/main.go:12`).
    pub frame: Option<String>,
}

/// Finds a Go crash in a stream of output, fed as it is written (any split), keeping only
/// the current line: a goroutine dump can be megabytes and must not be buffered.
#[derive(Debug, Clone, Default)]
pub struct GoCrashScanner {
    line: Vec<u8>,
    /// The line was longer than is worth looking at; the rest of it is skipped.
    skipping: bool,
    state: Scan,
    found: Option<GoCrash>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Scan {
    /// Looking for `panic:` / `fatal error:`.
    #[default]
    Idle,
    /// After the message: looking for the first `goroutine N [...]:` line.
    Goroutine,
    /// The next line is the top frame's function.
    Function,
    /// The next line is its file and line (`\t/app/main.go:12 +0x1d`).
    Place(String),
}

/// Lines longer than this are not a panic message worth showing whole.
const MAX_LINE: usize = 1024;

const CRASH_STARTS: [&[u8]; 2] = [b"panic: ", b"fatal error: "];
/// The longest of [`CRASH_STARTS`].
const CRASH_START_MAX: usize = {
    let (a, b) = (CRASH_STARTS[0].len(), CRASH_STARTS[1].len());
    if a > b { a } else { b }
};

/// Whether a line that starts with `start` may still be a crash's first line.
fn could_be_crash(start: &[u8]) -> bool {
    CRASH_STARTS.iter().any(|p| {
        let n = p.len().min(start.len());
        start[..n] == p[..n]
    })
}

/// Where, from a line's start in one write, the first line that may begin a crash is.
enum Start {
    /// At this offset: a line that starts like a crash (its whole start, or as much of it as
    /// the write holds).
    Here(usize),
    /// No line does, and the write ends at a line's end.
    Ended,
    /// No line does, and the write ends in the middle of a line.
    MidLine,
}

/// [`CRASH_STARTS`] after a `\n`: a line in the middle of a write that starts a crash is
/// found by SIMD searches over the write instead of a search for the end of every line
/// (with 100-byte lines, 40 % less time for a 64 KiB read: bench/README.md, issue 16,
/// session 27).
static CRASH_LINES: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
    std::sync::LazyLock::new(|| {
        CRASH_STARTS.map(|p| memchr::memmem::Finder::new(&[b"\n", p].concat()).into_owned())
    });

/// Per pattern of [`CRASH_LINES`], within one write: not searched yet (`None`), or where its
/// next `\n` is (`Some(None)`: nowhere to the write's end). A write that holds many crashes
/// comes back to the search after each, and must not search the same bytes again.
type Hits = [Option<Option<usize>>; 2];

fn next_crash_start(out: &[u8], from: usize, hits: &mut Hits) -> Start {
    let rest = &out[from..];
    if rest.is_empty() {
        return Start::Ended;
    }
    // The first line has no `\n` before it; its start is compared as far as it goes (past
    // its end is harmless: no crash start holds a `\n`).
    if could_be_crash(&rest[..rest.len().min(CRASH_START_MAX)]) {
        return Start::Here(from);
    }
    let mut first: Option<usize> = None;
    for (finder, hit) in CRASH_LINES.iter().zip(hits.iter_mut()) {
        // A hit before `from` was passed over: look again from here.
        if hit.is_none() || matches!(*hit, Some(Some(at)) if at < from) {
            *hit = Some(finder.find(rest).map(|i| from + i));
        }
        if let Some(Some(at)) = *hit {
            first = Some(first.map_or(at, |f| f.min(at)));
        }
    }
    if let Some(at) = first {
        return Start::Here(at + 1);
    }
    // No whole crash start. The last line may be the beginning of one, cut by the write.
    match memchr::memrchr(b'\n', rest) {
        Some(i) if from + i + 1 == out.len() => Start::Ended,
        Some(i) if could_be_crash(&rest[i + 1..]) => Start::Here(from + i + 1),
        _ => Start::MidLine,
    }
}

impl GoCrashScanner {
    /// A scanner that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// What the program wrote next.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut pos = 0;
        let mut hits: Hits = [None; 2];
        loop {
            // At a line's start with nothing found: the lines that start no crash are passed
            // over in bulk, with no copy and no call per line (this sees all of stderr, most
            // of which is such lines).
            if self.state == Scan::Idle && self.line.is_empty() && !self.skipping {
                match next_crash_start(bytes, pos, &mut hits) {
                    Start::Here(at) => pos = at,
                    Start::Ended => return,
                    Start::MidLine => {
                        // An unfinished line that starts no crash: skip the rest of it in
                        // the next write.
                        self.skipping = true;
                        return;
                    }
                }
            }
            let rest = &bytes[pos..];
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.take(&rest[..i]);
                    self.end_line();
                    pos += i + 1;
                }
                None => {
                    self.take(rest);
                    return;
                }
            }
        }
    }

    fn take(&mut self, part: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + part.len() > MAX_LINE {
            let room = MAX_LINE - self.line.len();
            self.line.extend_from_slice(&part[..room]);
            self.skipping = true;
        } else {
            self.line.extend_from_slice(part);
        }
        // While nothing was found, only a line that starts like a crash is worth keeping.
        // `push` passes over the others, but a line cut by the end of a write may start
        // like one and turn out not to when the next write comes: it is dropped here, and
        // the rest of it skipped.
        if self.state == Scan::Idle && !could_be_crash(&self.line) {
            self.line.clear();
            self.skipping = true;
        }
    }

    fn end_line(&mut self) {
        if self.state == Scan::Idle && self.line.is_empty() {
            // A line that began like a crash and was not one (or was empty), with nothing
            // found before it: no text to make.
            self.skipping = false;
            return;
        }
        let text = String::from_utf8_lossy(&self.line)
            .trim_end_matches('\r')
            .to_owned();
        self.line.clear();
        self.skipping = false;
        if CRASH_STARTS.iter().any(|p| text.as_bytes().starts_with(p)) {
            // A later panic (a panic while panicking, or the next run's) is the news.
            self.found = Some(GoCrash {
                message: text.trim_end().to_owned(),
                frame: None,
            });
            self.state = Scan::Goroutine;
            return;
        }
        self.state = match std::mem::take(&mut self.state) {
            Scan::Idle => Scan::Idle,
            Scan::Goroutine if text.starts_with("goroutine ") && text.ends_with(':') => {
                Scan::Function
            }
            Scan::Goroutine => Scan::Goroutine,
            Scan::Function if text.trim().is_empty() => Scan::Idle,
            Scan::Function => Scan::Place(text.trim().to_owned()),
            Scan::Place(function) => {
                // `\t/app/main.go:12 +0x1d`: the offset is noise to a reader.
                let place = text.trim();
                let place = place.rsplit_once(" +0x").map_or(place, |(p, _)| p);
                if let Some(found) = &mut self.found {
                    found.frame = Some(format!("{function} {place}"));
                }
                Scan::Idle
            }
        };
    }

    /// The Go crash seen so far, if any.
    #[must_use]
    pub fn found(&self) -> Option<&GoCrash> {
        self.found.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntstatus_names_as_people_search_for_them() {
        let cases = [
            (
                0xC000_0005_u32 as i32,
                true,
                "0xC0000005 STATUS_ACCESS_VIOLATION",
            ),
            (
                0xC000_0409_u32 as i32,
                true,
                "0xC0000409 STATUS_STACK_BUFFER_OVERRUN",
            ),
            (
                0xC000_013A_u32 as i32,
                true,
                "0xC000013A STATUS_CONTROL_C_EXIT",
            ),
            (
                0xC000_0374_u32 as i32,
                true,
                "0xC0000374 STATUS_HEAP_CORRUPTION",
            ),
            (0xC123_4567_u32 as i32, true, "0xC1234567"),
            (3, true, "3"),
            (2, false, "2"),
            (-11, false, "-11"),
        ];
        for (code, windows, want) in cases {
            assert_eq!(exit_code_text(code, windows), want);
        }
    }

    const GO_PANIC: &str = "starting\n\
        panic: runtime error: index out of range [5] with length 3\n\
        \n\
        goroutine 1 [running]:\n\
        main.lookup(...)\n\
        \t/app/main.go:12 +0x1d\n\
        main.main()\n\
        \t/app/main.go:20 +0x25\n\
        exit status 2\n";

    #[test]
    fn finds_the_panic_and_the_top_frame_however_the_output_is_split() {
        let want = GoCrash {
            message: "panic: runtime error: index out of range [5] with length 3".into(),
            frame: Some("main.lookup(...) /app/main.go:12".into()),
        };
        // Lines before it that are passed over whole, also when split: one that starts
        // like nothing, one that starts like "panic: " and is not, an empty one, and one
        // that says "panic: " only in its middle.
        let noisy = format!(
            "{}\nprogress: 10%\npani\n\nnot a panic: no\n{GO_PANIC}",
            "x".repeat(300)
        );
        for text in [GO_PANIC, noisy.as_str()] {
            for step in [1, 2, 7, 64, 301, text.len()] {
                let mut s = GoCrashScanner::new();
                for chunk in text.as_bytes().chunks(step) {
                    s.push(chunk);
                }
                assert_eq!(s.found(), Some(&want), "chunks of {step}");
            }
        }
    }

    /// What the scanner finds when given one whole line at a time: the meaning of the
    /// bulk search, which must find the same however the output is split.
    fn line_by_line(text: &[u8]) -> Option<GoCrash> {
        let mut s = GoCrashScanner::new();
        let mut lines = text.split(|b| *b == b'\n').peekable();
        while let Some(line) = lines.next() {
            s.take(line);
            if lines.peek().is_some() {
                s.end_line();
            }
        }
        s.found
    }

    #[test]
    fn the_bulk_search_finds_what_a_line_by_line_scan_finds_however_the_output_is_split() {
        let long = vec![b'y'; MAX_LINE + 300];
        let long_panic = [&b"panic: "[..], &vec![b'z'; MAX_LINE + 100]].concat();
        let pieces: [&[u8]; 18] = [
            b"panic: boom",
            b"fatal error: all goroutines are asleep",
            b"goroutine 1 [running]:",
            b"main.main()",
            b"\t/app/main.go:7 +0x1d",
            b"pan",
            b"panic:",
            b"fatal",
            b"fatal error:",
            b"a panic: not at the start",
            b"",
            b"\r",
            b"p",
            b"f",
            b"listening on :8080",
            b"x",
            &long,
            &long_panic,
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        let mut found_some = 0;
        for _ in 0..400 {
            let mut text = Vec::new();
            for _ in 0..next(14) {
                text.extend_from_slice(pieces[next(pieces.len())]);
                if next(5) > 0 {
                    text.push(b'\n');
                }
            }
            let want = line_by_line(&text);
            found_some += usize::from(want.is_some());
            for step in [1, 2, 3, 5, 8, 13, 14, 64, 1500, text.len().max(1)] {
                let mut s = GoCrashScanner::new();
                for chunk in text.chunks(step) {
                    s.push(chunk);
                }
                assert_eq!(
                    s.found,
                    want,
                    "chunks of {step} of {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
            // Cut anywhere, and right after each write the scanner has found what the lines
            // so far hold (the last one, unfinished, not ended).
            for _ in 0..4 {
                let mut s = GoCrashScanner::new();
                let mut at = 0;
                while at < text.len() {
                    let end = (at + next(40)).min(text.len());
                    s.push(&text[at..end]);
                    at = end;
                    assert_eq!(
                        s.found,
                        line_by_line(&text[..at]),
                        "after {at} bytes of {:?}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
        }
        // The generated outputs hold crashes, not only noise.
        assert!(found_some > 50, "{found_some}");
    }

    #[test]
    fn fatal_errors_and_crlf_and_nothing() {
        let mut s = GoCrashScanner::new();
        s.push(b"fatal error: concurrent map writes\r\n\r\ngoroutine 7 [running]:\r\n");
        s.push(b"runtime.throw({0x4b2f1c, 0x15})\r\n\t/usr/lib/go/src/runtime/panic.go:1077 +0x5c fp=0xc\r\n");
        assert_eq!(
            s.found(),
            Some(&GoCrash {
                message: "fatal error: concurrent map writes".into(),
                frame: Some(
                    "runtime.throw({0x4b2f1c, 0x15}) /usr/lib/go/src/runtime/panic.go:1077".into()
                ),
            })
        );
        let mut quiet = GoCrashScanner::new();
        quiet.push(b"a panic: in the middle of a line is not a crash\nall good\n");
        assert_eq!(quiet.found(), None);
        // A huge line does not grow the scanner.
        let mut big = GoCrashScanner::new();
        big.push(&vec![b'x'; 1 << 20]);
        big.push(b"\npanic: boom\n");
        assert_eq!(big.found().map(|c| c.message.as_str()), Some("panic: boom"));
        assert!(big.line.capacity() <= 2 * MAX_LINE + 64);
    }
}
