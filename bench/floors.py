#!/usr/bin/env python3
"""tend against its floors, each measured in the same run (issue 16).

    python3 bench/floors.py                       # build (release) and run everything
    python3 bench/floors.py --tend T --fixture F  # use existing binaries, no build
    python3 bench/floors.py --only mix,pss        # some of: mix, pss, logs, restart

Four figures, each printed with the baseline taken alongside it and the ratio:

1. mix: two streams into separate files. A C generator (compiled here with gcc) writes
   numbered 100-byte lines to stdout and to stderr in 4 KiB writes, alternating between
   the two. tend (timestamps and compression off, 10 MiB rotation, nothing deleted)
   against `gen 1>|cat >out 2>|cat >err`. Every line of both streams is verified. Goal:
   throughput >= 1.0x of the two cats, 0 lines lost.
2. pss: the proportional set size of 1 and of 100 supervised services, summed over
   /proc/PID/smaps_rollup of the supervisor's own processes (not the program, which is
   `sleep`). tend: one `tend run` per service with the default [logs]. Baselines, when
   installed: runit (runsvdir + runsv + svlogd per service) and s6 (s6-svscan +
   s6-supervise x2 + s6-log per service). Goals: <= 1.5 MiB for 1, <= 30 MiB for 100.
3. logs: one stream with the default [logs] (timestamps, 10 MiB rotation, gzip) and
   keep = 0 so every line stays and can be counted: 256 MiB from the C generator, timed
   until `tend run` has exited, against `gen | cat > file`; the same with compress = false
   for reference. Goal: >= 0.9x of the pipe.
4. restart: exit -> next start of `tend-fixture --exit 1 --stamp F` under tend
   (policy = always, delay = 0s) against a C respawn loop (posix_spawn, waitpid, again),
   both stamped by the fixture, alternating in rounds of 100 (2000 restarts each). Goal: p50 and p99 within 1.2x of
   the loop's. A second loop that forks and sets what tend sets (process group,
   PDEATHSIG) is shown for reference.

Only the standard library and gcc are needed; the helpers of logs.py and core.py are
reused. Before each measurement the machine's load is sampled (the bench itself idle) and
printed; numbers taken with the machine busy are marked with `*`. Exit status: 0 when
every run completed and verified, 1 when a run broke or lost a line, 2 on bad arguments or
a failed build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import core as cb  # noqa: E402
import logs as lb  # noqa: E402

BROKEN = (lb.BenchError, cb.BenchError)
BUSY_WARN_PCT = 10.0
LINE = lb.LINE

GOAL_MIX = 1.0
# Restarts at the start of each restart round shown apart (see phase_restart).
WARM_UP = 2
GOAL_PSS_1_KIB = 1.5 * 1024
GOAL_PSS_100_KIB = 30 * 1024
GOAL_LOGS = 0.9
GOAL_RESTART = 1.2

GEN_C = r"""
/* gen one|mix N CHUNK: N numbered 100-byte lines (as tend-fixture --generate) to stdout
   ("one"), or N to stdout and N to stderr ("mix"), in writes of CHUNK bytes; in "mix" the
   writes alternate between the two streams. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
typedef struct { char *buf; size_t len; unsigned long long next, n; char num[12]; int fd; } S;
static char tpl[100];
static void inc(char *d) {
    for (int i = 11; i >= 0; i--) { if (d[i] == '9') d[i] = '0'; else { d[i]++; return; } }
}
static void fill(S *s, size_t want) {
    while (s->len < want && s->next < s->n) {
        char *p = s->buf + s->len;
        memcpy(p, tpl, 100); memcpy(p, s->num, 12);
        s->len += 100; s->next++; inc(s->num);
    }
}
static int step(S *s, size_t chunk) {
    fill(s, chunk);
    size_t k = s->len < chunk ? s->len : chunk;
    if (!k) return 0;
    for (size_t off = 0; off < k;) {
        ssize_t w = write(s->fd, s->buf + off, k - off);
        if (w < 0) { if (errno == EINTR) continue; exit(3); }
        off += (size_t)w;
    }
    memmove(s->buf, s->buf + k, s->len - k); s->len -= k;
    return 1;
}
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int mix = strcmp(argv[1], "mix") == 0;
    unsigned long long n = strtoull(argv[2], 0, 10);
    size_t chunk = strtoul(argv[3], 0, 10);
    memset(tpl, ' ', 100); tpl[98] = 'x'; tpl[99] = '\n';
    S s[2];
    for (int i = 0; i < 2; i++) {
        s[i].buf = malloc(chunk + 100); s[i].len = 0; s[i].next = 0; s[i].n = n;
        memset(s[i].num, '0', 12); s[i].fd = 1 + i;
    }
    if (mix) { int a = 1, b = 1; while (a || b) { if (a) a = step(&s[0], chunk); if (b) b = step(&s[1], chunk); } }
    else while (step(&s[0], chunk)) {}
    return 0;
}
"""

LOOP_C = r"""
/* loop spawn|fork N PROG ARGS...: start PROG, wait for it, start it again, N times.
   spawn: posix_spawn (vfork + exec), the least a supervisor can do.
   fork: fork, new process group, PDEATHSIG and a check of the parent, exec: what tend's
   child does before exec. stdin is /dev/null, stdout and stderr are inherited. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int use_fork = strcmp(argv[1], "fork") == 0;
    int n = atoi(argv[2]);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    pid_t me = getpid();
    for (int i = 0; i < n; i++) {
        pid_t p;
        if (use_fork) {
            p = fork();
            if (p < 0) return 3;
            if (p == 0) {
                dup2(devnull, 0); setpgid(0, 0);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != me) _exit(1);
                execve(argv[3], argv + 3, environ); _exit(127);
            }
        } else if (posix_spawn(&p, argv[3], &fa, NULL, argv + 3, environ)) return 3;
        int st;
        while (waitpid(p, &st, 0) < 0) if (errno != EINTR) return 4;
    }
    return 0;
}
"""

LINES_C = r"""
/* lines wait|poll: cat that writes up to the last newline of each read and carries the
   rest to the next one, which is what a logger must do to rotate on a line boundary.
   wait: blocking reads, as cat. poll: the read end non-blocking and poll() while the pipe
   is empty, which is how tend reads on Unix so that an exit can tell, without waiting for
   the reader, that all the program wrote was read (supervisor::Drained). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
static char buf[2 * 65536];
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int use_poll = strcmp(argv[1], "poll") == 0;
    if (use_poll) fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    size_t carry = 0;
    for (;;) {
        ssize_t n = read(0, buf + carry, 65536);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN && use_poll) {
            struct pollfd p = {0, POLLIN, 0};
            poll(&p, 1, -1);
            continue;
        }
        if (n < 0) return 1;
        size_t have = carry + (size_t)n, cut = have;
        if (n > 0) {
            while (cut > 0 && buf[cut - 1] != '\n') cut--;
            /* a line longer than the buffer is written as it is */
            if (cut == 0 && have > 65536) cut = have;
        }
        for (size_t off = 0; off < cut;) {
            ssize_t w = write(1, buf + off, cut - off);
            if (w < 0) { if (errno == EINTR) continue; return 1; }
            off += (size_t)w;
        }
        if (n == 0) return 0;
        memmove(buf, buf + cut, have - cut);
        carry = have - cut;
    }
}
"""


def linkage(path: Path) -> str:
    """How the binary is linked: the memory figures differ (a static binary shares no libc
    pages; musl's allocator has no per-thread arenas)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if b"ld-linux" in head or b"ld-musl" in head:
        return "dynamically linked" + (", glibc" if b"ld-linux" in head else ", musl")
    return "statically linked"


def compile_c(work: Path, name: str, source: str) -> Path:
    src = work / f"{name}.c"
    exe = work / "bin" / name
    src.write_text(source)
    r = subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"error: gcc failed for {name}:\n{r.stderr}", file=sys.stderr)
        sys.exit(2)
    return exe


def load_line(tag: str) -> tuple[dict, bool]:
    """Samples the machine's CPU use for 1 s while the bench is idle, prints it with the load
    average and returns (sample, busy)."""
    bg = lb.background_load(1.0)
    with open("/proc/loadavg") as f:
        la = f.read().split()[:3]
    busy = bg["busy_pct"] > BUSY_WARN_PCT
    psi = bg["psi_cpu_some_avg10"]
    print(f"    load {tag}: machine CPU busy {bg['busy_pct']:.0f}% over 1 s, loadavg "
          f"{' '.join(la)}" + (f", cpu pressure avg10 {psi:.1f}%" if psi is not None else "")
          + ("  <- BUSY: compare with the baseline only" if busy else ""), flush=True)
    bg["loadavg"] = la
    return bg, busy


def ratio_line(name: str, tend_v: float, base_v: float, goal: float, higher_better: bool,
               unit: str, star: bool) -> tuple[bool, str]:
    r = tend_v / base_v if base_v else float("nan")
    ok = r >= goal if higher_better else r <= goal
    cmp = ">=" if higher_better else "<="
    return ok, (f"{'PASS' if ok else 'MISS'}{'*' if star else ' '} {name}: tend {tend_v:.2f} "
                f"{unit} vs {base_v:.2f} {unit} = {r:.2f}x (goal {cmp} {goal}x)")


# --------------------------------------------------------------------------------------
# Runs of a log writer


def stream_files(logdir: Path, name: str, stream: str) -> tuple[list[Path], dict]:
    """lb.tend_files for either stream (`out` or `err`)."""
    if stream == "out":
        return lb.tend_files(logdir, name)
    # Reuse the reader of the stdout family on a view that renames err to out.
    view = logdir.parent / f"{logdir.name}-errview"
    view.mkdir(exist_ok=True)
    for e in os.listdir(logdir):
        if e.startswith(f"{name}.err."):
            os.symlink(logdir / e, view / e.replace(f"{name}.err.", f"{name}.out.", 1))
    files, info = lb.tend_files(view, name)
    return [Path(os.path.realpath(p)) for p in files], info


def run_tend(ctx: lb.Ctx, tag: str, command: list[str], logs: str) -> tuple[dict, Path]:
    """One `tend run` until it exits by itself; like lb.run_tend, but stderr of the program
    may hold output (the mix writes to it)."""
    d = ctx.fresh_dir(tag)
    cfg = d / "svc.toml"
    cmd = ", ".join(lb.toml_str(c) for c in command)
    cfg.write_text(f"""name = "gen"
command = [{cmd}]

[restart]
policy = "never"

[stop]
timeout = "5s"

[logs]
dir = {lb.toml_str(d / "logs")}
{logs}""")
    err_path = d / "tend.stderr"
    fd_in = os.open(os.devnull, os.O_RDONLY)
    fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    peak = lb.Peak()
    pid = None
    try:
        load = lb.LoadMeter()
        w0 = time.time()
        t0 = time.monotonic()
        pid = lb.spawn([str(ctx.tend), "run", str(cfg)], fd_in, fd_err, fd_err)
        t1 = lb.wait_exit(pid, t0 + ctx.deadline_s, peak)
        w1 = time.time()
        f = lb.read_stat(pid)
        code, _ = lb.reap(pid)
        pid = None
    finally:
        os.close(fd_in)
        os.close(fd_err)
        if pid is not None:
            lb.stop(pid)
        killed = lb.leftovers(str(ctx.work))
    if killed:
        raise lb.BenchError(f"processes outlived tend: {killed}")
    if code != 0:
        raise lb.BenchError(f"tend exited with code {code}\n{lb.tail(lb.read_text(err_path))}")
    hz = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) / hz for x in f[11:15])
    others, _ = load.others_pct(utime + stime + cutime + cstime)
    return {
        "wall_s": t1 - t0, "window": (w0, w1), "cpu_s": utime + stime,
        "cpu_user_s": utime, "cpu_sys_s": stime, "gen_cpu_s": cutime + cstime,
        "peak_kib": peak.max.get("VmHWM"), "others_pct": others,
        "events": [ln for ln in lb.read_text(err_path).splitlines() if "logs:" in ln],
    }, d


def run_cats(ctx: lb.Ctx, tag: str, gen: list[str], streams: int,
             cat: list[str] | None = None) -> tuple[dict, Path]:
    """`gen | cat > out.log` (and `2>| cat > err.log`): timed from the spawn of the
    generator to the exit of the last cat. `cat` replaces cat (a command line)."""
    d = ctx.fresh_dir(tag)
    cat = cat or [shutil.which("cat") or "/bin/cat"]
    fds = []
    pids: list[int] = []
    try:
        fd_in = os.open(os.devnull, os.O_RDONLY)
        fds.append(fd_in)
        outs = []
        for name in ("out.log", "err.log")[:streams]:
            fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fds.append(fd)
            outs.append(fd)
        load = lb.LoadMeter()
        t0 = time.monotonic()
        ends = []
        for _ in range(streams):
            r, w = os.pipe()
            ends.append((r, w))
        err_w = ends[1][1] if streams == 2 else fds[0]
        gen_pid = lb.spawn(gen, fd_in, ends[0][1], err_w)
        pids.append(gen_pid)
        cats = []
        for (r, _), out in zip(ends, outs):
            cats.append(lb.spawn(cat, r, out, None))
        pids += cats
        for r, w in ends:
            os.close(r)
            os.close(w)
        t1 = 0.0
        for c in cats:
            t1 = max(t1, lb.wait_exit(c, t0 + ctx.deadline_s, None))
        lb.wait_exit(gen_pid, time.monotonic() + 10, None)
        cpu = 0.0
        gen_cpu = 0.0
        codes = []
        for p in pids:
            code, ru = lb.reap(p)
            codes.append(code)
            if p == gen_pid:
                gen_cpu = ru.ru_utime + ru.ru_stime
            else:
                cpu += ru.ru_utime + ru.ru_stime
        pids = []
    finally:
        for fd in fds:
            os.close(fd)
        for p in pids:
            lb.stop(p, 2.0)
    if any(codes):
        raise lb.BenchError(f"exit codes of the pipeline: {codes}")
    others, _ = load.others_pct(cpu + gen_cpu)
    return {"wall_s": t1 - t0, "cpu_s": cpu, "gen_cpu_s": gen_cpu, "others_pct": others}, d


def mib_s(total_bytes: int, wall: float) -> float:
    return total_bytes / (1 << 20) / wall


def describe(r: int, name: str, res: dict, total: int) -> str:
    extra = ""
    if "files" in res:
        extra = f"  {res['files']}"
    if res.get("events"):
        extra += f"  {len(res['events'])} `logs:` event line(s), first: {res['events'][0][-90:]}"
    return (f"    r{r + 1} {name:<12} {res['wall_s']:6.3f} s {mib_s(total, res['wall_s']):7.1f} MiB/s"
            f"  logger CPU {res['cpu_s']:.2f} s  gen CPU {res['gen_cpu_s']:.2f} s"
            f"  others {res['others_pct']:.0f}%{extra}")


def interleave(rounds: int, runs: list[tuple[str, object]], total: int, out: dict,
               broken: list[str]) -> dict[str, list[dict]]:
    res: dict[str, list[dict]] = {name: [] for name, _ in runs}
    dead = set()
    for r in range(rounds):
        order = runs[r % len(runs):] + runs[: r % len(runs)]
        for name, fn in order:
            if name in dead:
                continue
            try:
                x = fn()
            except BROKEN as e:
                broken.append(f"{name}, round {r + 1}: {e}")
                print(f"    r{r + 1} {name:<12} BROKEN: {e}", flush=True)
                dead.add(name)
                continue
            res[name].append(x)
            print(describe(r, name, x, total), flush=True)
    out["runs"] = res
    return res


def table(res: dict[str, list[dict]], base: str, total: int) -> dict[str, dict]:
    summ = {}
    b = res.get(base) or []
    bmed = statistics.median(mib_s(total, x["wall_s"]) for x in b) if b else float("nan")
    bbest = max((mib_s(total, x["wall_s"]) for x in b), default=float("nan"))
    print(f"    {'run':<12} {'best MiB/s':>10} {'median':>8} {'vs ' + base + ' (median)':>18} "
          f"{'best-of':>8} {'logger CPU s/GiB':>17}")
    for name, xs in res.items():
        if not xs:
            print(f"    {name:<12} (no complete run)")
            continue
        t = [mib_s(total, x["wall_s"]) for x in xs]
        cpu = statistics.median(x["cpu_s"] for x in xs) / (total / (1 << 30))
        s = {"best": max(t), "median": statistics.median(t), "all": t, "cpu_s_per_gib": cpu,
             "ratio_median": statistics.median(t) / bmed, "ratio_best": max(t) / bbest}
        summ[name] = s
        print(f"    {name:<12} {s['best']:10.1f} {s['median']:8.1f} {s['ratio_median']:17.2f}x "
              f"{s['ratio_best']:7.2f}x {cpu:17.2f}")
    return summ


# --------------------------------------------------------------------------------------
# 1. two streams


PLAIN_LOGS = """max_size = "10MiB"
rotate_every = "never"
keep = 0
max_total = "0"
max_age = "0s"
timestamps = false
compress = false
"""


def phase_mix(a, ctx: lb.Ctx, gen: Path, results: dict, broken: list[str]) -> list:
    total = a.mix_size << 20
    n = total // LINE // 2
    total = n * LINE * 2
    argv = [str(gen), "mix", str(n), "4096"]
    print(f"\n[1] mix: {n:,} lines to stdout and {n:,} to stderr ({total >> 20} MiB), 4 KiB "
          f"writes alternating; {a.rounds} rounds", flush=True)
    bg, busy = load_line("before")
    out: dict = {"lines_per_stream": n, "bytes": total, "load_before": bg}

    lines = compile_c(ctx.work, "lines", LINES_C)

    def piped(tag: str, cat: list[str] | None):
        def run():
            res, d = run_cats(ctx, tag, argv, 2, cat)
            v1 = lb.verify_numbered([d / "out.log"], n, "none", (0.0, 0.0))
            v2 = lb.verify_numbered([d / "err.log"], n, "none", (0.0, 0.0))
            res["files"] = (f"verified {n:,} + {n:,} lines "
                            f"({v1['verify_s'] + v2['verify_s']:.1f} s)")
            lb.settle_disk(d)
            return res
        return run

    def tend():
        res, d = run_tend(ctx, "tend-mix", argv, PLAIN_LOGS)
        window = res.pop("window")
        try:
            vs = []
            for stream in ("out", "err"):
                files, _ = stream_files(d / "logs", "gen", stream)
                vs.append(lb.verify_numbered(files, n, "none", window))
            res["files"] = (f"verified {n:,} + {n:,} lines in {vs[0]['files']} + "
                            f"{vs[1]['files']} files: 0 lost")
        finally:
            if not ctx.keep:
                shutil.rmtree(d / "logs-errview", ignore_errors=True)
            lb.settle_disk(d)
        return res

    # For reference, not the verdict: the line-keeping cat, with blocking reads and with
    # tend's non-blocking reads and poll (bench/README.md, issue 16, session 27).
    res = interleave(a.rounds, [("cat2", piped("cat2", None)), ("tend", tend),
                                ("lines", piped("lines", [str(lines), "wait"])),
                                ("lines-poll", piped("lines-poll", [str(lines), "poll"]))],
                     total, out, broken)
    bg2, busy2 = load_line("after")
    out["load_after"] = bg2
    summ = table(res, "cat2", total)
    out["summary"] = summ
    results["mix"] = out
    if "tend" in summ and "cat2" in summ:
        ok, text = ratio_line("two streams (medians)", summ["tend"]["median"],
                              summ["cat2"]["median"], GOAL_MIX, True, "MiB/s", busy or busy2)
        return [(ok, text)]
    return []


# --------------------------------------------------------------------------------------
# 2. PSS


def children_of() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            f = lb.read_stat(int(e))
        except (OSError, ValueError):
            continue
        kids.setdefault(int(f[1]), []).append(int(e))
    return kids


def descendants(root: int) -> list[int]:
    kids = children_of()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def smaps(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if v.strip().endswith("kB"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def measure_set(pids: list[int]) -> dict:
    tot = {"Pss": 0, "Pss_Anon": 0, "Pss_File": 0, "Rss": 0, "procs": 0, "threads": 0}
    per_comm: dict[str, int] = {}
    for p in pids:
        s = smaps(p)
        if not s:
            continue
        tot["procs"] += 1
        tot["threads"] += threads(p)
        for k in ("Pss", "Pss_Anon", "Pss_File", "Rss"):
            tot[k] += s.get(k, 0)
        c = comm(p)
        per_comm[c] = per_comm.get(c, 0) + 1
    tot["comms"] = per_comm
    return tot


class Fleet:
    """N services under one kind of supervisor, started in a session of their own so that
    everything can be found (descendants) and stopped."""

    def __init__(self, kind: str, root: Path, n: int, tend: Path, sleep: str):
        self.kind, self.root, self.n = kind, root, n
        self.procs: list[subprocess.Popen] = []
        root.mkdir()
        if kind == "tend":
            for i in range(n):
                d = root / f"s{i:03d}"
                d.mkdir()
                (d / "svc.toml").write_text(
                    f'name = "s{i:03d}"\ncommand = [{lb.toml_str(sleep)}, "1000000"]\n\n'
                    f'[logs]\ndir = {lb.toml_str(d / "logs")}\n')
            for i in range(n):
                d = root / f"s{i:03d}"
                with open(d / "tend.stderr", "wb") as err:
                    self.procs.append(subprocess.Popen(
                        [str(tend), "run", str(d / "svc.toml")], cwd=d,
                        stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                        start_new_session=True))
        elif kind in ("runit", "s6"):
            # The same tree for both: a run script and a logger per service under one scanner.
            scanner, logger, scan = {
                "runit": ("runsvdir", "svlogd -tt main", root / "sv"),
                "s6": ("s6-svscan", "s6-log T ./main", root / "scan"),
            }[kind]
            scan.mkdir()
            for i in range(n):
                d = scan / f"s{i:03d}"
                (d / "log" / "main").mkdir(parents=True)
                (d / "run").write_text(f"#!/bin/sh\nexec {sleep} 1000000\n")
                (d / "log" / "run").write_text(f"#!/bin/sh\nexec {logger}\n")
                for f in (d / "run", d / "log" / "run"):
                    f.chmod(0o755)
            self.procs.append(subprocess.Popen(
                [scanner, str(scan)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))

    def all_pids(self) -> list[int]:
        kids = children_of()
        out, todo = [], [p.pid for p in self.procs]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += kids.get(p, [])
        return out

    def supervisor_pids(self) -> list[int]:
        """Every process of the fleet except the programs."""
        return [p for p in self.all_pids() if comm(p) != "sleep"]

    def ready(self) -> bool:
        pids = self.all_pids()
        comms = [comm(p) for p in pids]
        if comms.count("sleep") < self.n:
            return False
        if self.kind == "runit":
            return comms.count("svlogd") >= self.n
        if self.kind == "s6":
            return comms.count("s6-log") >= self.n
        return True

    def stop(self) -> None:
        pids = self.all_pids()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 10
        while time.monotonic() < end and any(p.poll() is None for p in self.procs):
            time.sleep(0.05)
        for p in pids:  # whatever did not go (runsvdir and s6-svscan leave no orphans)
            try:
                if comm(p) != "?":
                    os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def phase_pss(a, ctx: lb.Ctx, results: dict, broken: list[str]) -> list:
    sleep = shutil.which("sleep") or "/bin/sleep"
    kinds = ["tend"] + [k for k, exe in (("runit", "runsvdir"), ("s6", "s6-svscan"))
                        if shutil.which(exe)]
    missing = {"runit", "s6"} - set(kinds)
    print(f"\n[2] pss: sum of Pss from /proc/PID/smaps_rollup of the supervisors' own "
          f"processes (the programs, `sleep`, excluded); {a.settle:g} s after all started",
          flush=True)
    if missing:
        print(f"    note: {', '.join(sorted(missing))} not installed (apt-get install runit s6):"
              " no same-run peer figure")
    load_line("before")
    out: dict = {}
    verdicts = []
    for n in (1, a.services):
        for kind in kinds:
            f = Fleet(kind, ctx.work / f"pss-{kind}-{n}", n, ctx.tend, sleep)
            try:
                if not cb.wait_until(30 + n * 0.2, f.ready, every=0.1):
                    raise lb.BenchError(f"{kind}: {n} services not up within the deadline")
                time.sleep(a.settle)
                m = measure_set(f.supervisor_pids())
            except BROKEN as e:
                broken.append(f"pss {kind} x{n}: {e}")
                print(f"    {kind:<6} x{n:<4} BROKEN: {e}")
                continue
            finally:
                f.stop()
            out[f"{kind}_{n}"] = m
            procs = ", ".join(f"{c} x{k}" for c, k in sorted(m["comms"].items()))
            print(f"    {kind:<6} x{n:<4} Pss {m['Pss']:7d} KiB = {m['Pss'] / 1024:6.2f} MiB "
                  f"(anon {m['Pss_Anon']}, file {m['Pss_File']}; Rss {m['Rss']} KiB; "
                  f"{m['procs']} processes, {m['threads']} threads: {procs})", flush=True)
        t = out.get(f"tend_{n}")
        if t:
            goal = GOAL_PSS_1_KIB if n == 1 else GOAL_PSS_100_KIB * n / 100
            peers = ", ".join(f"{k} {out[f'{k}_{n}']['Pss'] / 1024:.2f} MiB = "
                              f"{t['Pss'] / out[f'{k}_{n}']['Pss']:.2f}x"
                              for k in kinds[1:] if f"{k}_{n}" in out)
            ok = t["Pss"] <= goal
            verdicts.append((ok, f"{'PASS' if ok else 'MISS'}  PSS of {n} service(s): tend "
                                 f"{t['Pss'] / 1024:.2f} MiB (goal <= {goal / 1024:.1f} MiB)"
                                 + (f"; same run: {peers}" if peers else "")))
    results["pss"] = out
    return verdicts


# --------------------------------------------------------------------------------------
# 3. the default [logs]


def phase_logs(a, ctx: lb.Ctx, gen: Path, results: dict, broken: list[str]) -> list:
    n = (a.logs_size << 20) // LINE
    total = n * LINE
    argv = [str(gen), "one", str(n), "65536"]
    print(f"\n[3] logs: {n:,} lines ({total >> 20} MiB) in 64 KiB writes, default [logs] "
          f"with keep = 0, timed until tend has exited; {a.rounds} rounds", flush=True)
    bg, busy = load_line("before")
    out: dict = {"lines": n, "load_before": bg}

    def cat():
        res, d = run_cats(ctx, "cat", argv, 1)
        v = lb.verify_numbered([d / "out.log"], n, "none", (0.0, 0.0))
        res["files"] = f"verified ({v['verify_s']:.1f} s)"
        lb.settle_disk(d)
        return res

    def tend_with(logs: str, tag: str):
        def run():
            res, d = run_tend(ctx, tag, argv, logs)
            window = res.pop("window")
            try:
                files, info = lb.tend_files(d / "logs", "gen")
                disk = sum(p.stat().st_size for p in (d / "logs").iterdir()
                           if p.name.startswith("gen.out"))
                if 'format = "json"' in logs:
                    v = lb.verify_json(files, n)
                else:
                    v = lb.verify_numbered(files, n, "tend", window)
                res["gz"] = info
                res["files"] = (f"{info['compressed']}/{info['rotated']} rotated gzipped at "
                                f"exit, {info['gz_tmp']} .gz.tmp, {disk >> 20} MiB on disk; "
                                f"{v['lines']:,} lines verified")
            finally:
                lb.settle_disk(d)
            return res
        return run

    runs = [("cat", cat), ("tend-default", tend_with("keep = 0\n", "tend-default")),
            ("tend-nogz", tend_with("keep = 0\ncompress = false\n", "tend-nogz")),
            # Issue 15: the JSON format next to the text format (both without compression).
            ("tend-json", tend_with('keep = 0\ncompress = false\nformat = "json"\n',
                                    "tend-json"))]
    res = interleave(a.rounds, runs, total, out, broken)
    _, busy2 = load_line("after")
    summ = table(res, "cat", total)
    out["summary"] = summ
    results["logs"] = out
    lines = []
    # The goal (issue 16): compression is never the bottleneck, so the default [logs]
    # against its floor, the same run without compression. Against `cat` for context:
    # timestamps alone add 30 % to the bytes written.
    if "tend-default" in summ and "tend-nogz" in summ:
        lines.append(ratio_line("default [logs] vs the same without compression (medians)",
                                summ["tend-default"]["median"], summ["tend-nogz"]["median"],
                                GOAL_LOGS, True, "MiB/s", busy or busy2))
    if "tend-default" in summ and "cat" in summ:
        _, text = ratio_line("default [logs] vs cat (medians)", summ["tend-default"]["median"],
                             summ["cat"]["median"], GOAL_LOGS, True, "MiB/s", busy or busy2)
        lines.append((True, "info " + text[5:]))
    return lines


# --------------------------------------------------------------------------------------
# 4. restart


def loop_latency(loop: Path, mode: str, fixture: Path, work: Path, n: int, tag: str) -> list[float]:
    d = work / f"loop-{mode}-{tag}"
    d.mkdir()
    stamps = d / "stamps"
    r = subprocess.run([str(loop), mode, str(n + 1), str(fixture), "--exit", "1", "--stamp",
                        str(stamps)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    if r.returncode != 0:
        raise lb.BenchError(f"the {mode} loop exited with {r.returncode}")
    g = cb.gaps_ms(cb.read_stamps(stamps))[:n]
    if len(g) < n:
        raise lb.BenchError(f"the {mode} loop: {len(g)} gaps for {n} restarts")
    return g


def phase_restart(a, ctx: lb.Ctx, loop: Path, results: dict, broken: list[str]) -> list:
    # Short rounds, many of them, each contender's turn moving through the order: this
    # machine's speed drifts over seconds (a VM with neighbours), and a p99 needs enough
    # samples (of 200 it is the second-slowest restart; of 2000, the 20th).
    rounds = max(4, -(-a.restarts // 100))
    per = -(-a.restarts // rounds)
    print(f"\n[4] restart: exit -> next start, {per * rounds} restarts each, {rounds} rounds of "
          f"{per} alternating tend, the posix_spawn loop and the fork loop", flush=True)
    bg, busy = load_line("before")
    raw: dict[str, list[float]] = {"tend": [], "loop-spawn": [], "loop-fork": []}
    # The first restarts of each round, apart: one-time costs (tend's first crash record,
    # its readers' first hand-over; the bench itself just started the contender) that a
    # crash loop pays once. They stay in the verdict; this shows how much of the p99 they are.
    first: dict[str, list[float]] = {k: [] for k in raw}
    steady: dict[str, list[float]] = {k: [] for k in raw}
    runs = {
        "tend": lambda r: cb.latency_tend(ctx.tend, ctx.fixture, ctx.work, per, 30.0, f"f{r}")[0],
        "loop-spawn": lambda r: loop_latency(loop, "spawn", ctx.fixture, ctx.work, per, str(r)),
        "loop-fork": lambda r: loop_latency(loop, "fork", ctx.fixture, ctx.work, per, str(r)),
    }
    order = list(runs)
    try:
        for r in range(rounds):
            for k in order[r % 3:] + order[:r % 3]:
                gaps = runs[k](r)
                raw[k] += gaps
                first[k] += gaps[:WARM_UP]
                steady[k] += gaps[WARM_UP:]
    except BROKEN as e:
        broken.append(f"restart: {e}")
        print(f"    BROKEN: {e}")
        return []
    _, busy2 = load_line("after")
    s = {k: cb.summary(v) for k, v in raw.items()}
    st = {k: cb.summary(v) for k, v in steady.items()}
    results["restart"] = {"summary": s, "steady": st, "samples_ms": raw,
                          f"first_{WARM_UP}_of_each_round_ms": first}
    for k in raw:
        print(f"    {k:<11} {cb.fmt_ms(s[k])}")
    print(f"    without the first {WARM_UP} restarts of each round (reference, not the verdict):")
    for k in raw:
        print(f"    {k:<11} {cb.fmt_ms(st[k])}; the first {WARM_UP}: median "
              f"{statistics.median(first[k]):.3f} ms")
    out = []
    for p in ("median", "p99"):
        ok, text = ratio_line(f"restart {p} vs the posix_spawn loop", s["tend"][p],
                              s["loop-spawn"][p], GOAL_RESTART, False, "ms", busy or busy2)
        out.append((ok, text))
    return out


# --------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tend", type=Path, help="tend binary (skips the build)")
    ap.add_argument("--fixture", type=Path, help="tend-fixture binary (skips the build)")
    ap.add_argument("--target-dir", type=Path, help="CARGO_TARGET_DIR for the build")
    ap.add_argument("--only", default="mix,pss,logs,restart",
                    help="comma-separated: mix, pss, logs, restart (all)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of mix and logs (3)")
    ap.add_argument("--mix-size", type=int, default=512, help="MiB of the mix, both streams (512)")
    ap.add_argument("--logs-size", type=int, default=256, help="MiB of the logs run (256)")
    ap.add_argument("--services", type=int, default=100, help="the large fleet of pss (100)")
    ap.add_argument("--settle", type=float, default=2.0, help="pss: wait after start-up (2 s)")
    ap.add_argument("--restarts", type=int, default=2000,
                    help="restarts per contender, in rounds of 100 (2000)")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="temp dir (/var/tmp)")
    ap.add_argument("--json", type=Path, help="also write every number here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    if sys.platform != "linux" or only - {"mix", "pss", "logs", "restart"} or a.rounds < 1:
        print("error: Linux only; --only takes mix, pss, logs, restart", file=sys.stderr)
        return 2
    if (a.tend is None) != (a.fixture is None):
        print("error: pass both --tend and --fixture, or neither", file=sys.stderr)
        return 2
    if not shutil.which("gcc"):
        print("error: gcc is needed for the generator and the respawn loop", file=sys.stderr)
        return 2
    tend, fixture = (a.tend, a.fixture) if a.tend else lb.build(a.target_dir)
    tend, fixture = tend.resolve(), fixture.resolve()

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="tend-floors-", dir=a.dir)).resolve()
    (work / "bin").mkdir()
    link = work / "bin" / "tend-fixture"
    link.symlink_to(fixture)
    gen = compile_c(work, "gen", GEN_C)
    loop = compile_c(work, "loop", LOOP_C)
    ctx = lb.Ctx(tend=tend, fixture=link, work=work, n=0, gen_argv=[],
                 deadline_s=120 + max(a.mix_size, a.logs_size) * 0.25, keep=a.keep)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "tend": str(tend),
                     "revision": lb.revision(), "kernel": platform.release(),
                     "cpus": os.cpu_count(), "filesystem": lb.filesystem(work)}
    results["linkage"] = linkage(tend)
    print(f"tend:    {tend} ({results['linkage']})\nfixture: {fixture}\n"
          f"workdir: {work} on {results['filesystem']}\n"
          f"source:  {results['revision']}\nhost:    Linux {platform.release()}, "
          f"{os.cpu_count()} CPUs")
    broken: list[str] = []
    verdicts: list = []
    try:
        if "mix" in only:
            verdicts += phase_mix(a, ctx, gen, results, broken)
        if "pss" in only:
            verdicts += phase_pss(a, ctx, results, broken)
        if "logs" in only:
            verdicts += phase_logs(a, ctx, gen, results, broken)
        if "restart" in only:
            verdicts += phase_restart(a, ctx, loop, results, broken)
        print("\ngoals (* = the machine was busy: only the same-run ratio means something):")
        for _, text in verdicts:
            print(f"    {text}")
        results["verdicts"] = verdicts
        results["broken"] = broken
        if broken:
            print("\nBROKEN RUN / VERIFICATION FAILED:")
            for b in broken:
                print(f"    {b}")
        if a.json:
            a.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        return 1 if broken else 0
    finally:
        killed = lb.leftovers(str(work))
        if killed:
            print(f"killed leftover processes: {killed}", file=sys.stderr)
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; the processes the bench started were stopped", file=sys.stderr)
        sys.exit(130)
