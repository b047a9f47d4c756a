#!/usr/bin/env bash
# make-certs.sh DIR — a throwaway PKI for the network tests, made with openssl:
#   DIR/ca.pem, ca.key          a self-signed CA
#   DIR/server.pem, server.key  signed by it, for localhost and 127.0.0.1
#   DIR/client.pem, client.key  signed by it (CN=sbx-test-client), for mutual TLS
#   DIR/other-ca.pem            an unrelated CA (verification must fail with it)
# Keys are EC P-256 (quick to make). Certificates are valid for two days.
set -euo pipefail
d=$1
mkdir -p "$d"
cd "$d"
q() { "$@" >/dev/null 2>&1; }
newkey() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
newkey ca.key
q openssl req -x509 -new -key ca.key -subj /CN=sbx-test-ca -days 2 -out ca.pem
newkey other-ca.key
q openssl req -x509 -new -key other-ca.key -subj /CN=sbx-other-ca -days 2 -out other-ca.pem
newkey server.key
q openssl req -new -key server.key -subj /CN=localhost -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:api.sbx.test\nextendedKeyUsage=serverAuth\n' >server.ext
q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem
newkey client.key
q openssl req -new -key client.key -subj /CN=sbx-test-client -out client.csr
printf 'extendedKeyUsage=clientAuth\n' >client.ext
q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext -out client.pem
rm -f ./*.csr ./*.ext ./*.srl
