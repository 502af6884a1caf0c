//! `[logs] format = "json"`: one JSON object per line, so Filebeat, Fluent Bit, Vector and
//! Alloy read the files without a parser:
//!
//! ```text
//! {"time":"2026-11-21T14:05:09.123+01:00","stream":"stdout","service":"api","pid":4242,"line":"listening on :8080"}
//! ```
//!
//! The same framing rules as the text format (a line ends at `\n`, a longer line than
//! `max_line` is cut into pieces, each marked `"continued":true` but the last, an unfinished
//! last line is completed at the end of the output) and the same no-loss guarantee: a byte
//! that is not UTF-8 cannot be in a JSON string, so it becomes U+FFFD and is counted, the
//! way `[logs] encoding` does. Escaping is done here rather than through serde_json: one
//! pass over each line's bytes into the reused output buffer, no allocation per line.

use std::io::Write as _;

use memchr::memchr_iter;

use crate::clock::TS_LEN;

/// The start of every object of one read: `{"time":"...","stream":"...",...,"line":"`.
pub(crate) fn head(
    out: &mut Vec<u8>,
    ts: &[u8; TS_LEN],
    stream: &str,
    service: &str,
    pid: Option<u32>,
) {
    out.clear();
    out.extend_from_slice(b"{\"time\":\"");
    // The timestamp without its trailing space.
    out.extend_from_slice(&ts[..TS_LEN - 1]);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"service\":\"");
    // Service names are `[A-Za-z0-9._-]` (tend-core's ServiceName): nothing to escape.
    out.extend_from_slice(service.as_bytes());
    out.extend_from_slice(b"\",");
    if let Some(pid) = pid {
        // Into the buffer: no allocation per read. Writing to a Vec cannot fail.
        let _ = write!(out, "\"pid\":{pid},");
    }
    out.extend_from_slice(b"\"line\":\"");
}

/// Frames the complete lines at the start of `data` as objects after `head`; returns how
/// many bytes of `data` were consumed and how many bytes had to be replaced. As
/// [`crate::frame::frame_into`]: the unconsumed rest is an unfinished line of at most
/// `max_line` bytes, and at `eof` everything is consumed.
pub(crate) fn frame_into(
    out: &mut Vec<u8>,
    data: &[u8],
    head: &[u8],
    max_line: usize,
    eof: bool,
) -> (usize, u64) {
    let mut replaced = 0;
    let mut pos = 0;
    for nl in memchr_iter(b'\n', data) {
        replaced += emit_line(out, &data[pos..nl], head, max_line);
        pos = nl + 1;
    }
    let mut rest = &data[pos..];
    if eof {
        if !rest.is_empty() {
            replaced += emit_line(out, rest, head, max_line);
            pos = data.len();
        }
    } else {
        while rest.len() > max_line {
            let cut = crate::frame::cut_point(rest, max_line);
            replaced += emit(out, head, &rest[..cut], true);
            rest = &rest[cut..];
            pos += cut;
        }
    }
    (pos, replaced)
}

fn emit_line(out: &mut Vec<u8>, mut line: &[u8], head: &[u8], max_line: usize) -> u64 {
    let mut replaced = 0;
    // A Windows program's `\r\n`: the `\r` is not part of the line.
    if let Some(l) = line.strip_suffix(b"\r") {
        line = l;
    }
    while line.len() > max_line {
        let cut = crate::frame::cut_point(line, max_line);
        replaced += emit(out, head, &line[..cut], true);
        line = &line[cut..];
    }
    replaced + emit(out, head, line, false)
}

fn emit(out: &mut Vec<u8>, head: &[u8], line: &[u8], continued: bool) -> u64 {
    out.extend_from_slice(head);
    let replaced = escape(out, line);
    if continued {
        out.extend_from_slice(b"\",\"continued\":true}\n");
    } else {
        out.extend_from_slice(b"\"}\n");
    }
    replaced
}

/// Appends `bytes` as the inside of a JSON string; returns how many bytes were not UTF-8
/// (each bad sequence became U+FFFD).
pub(crate) fn escape(out: &mut Vec<u8>, bytes: &[u8]) -> u64 {
    // Nearly every line is valid UTF-8: one fast validation, then the plain escape.
    if let Ok(s) = std::str::from_utf8(bytes) {
        escape_str(out, s);
        return 0;
    }
    let mut replaced = 0;
    for chunk in bytes.utf8_chunks() {
        escape_str(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            replaced += chunk.invalid().len() as u64;
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    replaced
}

/// Which bytes a JSON string cannot hold as they are.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
};

fn escape_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // The common case: a run of plain bytes, copied in one go.
        while i < bytes.len() && !SPECIAL[usize::from(bytes[i])] {
            i += 1;
        }
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        i += 1;
        start = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of() -> Vec<u8> {
        let mut ts = [b' '; TS_LEN];
        ts[..TS_LEN - 1].copy_from_slice(b"2026-11-21T14:05:09.123+01:00");
        let mut h = Vec::new();
        head(&mut h, &ts, "stdout", "api", Some(42));
        h
    }

    fn framed(data: &[u8], max_line: usize, eof: bool) -> (String, usize, u64) {
        let mut out = Vec::new();
        let (n, bad) = frame_into(&mut out, data, &head_of(), max_line, eof);
        (String::from_utf8(out).expect("always UTF-8"), n, bad)
    }

    #[test]
    fn one_object_per_line_that_a_json_parser_reads_back() {
        let (out, n, bad) = framed(
            b"plain\nq\"uo\\te\ttab\r\n\x01ctl\xffbad\nunfinished",
            100,
            false,
        );
        assert_eq!(n, 28, "up to the unfinished line");
        assert_eq!(bad, 1);
        let objs: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect();
        let lines: Vec<&str> = objs.iter().map(|o| o["line"].as_str().unwrap()).collect();
        assert_eq!(lines, ["plain", "q\"uo\\te\ttab", "\u{1}ctl\u{fffd}bad"]);
        assert_eq!(objs[0]["time"], "2026-11-21T14:05:09.123+01:00");
        assert_eq!(objs[0]["stream"], "stdout");
        assert_eq!(objs[0]["service"], "api");
        assert_eq!(objs[0]["pid"], 42);
        assert!(objs[0].get("continued").is_none());
    }

    #[test]
    fn long_lines_are_pieces_and_eof_completes_the_last_line() {
        let (out, n, _) = framed(b"0123456789\nab", 4, true);
        assert_eq!(n, 13);
        let objs: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let pieces: Vec<(&str, bool)> = objs
            .iter()
            .map(|o| (o["line"].as_str().unwrap(), o["continued"] == true))
            .collect();
        assert_eq!(
            pieces,
            [("0123", true), ("4567", true), ("89", false), ("ab", false)]
        );
        // Without a pid (tend's own lines), the key is left out.
        let mut h = Vec::new();
        head(&mut h, &[b'0'; TS_LEN], "tend", "api", None);
        assert!(!String::from_utf8(h).unwrap().contains("pid"));
    }
}
