#!/usr/bin/env bash
# The builder, berth against Docker (dockerd from Debian's docker.io, with
# its 20.10 client: BuildKit and the classic builder) and Podman (Buildah)
# where installed, in one run, on the same multi-stage Dockerfile: a builder
# stage that packages something (generates files, tars and gzips them) and
# a runner stage that copies the result, plus a file from the context.
#   - cold: `build --no-cache` (base image present, every step runs);
#   - cached: the same build again with nothing changed (median of N).
#
# Every RUN uses the host's network (Docker's and Podman's `--network
# host`, berth's default until bridge networks land): dockerd runs with
# --bridge=none so that the bench changes nothing on the host.
#
#   bench/build.sh [iterations]        (as root; builds berth --release)
set -euo pipefail
n=${1:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
bin=$("$here/scripts/build-release.sh")
work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
dockerd_pid=
# Debian's 20.10 client speaks BuildKit without the buildx plugin.
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=docker
cleanup() {
    set +e
    pkill -f "$work/berth/berth.sock" 2>/dev/null
    if [ -n "$dockerd_pid" ]; then kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null; fi
    if command -v podman >/dev/null; then
        podman --root "$work/podman" --runroot "$work/podman-run" system reset -f >/dev/null 2>&1
    fi
    unmount_under "$work"
    rm -rf "$work"
}
trap cleanup EXIT

# One busybox image, loaded into each engine.
export BERTH_DATA_ROOT="$work/berth-data"
busybox_image "$work" "$bin"

mkdir -p "$work/ctx"
echo "configuration from the context" > "$work/ctx/app.conf"
cat > "$work/ctx/Dockerfile" <<'EOF'
FROM busybox:latest AS builder
WORKDIR /src
RUN for i in $(seq 2000); do echo "record $i of the package"; done > data.txt \
 && mkdir -p /out && tar -czf /out/pkg.tar.gz data.txt
FROM busybox:latest
COPY --from=builder /out/pkg.tar.gz /app/
COPY app.conf /app/
CMD ["tar", "-tzf", "/app/pkg.tar.gz"]
EOF

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { echo "scale=1; $1 / 1000000" | bc; }

engines=(berth)
"$bin" -H "unix://$work/berth/berth.sock" version >/dev/null   # starts the daemon
if command -v dockerd >/dev/null; then
    dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" -H "unix://$work/docker.sock" \
        --pidfile "$work/docker.pid" --bridge=none --iptables=false --ip6tables=false \
        >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 100); do "$docker_cli" -H "unix://$work/docker.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
    "$docker_cli" -H "unix://$work/docker.sock" load -i "$work/busybox.tar" >/dev/null
    engines+=(buildkit classic)
else
    echo "docker: not installed (apt-get install docker.io), skipped" >&2
fi
if command -v podman >/dev/null \
    && podman --root "$work/podman" --runroot "$work/podman-run" load -i "$work/busybox.tar" >/dev/null 2>&1; then
    engines+=(podman)
fi
build() {
    local e=$1; shift
    case "$e" in
        berth) "$bin" -H "unix://$work/berth/berth.sock" build -q "$@" -t bench:app "$work/ctx" ;;
        buildkit) DOCKER_BUILDKIT=1 "$docker_cli" -H "unix://$work/docker.sock" build -q --network host "$@" -t bench:app "$work/ctx" ;;
        classic) DOCKER_BUILDKIT=0 "$docker_cli" -H "unix://$work/docker.sock" build -q --network host "$@" -t bench:app "$work/ctx" ;;
        podman) podman --runtime runc --root "$work/podman" --runroot "$work/podman-run" \
            build -q --network host "$@" -t bench:app "$work/ctx" ;;
    esac
}

declare -A cold_ms cached_ms
for e in "${engines[@]}"; do
    build "$e" --no-cache >/dev/null   # warm: base image unpacked, caches filled
done
for i in $(seq "$n"); do
    for e in "${engines[@]}"; do
        start=$(date +%s%N)
        build "$e" --no-cache >/dev/null
        echo $(( $(date +%s%N) - start )) >> "$work/cold-$e"
        start=$(date +%s%N)
        build "$e" >/dev/null
        echo $(( $(date +%s%N) - start )) >> "$work/cached-$e"
    done
done
for e in "${engines[@]}"; do
    cold_ms[$e]=$(ms "$(median < "$work/cold-$e")")
    cached_ms[$e]=$(ms "$(median < "$work/cached-$e")")
done

printf "%-9s %14s %16s\n" builder "cold (ms)" "cached (ms)"
for e in "${engines[@]}"; do
    printf "%-9s %14s %16s\n" "$e" "${cold_ms[$e]}" "${cached_ms[$e]}"
done
for e in "${engines[@]}"; do
    [ "$e" = berth ] && continue
    printf "%s/berth: cold %.1fx, cached %.1fx\n" "$e" \
        "$(echo "${cold_ms[$e]} / ${cold_ms[berth]}" | bc -l)" \
        "$(echo "${cached_ms[$e]} / ${cached_ms[berth]}" | bc -l)"
done
