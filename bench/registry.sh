#!/usr/bin/env bash
# Registry throughput, berth against its peers, in one run.
#
#   bench/registry.sh [BERTH] [ROUNDS]
#
# Two images of random (incompressible) data in gzip layers, as registry
# images are: "one", a single 200 MiB layer, and "multi", eight 25 MiB
# layers. Two comparisons:
#
#   client: `berth push`/`berth pull` against `skopeo copy`, both talking to
#           Debian's docker-registry (distribution 2.8), whose storage is
#           wiped before every push (skopeo would otherwise turn the second
#           push into a cross-repository mount);
#   server: skopeo pushing to and pulling from `berth registry serve` and
#           distribution, each with fresh storage.
#
# berth's pull also unpacks the layers into snapshots (what a pull is for:
# decompress, hash the diff ID, write the files); skopeo's only stores the
# blobs, in an OCI layout. Where podman is installed, its pull (which
# unpacks, as berth's does) is measured too. berth makes every blob durable (fsync) before it
# counts as stored; skopeo does not sync. BENCH_DIR=/dev/shm runs everything
# on tmpfs, taking the disk out of the comparison. Prints the median
# MB/s of each (1 MB = 10^6 bytes) and the ratios. Needs root (berth's
# pull unpacks as root), skopeo, docker-registry and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${1:-$("$here/scripts/build-release.sh")}
ROUNDS=${2:-3}
PODMAN=$(command -v podman || true)
for tool in skopeo docker-registry python3; do
    command -v "$tool" >/dev/null || { echo "registry.sh: $tool is not installed" >&2; exit 1; }
done
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/berth-bench-registry.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The two images, as OCI layouts (for skopeo) and their tars (for berth load).
python3 - "$WORK" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
work = sys.argv[1]
def blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)
    with open(f"{layout}/blobs/sha256/{digest}", "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}
for name, layers, size in (("one", 1, 200 << 20), ("multi", 8, 25 << 20)):
    layout = f"{work}/oci-{name}"
    descs, diff_ids = [], []
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            info = tarfile.TarInfo(f"data-{i}")
            info.size = size
            t.addfile(info, io.BytesIO(os.urandom(size)))
        data = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
        # gzip-compressed, as registry images are: no client compresses
        # (skopeo would gzip an uncompressed layer on push) and both
        # preserve the blobs as they are.
        d = blob(layout, gzip.compress(data, compresslevel=1, mtime=0))
        descs.append(dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **d))
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **blob(layout, config)),
                           "layers": descs}).encode()
    m = blob(layout, manifest)
    with open(f"{layout}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [dict(mediaType="application/vnd.oci.image.manifest.v1+json",
                   annotations={"org.opencontainers.image.ref.name": "img",
                                "io.containerd.image.name": f"bench.local/{name}:v1"}, **m)]}, f)
    with open(f"{layout}/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
EOF
for name in one multi; do
    tar -C "$WORK/oci-$name" -cf "$WORK/oci-$name.tar" .
done
bytes_of() { du -sb "$WORK/oci-$1/blobs" | cut -f1; }

# Registries on free ports, each with its own storage; they set ADDR.
# (Not run in $(...): the pid list and port counter must stay in this shell.)
port=5400
start_distribution() {
    port=$((port + 1))
    local dir="$WORK/dist-$port"
    mkdir -p "$dir"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOF
    docker-registry serve "$dir/config.yml" >/dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    ADDR="127.0.0.1:$port"
}
start_berth_registry() {
    port=$((port + 1))
    "$BERTH" registry serve --addr "127.0.0.1:$port" --root "$WORK/berth-reg-$port" 2>/dev/null &
    PIDS+=($!)
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    ADDR="127.0.0.1:$port"
}
stop_registries() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
    rm -rf "$WORK"/dist-* "$WORK"/berth-reg-*
}

now() { date +%s.%N; }
# Seconds taken by "$@" (output discarded, failure fatal).
timed() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mbps() { echo "scale=1; $1 / 1000000 / $2" | bc -l; }

declare -A RESULT
record() { RESULT["$1"]+="$2"$'\n'; }

berth_env() { env BERTH_DATA_ROOT="$1" DOCKER_CONFIG="$WORK/docker" "$BERTH" "${@:2}"; }

for round in $(seq "$ROUNDS"); do
    for name in one multi; do
        # --- clients, against distribution -------------------------------
        start_distribution; reg=$ADDR
        record "skopeo push $name" "$(timed skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci-$name:img" "docker://$reg/bench/$name:v1")"
        rm -rf "$WORK/out"
        record "skopeo pull $name" "$(timed skopeo copy -q --src-tls-verify=false "docker://$reg/bench/$name:v1" "oci:$WORK/out:img")"
        stop_registries
        start_distribution; reg=$ADDR
        root="$WORK/berth-root"
        rm -rf "$root"
        berth_env "$root" load -q -i "$WORK/oci-$name.tar"
        berth_env "$root" tag "bench.local/$name:v1" "$reg/bench/$name:v1"
        record "berth push $name" "$(timed berth_env "$root" push -q "$reg/bench/$name:v1")"
        rm -rf "$root"
        record "berth pull $name" "$(timed berth_env "$root" pull -q "$reg/bench/$name:v1")"
        rm -rf "$root"
        if [ -n "$PODMAN" ]; then
            # A peer that unpacks what it pulls, as berth does.
            proot="$WORK/podman"
            record "podman pull $name" "$(timed podman --root "$proot/root" --runroot "$proot/run" pull -q --tls-verify=false "$reg/bench/$name:v1")"
            podman --root "$proot/root" --runroot "$proot/run" system reset -f >/dev/null 2>&1 || true
            rm -rf "$proot"
        fi
        stop_registries
        # --- servers, under skopeo ----------------------------------------
        for server in distribution berth; do
            if [ "$server" = berth ]; then start_berth_registry; else start_distribution; fi; reg=$ADDR
            record "$server-server push $name" "$(timed skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci-$name:img" "docker://$reg/bench/$name:v1")"
            rm -rf "$WORK/out"
            record "$server-server pull $name" "$(timed skopeo copy -q --src-tls-verify=false "docker://$reg/bench/$name:v1" "oci:$WORK/out:img")"
            stop_registries
        done
    done
done

printf '%-28s %10s %10s\n' "measurement ($ROUNDS rounds)" "median s" "MB/s"
declare -A SPEED
pulls=("skopeo pull" "berth pull")
[ -n "$PODMAN" ] && pulls+=("podman pull")
for key in "skopeo push" "berth push" "${pulls[@]}" \
           "distribution-server push" "berth-server push" "distribution-server pull" "berth-server pull"; do
    for name in one multi; do
        secs=$(printf '%s' "${RESULT["$key $name"]}" | median)
        speed=$(mbps "$(bytes_of "$name")" "$secs")
        SPEED["$key $name"]=$speed
        printf '%-28s %10.3f %10s\n' "$key $name" "$secs" "$speed"
    done
done
echo
for name in one multi; do
    for op in push pull; do
        printf 'client %-5s %-5s berth/skopeo       %5.2fx\n' "$op" "$name" \
            "$(echo "${SPEED["berth $op $name"]} / ${SPEED["skopeo $op $name"]}" | bc -l)"
        printf 'server %-5s %-5s berth/distribution %5.2fx\n' "$op" "$name" \
            "$(echo "${SPEED["berth-server $op $name"]} / ${SPEED["distribution-server $op $name"]}" | bc -l)"
    done
    if [ -n "$PODMAN" ]; then
        printf 'client pull  %-5s berth/podman (both unpack) %5.2fx\n' "$name" \
            "$(echo "${SPEED["berth pull $name"]} / ${SPEED["podman pull $name"]}" | bc -l)"
    fi
done
