//! Probes against real loopback sockets and real commands.

mod common;

use std::time::Duration;

use common::{closed_port, http_server, recv, silent_server};
use tend_health::probe::{probe_command, probe_http, probe_tcp};
use tend_health::{HttpClient, HttpUrl, PreparedCommand, ProbeOutcome, TcpTarget};

const T: Duration = Duration::from_secs(5);

fn url(s: &str) -> HttpUrl {
    HttpUrl::parse(s).unwrap()
}

/// "HTTP 200 after 3 ms": the number is whole milliseconds.
fn assert_timed(text: &str, prefix: &str) {
    let rest = text
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{text:?} does not start with {prefix:?}"));
    let ms = rest
        .strip_suffix(" ms")
        .unwrap_or_else(|| panic!("{text:?} does not end with ' ms'"));
    ms.parse::<u64>()
        .unwrap_or_else(|_| panic!("{text:?}: {ms:?} is not a number"));
}

#[tokio::test]
async fn http_200_then_503() {
    let (addr, mut seen) = http_server(vec![
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    ])
    .await;
    let u = url(&format!("http://{addr}/health?deep=1"));

    let first = probe_http(&u, &HttpClient::default(), T).await;
    assert!(first.is_healthy(), "{first:?}");
    assert_timed(first.text(), "HTTP 200 after ");
    let req = recv(&mut seen, T).await;
    assert!(
        req.head.starts_with("GET /health?deep=1 HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(
        req.head.contains(&format!("\r\nHost: {addr}\r\n")),
        "{}",
        req.head
    );
    assert!(
        req.head.contains("\r\nConnection: close\r\n"),
        "{}",
        req.head
    );

    let second = probe_http(&u, &HttpClient::default(), T).await;
    assert!(!second.is_healthy(), "{second:?}");
    assert_timed(second.text(), "HTTP 503 after ");
}

#[tokio::test]
async fn http_redirect_is_unhealthy() {
    let (addr, _seen) = http_server(vec!["HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n"]).await;
    let out = probe_http(&url(&format!("http://{addr}/")), &HttpClient::default(), T).await;
    assert_timed(out.text(), "HTTP 302 after ");
    assert!(!out.is_healthy());
}

#[tokio::test]
async fn http_refused() {
    let addr = closed_port();
    let out = probe_http(
        &url(&format!("http://{addr}/health")),
        &HttpClient::default(),
        T,
    )
    .await;
    assert_eq!(out.text(), format!("connect refused ({addr})"), "{out:?}");
}

#[tokio::test]
async fn http_timeout() {
    let addr = silent_server().await;
    let timeout = Duration::from_millis(300);
    let out = probe_http(
        &url(&format!("http://{addr}/")),
        &HttpClient::default(),
        timeout,
    )
    .await;
    assert!(
        matches!(&out, ProbeOutcome::Unhealthy { reason, .. } if reason == "timed out after 300ms"),
        "{out:?}"
    );
    assert!(out.took() >= timeout && out.took() < T, "{:?}", out.took());
}

#[tokio::test]
async fn http_not_http() {
    let (addr, _seen) = http_server(vec!["SSH-2.0-OpenSSH_9.6\r\n"]).await;
    let out = probe_http(&url(&format!("http://{addr}/")), &HttpClient::default(), T).await;
    assert!(out.text().starts_with("not an HTTP response: "), "{out:?}");

    let (addr, _seen) = http_server(vec![""]).await;
    let out = probe_http(&url(&format!("http://{addr}/")), &HttpClient::default(), T).await;
    assert_eq!(out.text(), "connection closed before a response");
}

#[tokio::test]
async fn http_cannot_resolve() {
    let out = probe_http(
        &url("http://tend-health-test.invalid:8080/"),
        &HttpClient::default(),
        T,
    )
    .await;
    assert!(
        out.text()
            .starts_with("cannot resolve tend-health-test.invalid"),
        "{out:?}"
    );
}

#[tokio::test]
async fn tcp_connect_and_refused() {
    let (addr, _seen) = http_server(vec![""]).await;
    let ok = probe_tcp(&TcpTarget::parse(&addr.to_string()).unwrap(), T).await;
    assert!(ok.is_healthy(), "{ok:?}");
    assert_timed(ok.text(), "connected after ");

    let closed = closed_port();
    let out = probe_tcp(&TcpTarget::parse(&closed.to_string()).unwrap(), T).await;
    assert_eq!(out.text(), format!("connect refused ({closed})"));
}

#[tokio::test]
async fn tcp_localhost_name_resolves() {
    let (addr, _seen) = http_server(vec![""]).await;
    let target = TcpTarget::parse(&format!("localhost:{}", addr.port())).unwrap();
    let out = probe_tcp(&target, T).await;
    assert!(out.is_healthy(), "{out:?}");
}

fn cmd(program: &str, args: &[&str]) -> PreparedCommand {
    PreparedCommand {
        program: program.into(),
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        working_dir: None,
        env: vec![("TEND_TEST_VALUE".into(), "from-env".into())],
    }
}

#[cfg(unix)]
#[tokio::test]
async fn command_exit_codes() {
    let out = probe_command(&cmd("sh", &["-c", "exit 1"]), T).await;
    assert_eq!(out.text(), "command exited with code 1");
    assert!(!out.is_healthy());

    let out = probe_command(
        &cmd("sh", &["-c", "echo checking; echo disk full >&2; exit 3"]),
        T,
    )
    .await;
    assert_eq!(out.text(), "command exited with code 3: disk full");

    let out = probe_command(
        &cmd("sh", &["-c", "test \"$TEND_TEST_VALUE\" = from-env"]),
        T,
    )
    .await;
    assert!(out.is_healthy(), "{out:?}");
    assert_timed(out.text(), "command exited with code 0 after ");

    let out = probe_command(&cmd("sh", &["-c", "kill -9 $$"]), T).await;
    assert_eq!(out.text(), "command killed by signal 9");

    let out = probe_command(&cmd("/nonexistent/check.sh", &[]), T).await;
    assert!(
        out.text()
            .starts_with("cannot run `/nonexistent/check.sh`: "),
        "{out:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn command_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 60 & echo $! > '{}'; wait", pidfile.display());
    let timeout = Duration::from_millis(500);
    let out = probe_command(&cmd("sh", &["-c", &script]), timeout).await;
    assert_eq!(out.text(), "timed out after 500ms");
    assert!(out.took() < T, "{:?}", out.took());
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild got SIGKILL with the group; wait until it is gone (or a zombie
    // waiting for init to reap it).
    let gone = common::eventually(T, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    })
    .await;
    assert!(gone, "grandchild {pid} survived the probe timeout");
}

#[cfg(windows)]
#[tokio::test]
async fn command_exit_codes() {
    let out = probe_command(&cmd("cmd", &["/c", "exit 1"]), T).await;
    assert_eq!(out.text(), "command exited with code 1");
    let out = probe_command(&cmd("cmd", &["/c", "exit 0"]), T).await;
    assert!(out.is_healthy(), "{out:?}");
    let out = probe_command(&cmd("C:\\nonexistent\\check.exe", &[]), T).await;
    assert!(out.text().starts_with("cannot run "), "{out:?}");
}

#[tokio::test]
async fn a_configured_probe_runs_its_kind() {
    let (addr, _seen) = http_server(vec!["HTTP/1.1 204 No Content\r\n\r\n"]).await;
    let dir = std::env::temp_dir();
    let http = tend_health::Probe::new(
        &tend_health::CheckSpec::Http(tend_health::HttpCheck {
            url: url(&format!("http://{addr}/")),
            tls: Default::default(),
        }),
        &dir,
        &[],
    );
    let out = http.run(T).await;
    assert!(out.is_healthy(), "{out:?}");
    assert_timed(out.text(), "HTTP 204 after ");

    let closed = closed_port();
    let tcp = tend_health::Probe::new(
        &tend_health::CheckSpec::Tcp(TcpTarget::parse(&closed.to_string()).unwrap()),
        &dir,
        &[],
    );
    assert_eq!(
        tcp.run(T).await.text(),
        format!("connect refused ({closed})")
    );
}
