# Shared by the bench scripts (sourced).

# busybox_rootfs DIR: a root filesystem of busybox and links for its applets.
busybox_rootfs() {
    mkdir -p "$1/bin"
    cp /bin/busybox "$1/bin/"
    (cd "$1" && for a in $(/bin/busybox --list-full); do
        mkdir -p "$(dirname "$a")"; [ -e "$a" ] || ln -s /bin/busybox "$a"; done)
}

# unmount_under DIR: lazily unmounts everything mounted below DIR, deepest first.
unmount_under() {
    for m in $(awk -v w="$1" '$5 ~ w {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
}

# busybox_image WORK BERTH: the busybox image, imported as busybox:latest
# into BERTH's data root (BERTH_DATA_ROOT) and saved to WORK/busybox.tar
# for the other engines to load.
busybox_image() {
    busybox_rootfs "$1/rootfs"
    tar -C "$1/rootfs" -cf "$1/rootfs.tar" .
    "$2" import -c 'CMD ["sh"]' "$1/rootfs.tar" busybox:latest >/dev/null
    "$2" save -o "$1/busybox.tar" busybox:latest
}
