#!/usr/bin/env bash
# Installs everything berth's build and tests need on Debian 12, as root.
# The peers (runc, crun, containerd, podman) are what the interoperability
# tests and bench/ compare berth with.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (apt-get install)" >&2
    exit 1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    libseccomp-dev busybox-static procps jq tmux iproute2 time bc \
    runc crun containerd podman docker-registry skopeo umoci apache2-utils openssl >/dev/null
# Debian's dockerd: bench/engine.sh's peer, and BERTH_TEST_DOCKERD=1 runs
# the docker CLI suite against it. Nothing needs it to run.
apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
    || echo "install-deps.sh: docker.io could not be installed; bench/engine.sh will skip Docker" >&2
# For scripts/vm-check.sh and its test (pure cgroup v1 and v2 in a VM). A
# machine where these cannot be installed still runs everything else: the
# VM test skips without them.
apt-get install -y -qq --no-install-recommends qemu-system-x86 linux-image-amd64 cpio file >/dev/null \
    || echo "install-deps.sh: qemu or a kernel image could not be installed; the VM check will be skipped" >&2
if ! command -v cargo-nextest >/dev/null && ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
