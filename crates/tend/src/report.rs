//! The wording of exits, signals and durations, and CLI error messages. tend's own events
//! are [`crate::events`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use tend_core::Exit;

use crate::error::CliError;

pub(crate) fn describe_exit(exit: &Exit) -> String {
    match exit {
        // As people search for a Windows crash: `0xC0000005 STATUS_ACCESS_VIOLATION`.
        Exit::Code(c) => format!(
            "exited with code {}",
            tend_core::crash::exit_code_text(*c, cfg!(windows))
        ),
        Exit::Signal(s) => format!("was killed by {}", signal_name(*s)),
        Exit::SpawnFailed(e) => format!("could not start ({e})"),
    }
}

/// `SIGKILL` for 9, and so on; the number for anything unusual.
pub(crate) fn signal_name(sig: i32) -> String {
    #[cfg(unix)]
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        return s.as_str().to_owned();
    }
    format!("signal {sig}")
}

/// Durations the way operators read them: `250ms`, `3.2s`, `2m5s`, `1h`.
pub(crate) fn human(d: Duration) -> String {
    tend_core::fmt::duration(d)
}

/// Prints a CLI error, with every source in the chain, to stderr.
pub(crate) fn print_error(e: &CliError) {
    let mut stderr = std::io::stderr().lock();
    if let CliError::Config(tend_config::ConfigError::Invalid { path, problems }) = e {
        for p in problems {
            let _ = writeln!(stderr, "{}", p.display_in(path));
        }
    }
    let _ = writeln!(stderr, "error: {}", chain(e));
}

/// An error and its sources on one line. Many error types already show their source in
/// their own message (`cannot read x: No such file`); a source is appended only when the
/// text so far does not contain it, so nothing is said twice and nothing is lost.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            let _ = write!(msg, ": {text}");
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_say_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        // A message that already names its source...
        let e = CliError::io("cannot read `x`", io);
        assert_eq!(chain(&e), "cannot read `x`: no such file");
        // ...and one that does not.
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }
}
