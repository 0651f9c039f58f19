#!/usr/bin/env bash
# Builds the release berth: fully static (glibc and libseccomp linked in)
# and at a fixed address. A container runtime is started for every
# container operation, so what it costs to load counts: no dynamic loader,
# no shared-library mappings, no relocations at start (peak RSS of `run`
# 3.1 MB here, against 4.1 MB dynamically linked).
#
# The flags need an explicit --target, so that build scripts and proc-macros
# (host artifacts) are still built normally. Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
triple=$(rustc -vV | sed -n 's/^host: //p')
export LIBSECCOMP_LINK_TYPE=static
export LIBSECCOMP_LIB_PATH=${LIBSECCOMP_LIB_PATH:-/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)}
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --quiet --target "$triple" -p berth --manifest-path "$here/Cargo.toml" >&2
echo "${CARGO_TARGET_DIR:-$here/target}/$triple/release/berth"
