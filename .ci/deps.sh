#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh machine: npm
# packages, Debian's Chromium and nginx, PostgreSQL and Redis. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
need_nginx=0
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_nginx=1
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
command -v taskset >/dev/null 2>&1 || apt_packages+=(util-linux)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "deps: installing ${apt_packages[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
if [ "$need_nginx" = 1 ]; then
  echo "deps: installing nginx"
  as_root apt-get update -qq
  # Debian 12 has nginx-light; later releases only nginx.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth and a database "test".
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "deps: starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" postgres 2>/dev/null | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" postgres >/dev/null 2>&1 || true

# Redis on 127.0.0.1:6379.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "deps: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

# npm packages, pinned by the lock files.
npm ci --no-audit --no-fund --loglevel=error
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
if [ -f bench/node-ref/package.json ]; then
  (cd bench/node-ref && npm ci --no-audit --no-fund --loglevel=error)
fi
