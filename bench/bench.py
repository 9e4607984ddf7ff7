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

import per_case
from per_case import ratio

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
                 env=None, kind=None, isolation=None, tcg=None):
        # What the row runs: "suite" (the full suite), "less model",
        # "equivalent", "selftest" (the kernel's, natively or booted by
        # portrange) or "peer" (vmtest, virtme-ng); the --isolation mode of a portrange
        # row and the PORTRANGE_TCG_THREAD of a row booted by portrange
        # (None: the built portrange's own choice).
        self.kind, self.isolation, self.tcg = kind, isolation, tcg
        self.diag = diag  # run once, untimed, to say why cmd executed nothing
        self.env = env  # the environment cmd and diag run with (None: ours)
        self.group, self.name, self.kernel = group, name, kernel
        self.cmd, self.runs, self.timeout, self.note = cmd, runs, timeout, note
        self.walls, self.rcs, self.executed, self.counts = [], [], None, None
        self.breakdowns, self.error, self.cpus, self.loads = [], None, None, []
        self.case_costs = []  # per run: per_case.report_costs() of portrange's JSON report

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
            if (c := per_case.report_costs(report_of(lines))):
                self.case_costs.append(c)
            for _, _, l in lines:
                if (m := UPTIME_NOTE.search(l)):
                    self.cpus = int(m.group(2))
            print(f"  {self.name} [{self.kernel}] run {i + 1}: {wall:.2f} s, "
                  f"{ex} executed, exit {rc}, load {self.loads[-1]}", flush=True)

    def cost_median(self, key):
        values = [c[key] for c in self.case_costs if c[key] is not None]
        return statistics.median(values) if values else None

    def costs(self):
        """The medians over the runs of what per_case.report_costs() gives,
        or None when no run printed a report."""
        if not self.case_costs:
            return None
        return {k: self.cost_median(k) for k in self.case_costs[0]}

    def setting(self):
        """`--isolation fresh, TCG single`: the settings a portrange row ran with."""
        parts = [f"--isolation {self.isolation}" if self.isolation else None,
                 f"TCG {self.tcg}" if self.tcg else None]
        return ", ".join(p for p in parts if p) or "defaults"

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
    ap.add_argument("--isolation-modes", default="fresh reuse",
                    help="the --isolation modes to run the full suite in, side by side")
    ap.add_argument("--tcg-modes", default="",
                    help="PORTRANGE_TCG_THREAD values to boot under, side by side "
                         "(empty: the built portrange's own choice)")
    ap.add_argument("--tcg-note", default="",
                    help="why --tcg-modes is empty, for the report")
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
    isolations = a.isolation_modes.split() or ["fresh"]
    tcgs = a.tcg_modes.split() or [None]
    json_ = ["--format", "json"]
    iso0 = isolations[0]
    first = ["--isolation", iso0]
    rows += [Row("native", f"portrange run (full suite, --isolation {iso})", host,
                 [pr, "run", "--isolation", iso, *json_], nr, kind="suite", isolation=iso)
             for iso in isolations]
    rows += [
        Row("native", "portrange run (full suite less model/*)", host,
            [pr, "run", *first, *no_model, *json_], nr, kind="less model", isolation=iso0),
        Row("native", "portrange run (selftest-equivalent cases)", host,
            [pr, "run", *first, "--exact", *equivalent, *json_], nr, kind="equivalent",
            isolation=iso0),
        Row("native", "kernel selftest, run as its .sh does", host, sh_way, nr,
            note="unshare -n; lo up; sysctl 40000 49999; binary", kind="selftest"),
    ]
    for kname, kpath in kernels:
        dk = a.debian_kernel if kname == "debian-6.12" else kpath
        vm = [pr, "vm", "--kernel", kpath]
        # Every setting side by side: the full suite in each isolation mode
        # and the selftest booted the same way, under each TCG threading;
        # the other rows under the first of each.
        for tcg in tcgs:
            env = None if tcg is None else dict(os.environ, PORTRANGE_TCG_THREAD=tcg)
            named = lambda what: f"{what}{'' if tcg is None else f', TCG {tcg}'}"
            rows += [Row("vm", named(f"portrange vm (full suite, --isolation {iso}") + ")", kname,
                         [*vm, "--isolation", iso, *json_], vr, env=env, kind="suite",
                         isolation=iso, tcg=tcg)
                     for iso in isolations]
            if tcg == tcgs[0]:
                rows += [
                    Row("vm", named("portrange vm (full suite less model/*") + ")", kname,
                        [*vm, *first, *no_model, *json_], vr, env=env, kind="less model",
                        isolation=iso0, tcg=tcg),
                    Row("vm", named("portrange vm (selftest-equivalent cases") + ")", kname,
                        [*vm, *first, "--exact", *equivalent, *json_], vr, env=env,
                        kind="equivalent", isolation=iso0, tcg=tcg),
                ]
            rows.append(Row("vm", named("kernel selftest booted by portrange vm"), kname,
                            [*vm, "--", stvm], vr, env=env, kind="selftest", tcg=tcg))
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
                vng_diag, kind="peer"),
            Row("vm", "kernel selftest under vmtest", kname, vmtest_cmd, vr, 240, vmtest_note,
                env=vmtest_env, kind="peer"),
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


def find(rows, group, kind, kernel=None, **settings):
    """The first row of that group and kind (on that kernel, with those
    isolation= and tcg= settings when given): rows come in the order of the
    settings asked for, so without settings it is the first setting's row."""
    for r in rows:
        if (r.group == group and r.kind == kind and (kernel is None or r.kernel == kernel)
                and all(getattr(r, k) == v for k, v in settings.items())):
            return r
    return None


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
    full, sub, st = (find(rows, "native", "suite"), find(rows, "native", "equivalent"),
                     find(rows, "native", "selftest"))
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
              f"**{fmt(ratio(pc(sub), pc(st)))}x** (whole runs; the per-case targets count the cases "
              "phase: \"Per-case cost\" below)")
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
                  f"full/that: {fmt(ratio(pc(full), pr))}x); the per-case targets below use its own count")
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
        for r in [r for r in rows if r.group == "vm" and r.kernel == kname]:
            base = (find(rows, "vm", "selftest", kname, tcg=r.tcg)
                    or find(rows, "vm", "selftest", kname))
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
              "peers run them on multi-threaded TCG; portrange runs an x86_64 guest on one "
              "host thread (`tcg,thread=single`, on every QEMU: multi-threaded TCG killed the "
              "guest with \"Oops: int3\" when the kernel patched its own code, 2 of 40 "
              "code-patching runs on QEMU 10.0.2) and an arm64 guest multi-threaded from QEMU "
              "10.0 on (qemu/src/tcg.rs, docs/vm.md); `--tcg-modes` runs both.")
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

    md += cost_sections(rows, a.tcg_note)
    md.append("## Against the peers\n")
    for line in peer_targets(rows):
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


def peer_targets(rows):
    """Against virtme-ng and vmtest: judged on the kernel all three boot;
    the other kernels' lines inform."""
    res = []
    for kname in KERNELS:
        vf = find(rows, "vm", "suite", kname)
        base = find(rows, "vm", "selftest", kname, tcg=vf.tcg if vf else None)
        ve = find(rows, "vm", "equivalent", kname)
        for peer in ["virtme-ng", "vmtest"]:
            on = (f"VM on {kname}, the kernel all three boot (target: faster than {peer} on the "
                  "same kernel)" if kname == PEERS_KERNEL else f"VM on {kname}")
            p = next((r for r in rows if r.kind == "peer" and r.kernel == kname and peer in r.name),
                     None)
            if p and p.walls and vf and vf.median:
                rp = vf.median / p.median
                rb = ratio(base and base.median, p.median)
                rq = ratio(ve and ve.median, p.median)
                ok = lambda r: "MET" if r is not None and r < 1 else "MISSED"
                res.append(f"{on}, against the selftest under {peer} ({fmt(p.median)} s): "
                           f"the same binary booted by portrange {fmt(rb)}x its time {ok(rb)}; "
                           f"portrange's selftest-equivalent cases {fmt(rq)}x {ok(rq)}; "
                           f"portrange's full suite ({vf.setting()}) {fmt(rp)}x {ok(rp)}")
            else:
                res.append(f"{on}, vs {peer}: not comparable here, {peer} did not run "
                           f"({(p.error if p else 'not measured') or 'not measured'})")
    return res


# The kernel the VM targets are judged on.
TARGET_KERNEL = "minimal 6.12"


def baseline(rows, r):
    """The selftest row a suite row is measured against: natively the
    selftest run as its .sh does; in a VM the selftest booted by portrange
    on the same kernel under the same TCG threading."""
    if r.group == "native":
        return find(rows, "native", "selftest")
    return find(rows, "vm", "selftest", r.kernel, tcg=r.tcg)


def selftest_cases_s(base):
    """The selftest's cases phase in seconds: natively its whole run (it
    reports no phases, so its process start counts against it), in a VM
    netns_setup's line to its last result."""
    if not base or not base.walls:
        return None
    if base.group == "native":
        return base.median
    bd = base.bd_median()
    return bd and bd["cases"]


def suite_cost(rows, r):
    """(suite ms per case, selftest ms per case, their ratio, whole-run
    ratio) for a suite row."""
    c, base = r.costs(), baseline(rows, r)
    mine = per_case.per_case_ms(c and c["cases"], c and c["executed"])
    theirs = per_case.per_case_ms(selftest_cases_s(base), base and base.executed)
    return mine, theirs, ratio(mine, theirs), ratio(r.median, base and base.median)


def namespace_note(rows, r):
    """(milliseconds a namespace costs each case of r, or None; how that
    was found)."""
    if r.isolation == "reuse":
        return None, "namespaces reused: their clean check is in the case bodies"
    reused = find(rows, r.group, "suite", r.kernel, isolation="reuse", tcg=r.tcg)
    mine, theirs = (r.costs() or {}).get("other median ms"), reused and reused.cost_median(
        "other median ms")
    ns = per_case.namespace_ms(mine, theirs)
    if ns is None:
        return None, "namespace creation not separated (no --isolation reuse row to compare)"
    how = (f"one other case's median {fmt(mine)} ms here, {fmt(theirs)} ms with reused "
           "namespaces")
    if ns <= 0:
        return None, f"namespace creation not visible ({how})"
    return ns, f"namespace creation from {how}"


def cost_breakdown(rows, r):
    """Where a suite row's per-case cost goes, for a missed target."""
    c = r.costs()
    mine, theirs, _, _ = suite_cost(rows, r)
    ns, how = namespace_note(rows, r)
    split = per_case.split_cases(c, ns) if c else None
    if split is None:
        return f"{r.setting()}: no breakdown (the run printed no report with phases)"
    text = (f"{r.setting()}: {fmt(mine)} ms per case against the selftest's {fmt(theirs)} ms: "
            f"{per_case.describe_split(split, c['executed'])} ({how})")
    if r.group == "native" and r.median is not None:
        start = r.median - (c["probes"] or 0) - c["cases"]
        text += (f"; outside the cases phase, so not in the per-case cost: process start and "
                 f"report writing {fmt(start * 1e3)} ms, probes {fmt((c['probes'] or 0) * 1e3)} "
                 "ms (the selftest's own process start, unshare, sh, ip and sysctl, is in "
                 "its per-case cost)")
    return text


def whole_run_breakdown(rows, r):
    """Where a VM suite row's whole run goes against the selftest booted
    the same way, for a missed whole-run target."""
    base = baseline(rows, r)
    mine, theirs = r.bd_median(), base and base.bd_median()
    if not mine or not theirs:
        return f"{r.setting()}: no breakdown (a run printed no phases)"
    before = lambda b: sum(b[k] or 0.0 for k in ["host prep", "firmware+decompress",
                                                   "kernel init to /init ready", "probes"])
    ns, how = namespace_note(rows, r)
    split = per_case.split_cases(r.costs(), ns) if r.costs() else None
    parts = "" if not split else " (" + ", ".join(f"{k} {v:.2f} s" for k, v in split.items()) + ")"
    return (f"{r.setting()}: {fmt(r.median)} s against {fmt(base.median * VM_WHOLE)} s allowed: "
            f"to the first case (host prep and report rendering, firmware, kernel, /init, "
            f"probes) {fmt(before(mine))} s against the selftest's {fmt(before(theirs))} s; "
            f"cases phase {fmt(mine['cases'])} s against {fmt(theirs['cases'])} s{parts}; "
            f"after the last case {fmt(mine['shutdown+exit'])} s against "
            f"{fmt(theirs['shutdown+exit'])} s ({how})")


VM_WHOLE = per_case.VM_WHOLE_RUN_TARGET


def cost_sections(rows, tcg_note):
    """The per-case cost of every suite row next to its whole-run ratio,
    the targets met or missed with the breakdown of a miss, and the model
    cases' share of the cases phase."""
    suites = ([r for r in rows if r.group == "native" and r.kind == "suite"] +
              [r for k in KERNELS for r in rows
               if r.group == "vm" and r.kind == "suite" and r.kernel == k])
    md = ["## Per-case cost: the cases phase over the cases run\n",
          "The price of one checked property: the suite's cases phase (its JSON report's "
          "`cases_micros`) over the cases it ran, against the selftest's cases over its "
          "executed count (in a VM: netns_setup's line to its last result, booted by portrange "
          "under the same TCG threading; natively its whole run, process start included, as "
          "it reports no phases). The whole-run ratio is wall time against wall time. Each "
          "setting ran in this same bench run, side by side.\n",
          "| where | setting | wall s | cases phase s | run | per case ms | selftest per case "
          "ms | per case vs selftest | whole run vs selftest |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in suites:
        mine, theirs, rc, rw = suite_cost(rows, r)
        md.append(f"| {r.kernel if r.group == 'vm' else 'native'} | {r.setting()} | "
                  f"{wall_md(r)} | {fmt(r.cost_median('cases'))} | {r.executed or '-'} | "
                  f"{fmt(mine)} | {fmt(theirs)} | {fmt(rc)}x | {fmt(rw)}x |")
    if tcg_note:
        md.append(f"\nTCG threading was not compared: {tcg_note}.")
    md.append("")

    md.append("## Targets\n")
    checks = [("per-case cost in the VM on " + TARGET_KERNEL, per_case.VM_PER_CASE_TARGET,
               [r for r in suites if r.kernel == TARGET_KERNEL], 2, cost_breakdown),
              ("per-case cost natively", per_case.NATIVE_PER_CASE_TARGET,
               [r for r in suites if r.group == "native"], 2, cost_breakdown),
              (f"the full suite's whole run on {TARGET_KERNEL} against the selftest booted the "
               "same way", VM_WHOLE, [r for r in suites if r.kernel == TARGET_KERNEL], 3,
               whole_run_breakdown)]
    for what, target, candidates, which, explain in checks:
        measured = [(r, suite_cost(rows, r)[which]) for r in candidates]
        parts = [f"{r.setting()} {'' if x is None else f'{x:.2f}x '}{per_case.verdict(x, target)}"
                 for r, x in measured]
        md.append(f"- {what}, target <= {target:g}x the selftest's: "
                  + ("; ".join(parts) if parts else "not measured (no row ran)"))
        for r, x in measured:
            if per_case.verdict(x, target) == "MISSED":
                md.append(f"  - missed, {explain(rows, r)}")
    md.append("")

    md.append("## The randomized model cases' share of the cases phase\n")
    md.append("Their worker time (each case's `micros`, summed) over all cases' worker time: "
              "the cases phase is spread over the workers in that proportion. Target: under "
              f"{per_case.MODEL_SHARE_LIMIT:.0%} on {TARGET_KERNEL} (`RUN_BUDGET` in "
              "harness/src/randomized.rs).\n")
    for r in suites:
        c = r.costs()
        share = per_case.model_share(c) if c else None
        if share is None:
            continue
        on = f"{r.kernel if r.group == 'vm' else 'native'}, {r.setting()}"
        judged = ""
        if r.kernel == TARGET_KERNEL and share < per_case.MODEL_SHARE_LIMIT:
            judged = " MET"
        elif r.kernel == TARGET_KERNEL:
            judged = (f" MISSED (`RUN_BUDGET` x {fmt(per_case.budget_factor(c))} would make it "
                      f"{per_case.MODEL_SHARE_LIMIT:.0%})")
        md.append(f"- {on}: {share:.0%}{judged} ({c['models']} cases, {fmt(c['model sum'])} s of "
                  f"{fmt(c['model sum'] + c['other sum'])} s worker time; about "
                  f"{fmt(share * c['cases'])} s of the {fmt(c['cases'])} s phase)")
    for group, kname in [("native", None)] + [("vm", k) for k in KERNELS]:
        less = find(rows, group, "less model", kname)
        full = less and find(rows, group, "suite", kname, isolation=less.isolation,
                             tcg=less.tcg)
        if less and full and less.costs() and full.costs():
            md.append(f"- {kname or 'native'}, without them ({less.setting()}): cases phase "
                      f"{fmt(less.cost_median('cases'))} s against {fmt(full.cost_median('cases'))}"
                      f" s with them ({full.setting()})")
    md.append("")
    return md


def chart(rows, bds, keys, build, mach, loads_all, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nat = [r for r in rows if r.group == "native" and r.walls]
    # One bar about a third of an inch high, whatever the settings compared.
    bars = [len(nat) + 2, len([r for r in rows if r.group == "vm"]) + 2, len(bds) + 4]
    fig, axes = plt.subplots(3, 1, figsize=(11, 2 + 0.3 * sum(bars)),
                             gridspec_kw={"height_ratios": bars})
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
