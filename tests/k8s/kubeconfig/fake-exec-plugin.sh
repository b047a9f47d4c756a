#!/bin/sh
# A fake exec credential plugin for the kubeconfig tests. It behaves as the
# kubeconfig's args ask (--mode MODE) and records each run:
#   FAKE_PLUGIN_LOG  file that gets one line per run (the run count is its length)
#   FAKE_PLUGIN_INFO file that receives $KUBERNETES_EXEC_INFO
#   FAKE_PLUGIN_EXPIRY expirationTimestamp to report (none when unset)
# Modes: token, cert, fail, slow, garbage, empty, wrongkind, notoken.
mode=token
while [ $# -gt 0 ]; do
	case "$1" in
	--mode) mode=$2; shift 2 ;;
	*) shift ;;
	esac
done
[ -n "$FAKE_PLUGIN_LOG" ] && echo "run greeting=$FAKE_PLUGIN_GREETING" >>"$FAKE_PLUGIN_LOG"
[ -n "$FAKE_PLUGIN_INFO" ] && printf '%s' "$KUBERNETES_EXEC_INFO" >"$FAKE_PLUGIN_INFO"
n=$( [ -n "$FAKE_PLUGIN_LOG" ] && wc -l <"$FAKE_PLUGIN_LOG" | tr -d ' ' || echo 1)
expiry=
[ -n "$FAKE_PLUGIN_EXPIRY" ] && expiry=", \"expirationTimestamp\": \"$FAKE_PLUGIN_EXPIRY\""
api=client.authentication.k8s.io/v1
case "$mode" in
token)
	echo "{\"apiVersion\": \"$api\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"plugin-token-$n\"$expiry}}" ;;
cert)
	printf '{"apiVersion": "%s", "kind": "ExecCredential", "status": {"clientCertificateData": "-----BEGIN CERTIFICATE-----\\nZmFrZQ==\\n-----END CERTIFICATE-----\\n", "clientKeyData": "-----BEGIN PRIVATE KEY-----\\nZmFrZQ==\\n-----END PRIVATE KEY-----\\n"%s}}\n' "$api" "$expiry" ;;
fail)
	echo "error: you must be logged in to the fake cloud" >&2
	exit 3 ;;
slow)
	sleep 30 ;;
garbage)
	echo "this is not json" ;;
wrongkind)
	echo "{\"apiVersion\": \"$api\", \"kind\": \"Pod\"}" ;;
empty)
	true ;;
notoken)
	echo "{\"apiVersion\": \"$api\", \"kind\": \"ExecCredential\", \"status\": {}}" ;;
esac
