#!/usr/bin/env bash
# Test certificates for the mTLS sidecars (envoy-configs/sidecar-mtls-*.yaml): never committed, made on demand.
#   bash build/certs.sh [--out DIR]                 a mesh CA, one certificate per service, a foreign CA
#   bash build/certs.sh [--out DIR] rotate SERVICE  a new key and certificate for SERVICE, swapped in atomically
# DIR defaults to build/out/certs (git-ignored). Per service (service-a, service-b, gateway) DIR/<service>/ holds
#   cert.pem key.pem ca.pem     the service's chain and key (SAN URI spiffe://cluster.local/ns/default/sa/<service>)
#   cert.yaml ca.yaml           SDS resources (Secrets "default" and "ROOTCA", as Istio names them) naming those
#                               files; Envoy watches this folder and reloads on a move into it
# and DIR/foreign/ a CA the mesh does not trust with a certificate claiming service-a's identity.
set -euo pipefail

OUT="build/out/certs"
if [[ "${1:-}" == "--out" ]]; then OUT="$2"; shift 2; fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SERVICES=(service-a service-b gateway)
DAYS=2

spiffe() { echo "spiffe://cluster.local/ns/default/sa/$1"; }

# A CA in DIR (ca.pem, ca.key), self-signed, EC P-256.
make_ca() {
  local dir="$1" cn="$2"
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$DAYS" \
    -subj "/O=resilience-test/CN=$cn" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# A leaf for identity $3 signed by the CA in $2, written as $1/cert.pem and $1/key.pem through temporary names and
# a rename each, so a watcher never reads half a file.
make_leaf() {
  local dir="$1" ca="$2" svc="$3" tmp
  tmp="$(mktemp -d "$dir/.new.XXXXXX")"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=resilience-test/CN=$svc" \
    -keyout "$tmp/key.pem" -out "$tmp/req.csr" 2>/dev/null
  printf 'subjectAltName=URI:%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$(spiffe "$svc")" >"$tmp/ext.cnf"
  # A random serial per certificate: a rotation is visible as a new serial.
  openssl x509 -req -in "$tmp/req.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$DAYS" -extfile "$tmp/ext.cnf" -out "$tmp/cert.pem" 2>/dev/null
  chmod 600 "$tmp/key.pem"
  mv -f "$tmp/key.pem" "$dir/key.pem"
  mv -f "$tmp/cert.pem" "$dir/cert.pem"
  rm -rf "$tmp"
}

# The SDS resources Envoy loads through path_config_source (absolute file names: Envoy's working directory may differ).
write_sds() {
  local dir="$1" tmp
  tmp="$(mktemp -d "$dir/.sds.XXXXXX")"
  cat >"$tmp/cert.yaml" <<EOF
resources:
  - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
    name: default
    tls_certificate:
      certificate_chain: { filename: $dir/cert.pem }
      private_key: { filename: $dir/key.pem }
EOF
  cat >"$tmp/ca.yaml" <<EOF
resources:
  - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
    name: ROOTCA
    validation_context:
      trusted_ca: { filename: $dir/ca.pem }
EOF
  mv -f "$tmp/cert.yaml" "$dir/cert.yaml"
  mv -f "$tmp/ca.yaml" "$dir/ca.yaml"
  rm -rf "$tmp"
}

if [[ "${1:-}" == "rotate" ]]; then
  svc="${2:?rotate needs a service name}"
  [[ -f "$OUT/$svc/cert.pem" ]] || { echo "certs.sh: no $OUT/$svc: run without rotate first" >&2; exit 1; }
  make_leaf "$OUT/$svc" "$OUT/ca" "$svc"
  # Envoy reloads on a move into the watched folder: rewrite the SDS resources last, by rename.
  write_sds "$OUT/$svc"
  openssl x509 -in "$OUT/$svc/cert.pem" -noout -serial
  exit 0
fi

make_ca "$OUT/ca" "mesh-root"
for svc in "${SERVICES[@]}"; do
  mkdir -p "$OUT/$svc"
  cp "$OUT/ca/ca.pem" "$OUT/$svc/ca.pem"
  make_leaf "$OUT/$svc" "$OUT/ca" "$svc"
  write_sds "$OUT/$svc"
done
make_ca "$OUT/foreign-ca" "foreign-root"
mkdir -p "$OUT/foreign"
make_leaf "$OUT/foreign" "$OUT/foreign-ca" service-a
echo "certs.sh: mesh CA, ${SERVICES[*]} and a foreign CA in $OUT"
