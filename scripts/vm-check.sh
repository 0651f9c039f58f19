#!/usr/bin/env bash
# Runs scripts/check-host.sh inside a throwaway VM whose cgroup layout is
# chosen here, so that berth's runtime can be checked on a pure cgroup v2 or
# a pure cgroup v1 host from any machine (hybrid included).
#   scripts/vm-check.sh v2|v1
# Boots the installed Debian kernel (/boot/vmlinuz-*) under qemu with an
# initramfs built here from: the static release berth (scripts/build-release.sh,
# or $BERTH), the busybox rootfs (target/testkit/busybox-rootfs, built from
# busybox-static if missing, or $ROOTFS), check-host.sh, bash with its
# libraries, and static busybox for /init's tools. Prints the check's output; exits with its status.
# Needs: qemu-system-x86, linux-image-amd64, busybox-static, cpio (as root:
#   apt-get install -y qemu-system-x86 linux-image-amd64 busybox-static cpio).
# Optional: $KERNEL (default: newest /boot/vmlinuz-*), $VM_TIMEOUT (s, 600),
# $VM_ACCEL (tcg, or kvm), $VM_APPEND (kernel args, default 'quiet loglevel=1'),
# $VM_MEM (MiB, 1024), $VM_EXTRA (a bash file run in the VM after the check,
# e.g. to run berth by hand; output is shown), $VM_KEEP_LOG=1 (print the full
# console). Cleans up its temporary files.
set -euo pipefail
layout=${1:-}
case "$layout" in v1|v2) ;; *) echo "usage: $0 v2|v1" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)

for tool in qemu-system-x86_64 cpio gzip ldd; do
    command -v "$tool" >/dev/null || { echo "$0: $tool missing (see the header)" >&2; exit 2; }
done
busybox_bin=$(command -v busybox || true)
if [ -z "$busybox_bin" ] || ! file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked'; then
    [ -x /bin/busybox ] && busybox_bin=/bin/busybox
fi
[ -n "$busybox_bin" ] || { echo "$0: busybox (busybox-static) missing" >&2; exit 2; }
kernel=${KERNEL:-$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n1)}
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "$0: no kernel in /boot (linux-image-amd64)" >&2; exit 2; }

berth=${BERTH:-$("$here/scripts/build-release.sh")}

tmp=$(mktemp -d /tmp/berth-vm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,newroot}

rootfs=${ROOTFS:-$here/target/testkit/busybox-rootfs}
if [ ! -x "$rootfs/bin/busybox" ]; then
    rootfs="$tmp/busybox-rootfs"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,root}
    cp "$busybox_bin" "$rootfs/bin/busybox"
    "$busybox_bin" --list-full | while read -r applet; do
        [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
    done
fi

# Tools for /init and check-host.sh: static busybox, then bash and its libraries.
cp "$busybox_bin" "$root/bin/busybox"
"$busybox_bin" --list-full | while read -r applet; do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
rm -f "$root/bin/bash"
cp -L "$(command -v bash)" "$root/bin/bash"
cp "$berth" "$root/bin/berth"
# The shared libraries of bash and of berth (a debug build is dynamic).
for exe in "$(command -v bash)" "$berth"; do
    ldd "$exe" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
done
cp "$here/scripts/check-host.sh" "$root/check-host.sh"
cp -a "$rootfs" "$root/busybox-rootfs"
if [ -n "${VM_EXTRA:-}" ]; then cp "$VM_EXTRA" "$root/extra.sh"; fi
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
echo "root:x:0:0:root:/root:/bin/bash" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"

# Stage 1 moves everything onto a tmpfs and switch_roots into it: pivot_root
# (which berth uses) does not work when the root is the initramfs itself.
cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t tmpfs -o mode=755 tmpfs /newroot
for f in /*; do
    case "$f" in /newroot|/proc) ;; *) /bin/busybox cp -a "$f" /newroot/ ;; esac
done
/bin/busybox mkdir -p /newroot/proc
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot /stage2
EOF
cat > "$root/stage2" <<EOF
#!/bin/bash
layout=$layout
EOF
cat >> "$root/stage2" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /root
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
if [ "$layout" = v2 ]; then
    mount -t cgroup2 none /sys/fs/cgroup
else
    mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
    while read -r name _ _ enabled; do
        case "$name" in \#*) continue ;; esac
        [ "$enabled" = 1 ] || continue
        case "$name" in
            cpu|cpuacct) dir=cpu,cpuacct; opts=cpu,cpuacct ;;
            net_cls|net_prio) dir=net_cls,net_prio; opts=net_cls,net_prio ;;
            *) dir=$name; opts=$name ;;
        esac
        [ -d "/sys/fs/cgroup/$dir" ] && continue
        mkdir -p "/sys/fs/cgroup/$dir"
        mount -t cgroup -o "$opts" cgroup "/sys/fs/cgroup/$dir" || rmdir "/sys/fs/cgroup/$dir"
    done < /proc/cgroups
    [ -d /sys/fs/cgroup/cpu,cpuacct ] && { ln -s cpu,cpuacct /sys/fs/cgroup/cpu; ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct; }
    [ -d /sys/fs/cgroup/net_cls,net_prio ] && { ln -s net_cls,net_prio /sys/fs/cgroup/net_cls; ln -s net_cls,net_prio /sys/fs/cgroup/net_prio; }
fi
echo "===BERTH-VM-BEGIN==="
echo "uname -r: $(uname -r)"
echo "cgroup mounts:"; grep cgroup /proc/mounts | sed 's/^/  /'
bash /check-host.sh /bin/berth /busybox-rootfs
echo "check-host.sh exit: $?"
if [ -f /extra.sh ]; then echo "--- extra.sh ---"; bash /extra.sh 2>&1; fi
echo "===BERTH-VM-END==="
sync
poweroff -f
EOF
chmod 755 "$root/init" "$root/stage2"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$tmp/initramfs.cpio.gz"
rm -rf "$root"

# Software emulation by default: the check boots and runs in seconds, and
# nested KVM has been seen to hang the guest. $VM_ACCEL=kvm opts in.
accel=(-accel tcg,thread=multi)
[ "${VM_ACCEL:-tcg}" = kvm ] && accel=(-enable-kvm)
timeout "${VM_TIMEOUT:-600}" qemu-system-x86_64 "${accel[@]}" -m "${VM_MEM:-1024}" -smp 2 \
    -kernel "$kernel" -initrd "$tmp/initramfs.cpio.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 ${VM_APPEND:-quiet loglevel=1}" \
    -no-reboot -monitor none -serial stdio -display none </dev/null \
    > "$tmp/console.log" 2>&1 || echo "qemu exited with $? (124: timed out)" >&2
tr -d '\r' < "$tmp/console.log" > "$tmp/console.txt"
if [ "${VM_KEEP_LOG:-0}" = 1 ] || ! grep -q '^===BERTH-VM-END===' "$tmp/console.txt"; then
    echo "--- console ---"; cat "$tmp/console.txt"; echo "--- end console ---"
fi
sed -n '/^===BERTH-VM-BEGIN===/,/^===BERTH-VM-END===/p' "$tmp/console.txt" | sed '1d;$d'
grep -q '^check-host.sh exit: 0$' "$tmp/console.txt"
