#!/usr/bin/env bash
# Regenerates scripts/runtime-order.txt: the functions `berth runtime`
# executes, which the static release build links first and together (see
# crates/berth/build.rs). Samples a few hundred runs of run, create, state,
# start and delete of a busybox `true` bundle with perf, maps the sampled
# addresses to symbols with nm (the release binary is static at a fixed
# address; the re-exec'd runtime shows up as dso "/"), and adds them to the
# list. Run as root after changing the runtime; rebuild and compare
# bench/runtime.sh's peak RSS.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
command -v perf >/dev/null || { echo "runtime-order.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
bin=$("$here/scripts/build-release.sh")
work=$(mktemp -d /tmp/berth-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
"$bin" runtime spec --bundle "$work/bundle"
jq '.process.terminal = false | .process.args = ["/bin/true"]' "$work/bundle/config.json" > "$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"
root="$work/state"
perf record -q -F 30000 -e cpu-clock -o "$work/perf.data" -- bash -c "
    for i in \$(seq 150); do
        '$bin' runtime --root '$root' run --bundle '$work/bundle' r\$i >/dev/null
        '$bin' runtime --root '$root' create --bundle '$work/bundle' c\$i >/dev/null
        '$bin' runtime --root '$root' state c\$i >/dev/null
        '$bin' runtime --root '$root' start c\$i
        '$bin' runtime --root '$root' delete -f c\$i
    done" >/dev/null 2>&1
perf script -i "$work/perf.data" -F ip,dso 2>/dev/null | awk '$2 ~ /\(\/\)|berth/ {print $1}' | sort -u > "$work/ips"
nm --defined-only "$bin" | awk '$2 ~ /[tTwW]/ {print $1, $3}' | sort > "$work/syms"
python3 - "$work/ips" "$work/syms" "$here/scripts/runtime-order.txt" <<'PY'
import bisect, sys
ips, syms_path, order = sys.argv[1:]
syms = sorted((int(a, 16), n.strip()) for a, n in (l.split(None, 1) for l in open(syms_path)))
addrs = [a for a, _ in syms]
try:
    hit = {l.strip() for l in open(order) if l.strip()}
except FileNotFoundError:
    hit = set()
before = len(hit)
for line in open(ips):
    i = bisect.bisect_right(addrs, int(line, 16)) - 1
    if i >= 0:
        hit.add(syms[i][1])
open(order, "w").write("\n".join(sorted(hit)) + "\n")
print(f"runtime-order.txt: {before} -> {len(hit)} functions")
PY
