#!/usr/bin/env bash
# test_docker_cli.sh — `sbx up --backend docker` against a real dockerd
# (tests/docker/start-engine.sh starts one when none runs) and an offline
# busybox image (tests/docker/image.sh): up/exec/cp/ls/down, several
# services, a service's environment, working_dir and user, errors that
# name the fix, and what a command in a container cannot reach; images
# built (a Dockerfile, .dockerignore, a failing build) or not pullable;
# init, read_only, named volumes, internal networks, depends_on, ports;
# a container Docker restarted; down --all without the state.
# Skips (saying why) only where no engine can run; with SBX_REQUIRE_DOCKER=1
# (CI) that is a failure instead.
set -u
SBX=${SBX_BIN:-build/sbx}
HERE=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=sbx-test/busybox
ENGINE=${SBX_ENGINE_NAME:-docker} # test_podman_cli.sh runs this suite against Podman
INIT=/sbin/docker-init # init: true's process 1
[ "$ENGINE" = podman ] && INIT=/run/podman-init

no_engine() {
	if [ "${SBX_REQUIRE_DOCKER:-0}" = 1 ]; then
		echo "FAIL ${ENGINE}_engine: $1"
		exit 1
	fi
	echo "skip ${ENGINE}_cli: $1"
	exit 0
}
why=$("$HERE/docker/start-engine.sh" 2>&1) || no_engine "no Docker engine: $why"
command -v docker >/dev/null || no_engine "no docker command to build the test image (install docker.io)"
why=$("$HERE/docker/image.sh" 2>&1) || no_engine "cannot build the test image $IMAGE: $why"

# The agent must be static to run in any image: a SAN build's is not, so
# use the plain build's (CI builds it first) or skip.
static_agent() { file -L "$1" 2>/dev/null | grep -q "statically linked\|static-pie linked"; }
if [ -n "${SBX_AGENT:-}" ] && ! static_agent "$SBX_AGENT"; then
	if static_agent "$HERE/../build/sbx-agent"; then
		export SBX_AGENT=$(cd "$HERE/.." && pwd)/build/sbx-agent
	else
		echo "skip ${ENGINE}_cli: $SBX_AGENT is not static (a SAN build) and there is no static build/sbx-agent"
		exit 0
	fi
fi
export SBX_STATE_DIR=$(mktemp -d /tmp/sbx-docker-test.XXXXXX)
WORK=$(mktemp -d /tmp/sbx-docker-work.XXXXXX)
cleanup() {
	"$SBX" down --all >/dev/null 2>&1
	for c in $(docker ps -aq --filter label=sbx.test="$SBX_STATE_DIR") \
		$(docker ps -aq --filter label=sbx.owner="$WORK/nonroot/state"); do docker rm -f "$c" >/dev/null; done
	rm -rf "$SBX_STATE_DIR" "$WORK"
}
trap cleanup EXIT
# Every sandbox name is unique to this run, so parallel runs never meet.
P=dt$$
t() { # name, then a command that must succeed
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   ${ENGINE}_$name"
	else
		echo "FAIL ${ENGINE}_$name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}
containers() { docker ps -aq --filter "label=sbx.sandbox=$1" | wc -l; }

mkdir -p "$WORK/multi"
cat > "$WORK/multi/compose.yaml" <<Y
services:
  web:
    image: $IMAGE
    command: ["sleep", "1000000"]
    working_dir: /srv
  default:
    image: $IMAGE
    environment:
      GREETING: hello there
    working_dir: /home/user
    user: "1000"
Y
if ! "$SBX" up "${P}m" --backend docker -f "$WORK/multi/compose.yaml" >"$WORK/up.out" 2>"$WORK/up.err"; then
	echo "FAIL ${ENGINE}_up: $(cat "$WORK/up.err")"
	exit 1
fi
M=${P}m
export M P WORK IMAGE SBX INIT
t up_prints_name grep -qx "$M" "$WORK/up.out"
t ls_lists sh -c '"$SBX" ls | grep -q "^$M " && "$SBX" ls | grep -q "container .* (running)"'
t ls_json sh -c '"$SBX" ls --json | python3 -c "import json,sys,os; d={s[\"name\"]: s for s in json.load(sys.stdin)}[os.environ[\"M\"]]; assert d[\"backend\"]==\"docker\" and [v[\"name\"] for v in d[\"services\"]]==[\"default\",\"web\"] and all(v[\"running\"] for v in d[\"services\"]), d"'
t two_containers sh -c '[ "$(docker ps -q --filter label=sbx.sandbox=$M | wc -l)" = 2 ]'
t exec_exit_code sh -c '"$SBX" exec $M -- sh -c "exit 7"; [ $? -eq 7 ]'
t exec_stdout_stderr_split sh -c '[ "$("$SBX" exec $M -- sh -c "echo out; echo err >&2" 2>/dev/null)" = out ] && [ "$("$SBX" exec $M -- sh -c "echo out; echo err >&2" 2>&1 >/dev/null)" = err ]'
t exec_stdin_streams sh -c '[ "$(printf "a\nb\n" | "$SBX" exec $M -- wc -l)" = 2 ]'
t exec_not_found_127 sh -c '"$SBX" exec $M -- no-such-cmd 2>/dev/null; [ $? -eq 127 ]'
t exec_timeout_124 sh -c '"$SBX" exec $M --timeout 0.3 -- sleep 30 2>/dev/null; [ $? -eq 124 ]'
t service_env_workdir_user sh -c '[ "$("$SBX" exec $M -- sh -c "echo \$GREETING; pwd; id -u")" = "$(printf "hello there\n/home/user\n1000")" ]'
t exec_as_root_and_env sh -c '[ "$("$SBX" exec $M -u root -e X=y -- sh -c "id -u; echo \$X")" = "$(printf "0\ny")" ]'
t second_service sh -c '[ "$("$SBX" exec $M/web -- sh -c "pwd; cat /proc/1/cmdline | tr \"\\0\" \" \"")" = "$(printf "/srv\nsleep 1000000 ")" ]'
t idles_on_the_agent sh -c '[ "$("$SBX" exec $M -- sh -c "cat /proc/1/cmdline | tr \"\\0\" \" \"")" = "/.sbx/sbx-agent --idle " ]'
t services_are_separate sh -c '"$SBX" exec $M -- sh -c "echo x > /tmp/f" && ! "$SBX" exec $M/web -- cat /tmp/f 2>/dev/null'
# services without networks share compose's default network (sbx-NAME-default, not
# internal, as compose's), where each finds the other by its name
t default_network sh -c '"$SBX" exec $M -u root -- ping -c1 -W2 web >/dev/null && "$SBX" exec $M/web -- ping -c1 -W2 default >/dev/null && [ "$("$SBX" exec $M -- sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \" | sort | tr \"\\n\" \" \"")" = "eth0 lo " ] && [ "$(docker network inspect -f "{{.Internal}} {{index .Labels \"sbx.sandbox\"}}" sbx-$M-default)" = "false $M" ]'
t cp_roundtrip sh -c 'head -c 5000000 /dev/urandom > "$WORK/r" && "$SBX" cp "$WORK/r" $M:in.bin && "$SBX" cp $M:in.bin "$WORK/r2" && cmp "$WORK/r" "$WORK/r2"'
t cp_stdin_stdout sh -c 'echo piped | "$SBX" cp - $M/web:/tmp/p.txt && [ "$("$SBX" cp $M/web:/tmp/p.txt -)" = piped ]'
t cp_missing_remote sh -c '! "$SBX" cp $M:nope.txt "$WORK/x" 2>"$WORK/e" && grep -q "No such file" "$WORK/e"'
t exec_unknown_service sh -c '"$SBX" exec $M/db -- true 2>"$WORK/e"; [ $? -eq 125 ] && grep -q "its services: default, web" "$WORK/e"'

t image_without_shell sh -c '"$SBX" up ${P}s --backend docker --image sbx-test/empty >/dev/null && "$SBX" exec ${P}s -- /.sbx/sbx-agent --version | grep -q . && echo in | "$SBX" cp - ${P}s:/in.txt && [ "$("$SBX" cp ${P}s:/hello.txt -)" = "nothing else here" ] && [ "$("$SBX" cp ${P}s:/in.txt -)" = in ] && ! "$SBX" exec ${P}s -- sh -c true 2>/dev/null && "$SBX" down ${P}s'

mkdir -p "$WORK/xdef"
printf 'services:\n  first:\n    image: %s\n    environment: [WHO=first]\n  chosen:\n    image: %s\n    x-default: true\n    environment: [WHO=chosen]\n' "$IMAGE" "$IMAGE" > "$WORK/xdef/compose.yaml"
t x_default_service sh -c '"$SBX" up ${P}d --backend docker -f "$WORK/xdef/compose.yaml" >/dev/null && [ "$("$SBX" exec ${P}d -- sh -c "echo \$WHO")" = chosen ] && [ "$("$SBX" exec ${P}d/first -- sh -c "echo \$WHO")" = first ] && "$SBX" down ${P}d'

# names whose socket path is longer than a unix socket address (108 bytes) still work
mkdir -p "$WORK/long"
printf 'services:\n  default:\n    image: %s\n  a-service-name-of-forty-characters-xxxxx:\n    image: %s\n' "$IMAGE" "$IMAGE" > "$WORK/long/compose.yaml"
t long_names sh -c 'n=${P}-a-sandbox-name-of-forty-characters-x; n=$(echo $n | cut -c1-40) && "$SBX" up $n --backend docker -f "$WORK/long/compose.yaml" >/dev/null && [ "$("$SBX" exec $n/a-service-name-of-forty-characters-xxxxx -- echo hi)" = hi ] && "$SBX" down $n'

printf 'services:\n  default:\n    image: %s\n    securityContext:\n      readOnlyRootFilesystem: true\n' "$IMAGE" > "$WORK/ro-values.yaml"
t read_only_root sh -c '"$SBX" up ${P}r --backend docker -f "$WORK/ro-values.yaml" >/dev/null && [ "$("$SBX" exec ${P}r -- echo works)" = works ] && ! "$SBX" exec ${P}r -u root -- touch /x 2>"$WORK/e" && grep -q "Read-only" "$WORK/e" && "$SBX" down ${P}r'

# Containment: what a command in a container cannot reach.
t agent_readonly sh -c '! "$SBX" exec $M -u root -- sh -c "echo x > /.sbx/sbx-agent" 2>/dev/null && "$SBX" exec $M -u root -- sh -c "/.sbx/sbx-agent --version" | grep -q .'
t no_secret_left sh -c '[ "$("$SBX" exec $M -u root -- ls -A /.sbx/run)" = agent.sock ] && [ -z "$("$SBX" exec $M -u root -- find / -xdev -name "*.key" 2>/dev/null)" ]'
t user_cannot_reach_agent_dir sh -c '! "$SBX" exec $M -- ls /.sbx/run 2>"$WORK/e" && grep -q "Permission denied" "$WORK/e" && ! "$SBX" exec $M -- sh -c "echo > /.sbx/run/agent.sock" 2>/dev/null'
t state_dir_invisible sh -c '"$SBX" exec $M -u root -- sh -c "[ ! -e \"$SBX_STATE_DIR\" ] && [ ! -e /run/sbx ]"'
"$SBX" up "${P}o" --backend docker --image $IMAGE >/dev/null 2>"$WORK/e" || echo "FAIL ${ENGINE}_up_image: $(cat "$WORK/e")"
t other_sandbox_invisible sh -c '[ "$("$SBX" exec ${P}o -u root -- find / -xdev -name agent.sock 2>/dev/null)" = "" ] && [ "$("$SBX" exec ${P}o -u root -- sh -c "ls /.sbx/run")" = agent.sock ] && "$SBX" exec ${P}o -- sh -c "echo mine > /tmp/o" && ! "$SBX" exec $M -u root -- cat /tmp/o 2>/dev/null'
t wrong_secret_refused sh -c 'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" > "$SBX_STATE_DIR/${P}o/default.key.new" && chmod 600 "$SBX_STATE_DIR/${P}o/default.key.new" && mv "$SBX_STATE_DIR/${P}o/default.key" "$WORK/saved.key" && mv "$SBX_STATE_DIR/${P}o/default.key.new" "$SBX_STATE_DIR/${P}o/default.key" && ! "$SBX" exec ${P}o -- true 2>"$WORK/e"; rc=$?; mv "$WORK/saved.key" "$SBX_STATE_DIR/${P}o/default.key"; [ $rc -eq 0 ] && grep -qi "auth" "$WORK/e" && "$SBX" exec ${P}o -- true'

# Errors: each one line naming the fix, and nothing left behind.
mkdir -p "$WORK/bad" "$WORK/noimg"
printf 'services:\n  default: [unclosed\n' > "$WORK/bad/compose.yaml"
t up_bad_compose sh -c '! "$SBX" up ${P}b --backend docker -f "$WORK/bad/compose.yaml" 2>"$WORK/e" && grep -q "compose.yaml:[0-9]" "$WORK/e" && ! "$SBX" ls | grep -q "^${P}b " && [ ! -e "$SBX_STATE_DIR/${P}b" ]'
printf 'services:\n  default:\n    image: %s\n  db:\n    image: sbx-test/no-such-image:1\n' "$IMAGE" > "$WORK/noimg/compose.yaml"
t up_image_cannot_be_pulled sh -c '! "$SBX" up ${P}n --backend docker -f "$WORK/noimg/compose.yaml" 2>"$WORK/e" && grep -q "pulling sbx-test/no-such-image:1" "$WORK/e" && grep -q "cannot pull image sbx-test/no-such-image:1: .*no registry gave it" "$WORK/e" && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}n | wc -l)" = 0 ] && [ ! -e "$SBX_STATE_DIR/${P}n" ]'
mkdir -p "$WORK/dies"
printf 'services:\n  default:\n    image: %s\n    command: ["sh", "-c", "echo bad config >&2; exit 3"]\n' "$IMAGE" > "$WORK/dies/compose.yaml"
t up_command_exits sh -c '! "$SBX" up ${P}x --backend docker -f "$WORK/dies/compose.yaml" 2>"$WORK/e" && grep -q "stopped at start with exit code 3; its output ends: \"bad config\"" "$WORK/e" && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}x | wc -l)" = 0 ] && [ ! -e "$SBX_STATE_DIR/${P}x" ]'
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ] && [ -S /var/run/docker.sock ] && [ -z "${DOCKER_HOST:-}" ]; then
	t up_engine_permission sh -c 'd=$(mktemp -d) && chmod 777 "$d" && ! SBX_STATE_DIR=$d setpriv --reuid 65534 --regid 65534 --clear-groups "$SBX" up ${P}p --backend docker --image $IMAGE 2>"$WORK/e"; rm -rf "$d"; grep -q "permission denied on the Docker engine.s socket /var/run/docker.sock: run sbx as root or as a member" "$WORK/e"'
else
	echo "skip ${ENGINE}_up_engine_permission: needs root, setpriv and the default socket"
fi
mkdir -p "$WORK/healthy" "$WORK/sick"
printf 'services:\n  default:\n    image: %s\n    healthcheck:\n      test: ["CMD-SHELL", "test -e /tmp/ok || { touch /tmp/ok; exit 1; }"]\n      interval: 1s\n      retries: 3\n' "$IMAGE" > "$WORK/healthy/compose.yaml"
t up_waits_until_healthy sh -c '"$SBX" up ${P}h --backend docker -f "$WORK/healthy/compose.yaml" >/dev/null && [ "$(docker inspect -f "{{.State.Health.Status}}" sbx-${P}h-default)" = healthy ] && "$SBX" down ${P}h'
printf 'services:\n  default:\n    image: %s\n    healthcheck:\n      test: ["CMD-SHELL", "echo db not ready; exit 1"]\n      interval: 1s\n      retries: 1\n' "$IMAGE" > "$WORK/sick/compose.yaml"
t up_unhealthy sh -c '! "$SBX" up ${P}u --backend docker -f "$WORK/sick/compose.yaml" 2>"$WORK/e" && grep -q "unhealthy: its healthcheck failed: \"db not ready\"" "$WORK/e" && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}u | wc -l)" = 0 ]'
t up_bad_image_name sh -c '! "$SBX" up ${P}i --backend docker --image "x?force=1" 2>"$WORK/e" && grep -q "is not an image reference" "$WORK/e"'
t exec_without_engine sh -c '[ "$(DOCKER_HOST=unix://$WORK/no.sock "$SBX" exec $M -- echo direct)" = direct ] && DOCKER_HOST=unix://$WORK/no.sock "$SBX" ls | grep -q "no engine" && ! DOCKER_HOST=unix://$WORK/no.sock "$SBX" down $M 2>/dev/null && [ -e "$SBX_STATE_DIR/$M" ]'
t up_engine_down sh -c '! DOCKER_HOST=unix://$WORK/no.sock "$SBX" up ${P}e --backend docker --image $IMAGE 2>"$WORK/e" && grep -q "cannot reach the Docker engine at unix://$WORK/no.sock: is dockerd running? .*: no such socket" "$WORK/e" && [ ! -e "$SBX_STATE_DIR/${P}e" ]'
t up_docker_host_tcp sh -c '! DOCKER_HOST=tcp://127.0.0.1:2375 "$SBX" up ${P}e --backend docker 2>"$WORK/e" && grep -q "only over a unix socket" "$WORK/e"'
t up_unknown_backend sh -c '"$SBX" up x --backend nomad 2>"$WORK/e"; [ $? -eq 2 ] && grep -q "local, k8s, ec2 or docker" "$WORK/e"'
t up_existing_fails sh -c '! "$SBX" up $M --backend docker --image $IMAGE 2>"$WORK/e" && grep -q "already exists" "$WORK/e"'
t help_text sh -c '"$SBX" up --backend docker --help | grep -q "backend docker"'
t container_gone_message sh -c 'docker kill sbx-${P}o-default >/dev/null && ! "$SBX" exec ${P}o -- true 2>"$WORK/e" && grep -q "is exited" "$WORK/e" && grep -q "sbx down ${P}o" "$WORK/e"'
t ls_shows_exited sh -c '"$SBX" ls | grep -q "exited"'

# Images built (POST /build with sbx's tar of the context), Inspect's Dockerfile defaults.
mkdir -p "$WORK/build/sub"
printf 'FROM %s\nCOPY . /ctx\nRUN echo built > /built\n' "$IMAGE" > "$WORK/build/Dockerfile"
echo kept > "$WORK/build/sub/kept.txt"; echo secret > "$WORK/build/sub/secret.txt"; echo x > "$WORK/build/junk.log"
printf '# comment\nsub/secret.txt\n*.log\n' > "$WORK/build/.dockerignore"
t build_dockerfile_defaults sh -c '"$SBX" up ${P}f --backend docker -f "$WORK/build/Dockerfile" >/dev/null 2>"$WORK/e" && grep -qi "building sbx-${P}f-default:latest: Step 1/[0-9]* \?: FROM" "$WORK/e" && [ "$("$SBX" exec ${P}f -- sh -c "cat /built /ctx/sub/kept.txt; ls /ctx/sub; ls /ctx | grep -c log; tr \"\\0\" \" \" < /proc/1/cmdline | sed \"s,^$INIT ,INIT ,\"; echo; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \"")" = "$(printf "built\nkept\nkept.txt\n0\nINIT -- /.sbx/sbx-agent --idle \nlo")" ] && docker image inspect sbx-${P}f-default >/dev/null && "$SBX" down ${P}f && ! docker image inspect sbx-${P}f-default >/dev/null 2>&1'
mkdir -p "$WORK/badbuild"
printf 'FROM %s\nRUN echo step one works; echo then it breaks; exit 4\n' "$IMAGE" > "$WORK/badbuild/Dockerfile"
printf 'services:\n  default:\n    build: .\n' > "$WORK/badbuild/compose.yaml"
t build_fails_with_its_output sh -c '! "$SBX" up ${P}g --backend docker -f "$WORK/badbuild/compose.yaml" 2>"$WORK/e" && grep -q "building sbx-${P}g-default:latest from $WORK/badbuild failed: .*\(returned a non-zero code: 4\|exit status 4\); its output ends: .*step one works | then it breaks" "$WORK/e" && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}g | wc -l)" = 0 ] && [ ! -e "$SBX_STATE_DIR/${P}g" ]'
printf 'x\n!x\n' > "$WORK/badbuild/.dockerignore"
t build_dockerignore_exception_refused sh -c '! "$SBX" up ${P}g --backend docker -f "$WORK/badbuild/compose.yaml" 2>"$WORK/e" && grep -q "exceptions and .\*\*. are not supported" "$WORK/e"'

# init, read_only, a named volume two services share, an internal network where they
# find each other by name, depends_on with service_healthy: default checks at its start
# that db is already up (its file in the volume), or it exits and up fails.
mkdir -p "$WORK/full"
cat > "$WORK/full/compose.yaml" <<Y
services:
  default:
    image: $IMAGE
    init: true
    read_only: true
    command: ["sh", "-c", "test -e /data/db-was-here || exit 9; exec sleep 1000000"]
    networks: [inner]
    volumes: ["shared:/data"]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: $IMAGE
    command: ["sh", "-c", "sleep 1; echo yes > /data/db-was-here; exec sleep 1000000"]
    networks: [inner]
    volumes: ["shared:/data"]
    healthcheck:
      test: ["CMD-SHELL", "test -e /data/db-was-here"]
      interval: 1s
volumes:
  shared: {}
networks:
  inner:
    internal: true
Y
"$SBX" up ${P}c --backend docker -f "$WORK/full/compose.yaml" >/dev/null 2>"$WORK/full/e" || echo "FAIL ${ENGINE}_compose_up: $(tail -n 2 "$WORK/full/e")"
export SBX_STATE_DIR
t compose_init_and_read_only sh -c '[ "$("$SBX" exec ${P}c -- sh -c "tr \"\\0\" \" \" < /proc/1/cmdline")" = "$INIT -- sh -c test -e /data/db-was-here || exit 9; exec sleep 1000000 " ] && ! "$SBX" exec ${P}c -u root -- touch /x 2>/dev/null'
t compose_depends_on_healthy_and_volume sh -c '[ "$("$SBX" exec ${P}c -- cat /data/db-was-here)" = yes ] && "$SBX" exec ${P}c/db -- sh -c "echo back > /data/from-db" && [ "$("$SBX" exec ${P}c -- cat /data/from-db)" = back ]'
t compose_internal_network sh -c '"$SBX" exec ${P}c -- ping -c1 -W2 db >/dev/null && "$SBX" exec ${P}c/db -- ping -c1 -W2 default >/dev/null && [ "$(docker network inspect -f "{{.Internal}} {{index .Labels \"sbx.sandbox\"}}" sbx-${P}c-inner)" = "true ${P}c" ] && [ "$(docker volume inspect -f "{{index .Labels \"sbx.owner\"}}" sbx-${P}c-shared)" = "$SBX_STATE_DIR" ]'
t compose_down_removes_network_and_volume sh -c '"$SBX" down ${P}c && ! docker network inspect sbx-${P}c-inner >/dev/null 2>&1 && ! docker volume inspect sbx-${P}c-shared >/dev/null 2>&1'

# a top-level `default` network configures the default one (here: internal); a service
# with network_mode: none stays off it
mkdir -p "$WORK/defnet"
printf 'services:\n  default:\n    image: %s\n  peer:\n    image: %s\n    command: ["sleep", "1000000"]\n  alone:\n    image: %s\n    command: ["sleep", "1000000"]\n    network_mode: none\nnetworks:\n  default:\n    internal: true\n' "$IMAGE" "$IMAGE" "$IMAGE" > "$WORK/defnet/compose.yaml"
t default_network_configured sh -c '"$SBX" up ${P}k --backend docker -f "$WORK/defnet/compose.yaml" >/dev/null && "$SBX" exec ${P}k -- ping -c1 -W2 peer >/dev/null && [ "$(docker network inspect -f "{{.Internal}}" sbx-${P}k-default)" = true ] && [ "$("$SBX" exec ${P}k/alone -- sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \"")" = lo ] && ! "$SBX" exec ${P}k -- ping -c1 -W1 alone >/dev/null 2>&1 && "$SBX" down ${P}k && ! docker network inspect sbx-${P}k-default >/dev/null 2>&1'
printf 'services:\n  default:\n    image: %s\n    depends_on: [db]\n  db:\n    image: %s\n    depends_on: [default]\n' "$IMAGE" "$IMAGE" > "$WORK/full/cycle.compose.yaml"
t compose_depends_on_cycle sh -c '! "$SBX" up ${P}y --backend docker -f "$WORK/full/cycle.compose.yaml" 2>"$WORK/e" && grep -q "depends_on leads back to itself" "$WORK/e" && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}y | wc -l)" = 0 ]'
printf 'services:\n  web:\n    image: %s\n  db:\n    image: %s\n' "$IMAGE" "$IMAGE" > "$WORK/full/nodefault.compose.yaml"
t compose_needs_a_default sh -c '! "$SBX" up ${P}y --backend docker -f "$WORK/full/nodefault.compose.yaml" 2>"$WORK/e" && grep -q "no default service: name one service .default. or mark it .x-default: true." "$WORK/e"'

# ports: on 127.0.0.1 unless an address is given (a non-internal network: an internal
# one publishes nothing).
mkdir -p "$WORK/ports"
printf 'services:\n  default:\n    image: %s\n    command: ["sh", "-c", "mkdir -p /w && echo pong > /w/index.html && exec httpd -f -p 80 -h /w"]\n    networks: [outer]\n    ports: ["80", "0.0.0.0::80/tcp"]\nnetworks:\n  outer: {}\n' "$IMAGE" > "$WORK/ports/compose.yaml"
t ports_on_loopback sh -c '"$SBX" up ${P}q --backend docker -f "$WORK/ports/compose.yaml" >/dev/null && set -- $(docker inspect -f "{{range (index .NetworkSettings.Ports \"80/tcp\")}}{{.HostIp}}:{{.HostPort}} {{end}}" sbx-${P}q-default) && echo "$*" | grep -q "^127.0.0.1:[0-9]* 0.0.0.0:[0-9]*$\|^0.0.0.0:[0-9]* 127.0.0.1:[0-9]*$" && lo=$(echo "$*" | tr " " "\n" | grep "^127.0.0.1:") && ss -ltnH | grep -q "$lo " && [ "$(curl -s --max-time 5 http://$lo/)" = pong ] && "$SBX" down ${P}q'

# A container Docker restarted: its agent comes back, the user is told what was lost.
"$SBX" up ${P}t --backend docker --image $IMAGE >/dev/null 2>&1 || echo "FAIL ${ENGINE}_up_for_restart"
t restarted_container_revived sh -c '"$SBX" exec ${P}t -- sh -c "echo kept > /tmp/f; sleep 999 >/dev/null 2>&1 &" && docker restart -t 1 sbx-${P}t-default >/dev/null && [ "$("$SBX" exec ${P}t -- sh -c "cat /tmp/f; ps -o args | grep -c \"^sleep 999\"" 2>"$WORK/e")" = "$(printf "kept\n0")" ] && grep -q "warning: Docker restarted the container of ${P}t/default (at .*): the processes its commands started are gone; its agent was started again" "$WORK/e" && "$SBX" exec ${P}t -- true 2>"$WORK/e2" && [ ! -s "$WORK/e2" ]'

# A user who may use the engine (its socket's group) but is not root: the
# agent, root in the container, gives its socket to that user; any other
# user still cannot reach it or read its secret.
ENGINE_SOCK=${DOCKER_HOST:-unix:///var/run/docker.sock}
ENGINE_SOCK=${ENGINE_SOCK#unix://}
sock_mode=$(stat -c %a "$ENGINE_SOCK" 2>/dev/null)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ "${sock_mode:1:1}" = 6 ]; then
	NR=$WORK/nonroot
	mkdir -p "$NR" && chown 65534:65534 "$NR" && chmod 711 "$WORK"
	export NR AS_USER="setpriv --reuid=65534 --regid=65534 --groups=$(stat -c %g "$ENGINE_SOCK") env SBX_STATE_DIR=$NR/state HOME=$NR"
	export AS_OTHER="setpriv --reuid=65533 --regid=65533 --clear-groups"
	t nonroot_engine_user sh -c '$AS_USER "$SBX" up ${P}r --backend docker --image $IMAGE >/dev/null && [ "$($AS_USER "$SBX" exec ${P}r -- id -u)" = 0 ] && echo up > "$NR/f" && chmod 644 "$NR/f" && $AS_USER "$SBX" cp "$NR/f" ${P}r:/tmp/f && [ "$($AS_USER "$SBX" exec ${P}r -- cat /tmp/f)" = up ] && [ "$(stat -c %U:%a "$NR/state/${P}r/default.run/agent.sock")" = nobody:700 ]'
	t nonroot_other_user_refused sh -c 'sock="$NR/state/${P}r/default.run/agent.sock"; chmod 711 "$NR" "$NR/state" "$NR/state/${P}r" "$NR/state/${P}r/default.run" && ! $AS_OTHER cat "$NR/state/${P}r/default.key" 2>/dev/null && ! $AS_OTHER python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$sock" 2>"$WORK/e" && grep -q "Permission denied" "$WORK/e"'
	t nonroot_down sh -c '$AS_USER "$SBX" down ${P}r && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}r | wc -l)" = 0 ]'
else
	echo "skip ${ENGINE}_nonroot: needs root to act as other users (setpriv) and an engine socket its group may use"
fi


t down_removes sh -c '"$SBX" down $M && [ "$(docker ps -aq --filter label=sbx.sandbox=$M | wc -l)" = 0 ] && [ ! -e "$SBX_STATE_DIR/$M" ] && ! "$SBX" ls | grep -q "^$M "'
t down_all_docker sh -c '"$SBX" down --all --backend docker && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}o | wc -l)" = 0 ] && [ -z "$("$SBX" ls)" ]'
# down --all --backend docker finds what a lost state directory left, by label.
t down_all_without_state sh -c '"$SBX" up ${P}l --backend docker --image $IMAGE >/dev/null && rm -rf "$SBX_STATE_DIR/${P}l" && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}l | wc -l)" = 1 ] && "$SBX" down --all --backend docker && [ "$(docker ps -aq --filter label=sbx.sandbox=${P}l | wc -l)" = 0 ]'
t down_all_help sh -c '"$SBX" down --all --backend docker --help | grep -q "sbx.owner"'
