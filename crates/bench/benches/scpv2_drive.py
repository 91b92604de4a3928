#!/usr/bin/env python3
"""An independent SCPv2 driver (Python, standard library only) to cross-check `smbdensity bench`.

It shares no code with the Rust benchmark: its own row generator (same shape: _time, src, count,
dest, port with multivalue dest/port, HourOfDay, DayOfWeek), its own framing, and it plays splunkd
the same way (getinfo, then 50,000-row execute chunks, one reply read before the next chunk is sent).
Rows are generated before the clock starts. Besides wall time it reports the child's own CPU time
(wait4), which is steadier than wall time on a loaded machine.

    python3 benches/scpv2_drive.py target/release/smbdensity \
        'fit smbdensity count by "HourOfDay,DayOfWeek" dist=norm into m' --rows 1000000
    python3 benches/scpv2_drive.py target/release/smbdensity __passthrough_csv --rows 1000000
    python3 benches/scpv2_drive.py target/release/smbdensity 'apply m' --rows 1000000
    python3 benches/scpv2_drive.py target/release/smbdensity 'apply m' --rows 1000000 --projected
"""
import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import tempfile
import time

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
CHUNK = 50_000


def chunk(first, n, hosts, projected):
    rnd = random.Random(first)
    head = "count,HourOfDay,DayOfWeek,_chunked_idx" if projected else \
        "_time,src,count,dest,port,HourOfDay,DayOfWeek,__mv_dest,__mv_port"
    out = [head]
    for k in range(n):
        r = first + k
        host, ha = r % hosts, r // hosts
        hour, dow = ha % 24, (ha // 24) % 7
        office = dow < 5 and 8 <= hour < 18
        base = (64 if office else 28) if host % 25 == 0 else ((3 + host % 5) if office else 1)
        c = base + rnd.randrange(base + 1)
        if projected:
            out.append(f"{c},{hour:02d},{DAYS[dow]},{k}")
            continue
        dests = [f"10.1.{(host + j * 7) % 250}.{10 + j}" for j in range(1 + rnd.randrange(3))]
        ports = ["139", "445"] if c > 20 else ["445"]
        mv = lambda v: "" if len(v) == 1 else ";".join("$" + x + "$" for x in v)
        cell = lambda v: v[0] if len(v) == 1 else '"' + "\n".join(v) + '"'
        src = f"srv-{host // 25:05d}" if host % 25 == 0 else f"wks-{host:05d}"
        out.append(f"{1770595200 + ha * 3600},{src},{c},{cell(dests)},{cell(ports)},"
                   f"{hour:02d},{DAYS[dow]},{mv(dests)},{mv(ports)}")
    return ("\n".join(out) + "\n").encode()


def send(p, meta, body=b""):
    m = json.dumps(meta).encode()
    p.stdin.write(b"chunked 1.0,%d,%d\n" % (len(m), len(body)) + m + body)
    p.stdin.flush()


def recv(p):
    _, ml, bl = p.stdout.readline().decode().strip().split(",")
    ml, bl = int(ml), int(bl)
    meta = json.loads(p.stdout.read(ml)) if ml else {}
    left = bl
    while left:
        left -= len(p.stdout.read(min(left, 1 << 22)))
    return meta, bl


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("exe")
    ap.add_argument("command", help="the search command line, e.g. 'apply m'")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--hosts", type=int, default=300)
    ap.add_argument("--projected", action="store_true",
                    help="only count,HourOfDay,DayOfWeek,_chunked_idx (as with required_fields)")
    ap.add_argument("--models", default=os.path.join(tempfile.gettempdir(), "scpv2_drive_models"))
    a = ap.parse_args()
    os.makedirs(a.models, exist_ok=True)
    pool = [chunk(i * CHUNK, CHUNK, a.hosts, a.projected) for i in range(min(20, max(1, a.rows // CHUNK)))]
    toks = shlex.split(a.command)
    dispatch = tempfile.mkdtemp(prefix="scpv2_drive_dispatch")
    t0 = time.perf_counter()
    p = subprocess.Popen([a.exe, toks[0]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=dict(os.environ, SMBDENSITY_MODEL_DIR=a.models))
    send(p, {"action": "getinfo", "preview": False, "searchinfo": {
        "args": toks[1:], "raw_args": toks[1:], "command": toks[0], "dispatch_dir": dispatch,
        "app": "smb_traffic_spike", "owner": "drive", "sid": "drive", "maxresultrows": CHUNK}})
    meta, _ = recv(p)
    if "error" in meta:
        raise SystemExit(f"getinfo: {meta['error']}")
    n, out = a.rows // CHUNK, 0
    for i in range(n):
        send(p, {"action": "execute", "finished": i == n - 1}, pool[i % len(pool)])
        meta, bl = recv(p)
        out += bl
        if "error" in meta:
            raise SystemExit(f"chunk {i + 1}: {meta['error']}")
    p.stdin.close()
    _, _, ru = os.wait4(p.pid, 0)
    shutil.rmtree(dispatch, ignore_errors=True)
    dt = time.perf_counter() - t0
    cpu = ru.ru_utime + ru.ru_stime
    print(f"{a.command}: {n * CHUNK} rows, {dt:.3f} s wall = {n * CHUNK / dt / 1e6:.2f}M rows/s; "
          f"child CPU {cpu:.3f} s (user {ru.ru_utime:.2f}, sys {ru.ru_stime:.2f}) = "
          f"{n * CHUNK / cpu / 1e6:.2f}M rows per CPU-second; {out} reply bytes")


if __name__ == "__main__":
    main()
