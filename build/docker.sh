#!/usr/bin/env bash
# Starts, stops or reports a private Docker engine for container-mode tests.
# The engine has its own data root and socket outside the repo, no bridge and no iptables rules
# (containers use host networking), and is stopped by the pid in its pidfile.
#
#   bash build/docker.sh start    # prints: export DOCKER_HOST=unix://<sock>
#   bash build/docker.sh status
#   bash build/docker.sh stop
#
# Override the location with ENVOY_DOCKERD_DIR (default /var/tmp/envoy-resilience-dockerd).
set -euo pipefail

BASE="${ENVOY_DOCKERD_DIR:-/var/tmp/envoy-resilience-dockerd}"
SOCK="$BASE/docker.sock"
PIDFILE="$BASE/dockerd.pid"
LOG="$BASE/dockerd.log"
DATA_ROOT="$BASE/data"
# containerd's socket lives below the exec root; unix socket paths must stay short, hence /tmp.
EXEC_ROOT="/tmp/envoy-resilience-dockerd-exec"
START_TIMEOUT_S=60
STOP_TIMEOUT_S=30

die() { echo "docker.sh: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pid_alive() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

engine_answers() {
  docker -H "unix://$SOCK" info >/dev/null 2>&1
}

ensure_installed() {
  if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then return 0; fi
  echo "docker.sh: dockerd or docker CLI missing; installing Debian's docker.io" >&2
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install dockerd and the docker CLI yourself"
  if ! as_root apt-get install -y docker.io >&2; then
    as_root apt-get update >&2
    as_root apt-get install -y docker.io >&2
  fi
  command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"
}

start() {
  if pid_alive && engine_answers; then
    echo "export DOCKER_HOST=unix://$SOCK"
    return 0
  fi
  if pid_alive; then
    die "dockerd (pid $(cat "$PIDFILE")) is running but does not answer on $SOCK; run 'bash build/docker.sh stop' first"
  fi
  ensure_installed
  mkdir -p "$BASE" "$DATA_ROOT" "$EXEC_ROOT"
  rm -f "$PIDFILE" "$SOCK"
  # setsid: the engine must outlive this shell and not receive the caller's terminal signals.
  setsid dockerd \
    --bridge=none --iptables=false --ip-forward=false \
    --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --host "unix://$SOCK" --pidfile "$PIDFILE" \
    >"$LOG" 2>&1 </dev/null &
  local launched=$!
  local waited=0
  until engine_answers; do
    if ! kill -0 "$launched" 2>/dev/null; then
      tail -n 30 "$LOG" >&2 || true
      die "dockerd exited during start-up (log: $LOG)"
    fi
    if [ "$waited" -ge $((START_TIMEOUT_S * 10)) ]; then
      tail -n 30 "$LOG" >&2 || true
      die "dockerd did not answer on $SOCK within ${START_TIMEOUT_S}s (pid $launched, log: $LOG)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "docker.sh: dockerd pid $(cat "$PIDFILE"), log $LOG" >&2
  echo "export DOCKER_HOST=unix://$SOCK"
}

stop() {
  if ! pid_alive; then
    echo "docker.sh: dockerd is not running (no live pid in $PIDFILE)" >&2
    rm -f "$PIDFILE"
    return 0
  fi
  local pid waited=0
  pid="$(cat "$PIDFILE")"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -eq $((STOP_TIMEOUT_S * 10)) ]; then
      echo "docker.sh: dockerd pid $pid ignored SIGTERM for ${STOP_TIMEOUT_S}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$PIDFILE"
  echo "docker.sh: dockerd pid $pid stopped" >&2
}

status() {
  if pid_alive && engine_answers; then
    echo "running: pid $(cat "$PIDFILE"), DOCKER_HOST=unix://$SOCK"
  elif pid_alive; then
    echo "starting or unhealthy: pid $(cat "$PIDFILE") does not answer on $SOCK"
    return 1
  else
    echo "stopped"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: bash build/docker.sh start|stop|status" ;;
esac
