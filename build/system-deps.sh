#!/usr/bin/env bash
# Installs the Debian tools the tests and benchmarks use, when they are missing:
# promtool and the prometheus server (prometheus: the metrics scrape, alert rules, the observability e2e), wrk and h2load
# (load), wasm-objdump (wabt), openssl (npm run certs: the mTLS test certificates), chromium (headless: the demo
# report's render test, tests/e2e/mesh-demo.test.ts).
# Needs root (or sudo) and apt; prints what it would need otherwise and fails.
set -euo pipefail

declare -A PKG=( [promtool]=prometheus [openssl]=openssl [wrk]=wrk [h2load]=nghttp2-client [wasm-objdump]=wabt [chromium]=chromium )
missing=()
for tool in "${!PKG[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PKG[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "system-deps: installing ${missing[*]}"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: no apt-get here; install these packages yourself: ${missing[*]}" >&2
  exit 1
fi
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
