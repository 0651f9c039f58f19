#!/usr/bin/env bash
# From a fresh machine to a running container, the whole way round: installs
# what is needed, builds berth, makes a busybox image here, pushes it to
# berth's own registry, removes it, pulls it back, and runs a container from
# the pulled image with berth's runtime. Nothing is fetched from the network
# but Debian's packages and crates.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
berth=$("$here/scripts/build-release.sh")

work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
export BERTH_DATA_ROOT="$work/data"

# Build: a root filesystem of busybox and its applets, imported as an image.
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/busybox"
(cd "$work/rootfs" && for applet in $(/bin/busybox --list-full); do
    mkdir -p "$(dirname "$applet")"; [ -e "$applet" ] || ln -s /bin/busybox "$applet"; done)
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
port=$((20000 + RANDOM % 20000))
image="localhost:$port/quickstart/busybox:v1"
"$berth" import -c 'CMD ["sh"]' "$work/rootfs.tar" "$image"

# Ship: berth's registry, push, forget the image, pull it back.
"$berth" registry serve --addr "127.0.0.1:$port" --root "$work/registry" 2>/dev/null &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
"$berth" push "$image"
"$berth" rmi "$image"
"$berth" pull "$image"
"$berth" images

# Run: the pulled image's unpacked layer as a read-only root.
layer=$("$berth" image inspect --format '{{index .RootFS.Layers 0}}' "$image")
rootfs="$BERTH_DATA_ROOT/snapshots/committed/${layer#sha256:}/fs"
bundle="$work/bundle"
mkdir -p "$bundle"
"$berth" runtime spec --bundle "$bundle"
jq --arg root "$rootfs" '.root = {path: $root, readonly: true} | .process.terminal = false
    | .process.args = ["sh", "-c", "echo \"hello from $(hostname), pid $$ in its own namespaces\"; id; uname -sr"]' \
    "$bundle/config.json" > "$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"
"$berth" runtime run --bundle "$bundle" "quickstart-$$"
