#!/usr/bin/env bash
# Start the Docker daemon if it does not answer (systemd when it runs, else dockerd in the background).
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
    :
else
    echo "Starting dockerd in the background (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 60); do
    if docker info >/dev/null 2>&1; then exit 0; fi
    sleep 1
done
echo "start-dockerd.sh: the Docker daemon did not come up in 60 s; see /var/log/dockerd.log" >&2
exit 1
