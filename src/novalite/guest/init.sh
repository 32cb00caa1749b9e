#!/bin/busybox sh
# /init of novalite's default guest (busybox initramfs built by novalite.guest.builder).
# Does what cloud-init does for novalite's features:
#   1. loads the drivers listed in /etc/novalite-modules (virtio, CD-ROM, iso9660/vfat, ACPI button)
#   2. brings up each ethN with DHCP (busybox udhcpc)
#   3. reads meta_data.json (and user_data) from the config drive (label config-2, iso9660
#      or vfat), else from the metadata service http://169.254.169.254/openstack/latest/
#   4. sets the hostname, installs the public keys into /root/.ssh/authorized_keys,
#      runs user_data when it begins with "#!"
#   5. prints on the serial console:
#        novalite-guest: uuid=<uuid> hostname=<hostname> source=<config-drive|metadata-service>
#        novalite-guest: key=<comment or SHA256 fingerprint>     (one line per key)
#        novalite-guest ready <uuid>
#        novalite-guest: disks <vda sr0 ...>   novalite-guest: nics <eth0 ...>
#   6. stays up until the ACPI power button (QMP system_powerdown), then powers off cleanly.
#   SSH: dropbear on port 22 with a host key made at boot ("novalite-guest: ssh port 22 <fp>")
#   7. then reports hot-plugged disks and NICs: "novalite-guest: disk added vdb", "disk removed
#      vdb", "nic added eth1 <mac> <addr>", "nic removed eth1".
# Kernel command line knobs: novalite.shell=1 (root shell on ttyS0), novalite.poweroff=1.
/bin/busybox --install -s /bin
export PATH=/bin
umask 022
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /mnt/config /var/run /var/log /etc/acpi/PWRF /root/.ssh /tmp
say() { echo "novalite-guest: $*"; }
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n1; }

# 1. drivers (ordered, dependencies first)
while read -r ko; do insmod "$ko" 2>/dev/null; done </etc/novalite-modules

# 6 (set up first, so that a power-down sent right after the ready line is not lost)
printf '#!/bin/sh\necho "novalite-guest: power button, powering off" >/dev/console\npoweroff\n' >/etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
acpid -c /etc/acpi
trap 'sync; poweroff -f' USR2

# 2. network
cat >/etc/udhcpc.script <<'EOS'
#!/bin/sh
case "$1" in bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    # option 121 (classless static routes: "dest hop dest hop ..."), e.g. 169.254.169.254/32 via
    # the DHCP server, where a network's metadata proxy listens
    set -- $staticroutes
    while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    for d in $dns; do echo "nameserver $d"; done >/etc/resolv.conf ;;
esac
EOS
chmod 755 /etc/udhcpc.script
ip link set lo up
# DHCP on every ethN (a second NIC may carry only the metadata service); succeeds if one got a lease.
net_up() {
    up=1
    for path in /sys/class/net/eth*; do
        [ -e "$path" ] || continue
        nic=${path##*/}
        ip link set "$nic" up
        if udhcpc -i "$nic" -n -q -t 5 -T 1 -O staticroutes -s /etc/udhcpc.script >/dev/null 2>&1; then
            say "net $nic $(ip -4 -o addr show "$nic" | awk '{print $4}')"
            up=0
        else
            say "net $nic no DHCP answer"
        fi
    done
    return $up
}

# 3. metadata: config drive first
find_config_drive() {
    # Disks appear asynchronously: look for the label until ~1.5 s after the first disk shows up
    # (at most ~5 s), then probe each disk's content once, in case its label was not seen.
    settled=0
    for _ in $(seq 50); do
        dev=$(findfs LABEL=config-2 2>/dev/null || findfs LABEL=CONFIG-2 2>/dev/null) && { echo "$dev"; return 0; }
        for d in /dev/vd? /dev/sd? /dev/sr?; do [ -b "$d" ] && { settled=$((settled + 1)); break; }; done
        [ $settled -ge 15 ] && break
        sleep 0.1
    done
    for d in /dev/sr? /dev/vd? /dev/sd?; do
        [ -b "$d" ] || continue
        mount -o ro "$d" /mnt/config 2>/dev/null || continue
        found=no; [ -f /mnt/config/openstack/latest/meta_data.json ] && found=yes
        umount /mnt/config
        [ $found = yes ] && { echo "$d"; return 0; }
    done
    return 1
}
md=/run/meta_data.json
ud=/run/user_data
rm -f $md $ud
source=none
if dev=$(find_config_drive) && mount -o ro "$dev" /mnt/config; then
    cp /mnt/config/openstack/latest/meta_data.json $md 2>/dev/null && source=config-drive
    [ -f /mnt/config/openstack/latest/user_data ] && cp /mnt/config/openstack/latest/user_data $ud
    umount /mnt/config
fi

# GET http://169.254.169.254$1 into $2; fails unless the answer is 200.
http_get() {
    rm -f /run/http.out
    printf 'GET %s HTTP/1.0\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n' "$1" |
        nc -w 10 169.254.169.254 80 >/run/http.out 2>/dev/null
    head -n1 /run/http.out | grep -q '^HTTP/1\.[01] 200' || return 1
    # body = everything after the first empty (CR)LF line
    awk 'body {print; next} /^\r?$/ {body=1}' /run/http.out >"$2"
}
net=down
net_up && net=up
if [ $source = none ] && [ $net = up ]; then
    for _ in 1 2 3; do
        http_get /openstack/latest/meta_data.json $md && { source=metadata-service; break; }
        sleep 0.5
    done
    [ $source = metadata-service ] && { http_get /openstack/latest/user_data $ud || rm -f $ud; }
fi

# meta_data.json is one JSON object from json.dumps: small sed/awk extraction is enough.
jstr() { tr ',{}' '\n\n\n' <$md | sed -n "s/^ *\"$1\" *: *\"\([^\"]*\)\".*/\1/p" | head -n1; }
uuid=unknown
if [ $source != none ]; then
    uuid=$(jstr uuid)
    fqdn=$(jstr hostname); [ -n "$fqdn" ] || fqdn=$(jstr name)
    host=${fqdn%%.*}
    if [ -n "$host" ]; then
        hostname "$host"
        echo "$host" >/etc/hostname
        echo "127.0.1.1 $fqdn $host" >>/etc/hosts
    fi
    say "uuid=$uuid hostname=$host source=$source"
    # 4. public keys: the values of the "public_keys" object
    { cat $md; echo; } | sed -n 's/.*"public_keys": *{\([^}]*\)}.*/\1/p' | sed 's/", *"/"\n"/g' |
        sed -n 's/^ *"[^"]*": *"\(.*\)" *$/\1/p' | sed 's/\\n$//; s/\\n/\n/g' | grep -v '^$' >/root/.ssh/authorized_keys
    chmod 700 /root/.ssh; chmod 600 /root/.ssh/authorized_keys
    while read -r ktype kdata kcomment; do
        [ -n "$kdata" ] || continue
        fp=$(echo "$kdata" | base64 -d 2>/dev/null | sha256sum | cut -d' ' -f1)
        fp=SHA256:$(printf "$(echo "$fp" | sed 's/../\\x&/g')" | base64 | tr -d '=\n')
        say "key=${kcomment:-$fp} type=$ktype fingerprint=$fp"
    done </root/.ssh/authorized_keys
    if [ -f $ud ] && [ "$(head -c 2 $ud)" = "#!" ]; then
        chmod 700 $ud
        say "running user_data"
        $ud
        say "user_data exit=$?"
    elif [ -f $ud ]; then
        say "user_data is not a script (no #!): ignored"
    fi
else
    say "no config drive and no metadata service (network $net)"
fi

# SSH: dropbear on port 22 (when the image has it), a host key made at first boot, root logs in
# with a key from /root/.ssh/authorized_keys only (-s: no passwords)
if [ -x /usr/sbin/dropbear ]; then
    [ -f /etc/passwd ] || echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
    [ -f /etc/group ] || echo 'root:x:0:' >/etc/group
    [ -f /etc/shells ] || echo /bin/sh >/etc/shells
    mkdir -p /etc/dropbear /dev/pts
    mount -t devpts devpts /dev/pts 2>/dev/null
    hostkey=/etc/dropbear/dropbear_ed25519_host_key
    [ -f $hostkey ] || /usr/bin/dropbearkey -t ed25519 -f $hostkey >/dev/null 2>&1
    if /usr/sbin/dropbear -r $hostkey -p 22 -s </dev/null >/dev/null 2>&1; then
        say "ssh port 22 $(/usr/bin/dropbearkey -y -f $hostkey 2>/dev/null | sed -n 's/^Fingerprint: //p')"
    else
        say "ssh failed to start"
    fi
fi

devices() { for b in /sys/block/*; do case ${b##*/} in loop*|ram*) ;; *) printf '%s ' "${b##*/}";; esac; done; }
nics() { for n in /sys/class/net/*; do [ "${n##*/}" = lo ] || printf '%s ' "${n##*/}"; done; }
say "disks $(devices)"
say "nics $(nics)"
echo "novalite-guest ready $uuid"
# 7. hot-plug: report disks and NICs as they come and go (attach/detach of volumes and interfaces)
( disks=$(devices); links=$(nics)
  while sleep 1; do
      now=$(devices)
      for d in $now; do case " $disks " in *" $d "*) ;; *) say "disk added $d";; esac; done
      for d in $disks; do case " $now " in *" $d "*) ;; *) say "disk removed $d";; esac; done
      disks=$now
      now=$(nics)
      for n in $now; do case " $links " in *" $n "*) ;; *)
          ip link set "$n" up
          udhcpc -i "$n" -n -q -t 5 -T 1 -O staticroutes -s /etc/udhcpc.script >/dev/null 2>&1
          say "nic added $n $(cat /sys/class/net/$n/address) $(ip -4 -o addr show "$n" | awk '{print $4}')";; esac; done
      for n in $links; do case " $now " in *" $n "*) ;; *) say "nic removed $n";; esac; done
      links=$now
  done ) </dev/null >/dev/console 2>&1 &
[ "$(arg novalite.poweroff)" = 1 ] && { sync; poweroff -f; }

# Stay up under busybox init, which performs poweroff/reboot (acpid runs "poweroff").
{ echo "::sysinit:/bin/true"
  echo "::shutdown:/bin/sync"
  [ "$(arg novalite.shell)" = 1 ] && echo "ttyS0::respawn:/bin/getty -n -l /bin/sh 115200 ttyS0"
  # the serial console answers each line typed on it (proof of two-way I/O; nothing is run)
  [ "$(arg novalite.shell)" = 1 ] ||
      echo "ttyS0::respawn:/bin/sh -c 'read -r l && echo \"novalite-guest: console read: \$l\"'"
} >/etc/inittab
exec /bin/init
