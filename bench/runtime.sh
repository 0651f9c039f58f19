#!/usr/bin/env bash
# Runtime speed and memory: create + start + wait + delete of a busybox
# `true` container (`RUNTIME run`, one process doing all four), berth against
# runc and crun where installed, alternating runs, medians and ratios, and
# the peak RSS of each runtime process.
#
#   bench/runtime.sh [iterations]        (as root; builds berth --release)
#
# crun 1.8 refuses this machine's hybrid cgroup layout unless hugetlb is a
# v1 hierarchy: the script moves hugetlb to v1 for the run (in a private
# mount namespace) and moves it back.
set -euo pipefail
# Run in a private mount namespace: the v1 hugetlb mount below then reaches
# no other namespace (a copy left in one would keep hugetlb off cgroup2 for
# the whole host after we unmount ours), and dies with us at the latest.
if [ -z "${BERTH_BENCH_PRIVATE_NS:-}" ]; then
    BERTH_BENCH_PRIVATE_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
n=${1:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
bin=$("$here/scripts/build-release.sh")
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
ln -s "$bin" "$work/berth-runtime"

hugetlb_moved=
hugetlb_users=()
cleanup() {
    for r in "$work"/root-*; do
        [ -d "$r" ] || continue
        for id in $(ls "$r" 2>/dev/null); do
            case "$r" in
                *berth*) "$work/berth-runtime" --root "$r" delete -f "$id" ;;
                *) "${r##*root-}" --root "$r" delete -f "$id" ;;
            esac >/dev/null 2>&1 || true
        done
    done
    if [ -n "$hugetlb_moved" ]; then
        # Child cgroups keep an unmounted hierarchy alive (and hugetlb off
        # v2): remove them, deepest first, before unmounting.
        find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
        umount /sys/fs/cgroup/hugetlb 2>/dev/null || true
        rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
        # A hierarchy whose removed children were still dying at unmount
        # stays alive, unmounted; mounting and unmounting it again once they
        # are gone releases it.
        for _ in $(seq 25); do
            awk '$1 == "hugetlb" && $2 != 0 {found=1} END {exit !found}' /proc/cgroups || break
            mkdir -p "$work/hugetlb"
            mount -t cgroup -o hugetlb cgroup "$work/hugetlb" 2>/dev/null \
                && find "$work/hugetlb" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null; \
                umount "$work/hugetlb" 2>/dev/null || true
            sleep 0.2
        done
    fi
    # The kernel lets go of an unmounted hierarchy asynchronously: retry.
    for ((i=${#hugetlb_users[@]}-1; i>=0; i--)); do
        for _ in $(seq 50); do
            echo +hugetlb > "${hugetlb_users[$i]}" 2>/dev/null && break
            sleep 0.1
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The bundle: busybox, `true`, no terminal, the runtime's own default spec.
busybox_rootfs "$work/bundle/rootfs"
"$work/berth-runtime" spec --bundle "$work/bundle"
jq '.ociVersion = "1.0.2" | .process.terminal = false | .process.args = ["true"]' "$work/bundle/config.json" > "$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"

runtimes=("$work/berth-runtime")
for peer in runc crun; do
    command -v "$peer" >/dev/null && runtimes+=("$(command -v "$peer")")
done
# A hierarchy unmounted by a previous run is released asynchronously: give
# hugetlb a moment to come back to cgroup2.
if [ -d /sys/fs/cgroup/unified ] && ! [ -d /sys/fs/cgroup/hugetlb ]; then
    for _ in $(seq 50); do
        grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers && break
        sleep 0.1
    done
fi
if command -v crun >/dev/null && [ -d /sys/fs/cgroup/unified ] && ! [ -d /sys/fs/cgroup/hugetlb ] \
    && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers; then
    # Every cgroup2 directory that delegates hugetlb must let go of it,
    # deepest first; they get it back, top first, in cleanup.
    mapfile -t hugetlb_users < <(grep -lw hugetlb $(find /sys/fs/cgroup/unified -name cgroup.subtree_control) 2>/dev/null | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
    for f in "${hugetlb_users[@]}"; do echo -hugetlb > "$f" 2>/dev/null || true; done
    if mkdir -p /sys/fs/cgroup/hugetlb \
        && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null; then
        hugetlb_moved=1
    else
        echo "note: could not move hugetlb to v1; crun may fail here" >&2
    fi
fi

time_bin=/usr/bin/time
[ -x "$time_bin" ] || time_bin=
for i in $(seq "$n"); do
    for rt in "${runtimes[@]}"; do
        name=$(basename "$rt")
        root="$work/root-$name"
        start=$(date +%s%N)
        if [ -n "$time_bin" ]; then
            "$time_bin" -f "%M" -o "$work/rss-$name-$i" "$rt" --root "$root" run --bundle "$work/bundle" "b$i" \
                >/dev/null 2>"$work/err-$name" || { echo "$name failed: $(cat "$work/err-$name")" >&2; exit 1; }
        else
            "$rt" --root "$root" run --bundle "$work/bundle" "b$i" >/dev/null 2>"$work/err-$name" \
                || { echo "$name failed: $(cat "$work/err-$name")" >&2; exit 1; }
        fi
        end=$(date +%s%N)
        echo $(( (end - start) / 1000 )) >> "$work/t-$name"
    done
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-14s %12s %14s\n" runtime "median (ms)" "peak RSS (MB)"
declare -A med
for rt in "${runtimes[@]}"; do
    name=$(basename "$rt")
    med[$name]=$(median "$work/t-$name")
    rss="n/a"
    if [ -n "$time_bin" ]; then
        rss=$(cat "$work"/rss-"$name"-* | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}')
    fi
    printf "%-14s %12.2f %14s\n" "$name" "$(echo "${med[$name]} / 1000" | bc -l)" "$rss"
done
for peer in runc crun; do
    [ -n "${med[$peer]:-}" ] || continue
    printf "berth/%s median ratio: %.2f\n" "$peer" "$(echo "${med[berth-runtime]} / ${med[$peer]}" | bc -l)"
done
