#!/usr/bin/env bash
# Smoke-checks berth's runtime on this host's kernel and cgroup layout (v1,
# v2 or hybrid): runs busybox containers with limits and checks they hold.
#   scripts/check-host.sh BERTH_BINARY BUSYBOX_ROOTFS
# Needs root. Cleans up after itself.
set -uo pipefail
berth=$1; rootfs=$2
work=$(mktemp -d /tmp/berth-check.XXXXXX)
state="$work/state"
trap '"$berth" runtime --root "$state" delete -f chk-d >/dev/null 2>&1; rm -rf "$work"' EXIT
pass=0; fail=0
check() { # name, expected substring, command...
    local name=$1 want=$2; shift 2
    local out; out=$("$@" 2>&1)
    if [[ "$out" == *"$want"* ]]; then pass=$((pass+1)); echo "ok   $name";
    else fail=$((fail+1)); echo "FAIL $name: wanted '$want', got: $out"; fi
}
echo "kernel: $(uname -r)"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "cgroups: v2 ($(cat /sys/fs/cgroup/cgroup.controllers))";
elif grep -q ' - cgroup2 ' /proc/self/mountinfo; then echo "cgroups: hybrid"; else echo "cgroups: v1"; fi

mkdir -p "$work/b"
cp -a "$rootfs" "$work/b/rootfs"
bundle() { # args as a JSON array, resources JSON
    cat > "$work/b/config.json" <<JSON
{"ociVersion":"1.2.0","root":{"path":"rootfs","readonly":true},"hostname":"chk",
 "process":{"terminal":false,"user":{"uid":0,"gid":0},"args":$1,"cwd":"/",
   "env":["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],"noNewPrivileges":true,
   "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}},
 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
   {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]},
   {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["newinstance","ptmxmode=0666"]},
   {"destination":"/sys","type":"sysfs","source":"sysfs","options":["ro","nosuid","nodev","noexec"]},
   {"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro","nosuid","nodev","noexec"]}],
 "linux":{"resources":$2,
   "namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}],
   "maskedPaths":["/proc/timer_list"],"readonlyPaths":["/proc/sys"]}}
JSON
}
run() { "$berth" runtime --root "$state" run --bundle "$work/b" "chk-$RANDOM"; }

bundle '["sh","-c","echo hello from $(hostname)"]' '{}'
check "run" "hello from chk" run
bundle '["sh","-c","cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]' '{"memory":{"limit":67108864}}'
check "memory limit visible" "67108864" run
bundle '["sh","-c","dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo dd=$?"]' '{"memory":{"limit":33554432,"swap":33554432}}'
check "memory limit OOM-kills" "dd=137" run
bundle '["sh","-c","for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; echo all"]' '{"pids":{"limit":4}}'
check "pids limit stops fork" "can't fork" run
bundle '["sh","-c","echo x > /dev/full 2>/dev/null || echo full-denied; echo x > /dev/null && echo null-ok"]' '{"devices":[{"allow":false,"access":"rwm"}]}'
check "device rules" "full-denied" run
bundle '["sleep","100"]' '{"cpu":{"shares":512,"quota":50000,"period":100000}}'
"$berth" runtime --root "$state" run -d --bundle "$work/b" chk-d
check "exec" "chk" "$berth" runtime --root "$state" exec chk-d hostname
check "cpu limit visible" "50000" "$berth" runtime --root "$state" exec chk-d sh -c "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
"$berth" runtime --root "$state" pause chk-d
check "pause" '"status": "paused"' "$berth" runtime --root "$state" state chk-d
"$berth" runtime --root "$state" resume chk-d
check "resume" '"status": "running"' "$berth" runtime --root "$state" state chk-d
check "update" "" "$berth" runtime --root "$state" update --memory 100m --pids-limit 50 chk-d
check "events --stats" '"type":"stats"' "$berth" runtime --root "$state" events --stats chk-d
check "delete" "" "$berth" runtime --root "$state" delete -f chk-d
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
