#!/usr/bin/env bash
# The engine, end to end, berth against Docker (dockerd from Debian's
# docker.io) and Podman where installed, in one run:
#   - `run --rm busybox true` through each one's CLI (median of N);
#   - `run -d` of 20 sleeping containers (total);
#   - the daemon's idle RSS (dockerd + containerd for Docker);
#   - the RSS of one container's shim (berth shim, containerd-shim, conmon).
#
#   bench/engine.sh [iterations]        (as root; builds berth --release)
#
# Every engine gets its own roots under a temporary directory; Docker runs
# with --bridge=none --iptables=false (no host network changes), or, with
# BENCH_DOCKER_BRIDGE=1, on a bridge this script creates and removes
# (berthbench0, 10.231.0.1/24, still --iptables=false: no host rules), so
# that each Docker container gets its veth as with Docker's defaults; Podman
# (with runc: crun 1.8 refuses this hybrid cgroup layout) and berth with
# their default (private) network namespace, berth's being
# loopback only until bridge networks land.
set -euo pipefail
n=${1:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
bin=$("$here/scripts/build-release.sh")
work=$(mktemp -d /tmp/berth-bench-engine.XXXXXX)
dockerd_pid=
cleanup() {
    set +e
    BERTH_HOST="unix://$work/berth/berth.sock" "$bin" rm -f $("$bin" -H "unix://$work/berth/berth.sock" ps -aq 2>/dev/null) >/dev/null 2>&1
    pkill -f "$work/berth/berth.sock" 2>/dev/null
    if [ -n "$dockerd_pid" ]; then
        docker -H "unix://$work/docker.sock" rm -f $(docker -H "unix://$work/docker.sock" ps -aq) >/dev/null 2>&1
        kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null
    fi
    [ -n "${BENCH_DOCKER_BRIDGE:-}" ] && ip link del berthbench0 2>/dev/null
    if command -v podman >/dev/null; then
        podman --root "$work/podman" --runroot "$work/podman-run" rm -af >/dev/null 2>&1
        podman --root "$work/podman" --runroot "$work/podman-run" system reset -f >/dev/null 2>&1
    fi
    unmount_under "$work"
    rm -rf "$work"
}
trap cleanup EXIT

# One busybox image, saved once and loaded into each engine.
export BERTH_DATA_ROOT="$work/berth-data"
berth=("$bin" -H "unix://$work/berth/berth.sock")
busybox_image "$work" "$bin"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { echo "scale=1; $1 / 1000000" | bc; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

engines=(berth)
"${berth[@]}" run --rm busybox true >/dev/null   # starts the daemon
if command -v dockerd >/dev/null; then
    bridge=(--bridge=none)
    if [ -n "${BENCH_DOCKER_BRIDGE:-}" ]; then
        ip link add berthbench0 type bridge
        ip addr add 10.231.0.1/24 dev berthbench0
        ip link set berthbench0 up
        bridge=(--bridge=berthbench0)
        echo "docker: on its own bridge berthbench0 (a veth per container)" >&2
    fi
    dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" -H "unix://$work/docker.sock" \
        --pidfile "$work/docker.pid" "${bridge[@]}" --iptables=false --ip6tables=false \
        >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 100); do docker -H "unix://$work/docker.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
    docker -H "unix://$work/docker.sock" load -i "$work/busybox.tar" >/dev/null
    engines+=(docker)
else
    echo "docker: not installed (apt-get install docker.io), skipped" >&2
fi
if command -v podman >/dev/null; then
    podman --root "$work/podman" --runroot "$work/podman-run" load -i "$work/busybox.tar" >/dev/null 2>&1 \
        && engines+=(podman)
fi
cli() {
    case "$1" in
        berth) shift; "${berth[@]}" "$@" ;;
        docker) shift; docker -H "unix://$work/docker.sock" "$@" ;;
        podman) shift
            # Podman asks for nofile and nproc limits past this host's hard
            # ones (no CAP_SYS_RESOURCE here) unless given others.
            if [ "$1" = run ]; then
                shift
                set -- run --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" \
                    --ulimit "nproc=$(( $(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768 )):$(( $(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768 ))" "$@"
            fi
            podman --runtime runc --root "$work/podman" --runroot "$work/podman-run" "$@" ;;
    esac
}

declare -A run_ms batch_ms daemon_mb shim_mb
for e in "${engines[@]}"; do
    cli "$e" run --rm busybox true >/dev/null   # warm
done
for i in $(seq "$n"); do
    for e in "${engines[@]}"; do
        start=$(date +%s%N)
        cli "$e" run --rm busybox true >/dev/null
        echo $(( $(date +%s%N) - start )) >> "$work/t-$e"
    done
done
for e in "${engines[@]}"; do
    run_ms[$e]=$(ms "$(median < "$work/t-$e")")
    start=$(date +%s%N)
    for i in $(seq 20); do cli "$e" run -d --name "sleeper$i" busybox sleep 600 >/dev/null; done
    batch_ms[$e]=$(ms $(( $(date +%s%N) - start )))
    sleep 1
    case "$e" in
        berth)
            d=$(pgrep -f "daemon -H unix://$work/berth/berth.sock" | head -1)
            daemon_mb=$(echo "scale=1; $(rss_kb "$d") / 1024" | bc)
            s=$(pgrep -f "berth shim $work" | head -1) ;;
        docker)
            d=$(rss_kb "$dockerd_pid"); c=$(pgrep -f "containerd --config $work/docker-exec" | head -1)
            [ -n "$c" ] || c=$(pgrep -x containerd | head -1)
            daemon_mb=$(echo "scale=1; ($d + $(rss_kb "${c:-0}")) / 1024" | bc)
            s=$(pgrep -f "containerd-shim.*$work" | head -1); [ -n "$s" ] || s=$(pgrep -f containerd-shim | head -1) ;;
        podman)
            daemon_mb="0 (no daemon)"
            s=$(pgrep -x conmon | head -1) ;;
    esac
    daemon_mb[$e]=$daemon_mb
    shim_mb[$e]=$(echo "scale=1; $(rss_kb "${s:-0}") / 1024" | bc)
    cli "$e" rm -f $(for i in $(seq 20); do echo "sleeper$i"; done) >/dev/null 2>&1 || true
done

printf "%-8s %18s %18s %16s %12s\n" engine "run --rm true (ms)" "20x run -d (ms)" "daemon RSS (MB)" "shim (MB)"
for e in "${engines[@]}"; do
    printf "%-8s %18s %18s %16s %12s\n" "$e" "${run_ms[$e]}" "${batch_ms[$e]}" "${daemon_mb[$e]}" "${shim_mb[$e]}"
done
for e in "${engines[@]}"; do
    [ "$e" = berth ] && continue
    printf "%s/berth run --rm ratio: %.1fx\n" "$e" "$(echo "${run_ms[$e]} / ${run_ms[berth]}" | bc -l)"
done
