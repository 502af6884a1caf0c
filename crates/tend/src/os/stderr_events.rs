//! `[logs] eventlog = "stderr"`: the program's stderr lines also go to the Windows Event
//! Log, for sites that collect only the Event Log (Windows Event Forwarding).
//!
//! The log pipeline must never wait for the Event Log: the reader thread only offers a copy
//! of each chunk to a bounded queue ([`Forwarder::offer`]) and counts what did not fit.
//! A thread of its own splits lines and writes them, at most [`RATE`] a second after a
//! burst of [`BURST`]; what it leaves out is counted and said in one event when it can
//! write again. Every line stays in the log files whatever happens here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tend_os::scm::eventlog::{Level, event_id};

/// Lines a second, sustained.
pub(crate) const RATE: f64 = 20.0;
/// Lines at once after a quiet spell.
pub(crate) const BURST: f64 = 200.0;
/// The longest line sent (longer ones are cut, marked): an event's text is limited, and
/// one huge line must not be most of the log.
const MAX_LINE: usize = 4096;
/// Chunks waiting for the writer; more are dropped and counted.
const QUEUE: usize = 256;

/// One event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A stderr line.
    Line(String),
    /// Lines left out since the last one written: by the rate limit, and bytes the queue
    /// had no room for.
    LeftOut { lines: u64, bytes: u64 },
}

impl Entry {
    /// The level, ID and text of its event.
    pub(crate) fn event(&self) -> (Level, u32, String) {
        match self {
            Self::Line(l) => (Level::Warning, event_id::STDERR_LINE, l.clone()),
            Self::LeftOut { lines, bytes } => {
                let mut why = Vec::new();
                if *lines > 0 {
                    why.push(format!("{lines} lines over the limit of {RATE} a second"));
                }
                if *bytes > 0 {
                    why.push(format!(
                        "{bytes} bytes the Event Log could not keep up with"
                    ));
                }
                (
                    Level::Warning,
                    event_id::STDERR_LEFT_OUT,
                    format!(
                        "stderr not forwarded to the Event Log: {}; every line is in the log files",
                        why.join(", ")
                    ),
                )
            }
        }
    }
}

/// How a line's bytes become text: UTF-8 (invalid bytes replaced), or the `[logs]
/// encoding` the program writes.
pub(crate) type Decode = Box<dyn Fn(&[u8]) -> String + Send>;

/// The decoder for `[logs] encoding`.
pub(crate) fn decoder(encoding: Option<&str>) -> Decode {
    match encoding.and_then(tend_logs::encoding_for) {
        Some(enc) => Box::new(move |b: &[u8]| enc.decode_without_bom_handling(b).0.into_owned()),
        None => Box::new(|b: &[u8]| String::from_utf8_lossy(b).into_owned()),
    }
}

/// Lines out of chunks, and the rate limit: pure, `now` given.
pub(crate) struct Lines {
    partial: Vec<u8>,
    tokens: f64,
    last: Instant,
    left_out: u64,
    dropped_bytes: u64,
    decode: Decode,
}

impl Lines {
    pub(crate) fn new(now: Instant, decode: Decode) -> Self {
        Self {
            partial: Vec::new(),
            tokens: BURST,
            last: now,
            left_out: 0,
            dropped_bytes: 0,
            decode,
        }
    }

    /// Bytes the queue had no room for: a line may be cut there, so what was collected of
    /// it is dropped too.
    pub(crate) fn dropped(&mut self, bytes: u64) {
        if bytes > 0 {
            self.dropped_bytes += bytes;
            self.partial.clear();
        }
    }

    /// A chunk of stderr: the whole lines in it, as far as the rate allows.
    pub(crate) fn push(&mut self, chunk: &[u8], now: Instant, out: &mut Vec<Entry>) {
        self.refill(now);
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(i);
            rest = &after[1..];
            if self.partial.is_empty() {
                self.line(line, out);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole, out);
            }
        }
        // One byte over the limit is kept, so that the line is known to be cut.
        if self.partial.len() <= MAX_LINE {
            let room = MAX_LINE + 1 - self.partial.len();
            self.partial
                .extend_from_slice(&rest[..rest.len().min(room)]);
        }
    }

    /// The pipe ended: its last line without a newline, and what was left out.
    pub(crate) fn finish(&mut self, now: Instant, out: &mut Vec<Entry>) {
        self.refill(now);
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last, out);
        }
        // The last word, whatever the rate: nothing comes after it.
        if self.left_out > 0 || self.dropped_bytes > 0 {
            out.push(Entry::LeftOut {
                lines: std::mem::take(&mut self.left_out),
                bytes: std::mem::take(&mut self.dropped_bytes),
            });
        }
    }

    /// Time passed: says what was left out once a line could be written again.
    pub(crate) fn tick(&mut self, now: Instant, out: &mut Vec<Entry>) {
        self.refill(now);
        if (self.left_out > 0 || self.dropped_bytes > 0) && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            out.push(Entry::LeftOut {
                lines: std::mem::take(&mut self.left_out),
                bytes: std::mem::take(&mut self.dropped_bytes),
            });
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * RATE).min(BURST);
    }

    fn line(&mut self, bytes: &[u8], out: &mut Vec<Entry>) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.is_empty() {
            return;
        }
        if self.tokens < 1.0 {
            self.left_out += 1;
            return;
        }
        if self.left_out > 0 || self.dropped_bytes > 0 {
            // Said before the line that follows the gap, in order; it costs no token.
            out.push(Entry::LeftOut {
                lines: std::mem::take(&mut self.left_out),
                bytes: std::mem::take(&mut self.dropped_bytes),
            });
        }
        self.tokens -= 1.0;
        let mut text = (self.decode)(&bytes[..bytes.len().min(MAX_LINE)]);
        if bytes.len() > MAX_LINE {
            text.push_str(" [cut]");
        }
        out.push(Entry::Line(text));
    }
}

/// Writes one event.
pub(crate) type Write = Arc<dyn Fn(Level, u32, &str) + Send + Sync>;

/// What the stderr reader holds: a bounded queue to the writer thread.
pub(crate) struct Forwarder {
    /// Each chunk with the bytes dropped just before it, so a gap is said where it was.
    tx: SyncSender<(u64, Vec<u8>)>,
    dropped: Arc<AtomicU64>,
    on: AtomicBool,
}

impl Forwarder {
    /// Starts the writer thread; `None` if it cannot be started (then nothing is
    /// forwarded, and the caller says so).
    pub(crate) fn start(on: bool, decode: Decode, write: Write) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        std::thread::Builder::new()
            .name("tend-stderr-events".into())
            .spawn(move || run(&rx, &d, decode, &write))?;
        Ok(Arc::new(Self {
            tx,
            dropped,
            on: AtomicBool::new(on),
        }))
    }

    /// Turns forwarding on or off (a reload of `[logs] eventlog`).
    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// A chunk the program wrote to stderr. Never waits.
    pub(crate) fn offer(&self, chunk: &[u8]) {
        if !self.on.load(Ordering::Relaxed) || chunk.is_empty() {
            return;
        }
        let before = self.dropped.swap(0, Ordering::Relaxed);
        match self.tx.try_send((before, chunk.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full((b, c)) | TrySendError::Disconnected((b, c))) => {
                self.dropped
                    .fetch_add(b + c.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// The writer thread: until every [`Forwarder`] is gone.
fn run(rx: &Receiver<(u64, Vec<u8>)>, dropped: &AtomicU64, decode: Decode, write: &Write) {
    let mut lines = Lines::new(Instant::now(), decode);
    let mut out = Vec::new();
    loop {
        let got = rx.recv_timeout(Duration::from_secs(1));
        let now = Instant::now();
        match got {
            Ok((before, chunk)) => {
                lines.dropped(before);
                lines.push(&chunk, now, &mut out);
            }
            Err(RecvTimeoutError::Timeout) => {
                // Nothing is queued: what was dropped came before whatever comes next.
                lines.dropped(dropped.swap(0, Ordering::Relaxed));
                lines.tick(now, &mut out);
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Dropped after the last chunk that fitted.
                lines.dropped(dropped.swap(0, Ordering::Relaxed));
                lines.finish(now, &mut out);
                for e in out.drain(..) {
                    let (level, id, text) = e.event();
                    write(level, id, &text);
                }
                return;
            }
        }
        for e in out.drain(..) {
            let (level, id, text) = e.event();
            write(level, id, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(t0: Instant) -> Lines {
        Lines::new(t0, decoder(None))
    }

    fn texts(out: &[Entry]) -> Vec<String> {
        out.iter().map(|e| e.event().2).collect()
    }

    #[test]
    fn whole_lines_across_chunks_crlf_and_a_last_line_without_newline() {
        let t0 = Instant::now();
        let mut l = lines(t0);
        let mut out = Vec::new();
        l.push(b"first\r\nsec", t0, &mut out);
        l.push(b"ond\n\nthi", t0, &mut out);
        assert_eq!(
            out,
            [Entry::Line("first".into()), Entry::Line("second".into())]
        );
        l.finish(t0, &mut out);
        assert_eq!(out[2], Entry::Line("thi".into()));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_long_line_is_cut_and_the_encoding_is_the_programs() {
        let t0 = Instant::now();
        let mut l = lines(t0);
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE * 3];
        l.push(&long, t0, &mut out);
        l.push(b"\n", t0, &mut out);
        let Entry::Line(text) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(text.len(), MAX_LINE + " [cut]".len());
        assert!(text.ends_with(" [cut]"));

        let mut gbk = Lines::new(t0, decoder(Some("gbk")));
        let mut out = Vec::new();
        gbk.push(b"\xc4\xe3\xba\xc3\n", t0, &mut out);
        assert_eq!(out, [Entry::Line("你好".into())]);
    }

    #[test]
    fn over_the_rate_lines_are_counted_and_said_once_there_is_room() {
        let t0 = Instant::now();
        let mut l = lines(t0);
        let mut out = Vec::new();
        let burst = BURST as usize;
        let flood: Vec<u8> = (0..burst + 50)
            .flat_map(|i| format!("l{i}\n").into_bytes())
            .collect();
        l.push(&flood, t0, &mut out);
        assert_eq!(out.len(), burst);
        assert_eq!(out[burst - 1], Entry::Line(format!("l{}", burst - 1)));
        // No room yet: nothing more, not even the count.
        l.tick(t0 + Duration::from_millis(10), &mut out);
        assert_eq!(out.len(), burst);
        // A second later there is: the count first, then the next line.
        let t1 = t0 + Duration::from_secs(1);
        l.push(b"after\n", t1, &mut out);
        assert_eq!(
            out[burst..],
            [
                Entry::LeftOut {
                    lines: 50,
                    bytes: 0
                },
                Entry::Line("after".into())
            ]
        );
        assert_eq!(
            texts(&out[burst..burst + 1]),
            [
                "stderr not forwarded to the Event Log: 50 lines over the limit of 20 a second; every line is in the log files"
            ]
        );
        // A quiet program still gets the count, on the next tick.
        let mut q = lines(t0);
        let mut out = Vec::new();
        q.dropped(4096);
        q.tick(t0, &mut out);
        assert_eq!(
            out,
            [Entry::LeftOut {
                lines: 0,
                bytes: 4096
            }]
        );
    }

    #[test]
    fn the_writer_thread_writes_in_order_and_a_full_queue_never_waits() {
        let got = Arc::new(std::sync::Mutex::new(Vec::<(Level, u32, String)>::new()));
        let sink = got.clone();
        // A writer that blocks until told: the queue fills, offers must still return.
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let write: Write = Arc::new(move |level, id, text: &str| {
            let _ = go_rx.lock().unwrap().recv();
            sink.lock().unwrap().push((level, id, text.to_owned()));
        });
        let f = Forwarder::start(true, decoder(None), write).unwrap();
        f.offer(b"one\ntwo\n");
        let started = Instant::now();
        for _ in 0..QUEUE * 4 {
            f.offer(b"x\n");
        }
        assert!(started.elapsed() < Duration::from_secs(5), "offer waited");
        assert!(f.dropped.load(Ordering::Relaxed) > 0);
        f.set(false);
        f.offer(b"not sent\n");
        drop(f);
        // Let the writer go: every event it has.
        for _ in 0..QUEUE * 8 {
            let _ = go_tx.send(());
        }
        drop(go_tx);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let g = got.lock().unwrap();
            if g.iter().any(|(_, id, _)| *id == event_id::STDERR_LEFT_OUT)
                || Instant::now() > deadline
            {
                break;
            }
            drop(g);
            std::thread::sleep(Duration::from_millis(5));
        }
        let g = got.lock().unwrap();
        assert_eq!(g[0], (Level::Warning, event_id::STDERR_LINE, "one".into()));
        assert_eq!(g[1].2, "two");
        assert!(
            g.iter().any(|(_, id, t)| *id == event_id::STDERR_LEFT_OUT
                && t.contains("bytes the Event Log could not keep up with")),
            "{g:?}"
        );
        assert!(!g.iter().any(|(_, _, t)| t == "not sent"));
    }
}
