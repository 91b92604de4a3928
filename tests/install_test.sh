#!/usr/bin/env bash
# Install test of the packaged Splunk app (issue 4):
#
#     tests/install_test.sh [target/dist/smb_traffic_spike-<version>.tgz]
#
#  1. unpack the .tgz into a temporary etc/apps/;
#  2. x86_64: `linux_x86_64/bin/smbdensity sample`, then through the local
#     driver (`smbdensity run`, which plays splunkd) the baseline fit and the
#     detection's apply; the model must land in <app>/lookups/;
#  3. unpack the same .tgz again over the installed app: the model survives
#     and still applies;
#  4. aarch64: `bin/smbdensity` under qemu-aarch64-static (Debian package
#     qemu-user-static), driven through the SCPv2 protocol by a small splunkd
#     stand-in below (the driver's self-spawn cannot exec an aarch64 binary
#     without binfmt_misc): apply with the x86_64-trained model, fit, apply;
#     results must equal the x86_64 ones.
#
# Exits 0 when all checks pass. Prints "N passed, M failed" last.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APP=smb_traffic_spike
TGZ=${1:-}
if [[ -z $TGZ ]]; then
  VERSION=$(awk '/^\[/{p=($0 ~ /^\[package\]/);next} p&&/^version *=/{gsub(/.*= *"|".*/,"");print;exit}' "$ROOT/Cargo.toml")
  TGZ=$ROOT/target/dist/$APP-$VERSION.tgz
fi
[[ -f $TGZ ]] || { echo "install_test: no package $TGZ (run splunk_app/package.sh)" >&2; exit 1; }
TGZ=$(cd "$(dirname "$TGZ")" && pwd)/$(basename "$TGZ")

PASS=0 FAIL=0
ok()   { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "install_test: $PASS passed, $FAIL failed"; exit $(( FAIL > 0 )); }

W=$(mktemp -d "${TMPDIR:-/tmp}/smbapp-install.XXXXXX")
trap 'rm -rf "$W"' EXIT
APPS=$W/etc/apps
A=$APPS/$APP
mkdir -p "$APPS"
unset SMBDENSITY_MODEL_DIR

tar -C "$APPS" -xzf "$TGZ"
check "unpacked into etc/apps/$APP" test -x "$A/linux_x86_64/bin/smbdensity" -a -x "$A/bin/smbdensity" -a -d "$A/lookups"
check "lookups/ ships empty" test -z "$(ls -A "$A/lookups")"

X86=$A/linux_x86_64/bin/smbdensity
ARM=$A/bin/smbdensity
MODEL=$A/lookups/__smbdensity_smb_pdfmodel.model
FIT='fit smbdensity count by "HourOfDay,DayOfWeek" into smb_pdfmodel'
APPLY='apply smb_pdfmodel threshold=0.001'

# The binary must have the local driver (`run`) and `sample`. Until the core
# issue lands they are missing: say so and skip (this is the only skip).
HELP=$("$X86" --help 2>&1 || true)
if ! grep -qw run <<<"$HELP"; then
  echo "install_test: SKIP: 'smbdensity --help' does not mention the 'run' driver yet; the fit/apply install test needs it"
  finish
fi

# --- x86_64 through the local driver --------------------------------------
( cd "$W" && "$X86" sample > "$W/sample.csv" )
check "sample produced rows" test "$(wc -l < "$W/sample.csv")" -gt 100
check "sample header" grep -q '^_time,src,count,HourOfDay,DayOfWeek' "$W/sample.csv"
ROWS=$(( $(wc -l < "$W/sample.csv") - 1 ))

if ( cd "$W" && "$X86" run "$FIT" < "$W/sample.csv" > "$W/fit.x86.csv" 2> "$W/fit.x86.err" ); then
  ok "x86_64 run: $FIT"
else
  bad "x86_64 run: $FIT"; sed 's/^/    /' "$W/fit.x86.err"
fi
check "model landed in <app>/lookups/" test -s "$MODEL"
check "model file is not executable" test ! -x "$MODEL"
check "no other files in lookups/" test "$(ls -A "$A/lookups")" = "$(basename "$MODEL")"

if ( cd "$W" && "$X86" run "$APPLY" < "$W/sample.csv" > "$W/apply.x86.csv" 2> "$W/apply.x86.err" ); then
  ok "x86_64 run: $APPLY"
else
  bad "x86_64 run: $APPLY"; sed 's/^/    /' "$W/apply.x86.err"
fi
check "apply output has IsOutlier(count)" grep -q 'IsOutlier(count)' <(head -1 "$W/apply.x86.csv")
check "apply output has one row per input row" python3 - "$W/apply.x86.csv" "$ROWS" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
sys.exit(0 if len(rows) == int(sys.argv[2]) else 1)
EOF

# --- upgrade in place: the model survives ---------------------------------
SUM_BEFORE=$(sha256sum "$MODEL" | awk '{print $1}')
tar -C "$APPS" -xzf "$TGZ"
check "model survives re-install of the same package" test -s "$MODEL"
check "model unchanged by re-install" test "$(sha256sum "$MODEL" | awk '{print $1}')" = "$SUM_BEFORE"
if ( cd "$W" && "$X86" run "$APPLY" < "$W/sample.csv" > "$W/apply2.x86.csv" 2>/dev/null ); then
  check "apply after re-install gives the same result" cmp -s "$W/apply.x86.csv" "$W/apply2.x86.csv"
else
  bad "apply after re-install"
fi

# --- aarch64 under qemu through the SCPv2 protocol -------------------------
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install_test: installing qemu-user-static"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static) >/dev/null 2>&1 || true
  fi
fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  bad "qemu-aarch64-static is not available (apt-get install qemu-user-static)"
  finish
fi

# A minimal splunkd stand-in: spawns CMD..., does getinfo, sends the CSV from
# stdin in execute chunks (projected to required_fields, with _chunked_idx for
# streaming/stateful commands), collects the replies and prints the output CSV.
# (The script is passed with -c: its stdin is the CSV input.)
SCPV2_PY=$(cat <<'EOF'
import csv, io, json, os, re, subprocess, sys, urllib.parse

line, argv = sys.argv[1], sys.argv[2:]
toks = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', line)
command, raw_args = toks[0], toks[1:]
args = [t[1:-1] if len(t) >= 2 and t[0] == t[-1] == '"' else t for t in raw_args]
proc = subprocess.Popen(argv + [command], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

def send(meta, body=b""):
    m = json.dumps(meta, separators=(",", ":")).encode()
    proc.stdin.write(b"chunked 1.0,%d,%d\n" % (len(m), len(body)) + m + body)
    proc.stdin.flush()

def recv():
    header = proc.stdout.readline()
    mt = re.match(rb"chunked\s+1.0\s*,\s*(\d+)\s*,\s*(\d+)\s*\n", header)
    if not mt:
        sys.exit("scpv2: bad or missing reply header %r" % header)
    meta = json.loads(proc.stdout.read(int(mt.group(1))) or b"{}")
    body = proc.stdout.read(int(mt.group(2)))
    for level, text in meta.get("inspector", {}).get("messages", []):
        print("scpv2: %s: %s" % (level, text), file=sys.stderr)
    if meta.get("error"):
        sys.exit("scpv2: error: %s" % meta["error"])
    return meta, body

dispatch = os.path.join(os.getcwd(), "dispatch")
os.makedirs(dispatch, exist_ok=True)
send({"action": "getinfo", "preview": False, "streaming_command_will_restart": False,
      "searchinfo": {"args": args, "raw_args": raw_args, "dispatch_dir": dispatch,
                     "sid": "1700000000.42", "app": "smb_traffic_spike", "owner": "admin",
                     "username": "admin", "session_key": "install-test-session-key",
                     "splunkd_uri": "https://127.0.0.1:8089", "splunk_version": "9.2.1",
                     "search": urllib.parse.quote("| " + line), "command": command,
                     "maxresultrows": 50000, "earliest_time": "0", "latest_time": "0"}})
info, _ = recv()
ctype = info.get("type", "streaming")
out_header, out_rows = None, []

def collect(body):
    global out_header
    if not body:
        return
    r = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    if not r:
        return
    if out_header is None:
        out_header = r[0]
    elif r[0] != out_header:
        sys.exit("scpv2: reply header changed between chunks")
    out_rows.extend(r[1:])

if info.get("generating"):
    while True:
        send({"action": "execute", "finished": True})
        meta, body = recv()
        collect(body)
        if meta.get("finished"):
            break
else:
    rows = list(csv.reader(sys.stdin))
    header, data = rows[0], rows[1:]
    req = info.get("required_fields")
    cols = list(range(len(header)))
    if req and "*" not in req:
        cols = [i for i, h in enumerate(header) if h in req]
    idx = ctype in ("streaming", "stateful") and bool(req)
    n = 1000
    chunks = [data[i:i + n] for i in range(0, len(data), n)] or [[]]
    for ci, chunk in enumerate(chunks):
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([header[i] for i in cols] + (["_chunked_idx"] if idx else []))
        for k, row in enumerate(chunk):
            w.writerow([row[i] for i in cols] + ([str(k)] if idx else []))
        last = ci == len(chunks) - 1
        send({"action": "execute", "finished": last}, buf.getvalue().encode())
        meta, body = recv()
        if bool(meta.get("finished", False)) != last:
            sys.exit("scpv2: reply finished=%r to finished=%r" % (meta.get("finished"), last))
        collect(body)
proc.stdin.close()
if proc.stdout.read():
    sys.exit("scpv2: bytes after the last reply")
rc = proc.wait()
if rc != 0:
    sys.exit("scpv2: command exited %d" % rc)
w = csv.writer(sys.stdout, lineterminator="\n")
if out_header is not None:
    w.writerow(out_header)
    w.writerows(out_rows)
EOF
)
scpv2() { python3 -c "$SCPV2_PY" "$@"; }

# The x86_64 binary through the same stand-in: a reference for aarch64.
if ( cd "$W" && scpv2 "$APPLY" "$X86" < "$W/sample.csv" > "$W/apply.x86.scp.csv" 2> "$W/apply.x86.scp.err" ); then
  ok "x86_64 SCPv2 apply (stand-in splunkd)"
else
  bad "x86_64 SCPv2 apply (stand-in splunkd)"; sed 's/^/    /' "$W/apply.x86.scp.err"
fi

QEMU=(qemu-aarch64-static)
if ( cd "$W" && scpv2 "$APPLY" "${QEMU[@]}" "$ARM" < "$W/sample.csv" > "$W/apply.arm.pre.csv" 2> "$W/apply.arm.pre.err" ); then
  ok "aarch64 under qemu: apply with the x86_64-trained model"
else
  bad "aarch64 under qemu: apply with the x86_64-trained model"; sed 's/^/    /' "$W/apply.arm.pre.err"
fi
check "aarch64 apply (x86_64 model) equals x86_64 apply" cmp -s "$W/apply.x86.scp.csv" "$W/apply.arm.pre.csv"

rm -f "$MODEL"
if ( cd "$W" && scpv2 "$FIT" "${QEMU[@]}" "$ARM" < "$W/sample.csv" > "$W/fit.arm.csv" 2> "$W/fit.arm.err" ); then
  ok "aarch64 under qemu: $FIT"
else
  bad "aarch64 under qemu: $FIT"; sed 's/^/    /' "$W/fit.arm.err"
fi
check "aarch64 model landed in <app>/lookups/" test -s "$MODEL"
if ( cd "$W" && scpv2 "$APPLY" "${QEMU[@]}" "$ARM" < "$W/sample.csv" > "$W/apply.arm.csv" 2> "$W/apply.arm.err" ); then
  ok "aarch64 under qemu: $APPLY"
else
  bad "aarch64 under qemu: $APPLY"; sed 's/^/    /' "$W/apply.arm.err"
fi
check "aarch64 fit+apply equals x86_64 fit+apply" cmp -s "$W/apply.x86.scp.csv" "$W/apply.arm.csv"
if ( cd "$W" && scpv2 listmodels "${QEMU[@]}" "$ARM" < /dev/null > "$W/listmodels.arm.csv" 2> "$W/listmodels.arm.err" ) \
   && grep -q smb_pdfmodel "$W/listmodels.arm.csv"; then
  ok "aarch64 under qemu: listmodels lists smb_pdfmodel"
else
  bad "aarch64 under qemu: listmodels lists smb_pdfmodel"; sed 's/^/    /' "$W/listmodels.arm.err"
fi
finish
