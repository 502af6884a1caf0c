//! A program for tend's tests and benchmarks, with behaviour chosen by flags.
//!
//! ```text
//! --exit N              exit with code N (at once, or after --exit-after)
//! --exit-after DUR      run this long, then exit (code from --exit, default 0)
//! --sleep               run until stopped
//! --ignore-sigterm      ignore SIGTERM and SIGINT (so only SIGKILL ends it)
//! --stop-delay DUR      on SIGTERM/SIGINT, wait this long before exiting
//! --on-signal-exit N    exit code after a graceful signal (default 0)
//! --spawn-grandchild    start a child of its own (same flags for signals) that sleeps
//! --escape-grandchild  the same, but in a process group of its own (as a daemonising
//!                       program does), still holding stdout and stderr; role "escaped"
//! --pid-file PATH       append "<role> <pid>" lines (role: child / grandchild)
//! --print N             print N numbered lines to stdout at start
//! --print-err N         print N numbered lines to stderr at start
//! --say-err TEXT        then print TEXT and a newline to stderr (a program's last words)
//! --raw-out HEX         write these bytes (hex) to stdout at start: any encoding, or none
//! --raw-err HEX         the same on stderr (a multi-line crash report, say)
//! --kill-self SIG       then send itself signal SIG (Unix; e.g. 11 for SIGSEGV)
//! --print-every DUR     print a numbered line to stdout every DUR
//! --partial TEXT        write TEXT to stdout without a newline at start
//! --generate N          write N numbered 100-byte lines to stdout as fast as possible, exit 0
//! --counter PATH        append one line per start to PATH (counts restarts)
//! --dump PATH           write its argv ("arg <value>" lines) and environment ("env K=V") to
//!                       PATH at start (what a program really got: tests of `tend import`)
//! --arg VALUE           ignored, kept in argv: an argument with spaces or quotes for --dump
//! --stamp PATH          append "start <ns>" when main begins and "exit <ns>" just before
//!                       exiting (wall clock, ns since the epoch; for latency benchmarks)
//! --serve-health PORT   answer HTTP on 127.0.0.1:PORT: 200 "ok", or 503 once unhealthy
//! --unhealthy-after DUR start answering 503 this long after start (default: never)
//! --request-log PATH    append "<pid> <status> <ms since start>" per health request
//! --silent-after DUR    stop the --print-every lines this long after start
//! --alloc MIB           allocate and touch MIB MiB of memory (resident), then free it
//! --alloc-after DUR     ... this long after start (default 0)
//! --alloc-for DUR       ... and keep it this long (default: until exit)
//! ```
//!
//! --serve-health, --print-every and --alloc keep the program running like --sleep.

use std::io::Write;
use std::time::Duration;

#[derive(Default, Clone)]
struct Opts {
    exit: Option<i32>,
    exit_after: Option<Duration>,
    sleep: bool,
    ignore_sigterm: bool,
    stop_delay: Duration,
    on_signal_exit: i32,
    spawn_grandchild: bool,
    escape_grandchild: bool,
    pid_file: Option<String>,
    role: String,
    print: u64,
    print_err: u64,
    say_err: Option<String>,
    raw_out: Vec<u8>,
    raw_err: Vec<u8>,
    kill_self: Option<i32>,
    print_every: Option<Duration>,
    partial: Option<String>,
    generate: Option<u64>,
    counter: Option<String>,
    dump: Option<String>,
    stamp: Option<String>,
    serve_health: Option<u16>,
    request_log: Option<String>,
    unhealthy_after: Option<Duration>,
    silent_after: Option<Duration>,
    alloc_mib: Option<usize>,
    alloc_after: Duration,
    alloc_for: Option<Duration>,
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

static STAMP: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn parse_duration(s: &str) -> Duration {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num
        .parse()
        .unwrap_or_else(|_| die(&format!("bad duration {s:?}")));
    match unit {
        "ms" => Duration::from_secs_f64(n / 1000.0),
        "s" | "" => Duration::from_secs_f64(n),
        "m" => Duration::from_secs_f64(n * 60.0),
        _ => die(&format!("bad duration {s:?}")),
    }
}

fn die(msg: &str) -> ! {
    eprintln!("tend-fixture: {msg}");
    #[allow(clippy::exit)]
    std::process::exit(64)
}

fn parse() -> Opts {
    let mut o = Opts {
        role: "child".into(),
        ..Opts::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--exit" => o.exit = Some(val().parse().unwrap_or_else(|_| die("bad --exit"))),
            "--exit-after" => o.exit_after = Some(parse_duration(&val())),
            "--sleep" => o.sleep = true,
            "--ignore-sigterm" => o.ignore_sigterm = true,
            "--stop-delay" => o.stop_delay = parse_duration(&val()),
            "--on-signal-exit" => {
                o.on_signal_exit = val().parse().unwrap_or_else(|_| die("bad code"))
            }
            "--spawn-grandchild" => o.spawn_grandchild = true,
            "--escape-grandchild" => o.escape_grandchild = true,
            "--pid-file" => o.pid_file = Some(val()),
            "--role" => o.role = val(),
            "--print" => o.print = val().parse().unwrap_or_else(|_| die("bad --print")),
            "--print-err" => o.print_err = val().parse().unwrap_or_else(|_| die("bad --print-err")),
            "--say-err" => o.say_err = Some(val()),
            "--raw-out" => o.raw_out = hex(&val()),
            "--raw-err" => o.raw_err = hex(&val()),
            "--kill-self" => {
                o.kill_self = Some(val().parse().unwrap_or_else(|_| die("bad --kill-self")))
            }
            "--print-every" => o.print_every = Some(parse_duration(&val())),
            "--partial" => o.partial = Some(val()),
            "--generate" => {
                o.generate = Some(val().parse().unwrap_or_else(|_| die("bad --generate")))
            }
            "--counter" => o.counter = Some(val()),
            "--dump" => o.dump = Some(val()),
            "--arg" => {
                val();
            }
            "--stamp" => o.stamp = Some(val()),
            "--serve-health" => {
                o.serve_health = Some(val().parse().unwrap_or_else(|_| die("bad port")))
            }
            "--request-log" => o.request_log = Some(val()),
            "--unhealthy-after" => o.unhealthy_after = Some(parse_duration(&val())),
            "--silent-after" => o.silent_after = Some(parse_duration(&val())),
            "--alloc" => o.alloc_mib = Some(val().parse().unwrap_or_else(|_| die("bad --alloc"))),
            "--alloc-after" => o.alloc_after = parse_duration(&val()),
            "--alloc-for" => o.alloc_for = Some(parse_duration(&val())),
            other => die(&format!("unknown flag {other}")),
        }
    }
    o
}

fn append(path: &str, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| die(&format!("{path}: {e}")));
    f.write_all(line.as_bytes())
        .unwrap_or_else(|e| die(&format!("{path}: {e}")));
}

#[allow(clippy::exit)]
fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    if let Some(path) = STAMP.get() {
        append(path, &format!("exit {}\n", now_ns()));
    }
    std::process::exit(code)
}

#[cfg(unix)]
fn kill_self(sig: i32) {
    use nix::sys::signal::{
        SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, raise, signal,
    };
    let Ok(sig) = Signal::try_from(sig) else {
        die("bad --kill-self");
    };
    // Rust's runtime handles SIGSEGV and SIGBUS itself (stack overflow detection) and
    // returns from a raised one: the default action is what a real crash gets.
    #[allow(unsafe_code)]
    // SAFETY: installing the default disposition has no handler code to be unsafe in.
    let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = raise(sig);
}

#[cfg(not(unix))]
fn kill_self(_: i32) {
    die("--kill-self is Unix only");
}

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("0"), 16).unwrap_or(0))
        .collect()
}

fn main() {
    let started = now_ns();
    let o = parse();
    if let Some(path) = &o.stamp {
        append(path, &format!("start {started}\n"));
        let _ = STAMP.set(path.clone());
    }
    #[cfg(unix)]
    signals::install(&o);
    if let Some(path) = &o.dump {
        let mut text = String::new();
        for a in std::env::args() {
            text.push_str(&format!("arg {a}\n"));
        }
        for (k, v) in std::env::vars() {
            text.push_str(&format!("env {k}={v}\n"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| die(&format!("{path}: {e}")));
    }
    if let Some(path) = &o.counter {
        append(path, &format!("start {}\n", std::process::id()));
    }
    if let Some(path) = &o.pid_file {
        append(path, &format!("{} {}\n", o.role, std::process::id()));
    }
    if o.spawn_grandchild || o.escape_grandchild {
        let mut cmd = std::process::Command::new(
            std::env::current_exe().unwrap_or_else(|e| die(&e.to_string())),
        );
        let role = if o.escape_grandchild {
            "escaped"
        } else {
            "grandchild"
        };
        cmd.args(["--sleep", "--role", role]);
        #[cfg(unix)]
        if o.escape_grandchild {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        if o.ignore_sigterm {
            cmd.arg("--ignore-sigterm");
        }
        if let Some(p) = &o.pid_file {
            cmd.args(["--pid-file", p]);
        }
        // Deliberately not waited for: a grandchild the program forgets about is exactly
        // what tend must clean up.
        #[allow(clippy::zombie_processes)]
        let _ = cmd
            .spawn()
            .unwrap_or_else(|e| die(&format!("grandchild: {e}")));
    }
    let stdout = std::io::stdout();
    if let Some(n) = o.generate {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        for i in 0..n {
            // 100 bytes: 12-digit number, padding, newline.
            let _ = writeln!(out, "{i:012} {:>86}", "x");
        }
        let _ = out.flush();
        exit(0);
    }
    if let Some(t) = &o.partial {
        let mut out = stdout.lock();
        let _ = out.write_all(t.as_bytes());
        let _ = out.flush();
    }
    for i in 1..=o.print {
        let _ = writeln!(stdout.lock(), "line {i}");
    }
    for i in 1..=o.print_err {
        let _ = writeln!(std::io::stderr().lock(), "err {i}");
    }
    if !o.raw_out.is_empty() {
        let mut out = stdout.lock();
        let _ = out.write_all(&o.raw_out);
        let _ = out.flush();
    }
    if let Some(t) = &o.say_err {
        let _ = writeln!(std::io::stderr().lock(), "{t}");
    }
    if !o.raw_err.is_empty() {
        let _ = std::io::stderr().lock().write_all(&o.raw_err);
    }
    if let Some(sig) = o.kill_self {
        kill_self(sig);
    }
    let _ = stdout.lock().flush();
    let keeps_running =
        o.sleep || o.print_every.is_some() || o.serve_health.is_some() || o.alloc_mib.is_some();
    if o.exit_after.is_none() && !keeps_running {
        exit(o.exit.unwrap_or(0));
    }
    let start = std::time::Instant::now();
    if let Some(port) = o.serve_health {
        health::serve(port, start, o.unhealthy_after, o.request_log.clone());
    }
    let mut n = 0u64;
    let mut held: Option<Vec<u8>> = None;
    let mut allocated = false;
    loop {
        let tick = o.print_every.unwrap_or(Duration::from_millis(50));
        if let Some(after) = o.exit_after
            && start.elapsed() >= after
        {
            exit(o.exit.unwrap_or(0));
        }
        if let Some(mib) = o.alloc_mib {
            let elapsed = start.elapsed();
            if !allocated && elapsed >= o.alloc_after {
                allocated = true;
                held = Some(touched(mib));
                let _ = writeln!(stdout.lock(), "fixture: holding {mib} MiB");
            }
            if held.is_some() && o.alloc_for.is_some_and(|f| elapsed >= o.alloc_after + f) {
                held = None;
                let _ = writeln!(stdout.lock(), "fixture: freed {mib} MiB");
            }
        }
        std::thread::sleep(tick);
        if o.print_every.is_some() && o.silent_after.is_none_or(|s| start.elapsed() < s) {
            n += 1;
            let _ = writeln!(stdout.lock(), "tick {n}");
        }
    }
}

/// `mib` MiB, every page written so it is resident (a fresh allocation is only reserved).
fn touched(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    std::hint::black_box(v)
}

/// A tiny HTTP responder for health-check tests.
mod health {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// Answers every request on 127.0.0.1:`port` on a thread of its own: 200 until
    /// `unhealthy_after` has passed since `start`, 503 after.
    pub(super) fn serve(
        port: u16,
        start: Instant,
        unhealthy_after: Option<Duration>,
        log: Option<String>,
    ) {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| super::die(&format!("--serve-health {port}: {e}")));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                // Read the request head; its content does not matter.
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let sick = unhealthy_after.is_some_and(|d| start.elapsed() >= d);
                let (status, body) = if sick {
                    ("503 Service Unavailable", "sick\n")
                } else {
                    ("200 OK", "ok\n")
                };
                if let Some(path) = &log {
                    super::append(
                        path,
                        &format!(
                            "{} {} {}\n",
                            std::process::id(),
                            &status[..3],
                            start.elapsed().as_millis()
                        ),
                    );
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
    }
}

#[cfg(unix)]
mod signals {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    use std::io::Write;

    pub(super) fn install(o: &super::Opts) {
        if o.ignore_sigterm {
            for s in [Signal::SIGTERM, Signal::SIGINT] {
                // SAFETY: SIG_IGN installs no handler code; nothing can run concurrently
                // with it this early in main.
                #[allow(unsafe_code)]
                unsafe {
                    let _ = signal(s, SigHandler::SigIgn);
                }
            }
            return;
        }
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        // Blocked here, before any thread exists, so every thread inherits the mask and
        // only the waiter below ever receives them.
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
        let (delay, code) = (o.stop_delay, o.on_signal_exit);
        std::thread::spawn(move || {
            if let Ok(sig) = set.wait() {
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "fixture: got {sig}, shutting down"
                );
                std::thread::sleep(delay);
                super::exit(code);
            }
        });
    }
}
