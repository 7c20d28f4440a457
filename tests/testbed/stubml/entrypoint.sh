#!/bin/sh
# PID 1 of the stub immich-machine-learning: log like the real one, then serve HTTP on 3003 with
# `nc -ll -e handler.sh` (one forked handler per connection). SIGTERM ends it at once, so `compose down`
# does not wait for the kill timeout.
. /usr/src/mode.sh

echo "Initializing Immich ML [$IMMICH_SOURCE_REF]"
date +%s > /tmp/stub-started
if [ "$(stub_mode)" = crash ]; then
    echo "stub: mode crash, exiting with status 1" >&2
    exit 1
fi

nc -ll -p "${IMMICH_PORT:-3003}" -e /usr/src/handler.sh &
nc_pid=$!
trap 'kill "$nc_pid" 2>/dev/null; exit 0' TERM INT
echo "stub: listening on port ${IMMICH_PORT:-3003} (device $DEVICE)"
wait "$nc_pid"
