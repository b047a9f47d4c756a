# k8s_emulator.sh — the k8s backend's stand-in for the CLI suites that use it
# (test_k8s_cli.sh, test_port_forward.sh). Source it with $WORK set, then
# start_k8s_emulator PREFIX TOKEN: the real helm ($SBX_HELM, fetched into
# build/tools), certificates, tests/k8s/emulator.py accepting TOKEN, and a
# kubeconfig ($KUBECONFIG) whose context "emu" (namespace evals) reaches it.
# Sets EMU_PID and PORT; the emulator runs while fd 3 stays open. A step
# that fails prints "FAIL PREFIX_..." and exits the suite.

start_k8s_emulator() { # prefix, token
	local prefix=$1 token=$2
	HELM=$(tests/chart/get-helm.sh build/tools 4 2>"$WORK/helm.err") ||
		{ echo "FAIL ${prefix}_helm: $(tail -3 "$WORK/helm.err")"; exit 1; }
	export SBX_HELM=$HELM SBX_K8S_AGENT_DIR=bin
	tests/net/make-certs.sh "$WORK/certs" >/dev/null 2>&1 ||
		{ echo "FAIL ${prefix}_certs: make-certs.sh failed"; exit 1; }
	mkfifo "$WORK/emu.in"
	python3 tests/k8s/emulator.py --tls "$WORK/certs" --root "$WORK/pods" --token "$token" \
		<"$WORK/emu.in" >"$WORK/emu.out" &
	EMU_PID=$!
	exec 3>"$WORK/emu.in" # the emulator runs while this stays open
	for _ in $(seq 100); do [ -s "$WORK/emu.out" ] && break; sleep 0.1; done
	PORT=$(awk '/^PORT/ {print $2}' "$WORK/emu.out")
	[ -n "$PORT" ] || { echo "FAIL ${prefix}_emulator: it did not start"; exit 1; }
	export KUBECONFIG=$WORK/kubeconfig
	cat >"$KUBECONFIG" <<KC
{"apiVersion": "v1", "kind": "Config", "current-context": "emu",
 "clusters": [{"name": "emu", "cluster": {"server": "https://127.0.0.1:$PORT",
   "certificate-authority-data": "$(base64 -w0 "$WORK/certs/ca.pem")"}}],
 "users": [{"name": "u", "user": {"token": "$token"}}],
 "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u", "namespace": "evals"}}]}
KC
	chmod 600 "$KUBECONFIG"
}
