#!/bin/sh
# PID 2 of a test-bed host (tini is PID 1): prepare the kernel interfaces a nested Docker engine needs,
# install this host's SSH keys, start dockerd, then sshd once the engine answers (so an SSH login implies
# a usable engine). On SIGTERM (docker stop) dockerd is stopped first, cleanly, like on a real shutdown.
set -eu

# --privileged is refused on these machines; with the capability set given instead, /sys and the cgroup
# hierarchies come read-only and must be remounted before dockerd can create cgroups.
mount -o remount,rw /sys
for dir in /sys/fs/cgroup/*/; do
    mount -o remount,bind,rw "$dir"
done

# Keys are mounted read-only from the machine; copy them so sshd's ownership/mode checks pass.
install -m 600 /etc/testbed/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
install -m 644 /etc/testbed/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
install -d -o deploy -g deploy -m 700 /home/deploy/.ssh
install -o deploy -g deploy -m 600 /etc/testbed/authorized_keys /home/deploy/.ssh/authorized_keys
mkdir -p /run/sshd

# --dns 127.0.0.1: inner containers get no working resolver, so nothing tries to leave the machine.
# overlay2 is named so a missing /var/lib/docker volume fails loudly instead of falling back to vfs.
dockerd --dns 127.0.0.1 --storage-driver overlay2 &
dockerd_pid=$!
trap 'kill -TERM "$dockerd_pid" 2>/dev/null || true' TERM INT

tries=0
until docker info >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ] || ! kill -0 "$dockerd_pid" 2>/dev/null; then
        echo "testbed-init: dockerd did not come up" >&2
        exit 1
    fi
    sleep 0.1
done

/usr/sbin/sshd -D -e &
echo "testbed-init: ready"

# `wait` returns early when the trap fires; keep waiting until dockerd has really exited.
while kill -0 "$dockerd_pid" 2>/dev/null; do
    wait "$dockerd_pid" || true
done
