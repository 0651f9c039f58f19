#!/usr/bin/env bash
# From a fresh machine to a running container: installs what is needed,
# builds berth, makes a busybox bundle, and runs it with berth's runtime.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
berth=$("$here/scripts/build-release.sh")

bundle=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
(cd "$bundle/rootfs" && for applet in $(/bin/busybox --list-full); do
    mkdir -p "$(dirname "$applet")"; [ -e "$applet" ] || ln -s /bin/busybox "$applet"; done)
"$berth" runtime spec --bundle "$bundle"
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "echo \"hello from $(hostname), pid $$ in its own namespaces\"; id; uname -sr"]' \
    "$bundle/config.json" > "$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"
"$berth" runtime run --bundle "$bundle" "quickstart-$$"
