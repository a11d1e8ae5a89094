#!/usr/bin/env bash
# Side-by-side benchmark: the Go server against the Node.js reference in
# bench/node-ref, driven by the same generator (bench/loadgen) with the same
# settings. Each server runs alone, pinned to CPU 0; the generator is pinned
# to CPU 1.
#
#   bench/run.sh            full run (10,000 clients; takes a few minutes)
#   bench/run.sh --smoke    a few hundred clients for a few seconds; exits
#                           non-zero if anything was lost or duplicated or a
#                           server failed
#   bench/run.sh --only go  one server only (go or node)
#   bench/run.sh -- -clients 2000 -rate 500   extra flags for the generator
#
# Environment: GO_PORT, NODE_PORT (defaults 18480, 18481, below the
# ephemeral port range that the clients' sockets use up), BENCH_OUT (result
# folder; default artifacts/bench/<time>), BENCH_NPM_CI=1 to force npm ci of
# the reference.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

smoke=0
only=""
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) smoke=1 ;;
	--only) only="${2:-}"; shift ;;
	--only=*) only="${1#--only=}" ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case "$only" in "" | go | node) ;; *) echo "run.sh: --only takes go or node" >&2; exit 2 ;; esac

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- limits
# Every client is a socket in the generator and one in the server.
want_files=65536
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_files" ]; then
	ulimit -n "$want_files" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
log "open files limit: $(ulimit -n)"

# ---------------------------------------------------------------- pinning
# Both servers and the generator also run at a raised priority (when
# allowed) so that other work on the machine disturbs the figures less.
prio=()
if nice -n -10 true 2>/dev/null; then
	prio=(nice -n -10)
fi
pin_server=("${prio[@]}")
pin_gen=("${prio[@]}")
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	pin_server+=(taskset -c 0)
	pin_gen+=(taskset -c 1)
else
	log "WARNING: taskset missing or fewer than 2 CPUs: running unpinned"
fi

# ---------------------------------------------------------------- build
command -v curl >/dev/null || die "curl is required"
mkdir -p bin
if [ "$only" != node ]; then
	log "building the Go server"
	go build -o bin/paystatus . || die "go build of the server failed"
fi
log "building the load generator"
go build -o bin/loadgen ./bench/loadgen || die "go build of bench/loadgen failed"

if [ "$only" != go ]; then
	command -v node >/dev/null || die "node is required for the reference server"
	# npm ci compiles better-sqlite3 (two to three minutes on two cores), so
	# it is skipped when node_modules was installed from this lockfile (as
	# .ci/deps.sh does) and the native module loads.
	ref=bench/node-ref
	if [ "${BENCH_NPM_CI:-0}" = 1 ] || [ ! -f $ref/node_modules/.package-lock.json ] ||
		[ $ref/node_modules/.package-lock.json -ot $ref/package-lock.json ] ||
		! (cd $ref && node -e "new (require('better-sqlite3'))(':memory:').close(); require('socket.io')") 2>/dev/null; then
		log "installing the Node reference server (npm ci)"
		(cd $ref && npm ci --no-audit --no-fund) >&2 || die "npm ci in bench/node-ref failed"
	fi
fi

# ---------------------------------------------------------------- run folder
stamp_time=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${BENCH_OUT:-$ROOT/artifacts/bench/$stamp_time$([ $smoke = 1 ] && echo -smoke)}
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/paystatus-bench.XXXXXX")
log "results in $OUT, databases in $work"

secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
export UPI_CALLBACK_SECRET ADMIN_TOKEN ORDER_TOKEN_SECRET
UPI_CALLBACK_SECRET=$(secret)
ADMIN_TOKEN=$(secret)
ORDER_TOKEN_SECRET=$(secret)

GO_PORT=${GO_PORT:-18480}
NODE_PORT=${NODE_PORT:-18481}

server_pid=""
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null
		sleep 2
		kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME PORT CMD... : starts the server pinned, waits for /healthz.
start_server() {
	local name=$1 port=$2
	shift 2
	port_busy "$port" && die "port $port is already in use (set ${name^^}_PORT)"
	"${pin_server[@]}" "$@" >"$OUT/$name-server.log" 2>&1 &
	server_pid=$!
	local i
	for i in $(seq 1 300); do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			tail -n 20 "$OUT/$name-server.log" >&2
			die "$name server exited during start-up (log: $OUT/$name-server.log)"
		fi
		if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null; then
			log "$name server ready on :$port (pid $server_pid)"
			return 0
		fi
		sleep 0.1
	done
	die "$name server not healthy after 30 s (log: $OUT/$name-server.log)"
}

# stop_server NAME: SIGTERM and wait; a server that needs SIGKILL or exits
# non-zero counts as a failure.
stop_server() {
	local name=$1 i rc
	local t0
	t0=$(date +%s.%N)
	kill -TERM "$server_pid" 2>/dev/null
	for i in $(seq 1 150); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
		server_pid=""
		log "FAIL: $name server did not stop within 15 s of SIGTERM"
		return 1
	fi
	wait "$server_pid"
	rc=$?
	server_pid=""
	log "$name server stopped in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s, exit code $rc"
	if [ "$rc" -ne 0 ]; then
		log "FAIL: $name server exited with $rc (log: $OUT/$name-server.log)"
		return 1
	fi
	if grep -qE '^(panic:|fatal error:)|FATAL ERROR' "$OUT/$name-server.log"; then
		log "FAIL: $name server log shows a crash"
		return 1
	fi
	return 0
}

gen_flags=()
[ $smoke = 1 ] && gen_flags+=(-smoke)
gen_flags+=("${extra[@]}")

failed=0
# bench_one NAME LABEL PORT CMD... runs the generator against one server.
bench_one() {
	local name=$1 label=$2 port=$3
	shift 3
	log "load average before the $label run: $(cat /proc/loadavg)"
	start_server "$name" "$port" "$@"
	log "running the generator against $label"
	"${pin_gen[@]}" bin/loadgen -name "$label" -url "http://127.0.0.1:$port" -pid "$server_pid" \
		-out "$OUT/$name.json" "${gen_flags[@]}" 2> >(tee "$OUT/$name-loadgen.log" >&2)
	local rc=$?
	# The server's own view (the Go server's callback-to-broadcast histogram
	# among it), kept beside the results; the reference has no /metrics.
	curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" >"$OUT/$name-metrics.txt" 2>/dev/null ||
		rm -f "$OUT/$name-metrics.txt"
	if [ $rc -ne 0 ]; then
		log "FAIL: generator reported problems against $label (exit $rc)"
		failed=1
	fi
	stop_server "$name" || failed=1
}

if [ "$only" != node ]; then
	bench_one go Go "$GO_PORT" env PORT="$GO_PORT" DATABASE_URL="$work/bench.sqlite" \
		APP_ENV=development LOG_LEVEL=warn bin/paystatus
fi
if [ "$only" != go ]; then
	bench_one node Node "$NODE_PORT" env PORT="$NODE_PORT" DB_PATH="$work/node.sqlite" \
		NODE_ENV=production node bench/node-ref/server.js
fi

# ---------------------------------------------------------------- table
if [ -z "$only" ] && [ -f "$OUT/go.json" ] && [ -f "$OUT/node.json" ]; then
	echo
	echo "paystatus benchmark $stamp_time: $(nproc) CPUs, server on CPU 0, generator on CPU 1$([ $smoke = 1 ] && echo ', smoke settings')"
	bin/loadgen -report "$OUT/go.json" "$OUT/node.json" | tee "$OUT/table.txt"
elif [ -n "$only" ] && [ -f "$OUT/$only.json" ]; then
	log "single-server run: see $OUT/$only.json"
else
	failed=1
fi

if [ $failed -ne 0 ]; then
	log "FAILED (see $OUT)"
	exit 1
fi
log "ok"
