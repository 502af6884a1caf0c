#!/usr/bin/env python3
"""Log throughput benchmark for `tend run` (issue 3): how fast tend captures a program's
output into rotated log files, what that costs, and whether every line arrives.

    python3 bench/logs.py                      # build (release) and run everything
    python3 bench/logs.py --tend T --fixture F # use existing binaries, no build
    python3 bench/logs.py --size 256 --rounds 1  # a quick look

Measures, on the real binaries:

1. Throughput. `tend-fixture --generate N` writes N numbered 100-byte lines (default
   N = 1 GiB / 100) as fast as it can. tend captures it with max_size = "10MiB" and
   retention off (keep = 0, max_total = "0", max_age = "0s"), so every line stays on disk.
   The baseline is `tend-fixture --generate N | cat > FILE`. Wall clock from the spawn of
   `tend run` to its exit (for pipelines: to the exit of the last process). Runs:
   timestamps off (target >= 90 % of the baseline's throughput), timestamps on (target
   >= 60 %), compress on (reported only), the generator alone into /dev/null (its ceiling)
   and, when installed, s6-log and svlogd with the same rotation size. All runs of a round
   take turns, the order rotates from round to round, and best-of and median are reported.
   Before each run the previous output is deleted and `sync` is called, so no run pays for
   the writeback of another one.
2. Verification. After each run the log files are read in order (rotated files by the
   time and number in their names, then the active file) and the numbers must be exactly
   0..N-1: no line lost, duplicated, reordered or changed. Timestamp prefixes are checked
   for shape and stripped. A fast check compares whole chunks of 100,000 lines against the
   expected bytes; only if it fails does a line-by-line pass say what went wrong.
3. CPU and memory. tend's own CPU time comes from /proc/<tend>/stat (utime + stime) read
   while tend is a zombie: the bench waits for its exit with waitid(WNOWAIT), so the numbers
   cover every thread tend ever had and exclude the program (which tend reaped: that is in
   cutime + cstime, reported as the generator's CPU). Peak RSS is the largest VmHWM from
   /proc/<pid>/status, polled every 50 ms during the run. A second measurement captures a
   single 100 MiB line without a newline: tend's peak RSS must not depend on line length.

Only the standard library is used. Every wait has a deadline; every process started here
is stopped on the way out, also on failure. Exit status: 0 when every run completed and
verified (whether or not the throughput targets were met: the report says PASS/MISS),
1 when a run was broken or verification failed (a lost, duplicated or reordered line is a
failure), 2 on bad arguments or a failed build.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Targets from the issue: tend's throughput as a share of `generator | cat > file`.
PLAIN_TARGET = 0.90
TIMESTAMPS_TARGET = 0.60
# "A few MiB, independent of line size": tend's peak RSS with a 100 MiB line must stay
# under this, and within RSS_SLACK_KIB of its peak with 1 GiB of 100-byte lines.
RSS_BOUND_KIB = 8 * 1024
RSS_SLACK_KIB = 1024
# Above this machine-wide CPU use by others (while the bench is idle) throughput numbers
# measure the neighbours as much as tend; the report says so.
BUSY_WARN_PCT = 10.0

LINE = 100  # bytes per generated line
CHUNK_LINES = 100_000  # lines per verification chunk; a power of 10 (see Template)
MAX_SIZE = "10MiB"
MAX_SIZE_BYTES = 10 * 1024 * 1024
BIG_LINE_MIB = 100
SAMPLE_EVERY_S = 0.05
TEND_TS_LEN = 30  # `2026-11-21T14:05:09.123+01:00 `
CONTINUED = b" [continued]"

# What the tend config always says apart from the run's own settings.
TEND_LOGS_BASE = f"""max_size = "{MAX_SIZE}"
rotate_every = "never"
keep = 0
max_total = "0"
max_age = "0s"
"""


class BenchError(Exception):
    """A broken run: the measurement could not be taken, or the logs are wrong."""


# --------------------------------------------------------------------------------------
# Processes


def toml_str(s: str | Path) -> str:
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string


def spawn(argv: list[str], stdin: int | None, stdout: int | None, stderr: int | None) -> int:
    """posix_spawn with fds 0-2 redirected; every other fd of ours is close-on-exec."""
    actions = []
    for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
        if fd is not None:
            actions.append((os.POSIX_SPAWN_DUP2, fd, target))
    return os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions)


def read_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat from field 3 (state) on."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command name is in parentheses and may contain spaces: split after the last ")".
    return text[text.rindex(")") + 2 :].split()


def status_kib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
            elif k == "Threads":
                out[k] = int(v)
    return out


class Peak:
    """The largest VmHWM/VmRSS/RssAnon/Threads seen in the samples of one process."""

    def __init__(self) -> None:
        self.max: dict[str, int] = {}
        self.samples = 0

    def sample(self, pid: int) -> None:
        try:
            st = status_kib(pid)
        except (OSError, ValueError):
            return
        if "VmHWM" not in st:  # a zombie has no memory left to show
            return
        self.samples += 1
        for k, v in st.items():
            self.max[k] = max(self.max.get(k, 0), v)


def alive(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def wait_exit(pid: int, deadline: float, peak: Peak | None) -> float:
    """Waits until `pid` (our child) has exited, sampling its memory every 50 ms, and
    leaves it a zombie (not reaped), so /proc/<pid>/stat still has its CPU times. Returns
    the monotonic time at which the exit was seen."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None  # kernel < 5.3: poll with waitid instead
    try:
        p = None
        if fd is not None:
            p = select.poll()
            p.register(fd, select.POLLIN)
        while True:
            if peak is not None:
                peak.sample(pid)
            if p is not None:
                if p.poll(SAMPLE_EVERY_S * 1000):
                    return time.monotonic()
            elif not alive(pid):
                return time.monotonic()
            else:
                time.sleep(SAMPLE_EVERY_S)
            if time.monotonic() > deadline:
                raise BenchError(f"pid {pid} still running at the deadline")
    finally:
        if fd is not None:
            os.close(fd)


def reap(pid: int) -> tuple[int, resource.struct_rusage]:
    """Reaps a child that has exited: (exit code or -signal, rusage of it and of the
    children it reaped)."""
    _, status, ru = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), ru


def stop(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; reaps. For the way out of a failed run."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    end = time.monotonic() + grace_s
    while time.monotonic() < end:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def leftovers(marker: str) -> list[int]:
    """SIGKILLs processes whose command line names a file in the bench's temp dir (every
    program the bench starts does: the fixture is run through a symlink there) and returns
    their pids. There should be none once a run is over."""
    killed = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except ProcessLookupError:
                pass
    return killed


def tail(text: str, n: int = 15) -> str:
    lines = text.splitlines()[-n:]
    return "\n".join("    | " + line for line in lines) if lines else "    | (no output)"


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------------------
# Machine load


def cpu_jiffies() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies over all CPUs from /proc/stat (the whole machine)."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    total = sum(vals[:8])  # guest time is already counted in user
    steal = vals[7] if len(vals) > 7 else 0
    return total - idle, total, steal


def busy_pct(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    dt = b[1] - a[1]
    return 100.0 * (b[0] - a[0]) / dt if dt > 0 else float("nan")


def psi_cpu_some10() -> float | None:
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some"):
                    return float(line.split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return None


def background_load(seconds: float) -> dict:
    """Machine CPU use while this bench does nothing."""
    a = cpu_jiffies()
    time.sleep(seconds)
    b = cpu_jiffies()
    return {"busy_pct": busy_pct(a, b), "psi_cpu_some_avg10": psi_cpu_some10()}


class LoadMeter:
    """CPU used on the machine during a run by everything except the processes of the run
    and the bench itself: other tenants, and kernel threads (including writeback)."""

    def __init__(self) -> None:
        self.j0 = cpu_jiffies()
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)

    def others_pct(self, ours_s: float) -> tuple[float, float]:
        """(others' CPU, steal) in % of the machine's capacity during the run."""
        j1 = cpu_jiffies()
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        hz = os.sysconf("SC_CLK_TCK")
        total = (j1[1] - self.j0[1]) / hz
        if total <= 0:
            return float("nan"), float("nan")
        me = (s1.ru_utime - self.self0.ru_utime) + (s1.ru_stime - self.self0.ru_stime)
        busy = (j1[0] - self.j0[0]) / hz
        steal = (j1[2] - self.j0[2]) / hz
        return max(0.0, busy - ours_s - me) * 100 / total, steal * 100 / total


# --------------------------------------------------------------------------------------
# Verification


class Concat:
    """The files of one stream, read as one byte stream (gzip files decompressed)."""

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self.f = None

    def _next(self) -> bool:
        if self.f is not None:
            self.f.close()
            self.f = None
        if not self.paths:
            return False
        p = self.paths.pop(0)
        self.f = gzip.open(p, "rb") if p.name.endswith(".gz") else open(p, "rb", buffering=0)
        return True

    def readinto(self, mv: memoryview) -> int:
        """Fills `mv` completely unless the stream ends first; returns the bytes read."""
        got = 0
        while got < len(mv):
            if self.f is None and not self._next():
                break
            n = self.f.readinto(mv[got:])
            if not n:
                self.f.close()
                self.f = None
                continue
            got += n
        return got

    def lines(self):
        for p in self.paths:
            opener = gzip.open if p.name.endswith(".gz") else open
            with opener(p, "rb") as f:
                yield from f

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


def expected_rest() -> bytes:
    """What follows the 12-digit number on each generated line."""
    return b" " * 86 + b"x\n"


def line_of(i: int) -> bytes:
    return b"%012d" % i + expected_rest()


class Template:
    """The expected bytes of CHUNK_LINES records (prefix + line) numbered 0..CHUNK_LINES-1.

    Chunk c of the stream holds lines c*CHUNK_LINES .. (c+1)*CHUNK_LINES-1. As CHUNK_LINES
    is 10^5, only the first 7 of the 12 digits differ from the template, and they are the
    same on every line of the chunk: they are patched in with 7 strided slice assignments
    (C speed), the prefixes are copied over from the data, and the chunk is compared in one
    go. About 10 ms per 10 MB, so verifying 1 GiB costs about as much as reading it."""

    def __init__(self, prefix_len: int):
        assert CHUNK_LINES == 10**5
        self.p = prefix_len
        self.r = prefix_len + LINE
        pad = b"-" * prefix_len
        self.bytes = b"".join(pad + line_of(j) for j in range(CHUNK_LINES))

    def expected(self, chunk_index: int, m: int, prefix_cols: list[bytearray]) -> bytearray:
        """The expected bytes of chunk `chunk_index` (m records), with the prefixes taken
        from the data (`prefix_cols[c]`: byte c of every record's prefix)."""
        p, r = self.p, self.r
        exp = bytearray(self.bytes[: m * r]) if m < CHUNK_LINES else bytearray(self.bytes)
        hi = b"%07d" % chunk_index
        for c in range(7):
            exp[p + c : m * r : r] = hi[c : c + 1] * m
        for c in range(p):
            exp[c : m * r : r] = prefix_cols[c]
        return exp


# Columns of tend's timestamp prefix that hold a fixed character, and those that hold
# digits: `2026-11-21T14:05:09.123+01:00 `.
TEND_TS_FIXED = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b".", 26: b":", 29: b" "}
TEND_TS_DIGITS = [c for c in range(29) if c not in TEND_TS_FIXED and c != 23]


def check_tend_prefixes(cols: list[bytearray], m: int) -> str | None:
    """`cols[c]`: byte c of every line's prefix."""
    for c, ch in TEND_TS_FIXED.items():
        if cols[c] != ch * m:
            return f"timestamp column {c} is not {ch!r} on every line"
    for c in TEND_TS_DIGITS:
        if not cols[c].isdigit():
            return f"timestamp column {c} is not a digit on every line"
    if cols[23].strip(b"+-"):
        return "timestamp offset sign is not + or - on every line"
    return None


def parse_tend_ts(b: bytes) -> datetime:
    return datetime.fromisoformat(b[:29].decode())


def detect_prefix(paths: list[Path]) -> int:
    """Length of the per-line prefix, from the first line: every line is prefix + 100."""
    c = Concat(paths)
    try:
        head = bytearray(4096)
        n = c.readinto(memoryview(head))
    finally:
        c.close()
    nl = head.find(b"\n", 0, n)
    if nl < 0:
        raise BenchError("no complete line in the first 4 KiB of the logs")
    p = nl + 1 - LINE
    if p < 0:
        raise BenchError(f"first line is {nl + 1} bytes, shorter than the {LINE} written")
    return p


def verify_numbered(paths: list[Path], n: int, prefix: str, window: tuple[float, float]) -> dict:
    """Checks that the files, read in order, hold exactly lines 0..n-1 of the generator,
    each with a prefix of the kind `prefix`: "none", "tend" (tend's timestamps) or "any"
    (a fixed-width prefix of another logger). Raises BenchError with a diagnosis if not."""
    t0 = time.monotonic()
    p = detect_prefix(paths) if n else 0
    if prefix == "none" and p != 0:
        raise BenchError(f"lines carry a {p}-byte prefix, expected none")
    if prefix == "tend" and p != TEND_TS_LEN:
        raise BenchError(f"lines carry a {p}-byte prefix, expected tend's {TEND_TS_LEN}")
    tpl = Template(p)
    r = tpl.r
    buf = bytearray(CHUNK_LINES * r)
    mv = memoryview(buf)
    src = Concat(paths)
    problem = None
    first_ts = last_ts = None
    try:
        i = 0
        while i < n and problem is None:
            m = min(CHUNK_LINES, n - i)
            got = src.readinto(mv[: m * r])
            if got < m * r:
                problem = f"the logs end after {(i * r + got) // r} whole lines of {n}"
                break
            data = buf if m == CHUNK_LINES else buf[: m * r]
            cols = [data[c : m * r : r] for c in range(p)]
            if prefix == "tend":
                problem = check_tend_prefixes(cols, m)
                if problem:
                    break
                a, b = parse_tend_ts(data[:p]), parse_tend_ts(data[(m - 1) * r :])
                if b < a or (last_ts is not None and a < last_ts):
                    problem = "timestamps go backwards"
                    break
                first_ts = first_ts or a
                last_ts = b
            elif p and cols[p - 1] != b" " * m:
                problem = "a prefix does not end with a space on every line"
                break
            if tpl.expected(i // CHUNK_LINES, m, cols) != data:
                problem = f"lines {i}..{i + m - 1} are not the expected ones"
                break
            i += m
        if problem is None:
            extra = src.readinto(memoryview(bytearray(1 << 16)))
            if extra:
                problem = f"more data after line {n - 1} (at least {extra} bytes)"
    finally:
        src.close()
    if problem is None and first_ts is not None:
        lo = datetime.fromtimestamp(window[0] - 1).astimezone()
        hi = datetime.fromtimestamp(window[1] + 1).astimezone()
        if not (lo <= first_ts and last_ts <= hi):
            problem = (f"timestamps {first_ts.isoformat()} .. {last_ts.isoformat()} are "
                       f"outside the run ({lo.isoformat()} .. {hi.isoformat()})")
    if problem is not None:
        raise BenchError(f"verification failed: {problem}\n{diagnose(paths, n, p)}")
    return {"lines": n, "prefix_len": p, "files": len(paths), "verify_s": time.monotonic() - t0}


def verify_json(paths: list[Path], n: int) -> dict:
    """Checks that the files, read in order, hold exactly lines 0..n-1 of the generator as
    `format = "json"` objects: every line parses as JSON, its `line` is the generator's
    line (without the newline), in order. Raises BenchError at the first problem."""
    import json
    t0 = time.monotonic()
    rest = expected_rest()[:-1].decode()
    i = 0
    for idx, raw in enumerate(Concat(paths).lines()):
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise BenchError(f"verification failed: line {idx + 1} is not JSON ({e}): {raw[:80]!r}")
        want = "%012d" % i + rest
        if obj.get("line") != want or obj.get("stream") != "stdout":
            raise BenchError(f"verification failed: object {idx + 1} holds {obj.get('line', '')[:20]!r}, "
                             f"expected line {i}")
        i += 1
    if i != n:
        raise BenchError(f"verification failed: {i} JSON lines for {n} written")
    return {"lines": n, "files": len(paths), "verify_s": time.monotonic() - t0}


def diagnose(paths: list[Path], n: int, p: int, examples: int = 5) -> str:
    """The slow path, only after the fast check failed: reads line by line with a seen-flag
    per number (n bytes) and counts lost, duplicated, reordered and malformed lines."""
    seen = bytearray(n)
    rest = expected_rest()
    count = dup = late = bad = 0
    high = -1
    ex: dict[str, list[str]] = {"duplicate": [], "out of order": [], "malformed": []}
    for idx, line in enumerate(Concat(paths).lines()):
        count += 1
        body = line[p:]
        num = body[:12]
        if len(line) != p + LINE or not num.isdigit() or body[12:] != rest or int(num) >= n:
            bad += 1
            if len(ex["malformed"]) < examples:
                ex["malformed"].append(f"line {idx + 1}: {line[:p + 40]!r}")
            continue
        k = int(num)
        if seen[k]:
            dup += 1
            if len(ex["duplicate"]) < examples:
                ex["duplicate"].append(f"{k} again at line {idx + 1}")
        elif k < high:
            late += 1
            if len(ex["out of order"]) < examples:
                ex["out of order"].append(f"{k} after {high} at line {idx + 1}")
        seen[k] = 1
        high = max(high, k)
    missing = n - sum(seen)  # sum of a bytearray of 0/1 is the count of ones
    gaps = []
    if missing:
        at = seen.find(0)
        while at >= 0 and len(gaps) < examples:
            end = seen.find(1, at)
            end = n if end < 0 else end
            gaps.append(f"{at}..{end - 1}" if end - 1 > at else f"{at}")
            at = seen.find(0, end)
    out = [f"    diagnosis: {count} lines read for {n} written: {missing} lost, {dup} "
           f"duplicated, {late} out of order, {bad} malformed"]
    if gaps:
        out.append(f"      lost: {', '.join(gaps)}{' ...' if len(gaps) == examples else ''}")
    for k, v in ex.items():
        if v:
            out.append(f"      {k}: {'; '.join(v)}")
    return "\n".join(out)


STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}$")


def tend_files(logdir: Path, name: str) -> tuple[list[Path], dict]:
    """The stdout files of service `name` in reading order (docs/logs.md): rotated files by
    the time in their name, then the `-N` number (plain string order would put `-1` before
    the unsuffixed name), then the active file. Where both `X.log` and `X.log.gz` exist the
    `.gz` is the complete one (it is only ever created by a rename); `.gz.tmp` files are
    unfinished compressions and are skipped."""
    rotated: dict[tuple[str, int], dict[str, Path]] = {}
    info = {"rotated": 0, "compressed": 0, "plain": 0, "gz_tmp": 0, "both": 0, "other": []}
    pre = f"{name}.out."
    for e in os.listdir(logdir):
        if e in (f"{name}.out.log", f"{name}.err.log", f"{name}.tend.log",
                 f"{name}.status.json"):
            continue
        rest = e[len(pre) :] if e.startswith(pre) else None
        m = re.match(r"^(.{23})(?:-(\d+))?\.log(\.gz|\.gz\.tmp)?$", rest or "")
        if not m or not STAMP_RE.match(m.group(1)):
            info["other"].append(e)
            continue
        key = (m.group(1), int(m.group(2) or 0))
        kind = m.group(3) or ""
        if kind == ".gz.tmp":
            info["gz_tmp"] += 1
            continue
        rotated.setdefault(key, {})[kind] = logdir / e
    order = []
    for key in sorted(rotated):
        forms = rotated[key]
        info["rotated"] += 1
        if ".gz" in forms:
            info["compressed"] += 1
            info["both"] += "" in forms
            order.append(forms[".gz"])
        else:
            info["plain"] += 1
            order.append(forms[""])
    active = logdir / f"{name}.out.log"
    if not active.exists():
        raise BenchError(f"{active} is missing")
    order.append(active)
    return order, info


def daemontools_files(logdir: Path) -> list[Path]:
    """s6-log and svlogd: archived `@<tai64n>.s` (or `.u`) files sort by name, then
    `current`."""
    archived = sorted(p for p in logdir.iterdir() if re.match(r"^@[0-9a-f]{24}\.[su]$", p.name))
    cur = logdir / "current"
    if not cur.exists():
        raise BenchError(f"{cur} is missing")
    return archived + [cur]


def verify_big_line(paths: list[Path], total: int, max_line: int) -> dict:
    """One line of `total` bytes of 'x' and no newline, captured with timestamps: pieces of
    at most max_line bytes, each but the last marked ` [continued]`, the last completed
    with a newline when the pipe closed."""
    pieces = content = 0
    last_marked = True
    for line in Concat(paths).lines():
        if not last_marked:
            raise BenchError(f"verification failed: a piece after the last one "
                             f"(piece {pieces + 1}: {line[:60]!r})")
        if len(line) < TEND_TS_LEN + 1 or line[TEND_TS_LEN - 1 : TEND_TS_LEN] != b" " \
                or not line.endswith(b"\n"):
            raise BenchError(f"verification failed: piece {pieces + 1} is malformed: "
                             f"{line[:60]!r}")
        body = line[TEND_TS_LEN:-1]
        last_marked = body.endswith(CONTINUED)
        if last_marked:
            body = body[: -len(CONTINUED)]
        if len(body) > max_line or body.count(b"x") != len(body):
            raise BenchError(f"verification failed: piece {pieces + 1} has {len(body)} bytes "
                             f"that are not all 'x' or more than max_line = {max_line}")
        pieces += 1
        content += len(body)
    if content != total or last_marked:
        raise BenchError(f"verification failed: {content} bytes of the line in {pieces} pieces "
                         f"(expected {total}, the last piece unmarked)")
    return {"pieces": pieces, "bytes": content, "files": len(paths)}


# --------------------------------------------------------------------------------------
# Runs


@dataclass
class Ctx:
    tend: Path
    fixture: Path  # a symlink inside `work`, so that `leftovers` recognises the fixture
    work: Path
    n: int
    gen_argv: list[str]
    deadline_s: float
    keep: bool = False
    runs: int = 0
    last_dir: Path | None = None

    def fresh_dir(self, tag: str) -> Path:
        self.runs += 1
        d = self.work / f"{self.runs:03d}-{tag}"
        d.mkdir()
        self.last_dir = d
        return d


def settle_disk(d: Path | None) -> None:
    """Deletes a finished run's log output (its config and stderr stay, for --keep) and
    writes back what is dirty, so the next run starts with no writeback pending from an
    earlier one."""
    if d is not None:
        shutil.rmtree(d / "logs", ignore_errors=True)
        try:
            (d / "out.log").unlink()
        except FileNotFoundError:
            pass
    os.sync()


def write_tend_config(d: Path, command: list[str], logs: str) -> Path:
    cfg = d / "svc.toml"
    cmd = ", ".join(toml_str(c) for c in command)
    cfg.write_text(
        f"""name = "gen"
command = [{cmd}]

[restart]
policy = "never"

[stop]
timeout = "5s"

[logs]
dir = {toml_str(d / "logs")}
{TEND_LOGS_BASE}{logs}"""
    )
    return cfg


def run_tend(ctx: Ctx, tag: str, command: list[str], logs: str) -> tuple[dict, Path]:
    """One `tend run` until it exits by itself. Returns the measurements and the run's dir
    (the caller verifies and deletes it)."""
    d = ctx.fresh_dir(tag)
    cfg = write_tend_config(d, command, logs)
    err_path = d / "tend.stderr"
    fd_in = os.open(os.devnull, os.O_RDONLY)
    fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    peak = Peak()
    pid = None
    try:
        load = LoadMeter()
        w0 = time.time()
        t0 = time.monotonic()
        pid = spawn([str(ctx.tend), "run", str(cfg)], fd_in, fd_err, fd_err)
        t1 = wait_exit(pid, t0 + ctx.deadline_s, peak)
        w1 = time.time()
        # tend is a zombie now: its stat still holds the CPU time of all its threads
        # (utime, stime) and of the children it reaped, i.e. the program (cutime, cstime).
        f = read_stat(pid)
        code, ru = reap(pid)
        pid = None
    finally:
        os.close(fd_in)
        os.close(fd_err)
        if pid is not None:
            stop(pid)
        killed = leftovers(str(ctx.work))
    if killed:
        raise BenchError(f"processes outlived tend: {killed}")
    if code != 0:
        raise BenchError(f"tend exited with code {code}\n{tail(read_text(err_path))}")
    hz = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) / hz for x in f[11:15])
    others, steal = load.others_pct(utime + stime + cutime + cstime)
    logdir = d / "logs"
    err_log = logdir / "gen.err.log"
    if err_log.exists() and err_log.stat().st_size:
        raise BenchError(f"{err_log} is not empty: {err_log.read_bytes()[:200]!r}")
    events = [ln for ln in read_text(err_path).splitlines() if "logs:" in ln]
    res = {
        "wall_s": t1 - t0,
        "window": (w0, w1),
        "cpu_user_s": utime,
        "cpu_sys_s": stime,
        "gen_cpu_s": cutime + cstime,
        "rusage_total_cpu_s": ru.ru_utime + ru.ru_stime,
        "rusage_maxrss_kib": ru.ru_maxrss,
        "peak": peak.max,
        "samples": peak.samples,
        "others_pct": others,
        "steal_pct": steal,
        "log_events": events,
    }
    return res, d


def run_pipeline(ctx: Ctx, tag: str, make_logger) -> tuple[dict, Path]:
    """`generator | logger`, or the generator alone into /dev/null when `make_logger` is
    None. `make_logger(run_dir)` returns (argv, stdout file name or None). Timed from the
    spawn of the generator to the exit of the last process."""
    d = ctx.fresh_dir(tag)
    logger, out_name = make_logger(d) if make_logger is not None else (None, None)
    err_path = d / "stderr"
    fd_in = os.open(os.devnull, os.O_RDONLY)
    fd_null = os.open(os.devnull, os.O_WRONLY)
    fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    fd_out = None
    if out_name is not None:
        fd_out = os.open(d / out_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    peak = Peak()
    gen = log = None
    try:
        load = LoadMeter()
        t0 = time.monotonic()
        if logger is None:
            gen = spawn(ctx.gen_argv, fd_in, fd_null, fd_err)
            t1 = wait_exit(gen, t0 + ctx.deadline_s, None)
        else:
            r, w = os.pipe()
            try:
                gen = spawn(ctx.gen_argv, fd_in, w, fd_err)
                log = spawn(logger, r, fd_out if fd_out is not None else fd_null, fd_err)
            finally:
                os.close(r)
                os.close(w)
            t1 = wait_exit(log, t0 + ctx.deadline_s, peak)
            # The logger saw end of file, so the generator has closed its end: it exits.
            wait_exit(gen, time.monotonic() + 10, None)
        gen_code, gen_ru = reap(gen)
        gen = None
        log_code, log_ru = reap(log) if log is not None else (0, None)
        log = None
    finally:
        for fd in (fd_in, fd_null, fd_err, fd_out):
            if fd is not None:
                os.close(fd)
        for pid in (log, gen):
            if pid is not None:
                stop(pid, 2.0)
        killed = leftovers(str(ctx.work))
    if killed:
        raise BenchError(f"processes outlived the pipeline: {killed}")
    if gen_code != 0 or log_code != 0:
        raise BenchError(f"exit codes: generator {gen_code}, logger {log_code}\n"
                         f"{tail(read_text(err_path))}")
    gen_cpu = gen_ru.ru_utime + gen_ru.ru_stime
    user = log_ru.ru_utime if log_ru else 0.0
    sys_ = log_ru.ru_stime if log_ru else 0.0
    others, steal = load.others_pct(gen_cpu + user + sys_)
    res = {
        "wall_s": t1 - t0,
        "cpu_user_s": user,
        "cpu_sys_s": sys_,
        "gen_cpu_s": gen_cpu,
        "peak": peak.max,
        "samples": peak.samples,
        "others_pct": others,
        "steal_pct": steal,
    }
    return res, d


@dataclass
class Scenario:
    name: str
    what: str
    run: object  # (ctx) -> dict
    target: float | None = None  # share of the baseline's throughput to reach


def verified(ctx: Ctx, d: Path, check) -> dict:
    """Runs `check()`, then deletes the run's logs; a failed run's logs stay with --keep."""
    ok = False
    try:
        out = check()
        ok = True
        return out
    finally:
        settle_disk(d if ok or not ctx.keep else None)


def tend_scenario(name: str, what: str, logs: str, prefix: str,
                  target: float | None = None) -> Scenario:
    def run(ctx: Ctx) -> dict:
        res, d = run_tend(ctx, name, ctx.gen_argv, logs)
        window = res.pop("window")

        def check() -> dict:
            files, info = tend_files(d / "logs", "gen")
            res["files"] = info
            return verify_numbered(files, ctx.n, prefix, window)

        res["verify"] = verified(ctx, d, check)
        return res

    return Scenario(name, what, run, target)


def pipe_scenario(name: str, what: str, make_logger, prefix: str) -> Scenario:
    """make_logger(run_dir) -> (argv, stdout file name or None); None: no logger at all."""

    def run(ctx: Ctx) -> dict:
        res, d = run_pipeline(ctx, name, make_logger)
        if make_logger is None:
            settle_disk(d)
            return res

        def check() -> dict:
            out = d / "out.log"
            paths = [out] if out.exists() else daemontools_files(d / "logs")
            res["files"] = {"rotated": len(paths) - 1}
            return verify_numbered(paths, ctx.n, prefix, (0.0, 0.0))

        res["verify"] = verified(ctx, d, check)
        return res

    return Scenario(name, what, run)


def scenarios(skip: set[str]) -> tuple[list[Scenario], list[str]]:
    """The runs of one round, and notes on the ones that are not available."""
    plain = 'timestamps = false\ncompress = false\n'
    notes = []
    out = [
        pipe_scenario("null", "generator > /dev/null (its own ceiling)", None, "none"),
        pipe_scenario("cat", "generator | cat > FILE (the baseline)",
                      lambda d: ([shutil.which("cat") or "/bin/cat"], "out.log"), "none"),
        tend_scenario("tend", "tend run, timestamps = false, compress = false", plain,
                      "none", PLAIN_TARGET),
        tend_scenario("tend-ts", "tend run, timestamps = true, compress = false",
                      'timestamps = true\ncompress = false\n', "tend", TIMESTAMPS_TARGET),
        tend_scenario("tend-gz", "tend run, timestamps = false, compress = true",
                      'timestamps = false\ncompress = true\n', "none"),
    ]
    s6 = shutil.which("s6-log")
    if s6:
        def s6_logger(ts: list[str]):
            # n100000: keep (practically) every archive; s: rotate at the same size as tend.
            return lambda d: ([s6, "n100000", f"s{MAX_SIZE_BYTES}", *ts, str(d / "logs")], None)

        out.append(pipe_scenario("s6-log", "generator | s6-log (no timestamps)",
                                 s6_logger([]), "any"))
        out.append(pipe_scenario("s6-log-T", "generator | s6-log T (ISO 8601 timestamps)",
                                 s6_logger(["T"]), "any"))
    else:
        notes.append("s6-log not installed (apt-get install s6): skipped")
    sv = shutil.which("svlogd")
    if sv:
        def sv_logger(ts: list[str]):
            def make(d: Path):
                logs = d / "logs"
                logs.mkdir()
                # s: rotate at the same size as tend; n0: never delete old files.
                (logs / "config").write_text(f"s{MAX_SIZE_BYTES}\nn0\n")
                # -b: svlogd's default 1 KiB buffer would measure the buffer size.
                return [sv, *ts, "-b", "65536", str(logs)], None
            return make

        out.append(pipe_scenario("svlogd", "generator | svlogd -b 65536 (no timestamps)",
                                 sv_logger([]), "any"))
        out.append(pipe_scenario("svlogd-tt", "generator | svlogd -tt -b 65536 (UTC "
                                 "timestamps)", sv_logger(["-tt"]), "any"))
    else:
        notes.append("svlogd not installed (apt-get install runit): skipped")
    for s in out:
        if s.name in skip and s.name == "cat":
            notes.append("the baseline (cat) cannot be skipped")
    out = [s for s in out if s.name not in skip or s.name == "cat"]
    return out, notes


# --------------------------------------------------------------------------------------
# Memory: one huge line


# Sleeps before exiting so that several samples see tend holding the unfinished line.
BIG_LINE_SCRIPT = """import sys, time
chunk = b"x" * (1 << 20)
out = sys.stdout.buffer
for _ in range({mib}):
    out.write(chunk)
out.flush()
time.sleep(0.5)
"""


def big_line(ctx: Ctx) -> dict:
    """tend captures one 100 MiB line without a newline (timestamps on, the default
    max_line of 64 KiB). Its peak RSS must not grow with the line."""
    script = ctx.work / "bigline.py"
    script.write_text(BIG_LINE_SCRIPT.format(mib=BIG_LINE_MIB))
    res, d = run_tend(ctx, "bigline", [sys.executable, str(script)],
                      'timestamps = true\ncompress = false\n')
    res.pop("window")

    def check() -> dict:
        files, info = tend_files(d / "logs", "gen")
        res["files"] = info
        return verify_big_line(files, BIG_LINE_MIB << 20, 64 * 1024)

    res["verify"] = verified(ctx, d, check)
    return res


# --------------------------------------------------------------------------------------
# Generators


FAST_GEN_SCRIPT = """import sys
# The same bytes as `tend-fixture --generate N`, built 100,000 lines at a time from a
# template: the last 5 digits repeat from chunk to chunk, the first 7 are patched in.
n, K = int(sys.argv[1]), 100_000
t = bytearray(b"".join(b"%012d %86s\\n" % (j, b"x") for j in range(K)))
out = sys.stdout.buffer
i = 0
while i < n:
    c = bytearray(t)
    hi = b"%07d" % (i // K)
    for col in range(7):
        c[col::100] = hi[col:col + 1] * K
    m = min(K, n - i)
    out.write(memoryview(c)[: m * 100])
    i += m
out.flush()
"""


def generator(work: Path, fixture: Path, kind: str, n: int) -> list[str]:
    if kind == "fixture":
        return [str(fixture), "--generate", str(n)]
    script = work / "fastgen.py"
    if not script.exists():
        script.write_text(FAST_GEN_SCRIPT)
    return [sys.executable, str(script), str(n)]


# --------------------------------------------------------------------------------------
# Driver


def build(target_dir: Path | None) -> tuple[Path, Path]:
    env = dict(os.environ)
    if target_dir is not None:
        env["CARGO_TARGET_DIR"] = str(target_dir)
    tdir = Path(env.get("CARGO_TARGET_DIR", REPO / "target"))
    if not tdir.is_absolute():
        tdir = REPO / tdir
    cmd = ["cargo", "build", "--release", "-p", "tend", "--bins"]
    print(f"building: {' '.join(cmd)} (CARGO_TARGET_DIR={tdir})", flush=True)
    try:
        r = subprocess.run(cmd, cwd=REPO, env=env, timeout=900)
    except FileNotFoundError:
        print("error: cargo not found; pass --tend and --fixture", file=sys.stderr)
        sys.exit(2)
    except subprocess.TimeoutExpired:
        print("error: the build took more than 15 minutes", file=sys.stderr)
        sys.exit(2)
    if r.returncode != 0:
        print("error: the build failed", file=sys.stderr)
        sys.exit(2)
    return tdir / "release" / "tend", tdir / "release" / "tend-fixture"


def revision() -> str:
    """The commit the binaries were (most likely) built from, and whether crates/ had
    uncommitted changes at the time."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "crates", "Cargo.lock"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if not head:
        return "unknown"
    return head + (" + uncommitted changes in crates/" if dirty.strip() else "")


def filesystem(path: Path) -> str:
    """Type and mount point of the file system holding `path`, from /proc/mounts."""
    best = ("?", "")
    p = str(path.resolve())
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (p == mnt or p.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[1]):
                    best = (parts[2], mnt)
    except OSError:
        pass
    return f"{best[0]} (mounted on {best[1] or '?'})"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def mib_s(n: int, wall_s: float) -> float:
    return n * LINE / (1 << 20) / wall_s


def per_gib(n: int, seconds: float) -> float:
    return seconds / (n * LINE / (1 << 30))


def describe_run(ctx: Ctx, r: int, name: str, res: dict) -> str:
    cpu = res["cpu_user_s"] + res["cpu_sys_s"]
    peak = res["peak"].get("VmHWM")
    files = res.get("files", {})
    v = res.get("verify")
    parts = [
        f"r{r + 1} {name:<10} {res['wall_s']:6.2f} s {mib_s(ctx.n, res['wall_s']):7.1f} MiB/s",
    ]
    if name != "null":
        parts.append(f"CPU {cpu:5.2f} s ({res['cpu_user_s']:.2f}u+{res['cpu_sys_s']:.2f}s)")
    parts.append(f"gen {res['gen_cpu_s']:5.2f} s")
    if peak:
        parts.append(f"VmHWM {peak} KiB")
    if v:
        extra = ""
        if files.get("compressed") is not None and name == "tend-gz":
            extra = (f", {files['compressed']}/{files['rotated']} gzipped at exit"
                     + (f", {files['gz_tmp']} .gz.tmp" if files.get("gz_tmp") else ""))
        parts.append(f"{v['files']} files verified ({v['verify_s']:.1f} s{extra})")
    if res.get("log_events"):
        parts.append(f"{len(res['log_events'])} `logs:` events from tend (see --json)")
    parts.append(f"others {res['others_pct']:.0f}%")
    if res["steal_pct"] >= 1:
        parts.append(f"steal {res['steal_pct']:.0f}%")
    return "    " + "  ".join(parts)


def summarize(ctx: Ctx, runs: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for name, rs in runs.items():
        if not rs:
            continue
        tput = [mib_s(ctx.n, r["wall_s"]) for r in rs]
        cpu = [per_gib(ctx.n, r["cpu_user_s"] + r["cpu_sys_s"]) for r in rs]
        out[name] = {
            "runs": len(rs),
            "best_mib_s": max(tput),
            "median_mib_s": statistics.median(tput),
            "all_mib_s": tput,
            "cpu_s_per_gib": statistics.median(cpu),
            "user_s_per_gib": statistics.median(per_gib(ctx.n, r["cpu_user_s"]) for r in rs),
            "sys_s_per_gib": statistics.median(per_gib(ctx.n, r["cpu_sys_s"]) for r in rs),
            "gen_cpu_s_per_gib": statistics.median(per_gib(ctx.n, r["gen_cpu_s"]) for r in rs),
            "peak_kib": max((r["peak"].get("VmHWM", 0) for r in rs), default=0),
            "others_pct_median": statistics.median(r["others_pct"] for r in rs),
            "steal_pct_max": max(r["steal_pct"] for r in rs),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tend", type=Path, help="tend binary (skips the build)")
    ap.add_argument("--fixture", type=Path, help="tend-fixture binary (skips the build)")
    ap.add_argument("--target-dir", type=Path, help="CARGO_TARGET_DIR for the build")
    ap.add_argument("--size", type=int, default=1024, help="MiB the generator writes (1024)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp"),
                    help="where the temp dir with the logs goes (/var/tmp: on disk)")
    ap.add_argument("--generator", choices=["fixture", "fast"], default="fixture",
                    help="fixture: tend-fixture --generate (the issue's); fast: the same "
                         "bytes from a template, so the logger is the bottleneck")
    ap.add_argument("--skip", default="",
                    help="comma-separated runs to leave out: null, tend, tend-ts, tend-gz, "
                         "s6-log, s6-log-T, svlogd, svlogd-tt")
    ap.add_argument("--only", choices=["throughput", "memory"], help="run one measurement")
    ap.add_argument("--json", type=Path, help="also write the results here as JSON")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (configs, stderr; the logs of a failed run)")
    a = ap.parse_args()

    if sys.platform != "linux":
        print("error: this benchmark reads /proc and needs Linux", file=sys.stderr)
        return 2
    if (a.tend is None) != (a.fixture is None):
        print("error: pass both --tend and --fixture, or neither", file=sys.stderr)
        return 2
    if a.size < 1 or a.rounds < 1:
        print("error: need --size >= 1 and --rounds >= 1", file=sys.stderr)
        return 2
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    known = {"null", "cat", "tend", "tend-ts", "tend-gz", "s6-log", "s6-log-T", "svlogd",
             "svlogd-tt"}
    if skip - known:
        print(f"error: unknown run(s) in --skip: {', '.join(sorted(skip - known))}",
              file=sys.stderr)
        return 2
    if not a.dir.is_dir():
        print(f"error: --dir {a.dir} is not a directory", file=sys.stderr)
        return 2
    n = a.size * (1 << 20) // LINE
    st = os.statvfs(a.dir)
    need = int(n * (LINE + TEND_TS_LEN) * 1.1) + (256 << 20)
    if st.f_bavail * st.f_frsize < need:
        print(f"error: {a.dir} has {st.f_bavail * st.f_frsize >> 20} MiB free; a run needs "
              f"{need >> 20} MiB", file=sys.stderr)
        return 2
    tend, fixture = (a.tend, a.fixture) if a.tend else build(a.target_dir)
    tend, fixture = tend.resolve(), fixture.resolve()
    for p in (tend, fixture):
        if not os.access(p, os.X_OK):
            print(f"error: {p} is not an executable file", file=sys.stderr)
            return 2

    # SIGTERM unwinds like Ctrl+C, so the `finally` blocks stop what runs and clean up.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="tend-logbench-", dir=a.dir)).resolve()
    (work / "bin").mkdir()
    fixture_link = work / "bin" / "tend-fixture"
    fixture_link.symlink_to(fixture)
    ctx = Ctx(tend=tend, fixture=fixture_link, work=work, n=n,
              gen_argv=generator(work, fixture_link, a.generator, n),
              deadline_s=60 + a.size * 0.25, keep=a.keep)
    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                 "python": platform.python_version()},
        "revision": revision(),
        "tend": str(tend),
        "fixture": str(fixture),
        "size_mib": a.size,
        "lines": n,
        "generator": a.generator,
        "workdir": str(work),
        "filesystem": filesystem(work),
    }
    broken: list[str] = []
    print(f"tend:    {tend}\nfixture: {fixture}\nworkdir: {work} on {results['filesystem']}")
    if results["filesystem"].startswith("tmpfs"):
        print("         note: tmpfs is memory, not disk: no file system writeback is measured")
    print(f"source:  {results['revision']}")
    print(f"host:    Linux {platform.release()}, {os.cpu_count()} CPUs")
    try:
        if a.only in (None, "throughput"):
            run_throughput(a, ctx, results, broken)
        if a.only in (None, "memory"):
            run_memory(ctx, results, broken)
        report(results, broken)
        if a.json:
            a.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        return 1 if broken else 0
    finally:
        killed = leftovers(str(work))
        if killed:
            print(f"killed leftover processes: {killed}", file=sys.stderr)
        if a.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_throughput(a, ctx: Ctx, results: dict, broken: list[str]) -> None:
    scens, notes = scenarios({s.strip() for s in a.skip.split(",") if s.strip()})
    gen_desc = ("`tend-fixture --generate N`" if a.generator == "fixture"
                else "a Python template generator (same bytes as the fixture)")
    print(f"\n[1] throughput: {a.size} MiB = {ctx.n:,} lines of {LINE} bytes from {gen_desc}; "
          f"max_size = \"{MAX_SIZE}\", nothing deleted; {a.rounds} round(s) of "
          f"{len(scens)} runs, order rotating")
    for s in scens:
        print(f"    {s.name:<10} {s.what}")
    for note in notes:
        print(f"    note: {note}")
    # A small warm-up (page cache, binaries, first directory entries), also a quick check
    # that every run works before the long ones.
    warm = Ctx(tend=ctx.tend, fixture=ctx.fixture, work=ctx.work, n=100_000,
               gen_argv=generator(ctx.work, ctx.fixture, a.generator, 100_000),
               deadline_s=60, keep=ctx.keep)
    bg = background_load(1.0)
    results["background_before"] = bg
    psi = bg["psi_cpu_some_avg10"]
    print(f"    load: machine CPU busy {bg['busy_pct']:.0f}% over 1s before the runs"
          + (f", cpu pressure some avg10 {psi:.1f}%" if psi is not None else ""), flush=True)
    runs: dict[str, list[dict]] = {s.name: [] for s in scens}
    dead: set[str] = set()
    for s in scens:
        try:
            s.run(warm)
        except BenchError as e:
            broken.append(f"{s.name} (warm-up, 100,000 lines): {e}")
            print(f"    BROKEN in the warm-up: {s.name}: {e}", flush=True)
            dead.add(s.name)
            settle_disk(None if ctx.keep else warm.last_dir)
    ctx.runs = warm.runs
    settle_disk(None)
    for r in range(a.rounds):
        order = scens[r % len(scens):] + scens[: r % len(scens)]
        for s in order:
            if s.name in dead:
                continue
            try:
                res = s.run(ctx)
            except BenchError as e:
                broken.append(f"{s.name}, round {r + 1}: {e}")
                print(f"    r{r + 1} {s.name:<10} BROKEN: {e}", flush=True)
                dead.add(s.name)  # a broken run breaks again: save the time
                settle_disk(None if ctx.keep else ctx.last_dir)
                continue
            runs[s.name].append(res)
            print(describe_run(ctx, r, s.name, res), flush=True)
    bg2 = background_load(1.0)
    results["background_after"] = bg2
    results["runs"] = runs
    summ = summarize(ctx, runs)
    results["summary"] = summ
    # Loaded: busy before or after, or others kept the CPUs busy during the runs the
    # targets compare.
    loaded = max(bg["busy_pct"], bg2["busy_pct"]) > BUSY_WARN_PCT or any(
        summ[k]["others_pct_median"] > BUSY_WARN_PCT
        for k in ("cat", "tend", "tend-ts") if k in summ)
    results["loaded"] = loaded
    print(f"    load: machine CPU busy {bg2['busy_pct']:.0f}% over 1s after the runs "
          "(other work; the bench was idle)")

    print("\n    run          best    median  median vs  logger CPU per GiB     gen CPU   "
          "peak RSS  others")
    print("                MiB/s   MiB/s   baseline   total (user+sys)      per GiB   "
          "VmHWM     (median)")
    base = summ.get("cat")
    for s in scens:
        x = summ.get(s.name)
        if x is None:
            print(f"    {s.name:<10}   (no complete run)")
            continue
        vs = f"{x['median_mib_s'] / base['median_mib_s'] * 100:5.1f} %" if base else "   -   "
        cpu = (f"{x['cpu_s_per_gib']:5.2f} s ({x['user_s_per_gib']:.2f}+"
               f"{x['sys_s_per_gib']:.2f})" if s.name != "null" else "-")
        peak = f"{x['peak_kib']} KiB" if x["peak_kib"] else "-"
        print(f"    {s.name:<10} {x['best_mib_s']:7.1f} {x['median_mib_s']:7.1f}  "
              f"{vs:>9}   {cpu:<20} {x['gen_cpu_s_per_gib']:5.2f} s   {peak:<9} "
              f"{x['others_pct_median']:4.0f}%")
    if "tend-gz" in runs and runs["tend-gz"]:
        g = runs["tend-gz"]
        print(f"    tend-gz: {sum(r['files']['compressed'] for r in g)} of "
              f"{sum(r['files']['rotated'] for r in g)} rotated files were gzipped when tend "
              f"exited, over all runs ({sum(r['files']['gz_tmp'] for r in g)} unfinished "
              ".gz.tmp left behind)")
    print("    CPU: tend's own threads only (utime+stime of the zombie tend); for the other "
          "loggers their wait4 rusage. gen: the generator's CPU.")
    verdicts = {}
    targets = []
    for s in scens:
        if s.target is None:
            continue
        x = summ.get(s.name)
        if x is None or base is None:
            continue
        ratio = x["median_mib_s"] / base["median_mib_s"]
        best = x["best_mib_s"] / base["best_mib_s"]
        ok = ratio >= s.target
        verdicts[s.name] = ok
        targets.append((ok, f"{s.name} throughput {ratio * 100:.1f}% of the baseline's "
                            f"(medians; best-of {best * 100:.1f}%) >= {s.target * 100:.0f}%"))
    results["throughput_verdicts"] = verdicts
    results["throughput_targets"] = [(ok, t) for ok, t in targets]
    print(flush=True)


def run_memory(ctx: Ctx, results: dict, broken: list[str]) -> None:
    print(f"[2] memory: tend's peak RSS (VmHWM, polled every {SAMPLE_EVERY_S * 1000:.0f} ms) "
          f"capturing one {BIG_LINE_MIB} MiB line without a newline (timestamps on, "
          "max_line 64 KiB)", flush=True)
    try:
        res = big_line(ctx)
        results["big_line"] = res
        v = res["verify"]
        print(f"    VmHWM {res['peak'].get('VmHWM')} KiB, RssAnon {res['peak'].get('RssAnon')} "
              f"KiB, threads {res['peak'].get('Threads')}; {res['wall_s']:.2f} s, tend CPU "
              f"{res['cpu_user_s'] + res['cpu_sys_s']:.2f} s; {v['pieces']} pieces in "
              f"{v['files']} files verified")
    except BenchError as e:
        broken.append(f"big line: {e}")
        print(f"    BROKEN: {e}")
    print(flush=True)


def report(results: dict, broken: list[str]) -> None:
    print("targets:")
    summ = results.get("summary", {})
    star = "*" if results.get("loaded") else " "
    for ok, text in results.get("throughput_targets", []):
        print(f"    {verdict(ok)}{star} {text}")
    if results.get("loaded") and results.get("throughput_targets"):
        print("          * other work used the machine during the runs: compare with the "
              "baseline measured alongside, not with earlier results")
    gib = [summ[k]["peak_kib"] for k in ("tend", "tend-ts", "tend-gz") if k in summ]
    big = results.get("big_line", {}).get("peak", {}).get("VmHWM")
    if big:
        ok = big < RSS_BOUND_KIB and (not gib or big <= max(gib) + RSS_SLACK_KIB)
        results["memory_verdict"] = ok
        ref = f" ({max(gib)} KiB)" if gib else ""
        print(f"    {verdict(ok)}  peak RSS with a {BIG_LINE_MIB} MiB line {big} KiB < "
              f"{RSS_BOUND_KIB} KiB and within {RSS_SLACK_KIB} KiB of the 100-byte-line "
              f"runs{ref}")
    elif gib:
        print(f"    peak RSS of the throughput runs: {max(gib)} KiB (no big-line run)")
    results["broken"] = broken
    if broken:
        print("\nBROKEN RUN / VERIFICATION FAILED:")
        for b in broken:
            print(f"    {b}")
    else:
        print("    every run's logs verified: all lines present once, in order")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; the processes the bench started were stopped", file=sys.stderr)
        sys.exit(130)
