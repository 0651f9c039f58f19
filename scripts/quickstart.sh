#!/usr/bin/env bash
# From a fresh machine to a running container, the whole way round: installs
# what is needed, builds berth, makes a busybox image here, pushes it to
# berth's own registry, removes it, pulls it back, runs containers from
# the pulled image through the engine (`berth run`, `ps`, `exec`), and
# builds an image from a multi-stage Dockerfile on it (`berth build`). Nothing
# is fetched from the network but Debian's packages and crates.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
berth=$("$here/scripts/build-release.sh")

work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
    # The daemon the first `berth run` started, on this run's own socket.
    pkill -f "daemon -H unix://$work/run/berth.sock" 2>/dev/null
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

# Run: the engine. The first `berth run` starts a daemon on the socket
# (here a private one), which runs each container under a small shim.
export BERTH_HOST="unix://$work/run/berth.sock"
"$berth" run --rm "$image" sh -c 'echo "hello from $(hostname), pid $$ in its own namespaces"; id; uname -sr'
"$berth" run -d --name quickstart-web "$image" sh -c 'while true; do echo tick; sleep 1; done'
"$berth" ps
"$berth" exec quickstart-web sh -c 'echo "exec sees: $(ps | wc -l) lines of ps"'
"$berth" rm -f quickstart-web

# Build: a two-stage Dockerfile on the pulled image; the runner stage
# copies what the builder stage made. A rebuild comes from the cache.
mkdir -p "$work/app"
echo "a file from the build context" > "$work/app/notes.txt"
cat > "$work/app/Dockerfile" <<EOF
FROM $image AS builder
RUN mkdir -p /out && echo 'echo "hello from an image berth built: \$(cat /app/notes.txt)"' > /out/hello.sh
FROM $image
COPY --from=builder /out/hello.sh /app/
COPY notes.txt /app/
CMD ["sh", "/app/hello.sh"]
EOF
"$berth" build -t quickstart/app "$work/app"
"$berth" build -t quickstart/app "$work/app"
"$berth" run --rm quickstart/app
