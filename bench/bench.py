#!/usr/bin/env python3
"""Measures portrange against the kernel's own ip_local_port_range selftest
and against vmtest and virtme-ng, then writes docs/benchmarks.md and
docs/benchmarks.png. bench/run builds and finds everything and calls this;
see `bench/run --help`."""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# The kernels of the VM rows, in table order. minimal-peers is the minimal
# kernel plus what vmtest and virtme-ng need to boot it
# (build.config.portrange.minimal-peers.x86_64): the one all three runners
# boot, so the comparison with them is made there.
PEERS_KERNEL = "minimal-peers 6.12"
KERNELS = ["minimal 6.12", PEERS_KERNEL, "debian-6.12"]

# Seconds of quiet before each measured run.
SETTLE_S = 1.0

# What the kernel's selftest (not portrange: its reports are JSON) prints.
KTAP_RESULT = re.compile(r"^\s*(not ok|ok) \d+ (.*)$")
SELFTEST_TOTALS = re.compile(
    r"# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) error:(\d+)"
)
UPTIME_NOTE = re.compile(r"netns_setup: uptime ([\d.]+) s, (\d+) CPUs")


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


def timed(cmd, timeout, env=None):
    """Runs cmd; returns (wall seconds, exit code, [(t, stream, line)])."""
    lines = []
    lock = threading.Lock()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    except OSError as e:
        return 0.0, 127, [(0.0, "err", f"{cmd[0]}: {e}")]

    def pump(stream, name):
        for raw in iter(stream.readline, b""):
            t = time.monotonic() - t0
            with lock:
                lines.append((t, name, raw.decode(errors="replace").rstrip("\n")))

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True),
    ]
    for th in threads:
        th.start()
    # A blocking wait sees the exit at once; Popen.wait(timeout) polls with
    # sleeps of up to 50 ms, as much as a whole native run takes.
    expired = threading.Event()

    def kill():
        expired.set()
        os.killpg(proc.pid, 9)

    timer = threading.Timer(timeout, kill)
    timer.start()
    rc = proc.wait()
    wall = time.monotonic() - t0
    timer.cancel()
    if expired.is_set():
        lines.append((wall, "err", f"bench: killed after {timeout} s"))
        rc = -9
    for th in threads:
        th.join(timeout=5)
    lines.sort(key=lambda x: x[0])
    return wall, rc, lines


def report_of(lines):
    """The report `portrange run|vm --format json` printed on stdout, or None
    (another program's output, or a run that printed no report)."""
    text = "\n".join(l for _, s, l in lines if s == "out")
    try:
        report = json.loads(text)
    except ValueError:
        return None
    return report if isinstance(report, dict) and "results" in report else None


def count_executed(lines):
    """Cases executed (skips excluded): from portrange's JSON report; else
    the selftest's own Totals line when present, else KTAP result lines
    without '# SKIP'."""
    report = report_of(lines)
    if report is not None:
        counts = {"pass": 0, "fail": 0, "skip": 0}
        for result in report["results"]:
            counts[result["outcome"] if result["outcome"] in counts else "fail"] += 1
        return counts["pass"] + counts["fail"], counts
    for _, _, line in lines:
        m = SELFTEST_TOTALS.search(line)
        if m:
            p, f, xf, xp, sk, er = map(int, m.groups())
            return p + f + xf + xp + er, {"pass": p + xf + xp, "fail": f + er, "skip": sk}
    ex, counts = 0, {"pass": 0, "fail": 0, "skip": 0}
    for _, stream, line in lines:
        if stream != "out":
            continue
        m = KTAP_RESULT.match(line)
        if not m or line.startswith(" "):
            continue  # nested (subtest) lines are not cases
        if "# SKIP" in m.group(2):
            counts["skip"] += 1
            continue
        ex += 1
        counts["fail" if m.group(1) == "not ok" else "pass"] += 1
    return ex, counts


def breakdown(wall, lines):
    """Where a VM run's time went, in seconds, or None when the run did not
    print what is needed. QEMU start is taken as wall - vm_total (the host's
    preparation comes first); kernel start from a line whose guest uptime is
    known and whose host arrival time was recorded."""
    report = report_of(lines)
    phases = (report or {}).get("phases") or {}
    seconds = lambda key: None if phases.get(key) is None else phases[key] / 1e6
    vm = seconds("vm_micros")
    up = next(((t, m) for t, _, l in lines if (m := UPTIME_NOTE.search(l))), None)
    results = [t for t, s, l in lines if s == "out" and (report or KTAP_RESULT.match(l))]
    # Payload runs (`portrange vm -- PROGRAM`, the peers) print no QEMU
    # time: host prep is then counted in firmware+decompress (None below).
    qemu_start = None if vm is None else wall - vm
    guest = [seconds(k) for k in ("boot_micros", "probes_micros", "cases_micros")]
    if None in guest:
        guest = None
    if qemu_start is None and guest is not None:
        return None
    if guest is not None and results:
        ready, probes, cases = guest
        kernel_start = results[-1] - (ready + probes + cases)
        end = results[-1]
        return {
            "host prep": qemu_start,
            "firmware+decompress": kernel_start - qemu_start,
            "kernel init to /init ready": ready,
            "probes": probes,
            "cases": cases,
            "shutdown+exit": wall - end,
        }
    if up is not None and results:
        t_up, m = up
        kernel_start = t_up - float(m.group(1))
        return {
            "host prep": qemu_start,
            "firmware+decompress": kernel_start - (qemu_start or 0.0),
            "kernel init to /init ready": t_up - kernel_start,
            "probes": 0.0,
            "cases": results[-1] - t_up,
            "shutdown+exit": wall - results[-1],
        }
    return None


def case_costs(report):
    """Where a portrange run's cases phase went, from its JSON report:
    seconds of the cases phase and of the model/* cases (their micros
    summed: they run on every worker at once, so the sum exceeds their
    share of the phase), and the median milliseconds of one other case
    (namespace set-up on the case's path included). None without a report."""
    if not report:
        return None
    ran = [r for r in report["results"] if r["outcome"] != "skip"]
    model = [r["micros"] for r in ran if "/model/" in f"/{r['name']}"]
    other = [r["micros"] for r in ran if "/model/" not in f"/{r['name']}"]
    cases = (report.get("phases") or {}).get("cases_micros")
    return {
        "cases": None if cases is None else cases / 1e6,
        "model sum": sum(model) / 1e6,
        "other": len(other),
        "other median ms": statistics.median(other) / 1e3 if other else None,
    }


WHY = re.compile(r"Kernel panic - not syncing: .*|VFS: Unable to mount root.*|Failed to connect QGA|"
                 r"Caused by:|Qemu exited while.*|RuntimeError: .*|not found|No such file.*")


def why_failed(rc, lines):
    """The lines that say why a run executed nothing: a panic, the tool's
    own error; else the last lines."""
    picked, caused = [], False
    for _, _, l in lines:
        l = re.sub(r"^\[\s*[\d.]+\]\s*", "", l.strip())
        if caused and l:
            picked.append(l)
            caused = False
        m = WHY.search(l)
        if m and m.group(0) not in picked:
            if m.group(0) == "Caused by:":
                caused = True
            else:
                picked.append(m.group(0))
    if not picked:
        picked = [l for _, _, l in lines if l.strip()][-3:]
    return f"exit {rc}: " + "; ".join(picked)[:400]


class Row:
    def __init__(self, group, name, kernel, cmd, runs, timeout=300, note="", diag=None,
                 env=None):
        self.diag = diag  # run once, untimed, to say why cmd executed nothing
        self.env = env  # the environment cmd and diag run with (None: ours)
        self.group, self.name, self.kernel = group, name, kernel
        self.cmd, self.runs, self.timeout, self.note = cmd, runs, timeout, note
        self.walls, self.rcs, self.executed, self.counts = [], [], None, None
        self.breakdowns, self.error, self.cpus, self.loads = [], None, None, []
        self.case_costs = []  # per run: case_costs() of portrange's JSON report

    def measure(self, log):
        if self.cmd is None:
            return
        for i in range(self.runs):
            # The kernel tears a run's namespaces down after it exits, on a
            # workqueue (portrange natively leaves one per case, ~0.25 ms
            # of CPU each here); the pause keeps that work out of the next
            # run's window, for every runner alike.
            time.sleep(SETTLE_S)
            self.loads.append(loadavg())
            wall, rc, lines = timed(self.cmd, self.timeout, self.env)
            log.write(f"\n=== {self.group} | {self.name} | {self.kernel} | run {i + 1} | "
                      f"rc {rc} | {wall:.3f} s | load {self.loads[-1]}\n$ {shlex.join(self.cmd)}\n")
            for t, s, l in lines:
                log.write(f"{t:8.3f} {s} {l}\n")
            log.flush()
            ex, counts = count_executed(lines)
            if ex == 0:
                self.error = why_failed(rc, lines)
                if self.diag:
                    _, drc, dlines = timed(self.diag, self.timeout, self.env)
                    log.write(f"--- diagnosis run: {shlex.join(self.diag)}\n")
                    for t, st, l in dlines:
                        log.write(f"{t:8.3f} {st} {l}\n")
                    self.error = why_failed(drc, dlines)
                print(f"  {self.name} [{self.kernel}]: no case executed ({self.error})", flush=True)
                return
            self.walls.append(wall)
            self.rcs.append(rc)
            self.executed, self.counts = ex, counts
            b = breakdown(wall, lines)
            if b:
                self.breakdowns.append(b)
            if (c := case_costs(report_of(lines))):
                self.case_costs.append(c)
            for _, _, l in lines:
                if (m := UPTIME_NOTE.search(l)):
                    self.cpus = int(m.group(2))
            print(f"  {self.name} [{self.kernel}] run {i + 1}: {wall:.2f} s, "
                  f"{ex} executed, exit {rc}, load {self.loads[-1]}", flush=True)

    def cost_median(self, key):
        values = [c[key] for c in self.case_costs if c[key] is not None]
        return statistics.median(values) if values else None

    @property
    def median(self):
        return statistics.median(self.walls) if self.walls else None

    def bd_median(self):
        if not self.breakdowns:
            return None
        return {k: None if any(b[k] is None for b in self.breakdowns)
                else statistics.median(b[k] for b in self.breakdowns)
                for k in self.breakdowns[0]}


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo")
                if l.startswith("MemTotal")), 0)
    try:
        qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                              text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        qemu = "not found"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram": f"{mem / 1024 / 1024:.1f} GiB",
        "kernel": os.uname().release,
        "qemu": qemu,
    }


def quote_clean_build(build, readme):
    """A clean build not measured in this run is quoted from the kbuild
    README's measurement table (its `| clean...` rows with a m:ss wall)."""
    rows = build.get("rows", [])
    if not readme.exists() or not any(r.get("seconds") is None and "clean" in r["what"]
                                      for r in rows):
        return
    quoted = []
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].startswith("clean") and re.fullmatch(r"\d+:\d\d", cells[2]):
            m, sec = map(int, cells[2].split(":"))
            quoted.append({"what": f"minimal: {cells[0]}", "seconds": m * 60 + sec,
                           "source": f"not re-measured here: kbuild/README.md (CPU {cells[3]}, "
                                     f"load {cells[4]})"})
    if quoted:
        build["rows"] = [r for r in rows if not (r.get("seconds") is None and "clean" in r["what"])]
        build["rows"] += quoted


def config_summary(path):
    want = ["SMP", "NR_CPUS", "VIRTIO", "VIRTIO_PCI", "VIRTIO_MMIO", "VIRTIO_CONSOLE", "NET_9P",
            "NET_9P_VIRTIO", "9P_FS", "VIRTIO_FS", "OVERLAY_FS", "BLOCK", "CGROUPS", "MODULES",
            "PRINTK_TIME"]
    have = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"CONFIG_(\w+)=(.*)", line) or re.match(r"# CONFIG_(\w+) is not set", line)
        if m and m.group(1) in want:
            have[m.group(1)] = m.group(2) if m.re.pattern.startswith("CONFIG") else "n"
    return ", ".join(f"{k}={have.get(k, 'n')}" for k in want)


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--portrange", required=True)
    ap.add_argument("--selftest", required=True, help="static ip_local_port_range")
    ap.add_argument("--selftest-vm", required=True, help="the same with netns_setup.c linked in")
    ap.add_argument("--minimal-kernel", required=True)
    ap.add_argument("--debian-kernel", required=True, help="vmlinuz inside the unpacked package tree")
    ap.add_argument("--minimal-config", default="", help="the minimal kernel's .config")
    ap.add_argument("--peers-kernel", default="",
                    help="the minimal-peers bzImage (minimal + what vmtest and virtme-ng need)")
    ap.add_argument("--peers-config", default="", help="the minimal-peers kernel's .config")
    ap.add_argument("--debian-config", default="", help="debian-6.12's config-* file")
    ap.add_argument("--vmtest", default="")
    ap.add_argument("--vmtest-qemu", default="")
    ap.add_argument("--vmtest-path", default="",
                    help="directory put first on vmtest's PATH (qemu-ga, unpacked)")
    ap.add_argument("--vng", default="")
    ap.add_argument("--native-runs", type=int, default=5)
    ap.add_argument("--vm-runs", type=int, default=3)
    ap.add_argument("--build-json", default="", help="kernel build figures from bench/run")
    ap.add_argument("--setup-json", default="", help="tool setup notes from bench/run")
    ap.add_argument("--out", required=True, help="docs directory")
    ap.add_argument("--log", required=True)
    ap.add_argument("--only", default="", help="comma list of groups: native,vm")
    a = ap.parse_args()

    pr, st, stvm = a.portrange, a.selftest, a.selftest_vm
    sh_way = ["unshare", "-n", "sh", "-c",
              'ip link set lo up && sysctl -q -w net.ipv4.ip_local_port_range="40000 49999" '
              f"&& exec {shlex.quote(st)}"]
    setup = json.loads(Path(a.setup_json).read_text()) if a.setup_json else {}
    kernels = [(k, p) for k, p in [("minimal 6.12", a.minimal_kernel),
                                   (PEERS_KERNEL, a.peers_kernel),
                                   ("debian-6.12", "debian-6.12")] if p]
    rows = []
    host = os.uname().release
    nr, vr = a.native_runs, a.vm_runs
    # The model cases (random configurations checked against the reference
    # model) do far more work per case than any selftest case; a row without
    # them shows what the rest costs.
    names = subprocess.run([pr, "list"], capture_output=True, text=True).stdout.split()
    equivalent = subprocess.run([pr, "list", "--selftest-equivalent"], capture_output=True,
                                text=True).stdout.split()
    no_model = sorted({n.split("/", 1)[1] for n in names
                       if "/" in n and not n.split("/", 1)[1].startswith("model/")})
    rows += [
        Row("native", "portrange run (full suite)", host, [pr, "run", "--format", "json"], nr),
        Row("native", "portrange run (full suite, --isolation reuse)", host,
            [pr, "run", "--isolation", "reuse", "--format", "json"], nr),
        Row("native", "portrange run (full suite less model/*)", host,
            [pr, "run", *no_model, "--format", "json"], nr),
        Row("native", "portrange run (selftest-equivalent cases)", host,
            [pr, "run", "--exact", *equivalent, "--format", "json"], nr),
        Row("native", "kernel selftest, run as its .sh does", host, sh_way, nr,
            note="unshare -n; lo up; sysctl 40000 49999; binary"),
    ]
    for kname, kpath in kernels:
        dk = a.debian_kernel if kname == "debian-6.12" else kpath
        rows += [
            Row("vm", "portrange vm (full suite)", kname,
                [pr, "vm", "--kernel", kpath, "--format", "json"], vr),
            Row("vm", "portrange vm (full suite, --isolation reuse)", kname,
                [pr, "vm", "--kernel", kpath, "--isolation", "reuse", "--format", "json"], vr),
            Row("vm", "portrange vm (full suite less model/*)", kname,
                [pr, "vm", "--kernel", kpath, *no_model, "--format", "json"], vr),
            Row("vm", "portrange vm (selftest-equivalent cases)", kname,
                [pr, "vm", "--kernel", kpath, "--exact", *equivalent, "--format", "json"], vr),
            Row("vm", "kernel selftest booted by portrange vm", kname,
                [pr, "vm", "--kernel", kpath, "--", stvm], vr),
        ]
        vng_cmd = vmtest_cmd = None
        vng_note = setup.get("vng", "")
        vmtest_note = setup.get("vmtest", "")
        vng_diag = vmtest_env = None
        if a.vng:
            vng_cmd = [a.vng, "--disable-kvm", "--run", dk, "--", stvm]
            vng_diag = [a.vng, "--disable-kvm", "--verbose", "--run", dk, "--", stvm]
        if a.vmtest:
            vmtest_cmd = [a.vmtest, "--kernel", dk]
            if a.vmtest_qemu:
                vmtest_cmd += ["--qemu-command", a.vmtest_qemu]
            vmtest_cmd += [stvm]
            if a.vmtest_path:
                vmtest_env = dict(os.environ, PATH=f"{a.vmtest_path}:{os.environ['PATH']}")
        rows += [
            Row("vm", "kernel selftest under virtme-ng (vng)", kname, vng_cmd, vr, 240, vng_note,
                vng_diag),
            Row("vm", "kernel selftest under vmtest", kname, vmtest_cmd, vr, 240, vmtest_note,
                env=vmtest_env),
        ]

    only = set(filter(None, a.only.split(",")))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    loads_all = [loadavg()]
    with open(a.log, "w") as log:
        for row in rows:
            if only and row.group not in only:
                row.error = f"left out by --only {a.only}"
                continue
            print(f"{row.group}: {row.name} [{row.kernel}]", flush=True)
            row.measure(log)
            if row.cmd is None and not row.error:
                row.error = row.note or "not run"
    console = None
    if not only or "vm" in only:
        console = console_gaps([pr, "vm", "--kernel", a.minimal_kernel, "--append", "printk.time=1",
                                "--append", "ignore_loglevel", "--console-log"], stvm, out)
    loads_all.append(loadavg())
    build = json.loads(Path(a.build_json).read_text()) if a.build_json else {}
    quote_clean_build(build, Path(__file__).resolve().parent.parent / "kbuild" / "README.md")
    properties = len({n.split("/", 1)[1] for n in equivalent})
    write_results(rows, build, machine(), loads_all, a, out, properties, console)


def find(rows, group, name_part, kernel=None):
    for r in rows:
        if r.group == group and name_part in r.name and (kernel is None or r.kernel == kernel):
            return r
    return None


def ratio(x, y):
    return None if x is None or y is None or y == 0 else x / y


def console_gaps(cmd, payload, out):
    """One extra boot of the selftest on the minimal kernel with printk
    timestamps on the console (`quiet` is overridden by ignore_loglevel):
    the largest gaps between consecutive kernel messages, and where /init
    starts."""
    import tempfile
    log = Path(tempfile.mkdtemp(prefix="bench-console.")) / "console.log"
    try:
        timed(cmd + [str(log), "--", payload], 120)
        text = log.read_text(errors="replace")
    except OSError:
        return None
    finally:
        if log.exists():
            log.unlink()
        log.parent.rmdir()
    msgs = [(float(m.group(1)), m.group(2).strip())
            for m in re.finditer(r"^\[\s*([\d.]+)\]\s*(.*)$", text, re.M)]
    init = next((t for t, m in msgs if m.startswith("Run /init")), None)
    boot = [x for x in msgs if init is None or x[0] <= init]
    gaps = sorted(((t - p[0], p[1], msg, t) for p, (t, msg) in zip(boot, boot[1:])),
                  reverse=True)[:5]
    return {"init": init, "gaps": gaps}


def write_results(rows, build, mach, loads_all, a, out, properties, console=None):
    md = []
    md.append("# Benchmarks\n")
    md.append("Regenerated by `bench/run` (how to run it: the last section). Wall times are medians of "
              f"{a.native_runs} native and {a.vm_runs} VM runs (min-max in brackets); "
              "a case counts as executed unless it was skipped (the selftest's own "
              "Totals line: pass + fail + xfail + xpass). Each run starts after "
              f"{SETTLE_S:g} s of quiet: the kernel tears a run's network namespaces down "
              "after the process exits (portrange natively makes one per case), and that "
              "work is kept out of the next run's time; it is in no runner's wall time.\n")
    md.append("## Machine\n")
    md.append(f"- CPU: {mach['cpu']}, {mach['cores']} cores; RAM {mach['ram']}")
    md.append(f"- running kernel: {mach['kernel']}; {mach['qemu']}; QEMU under TCG "
              "(nested KVM fails here)")
    all_loads = [l for r in rows for l in r.loads]
    md.append(f"- load average (1/5/15 min) at start {loads_all[0]}, at end {loads_all[-1]}; "
              f"1-min load seen before the runs: "
              f"{min(float(l.split()[0]) for l in all_loads):.2f}-"
              f"{max(float(l.split()[0]) for l in all_loads):.2f}" if all_loads else "")
    md.append(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")

    md.append("## Native (running kernel)\n")
    md.append("| what | wall s (median [min-max]) | executed | pass/fail/skip | cases/s | exit |")
    md.append("| --- | --- | --- | --- | --- | --- |")
    for r in [r for r in rows if r.group == "native"]:
        md.append(row_md(r))
    full, sub, st = (find(rows, "native", "(full suite)"), find(rows, "native", "equivalent"),
                     find(rows, "native", "kernel selftest"))
    nm = find(rows, "native", "less model")
    pc = lambda r: None if not r or not r.median or not r.executed else r.median / r.executed
    md.append("")
    md.append(f"- selftest-equivalent: the {properties} properties that answer the "
              "selftest's assertions (docs/spec.md), on the variants the selftest has: IPv4 and IPv6 "
              "sockets of each protocol; the IPv4-mapped (4in6) variants are beyond it and "
              "counted in the full-suite rows")
    md.append(f"- per case executed: portrange full {fmt(ms(pc(full)))} ms, selftest-equivalent "
              f"{fmt(ms(pc(sub)))} ms, kernel selftest {fmt(ms(pc(st)))} ms: ratio full/selftest "
              f"**{fmt(ratio(pc(full), pc(st)))}x**, equivalent/selftest "
              f"**{fmt(ratio(pc(sub), pc(st)))}x** (target: <= 1.00x)")
    md.append(f"- without the model cases (random configurations against the reference "
              f"model, up to 100 per variant by default, the heaviest cases by far): "
              f"{fmt(ms(pc(nm)))} ms per case, {fmt(ratio(pc(nm), pc(st)))}x the selftest's")
    if st and st.counts and st.counts["fail"]:
        real = st.executed - st.counts["fail"]
        pr = None if not st.median or real <= 0 else st.median / real
        md.append(f"- the selftest's {st.counts['fail']} failures natively are what it reports "
                  "where a protocol is missing (the running kernel has no SCTP): it counts them "
                  "as executed, though each ends at its first socket(); portrange skips those "
                  f"cases with the errno instead. Over its {real} other cases the selftest takes "
                  f"{fmt(ms(pr))} ms per case (equivalent/that: {fmt(ratio(pc(sub), pr))}x, "
                  f"full/that: {fmt(ratio(pc(full), pr))}x); the targets above use its own count")
    md.append(f"- whole run: full/selftest {fmt(ratio(full and full.median, st and st.median))}x, "
              f"equivalent/selftest {fmt(ratio(sub and sub.median, st and st.median))}x\n")

    md.append("## VM (QEMU start to verdict, TCG)\n")
    md.append("Wall time is the whole command (for `portrange vm`: packing the initramfs, QEMU, "
              "rendering). The selftest binary in the VM is the same static build with "
              "`bench/netns_setup.c` linked in: before `main` it makes a new netns, sets `lo` up "
              "and writes the sysctl there, as `in_netns.sh` + the `.sh` do; no shell needed.\n")
    md.append("| kernel | what | wall s (median [min-max]) | executed | pass/fail/skip | "
              "vs selftest booted by portrange | exit / why not run |")
    md.append("| --- | --- | --- | --- | --- | --- | --- |")
    for kname in KERNELS:
        base = find(rows, "vm", "booted by portrange", kname)
        for r in [r for r in rows if r.group == "vm" and r.kernel == kname]:
            rr = ratio(r.median, base.median if base else None)
            why = (f"exit {','.join(sorted(set(map(str, r.rcs))))}" if r.walls
                   else f"not run: {r.error}" if r.error else "not run")
            md.append(f"| {kname} | {r.name} | {wall_md(r)} | {r.executed or '-'} | "
                      f"{counts_md(r)} | {fmt(rr)}x | {why.replace('|', '/')} |")
    md.append("")

    for kname, cfg in [("minimal 6.12", a.minimal_config), (PEERS_KERNEL, a.peers_config),
                       ("debian-6.12", a.debian_config)]:
        if cfg and Path(cfg).exists():
            md.append(f"- {kname} config: " + config_summary(cfg))
    md.append("- virtme-ng boots the host's root over virtiofs (or 9p), vmtest over 9p built "
              "in (CONFIG_NET_9P=y, CONFIG_9P_FS=y, CONFIG_NET_9P_VIRTIO=y) with "
              "qemu-guest-agent; a kernel without them panics before their init runs. vmtest "
              "runs through `bench/qemu-tcg` (it adds `-enable-kvm -cpu host` whenever "
              "/dev/kvm exists, which fails here); virtme-ng gets `--disable-kvm` and keeps its "
              "own defaults. All three boot 2 vCPUs here (portrange: one per host core); the "
              "peers run them on multi-threaded TCG, portrange on one host thread "
              "(`tcg,thread=single`), which costs it time but keeps QEMU 7.2 from killing "
              "the guest with \"Oops: int3\" when the kernel patches its own code (docs/vm.md).")
    md.append(f"- {PEERS_KERNEL} is the minimal kernel plus what both need "
              "(`build.config.portrange.minimal-peers.x86_64`, kbuild/README.md): virtio PCI "
              "with MSI, virtio console (their virtio-serial ports), 9p over virtio, FUSE and "
              "virtiofs, overlayfs with tmpfs xattrs (virtme-ng's overlays), the block layer "
              "(vmtest names its 9p export `/dev/root` and passes no `root=`: only the "
              "block-device root path mounts it), cgroups (vmtest's init mounts cgroup2 under "
              "`set -e`), inotify and file handles (udev, for virtme-ng's port names); no "
              "debugfs or tracefs (vmtest's init notes their absence and goes on). The "
              "comparison with the peers is made on it: the same kernel for all three.")
    md.append("- qemu-ga for vmtest is Debian's qemu-guest-agent unpacked under the bench tools "
              "(`apt-get download`, `dpkg-deb -x`), not installed: vmtest's init exports the "
              "PATH vmtest was started with and the guest sees the host's root, so that "
              "directory first on vmtest's PATH is enough; no package, udev rule or service "
              "lands on the host.")
    md.append("")
    md.append("## Where the time goes in a VM run (medians, seconds)\n")
    md.append("Host arrival times of the output lines, the guest's `/proc/uptime` (from "
              "the phases in portrange's JSON report, or the uptime line the selftest's "
              "netns_setup prints) and the QEMU time (the report's `vm_micros`) give: "
              "host prep = wall - QEMU time; firmware+decompress = QEMU start to guest uptime 0; "
              "shutdown+exit = last output line to process exit. Where a runner prints no QEMU "
              "time (payload runs, the peers), host prep is `-` and counted in "
              "firmware+decompress; for them, cases = netns_setup's line to the last result.\n")
    keys = ["host prep", "firmware+decompress", "kernel init to /init ready", "probes",
            "cases", "shutdown+exit"]
    md.append("| kernel | what | " + " | ".join(keys) + " | wall |")
    md.append("| --- | --- | " + " | ".join("---" for _ in keys) + " | --- |")
    bds = []
    for r in rows:
        b = r.bd_median() if r.group == "vm" else None
        if b:
            bds.append((r, b))
            md.append(f"| {r.kernel} | {r.name} | " + " | ".join(fmt(b[k]) for k in keys) +
                      f" | {fmt(r.median)} |")
    cpus = [f"{r.name} on {r.kernel}: {r.cpus}" for r in rows if r.cpus]
    if cpus:
        md.append("\nCPUs online in the guest (netns_setup's line): " + "; ".join(cpus) +
                  ". For a peer, \"kernel init to /init ready\" runs to the moment the "
                  "payload starts, so it includes the peer's own init (mounting the host root, "
                  "udev, overlays).")
    md.append("")

    if console:
        md.append(f"\nConsole timestamps, one extra boot of the selftest on the minimal kernel "
                  f"(`--append printk.time=1 --append ignore_loglevel`): /init runs at "
                  f"{fmt(console['init'], 3)} s of guest uptime; the largest gaps between two "
                  "kernel messages before it:\n")
        md.append("| gap s | after | until |")
        md.append("| --- | --- | --- |")
        for gap, before, msg, t in console["gaps"]:
            clean = lambda x: x[:70].replace("|", "/")
            md.append(f"| {gap:.3f} | {clean(before)} | {clean(msg)} (at {t:.3f} s) |")
        md.append("")
    md.append("## Kernel builds (gcc)\n")
    md.append("| build | seconds | source |")
    md.append("| --- | --- | --- |")
    for item in build.get("rows", []):
        md.append(f"| {item['what']} | {fmt(item.get('seconds'), 1)} | {item['source']} |")
    md.append("")

    md.append("## Targets: time per case, and against the peers\n")
    for line in targets(rows):
        md.append(f"- {line}")
    md.append("")
    md.append("## Targets: the full suite, both isolation modes\n")
    for line in isolation_targets(rows):
        md.append(f"- {line}")
    md.append("")
    kept = hand_measured(out / "benchmarks.md")
    (out / "benchmarks.md").write_text("\n".join(md) + "\n" + kept)
    chart(rows, bds, keys, build, mach, loads_all, out / "benchmarks.png")
    print((out / "benchmarks.md").read_text())


# The sections of benchmarks.md that bench/run does not measure (arm64
# guests, the GKI build), from the first to the end of the file, kept as
# they were when it rewrites the file.
HAND_MEASURED = "## arm64 (measured by hand"


def hand_measured(path):
    """The hand-measured sections of an earlier benchmarks.md (arm64 first), to the end of the file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    at = text.find(HAND_MEASURED)
    return "" if at < 0 else "\n" + text[at:]


def ms(x):
    return None if x is None else x * 1000


def wall_md(r):
    if not r.walls:
        return "-"
    return f"{r.median:.2f} [{min(r.walls):.2f}-{max(r.walls):.2f}]"


def counts_md(r):
    c = r.counts
    return "-" if not c else f"{c['pass']}/{c['fail']}/{c['skip']}"


def row_md(r):
    cps = None if not r.median or not r.executed else r.executed / r.median
    why = (",".join(sorted(set(map(str, r.rcs)))) if r.walls else f"not run: {r.error}")
    return (f"| {r.name} | {wall_md(r)} | {r.executed or '-'} | {counts_md(r)} | "
            f"{fmt(cps, 1)} | {why} |")


def targets(rows):
    res = []
    full, st = find(rows, "native", "(full suite)"), find(rows, "native", "kernel selftest")
    sub = find(rows, "native", "equivalent")
    pc = lambda r: None if not r or not r.median or not r.executed else r.median / r.executed
    nm = find(rows, "native", "less model")
    r1 = ratio(pc(full), pc(st))
    r1s = ratio(pc(sub), pc(st))
    r1m = ratio(pc(nm), pc(st))
    verdict = lambda r: "MET" if r is not None and r <= 1 else "MISSED"
    res.append(f"native, time per executed case vs the selftest's (target <= 1x): full suite "
               f"{fmt(r1)}x {verdict(r1)}; less model/* {fmt(r1m)}x {verdict(r1m)}; "
               f"selftest-equivalent cases {fmt(r1s)}x {verdict(r1s)}")
    for kname in KERNELS:
        base = find(rows, "vm", "booted by portrange", kname)
        vf = find(rows, "vm", "(full suite)", kname)
        ve = find(rows, "vm", "equivalent", kname)
        rf = ratio(vf and vf.median, base and base.median)
        re_ = ratio(ve and ve.median, base and base.median)
        if kname == "minimal 6.12":
            res.append(f"VM on {kname}, portrange / selftest booted the same way: full suite "
                       f"{fmt(rf)}x, selftest-equivalent {fmt(re_)}x (target <= 1.2x): "
                       f"{'MET' if rf is not None and rf <= 1.2 else 'MISSED'} for the full "
                       f"suite, {'MET' if re_ is not None and re_ <= 1.2 else 'MISSED'} for the "
                       "equivalent cases")
        # The target against the peers (faster on the same kernel) is judged
        # on the kernel all three boot; the other kernels' lines inform.
        for peer in ["virtme-ng", "vmtest"]:
            on = (f"VM on {kname}, the kernel all three boot (target: faster than {peer} on the "
                  "same kernel)" if kname == PEERS_KERNEL else f"VM on {kname}")
            p = find(rows, "vm", peer, kname)
            if p and p.walls and vf and vf.median:
                rp = vf.median / p.median
                rb = ratio(base and base.median, p.median)
                rq = ratio(ve and ve.median, p.median)
                ok = lambda r: "MET" if r is not None and r < 1 else "MISSED"
                res.append(f"{on}, against the selftest under {peer} ({fmt(p.median)} s): "
                           f"the same binary booted by portrange {fmt(rb)}x its time {ok(rb)}; "
                           f"portrange's selftest-equivalent cases {fmt(rq)}x {ok(rq)}; "
                           f"portrange's full suite (6x the cases) {fmt(rp)}x {ok(rp)}")
            else:
                res.append(f"{on}, vs {peer}: not comparable here, {peer} did not run "
                           f"({(p.error if p else 'not measured') or 'not measured'})")
    return res


# Issue 19's targets: whole-run wall time of the full suite against the
# selftest's, natively (<= 3x) and booted the same way on the minimal
# kernel (<= 2x), for each --isolation mode. Parallel: how many cases truly
# run at once (natively one per core; in a VM the vCPUs share one host
# thread, `-accel tcg,thread=single`).
ISOLATION_TARGETS = [("native", None, "native whole run", 3.0, os.cpu_count() or 1),
                     ("vm", "minimal 6.12", "VM on minimal 6.12, whole command", 2.0, 1)]


def isolation_targets(rows):
    res = []
    for group, kname, what, target, parallel in ISOLATION_TARGETS:
        base = find(rows, group, "kernel selftest" if group == "native" else "booted by portrange",
                    kname)
        parts = []
        for mode, name in [("fresh", "(full suite)"), ("reuse", "(full suite, --isolation reuse)")]:
            row = find(rows, group, name, kname)
            r = ratio(row and row.median, base and base.median)
            detail = ""
            if row and row.case_costs:
                detail = (f", cases phase {fmt(row.cost_median('cases'))} s, model/* "
                          f"{fmt(row.cost_median('model sum'))} s summed over workers, one "
                          f"other case {fmt(row.cost_median('other median ms'))} ms (median)")
            parts.append(f"{mode} {fmt(r)}x ({fmt(row and row.median)} s{detail}) "
                         f"{'MET' if r is not None and r <= target else 'MISSED'}")
        res.append(f"{what}, full suite / selftest ({fmt(base and base.median)} s), "
                   f"target <= {target:g}x: " + "; ".join(parts))
        res.append(floor_line(rows, group, kname, base, target, parallel))
    return res


def floor_line(rows, group, kname, base, target, parallel):
    """What the target allows against what the full suite's extra cases
    cost at the selftest's own price per case: the selftest's cases (its
    whole run natively, its cases phase in a VM) over its executed count,
    spread over what truly runs in parallel. No namespace cost, no model
    cases, no harness: a floor, not an estimate."""
    full = find(rows, group, "(full suite less model/*)", kname)
    if not (base and base.median and base.executed and full and full.executed):
        return "floor: not computed (a row did not run)"
    bd = base.bd_median() if group == "vm" else None
    selftest_cases = bd["cases"] if bd else base.median
    per_case = selftest_cases / base.executed
    extra = max(full.executed - base.executed, 0)
    floor = base.median + extra * per_case / parallel
    return (f"floor: the suite less model/* executes {full.executed} cases, the selftest "
            f"{base.executed} at {fmt(per_case * 1000)} ms each; the {extra} more at that "
            f"price{'' if parallel == 1 else f' on {parallel} cores'} bring the selftest's "
            f"{fmt(base.median)} s to {fmt(floor)} s = {fmt(floor / base.median)}x before any "
            f"namespace or model case (target {target:g}x)")


def chart(rows, bds, keys, build, mach, loads_all, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(11, 16),
                             gridspec_kw={"height_ratios": [1.0, 3.4, 2.4]})
    nat = [r for r in rows if r.group == "native" and r.walls]
    ax = axes[0]
    ax.barh([r.name for r in nat], [r.median for r in nat], color="#4c72b0")
    for i, r in enumerate(nat):
        ax.text(r.median, i, f" {r.median:.3f} s, {r.executed} cases", va="center", fontsize=8)
    ax.set_xlabel("seconds (median)")
    ax.set_title(f"Native on {mach['kernel']}")
    ax.invert_yaxis()
    ax.set_xlim(0, max([r.median for r in nat] + [0.1]) * 1.5)

    ax = axes[1]
    vm = [r for r in rows if r.group == "vm"]
    labels = [f"{r.kernel}: {r.name}" for r in vm]
    vals = [r.median or 0 for r in vm]
    colors = ["#55a868" if "portrange vm (" in r.name else
              "#c44e52" if "booted by portrange" in r.name else "#8172b2" for r in vm]
    ax.barh(labels, vals, color=colors)
    for i, r in enumerate(vm):
        txt = f" {r.median:.1f} s" if r.walls else " did not run here (see table)"
        ax.text(vals[i], i, txt, va="center", fontsize=8)
    ax.set_xlabel("seconds from command start to verdict (median)")
    ax.set_title("VM under TCG")
    ax.invert_yaxis()
    ax.set_xlim(0, max(vals + [1]) * 1.35)

    ax = axes[2]
    if bds:
        left = [0.0] * len(bds)
        pal = ["#bbbbbb", "#dd8452", "#4c72b0", "#937860", "#55a868", "#8c8c8c"]
        for k, c in zip(keys, pal):
            v = [max(b[k] or 0.0, 0.0) for _, b in bds]
            ax.barh([f"{r.kernel}: {r.name}" for r, _ in bds], v, left=left, color=c, label=k)
            left = [x + y for x, y in zip(left, v)]
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=6)
        ax.invert_yaxis()
    ax.set_xlabel("seconds (median)")
    ax.set_title("Where the time goes in a VM run")
    fig.suptitle(f"portrange benchmarks: {mach['cpu']}, {mach['cores']} cores, "
                 f"load {loads_all[0]} -> {loads_all[-1]}", fontsize=9)
    for ax in axes:
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # room for the suptitle
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
