//! systemd's readiness protocol (`sd_notify(3)`), for `tend service` under `Type=notify`.
//!
//! Written here rather than taken from a crate: the whole protocol is "send one datagram of
//! `KEY=VALUE` lines to the socket named by `$NOTIFY_SOCKET`", which is a few lines on
//! `std::os::unix::net::UnixDatagram`, and a dependency would be more to review than this.
//!
//! `$NOTIFY_SOCKET` is a file system path (`/run/systemd/notify`) or, on Linux, an
//! abstract socket name written with a leading `@`. tend only sends; systemd identifies the
//! sender by its pid (SCM_CREDENTIALS), which is why the unit says `NotifyAccess=main` and
//! why the program never sees the variable (see `proc::NOT_INHERITED`).

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub(crate) struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

/// Longest a notification may block: systemd drains its socket quickly, and a stuck
/// manager must not stall supervision (a lost STATUS line is harmless).
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

impl Notifier {
    /// The notifier for `$NOTIFY_SOCKET`, if the variable is set; an error for an address
    /// this platform cannot use.
    pub(crate) fn from_env() -> Option<io::Result<Self>> {
        let addr = std::env::var_os("NOTIFY_SOCKET")?;
        if addr.is_empty() {
            return None;
        }
        Some(Self::new(&addr))
    }

    /// A notifier for the address as `$NOTIFY_SOCKET` writes it.
    pub(crate) fn new(addr: &OsStr) -> io::Result<Self> {
        let addr = parse_addr(addr)?;
        let socket = UnixDatagram::unbound()?;
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Self { socket, addr })
    }

    /// Sends `state`: newline-separated assignments such as `READY=1\nSTATUS=running`.
    pub(crate) fn notify(&self, state: &str) -> io::Result<()> {
        let n = self.socket.send_to_addr(state.as_bytes(), &self.addr)?;
        if n != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the notification was truncated",
            ));
        }
        Ok(())
    }

    /// `STATUS=<text>`: one line, shown by `systemctl status`.
    pub(crate) fn status(&self, text: &str) -> io::Result<()> {
        self.notify(&status_message(text))
    }
}

/// `STATUS=` with the text on one line (a newline would start a new assignment).
pub(crate) fn status_message(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("STATUS={one_line}")
}

fn parse_addr(addr: &OsStr) -> io::Result<SocketAddr> {
    let bytes = addr.as_encoded_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(addr),
        Some(b'@') => abstract_addr(&bytes[1..]),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "NOTIFY_SOCKET={} is neither a path nor an @abstract name",
                addr.display()
            ),
        )),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt as _;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux",
    ))
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, as `sd_watchdog_enabled(3)`
/// recommends, when the watchdog is meant for this process (`$WATCHDOG_PID` unset or ours).
pub(crate) fn watchdog_interval(usec: Option<&OsStr>, pid: Option<&OsStr>) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.to_str().and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id())
    {
        return None;
    }
    let usec: u64 = usec?.to_str()?.parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.as_os_str()).unwrap();
        n.notify("READY=1").unwrap();
        assert_eq!(recv(&receiver), "READY=1");
        n.status("running\npid 42").unwrap();
        assert_eq!(recv(&receiver), "STATUS=running pid 42");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("tend-test-{}", std::process::id());
        let receiver =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::new(OsStr::new(&format!("@{name}"))).unwrap();
        n.notify("STOPPING=1").unwrap();
        assert_eq!(recv(&receiver), "STOPPING=1");
    }

    #[test]
    fn rejects_addresses_it_cannot_use() {
        for bad in ["relative.sock", "vsock:2:1234"] {
            assert!(Notifier::new(OsStr::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn watchdog_interval_is_half_of_the_timeout_and_only_for_us() {
        let us = std::process::id().to_string();
        let os = |s: &str| Some(OsStr::new(s).to_owned());
        let w = |usec: Option<std::ffi::OsString>, pid: Option<std::ffi::OsString>| {
            watchdog_interval(usec.as_deref(), pid.as_deref())
        };
        assert_eq!(w(os("3000000"), None), Some(Duration::from_millis(1500)));
        assert_eq!(w(os("3000000"), os(&us)), Some(Duration::from_millis(1500)));
        assert_eq!(w(os("3000000"), os("1")), None, "meant for another process");
        assert_eq!(w(None, None), None);
        assert_eq!(w(os("0"), None), None);
        assert_eq!(w(os("soon"), None), None);
    }
}
