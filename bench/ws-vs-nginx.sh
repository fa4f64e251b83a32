#!/usr/bin/env bash
# bench/ws-vs-nginx.sh: what relaymeter's WebSocket hop costs next to nginx.
#
# Starts a Go upstream (the simulated node, `relaymeter loadgen upstream`),
# nginx with one worker proxying WebSocket to it, relaymeter dev in both
# forwarding modes, and `relaymeter edge ws` alone in both modes (recording
# into dev's embedded Kafka), all in front of that one upstream; then runs
# `relaymeter loadgen ws` against each in turn, closed loop at 1, 16 and 64
# connections and a subscription fan-out, round after round, and prints one
# table with the ratios to nginx and a verdict per target. See
# bench/README.md for what each column means.
#
# Needs Go, and apt-get (as root or with sudo) for nginx and the PostgreSQL
# server binaries when they are missing. Every process it starts is stopped
# on exit, Ctrl-C included.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/ws-vs-nginx.sh [flags]

  --rounds N              rounds over all scenarios and targets (default 3)
  --duration D            length of each measured run, a Go duration (default 10s)
  --warmup D              unmeasured closed-loop calls before each run (default 1s)
  --cpu-settle D          after a run, keep counting the hop's CPU until it is idle, at most D (default 30s)
  --machine-settle S      before a run, wait up to S seconds for the machine to be idle (default 30)
  --scenarios "LIST"      of closed-N and fanout (default "closed-1 closed-16 closed-64 fanout")
  --targets "LIST"        of direct nginx dev-ack dev-queue edge-ack edge-queue (default: all)
  --fanout-subscribers N  subscribers in the fan-out (default 64)
  --fanout-rate R         notifications per second per subscriber (default 200)
  --baseline REV          also run the dev and edge targets of an earlier commit (git REV), as
                          TARGET@base rows next to today's: before and after in one run
  --out FILE              also keep the raw results (JSON lines; rebuild the table with go run ./bench/table FILE)
  --keep                  keep the work directory (configs, logs) after the run
EOF
}

ROUNDS=3
DURATION=10s
WARMUP=1s
CPU_SETTLE=30s
MACHINE_SETTLE=30
SCENARIOS="closed-1 closed-16 closed-64 fanout"
TARGETS="direct nginx dev-ack dev-queue edge-ack edge-queue"
FANOUT_SUBS=64
FANOUT_RATE=200
OUT=""
KEEP=0
BASELINE=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--cpu-settle) CPU_SETTLE=$2; shift 2 ;;
	--machine-settle) MACHINE_SETTLE=$2; shift 2 ;;
	--scenarios) SCENARIOS=$2; shift 2 ;;
	--targets) TARGETS=$2; shift 2 ;;
	--fanout-subscribers) FANOUT_SUBS=$2; shift 2 ;;
	--fanout-rate) FANOUT_RATE=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--baseline) BASELINE=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench: unknown flag $1" >&2; usage >&2; exit 2 ;;
	esac
done
case "$ROUNDS" in '' | *[!0-9]* | 0) echo "bench: --rounds wants a positive number" >&2; exit 2 ;; esac
for s in $SCENARIOS; do
	case "$s" in closed-[1-9] | closed-[1-9][0-9] | closed-[1-9][0-9][0-9] | fanout) ;; *) echo "bench: unknown scenario $s" >&2; exit 2 ;; esac
done
for t in $TARGETS; do
	case "$t" in direct | nginx | dev-ack | dev-queue | edge-ack | edge-queue) ;; *) echo "bench: unknown target $t (--baseline adds the @base ones)" >&2; exit 2 ;; esac
done

cd "$(dirname "$0")/.."
log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---- the work directory and the processes we start ----------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/relaymeter-bench.XXXXXX")
# dev's Postgres runs as the postgres user when this runs as root: it must
# reach the data dirs below.
chmod 755 "$WORK"
PIDS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local i pid end
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null || true
	done
	end=$((SECONDS + 30))
	for pid in "${PIDS[@]}"; do
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			log "process $pid did not stop within 30s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	# Kept when asked, and after a failure (its logs say why); an
	# interrupted run leaves nothing behind.
	if [ "$KEEP" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; }; then
		log "work directory (configs, logs) kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# start NAME CMD...: runs CMD in the background, stdout to NAME.out and
# stderr to NAME.log in the work directory, and remembers its pid in LAST.
start() {
	local name=$1
	shift
	"$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
	LAST=$!
	PIDS+=("$LAST")
}

# wait_line FILE REGEX PID: prints the first line of FILE matching REGEX,
# waiting up to 90 s while PID runs.
wait_line() {
	local file=$1 re=$2 pid=$3 end=$((SECONDS + 90)) line
	while ((SECONDS < end)); do
		if line=$(grep -m1 -E "$re" "$file" 2>/dev/null); then
			printf '%s\n' "$line"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "process $pid exited before printing /$re/; its output:"
			tail -n 20 "$file" "${file%.out}.log" >&2 2>/dev/null || true
			return 1
		fi
		sleep 0.1
	done
	log "timed out waiting for /$re/ in $file"
	return 1
}

# port_open PORT: whether something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- what the machine needs ---------------------------------------------
command -v go >/dev/null || die "Go is missing: install it (https://go.dev/doc/install), then run this again"

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
APT_UPDATED=0
apt_install() {
	if [ -n "$SUDO" ] && ! command -v sudo >/dev/null; then
		die "$* missing, and this user can neither install it (not root, no sudo): apt-get install $*"
	fi
	command -v apt-get >/dev/null || die "$* missing and there is no apt-get here: install $* yourself"
	if [ "$APT_UPDATED" = 0 ]; then
		log "apt-get update"
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
NGINX=$(find_nginx)
if [ -z "$NGINX" ] && [[ " $TARGETS " == *" nginx "* ]]; then
	had_service=0
	[ -e /run/nginx.pid ] && had_service=1
	apt_install nginx
	NGINX=$(find_nginx)
	[ -n "$NGINX" ] || die "apt-get installed nginx, but no nginx binary was found"
	# Debian starts the packaged service on port 80 on install; that is a
	# process this script caused, so it stops it again.
	if [ "$had_service" = 0 ] && [ -e /run/nginx.pid ]; then
		if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
			$SUDO systemctl stop nginx || true
		else
			$SUDO "$NGINX" -s quit 2>/dev/null || true
		fi
		log "stopped the nginx service the package started (the benchmark runs its own nginx)"
	fi
fi
if [[ " $TARGETS " == *" dev-"* || " $TARGETS " == *" edge-"* ]]; then
	if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
		apt_install postgresql
	fi
fi

# ---- build ----------------------------------------------------------------
log "building relaymeter and the table"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
go build -o "$WORK/relaymeter" ./cmd/relaymeter
go build -o "$WORK/table" ./bench/table
RM="$WORK/relaymeter"
if [ -n "$BASELINE" ]; then
	rev=$(git rev-parse --verify "$BASELINE^{commit}") || die "--baseline $BASELINE: not a commit of this repository"
	log "building the baseline $BASELINE ($rev)"
	mkdir -p "$WORK/base-src"
	git archive "$rev" | tar -x -C "$WORK/base-src"
	(cd "$WORK/base-src" && go build -o "$WORK/relaymeter-base" ./cmd/relaymeter)
	# Each dev and edge target runs as it was, next to today's.
	with_base=""
	for t in $TARGETS; do
		with_base="$with_base $t"
		case "$t" in dev-* | edge-*) with_base="$with_base $t@base" ;; esac
	done
	TARGETS=${with_base# }
fi

# ---- the upstream ----------------------------------------------------------
start upstream "$RM" loadgen upstream --listen 127.0.0.1:0 --log-level warn
UP_PID=$LAST
UP_URL=$(wait_line "$WORK/upstream.out" '^upstream ws://' "$UP_PID" | awk '{print $2}')
UP_URL=${UP_URL%/}
UP_HOSTPORT=${UP_URL#ws://}
log "upstream (ethsim) at $UP_URL, pid $UP_PID"

declare -A URL PID CHILDREN
URL[direct]="$UP_URL/bench"

# ---- nginx, one worker -----------------------------------------------------
if [[ " $TARGETS " == *" nginx "* ]]; then
	mkdir -p "$WORK/nginx"
	NGINX_PID=""
	for attempt in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		port_open "$port" && continue
		cat >"$WORK/nginx/nginx.conf" <<EOF
# Generated by bench/ws-vs-nginx.sh: stock nginx, one worker, proxying
# WebSocket to the upstream with nothing that buffers or times out.
worker_processes 1;
daemon off;
master_process on;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream ethsim {
        server $UP_HOSTPORT;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://ethsim;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            tcp_nodelay on;
        }
    }
}
EOF
		start nginx "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
		NGINX_PID=$LAST
		for _ in $(seq 50); do
			port_open "$port" && break
			kill -0 "$NGINX_PID" 2>/dev/null || break
			sleep 0.1
		done
		if port_open "$port" && kill -0 "$NGINX_PID" 2>/dev/null; then
			break
		fi
		log "nginx did not start on port $port (attempt $attempt):"
		tail -n 5 "$WORK/nginx/error.log" "$WORK/nginx.log" >&2 2>/dev/null || true
		NGINX_PID=""
	done
	[ -n "$NGINX_PID" ] || die "nginx would not start; see $WORK/nginx/error.log"
	URL[nginx]="ws://127.0.0.1:$port/bench"
	PID[nginx]=$NGINX_PID
	CHILDREN[nginx]=1 # the master and its one worker
	log "nginx $("$NGINX" -v 2>&1 | sed 's/.*version: //') at ${URL[nginx]}, master pid $NGINX_PID"
fi

# ---- relaymeter dev, after-ack and after-queue -----------------------------
KAFKA=""
start_dev() { # name forwarding [binary]
	local name=$1 fwd=$2 bin=${3:-$RM} edge listen=(--kafka-listen 127.0.0.1:0)
	mkdir -p "$WORK/$name"
	chmod 755 "$WORK/$name"
	# A baseline may predate --kafka-listen; its embedded Kafka then picks a
	# free port of its own.
	[ "$bin" = "$RM" ] || listen=()
	start "$name" "$bin" dev --data-dir "$WORK/$name" --http 127.0.0.1:0 --ws-listen 127.0.0.1:0 \
		"${listen[@]}" --ws-upstream "$UP_URL/" --forwarding "$fwd" --admin-key bench --log-level warn
	PID[$name]=$LAST
	CHILDREN[$name]=1 # dev and its Postgres server
	edge=$(wait_line "$WORK/$name.out" '^  ws edge ' "$LAST" | awk '{print $3}')
	URL[$name]="${edge%/<application>}/bench"
	if [ -z "$KAFKA" ] && [ "$bin" = "$RM" ]; then
		KAFKA=$(wait_line "$WORK/$name.out" '^kafka ' "$LAST" | awk '{print $2}')
	fi
	log "dev ($fwd) at ${URL[$name]}, pid $LAST"
}
need_edges=0
[[ " $TARGETS " == *" edge-"* ]] && need_edges=1
if [[ " $TARGETS " == *" dev-ack "* || $need_edges = 1 ]]; then
	start_dev dev-ack after-ack
fi
if [[ " $TARGETS " == *" dev-queue "* ]]; then
	start_dev dev-queue after-queue
fi
if [[ " $TARGETS " == *" dev-ack@base "* ]]; then
	start_dev dev-ack@base after-ack "$WORK/relaymeter-base"
fi
if [[ " $TARGETS " == *" dev-queue@base "* ]]; then
	start_dev dev-queue@base after-queue "$WORK/relaymeter-base"
fi

# ---- relaymeter edge ws alone, into dev's embedded Kafka --------------------
start_edge() { # name forwarding [binary]
	local name=$1 fwd=$2 bin=${3:-$RM} addr open=()
	# Each edge its own spool directory: one recorder per directory.
	mkdir -p "$WORK/$name-spool"
	# The load names the application in the path, as against nginx: open
	# access, where the binary has keys at all (a base build may not).
	# (--help exits 2: read its text, not its status, under pipefail.)
	if { "$bin" edge ws --help 2>&1 || true; } | grep -q -- '-open-access'; then open=(--open-access); fi
	start "$name" "$bin" edge ws --listen 127.0.0.1:0 --upstream "$UP_URL/" --kafka "$KAFKA" --spool-dir "$WORK/$name-spool" \
		--service eth --supplier bench --edge-id "bench-$name" --forwarding "$fwd" --log-level info "${open[@]}"
	PID[$name]=$LAST
	CHILDREN[$name]=0
	addr=$(wait_line "$WORK/$name.log" 'edge ws: listening' "$LAST" | sed -n 's/.* addr=\([^ ]*\).*/\1/p')
	[ -n "$addr" ] || die "edge $name printed no address; see $WORK/$name.log"
	URL[$name]="ws://$addr/bench"
	log "edge ws ($fwd) at ${URL[$name]}, pid $LAST, recording into $KAFKA"
}
if [[ " $TARGETS " == *" edge-ack "* ]]; then start_edge edge-ack after-ack; fi
if [[ " $TARGETS " == *" edge-queue "* ]]; then start_edge edge-queue after-queue; fi
if [[ " $TARGETS " == *" edge-ack@base "* ]]; then start_edge edge-ack@base after-ack "$WORK/relaymeter-base"; fi
if [[ " $TARGETS " == *" edge-queue@base "* ]]; then start_edge edge-queue@base after-queue "$WORK/relaymeter-base"; fi

# ---- runs ------------------------------------------------------------------
# A balanceOf call, the shape of a typical eth_call.
CALL_PARAMS='[{"to":"0x6b175474e89094c44da98b954eedeac495271d0f","data":"0x70a08231000000000000000000000000d8da6bf26964af9d7eed9e03e53415d37aa96045"},"latest"]'
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# busy_pct: the share of all CPUs busy over the next second.
busy_pct() {
	local _c u1 n1 s1 i1 w1 q1 sq1 st1 u2 n2 s2 i2 w2 q2 sq2 st2 total idle
	read -r _c u1 n1 s1 i1 w1 q1 sq1 st1 _ </proc/stat
	sleep 1
	read -r _c u2 n2 s2 i2 w2 q2 sq2 st2 _ </proc/stat
	total=$(((u2 + n2 + s2 + i2 + w2 + q2 + sq2 + st2) - (u1 + n1 + s1 + i1 + w1 + q1 + sq1 + st1)))
	idle=$(((i2 + w2) - (i1 + w1)))
	((total > 0)) || { echo 0; return; }
	echo $((100 * (total - idle) / total))
}

# settle_machine: wait until the machine is quiet (at most 15 % busy over a
# second), at most MACHINE_SETTLE seconds, so one run's aftermath or a
# neighbour's burst does not land in the next.
settle_machine() {
	local end=$((SECONDS + MACHINE_SETTLE)) busy
	while :; do
		busy=$(busy_pct)
		((busy <= 15)) && return 0
		if ((SECONDS >= end)); then
			log "the machine is still ${busy}% busy after ${MACHINE_SETTLE}s; running anyway"
			return 0
		fi
	done
}

# go_seconds D: whole seconds of a Go duration such as 10s, 1m30s or 500ms.
go_seconds() {
	local d=$1 total=0 n unit
	while [[ $d =~ ^([0-9]+)(ms|s|m|h)(.*)$ ]]; do
		n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
		case $unit in ms) total=$((total + n / 1000)) ;; s) total=$((total + n)) ;; m) total=$((total + 60 * n)) ;; h) total=$((total + 3600 * n)) ;; esac
	done
	echo "$total"
}

json_string() { # a JSON string of $1
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=$(printf '%s' "$s" | tr -d '\000-\037')
	printf '"%s"' "$s"
}

run_one() { # round scenario target
	local round=$1 scenario=$2 target=$3 out
	local args=(loadgen ws --json --duration "$DURATION")
	case "$scenario" in
	closed-*) args+=(--closed-loop --conns "${scenario#closed-}" --warmup "$WARMUP" --method eth_call --params "$CALL_PARAMS") ;;
	fanout) args+=(--fanout --conns "$FANOUT_SUBS" --notify-rate "$FANOUT_RATE") ;;
	esac
	if [ "$target" = direct ]; then
		args+=(--upstream "${URL[direct]}")
	else
		args+=(--edge "${URL[$target]}" --edge-pid "${PID[$target]}" --cpu-settle "$CPU_SETTLE")
		[ "${CHILDREN[$target]}" = 1 ] && args+=(--edge-children)
	fi
	settle_machine
	printf '  round %d  %-9s %-10s ' "$round" "$scenario" "$target" >&2
	if out=$("$RM" "${args[@]}" 2>"$WORK/loadgen.err"); then
		printf '{"round":%d,"scenario":"%s","target":"%s","result":%s}\n' "$round" "$scenario" "$target" "$out" >>"$RESULTS"
		grep -E '^(direct|edge) ' "$WORK/loadgen.err" | sed 's/^\(direct\|edge\) *//' | tr '\n' ' ' >&2
		echo >&2
	else
		local err
		err=$(grep -v '^loadgen: ' "$WORK/loadgen.err" | tail -n 1)
		printf '{"round":%d,"scenario":"%s","target":"%s","error":%s}\n' "$round" "$scenario" "$target" "$(json_string "${err:-loadgen failed}")" >>"$RESULTS"
		echo "FAILED: $err" >&2
	fi
}

{
	echo "relaymeter ws-vs-nginx benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: $(nproc) CPUs, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg); $(go version | cut -d' ' -f3)"
	echo "rounds $ROUNDS, duration $DURATION, warm-up $WARMUP, cpu-settle $CPU_SETTLE; scenarios: $SCENARIOS; fan-out $FANOUT_SUBS × $FANOUT_RATE/s"
	echo "closed loop: eth_call; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} | tee "$WORK/header.txt" >&2
n_scen=$(echo $SCENARIOS | wc -w)
n_targ=$(echo $TARGETS | wc -w)
log "$((ROUNDS * n_scen * n_targ)) runs of $DURATION each, plus warm-up and settling: expect, on a quiet machine, about $((ROUNDS * n_scen * n_targ * ($(go_seconds "$DURATION") + 4) / 60 + 1)) minutes"

for ((round = 1; round <= ROUNDS; round++)); do
	for scenario in $SCENARIOS; do
		for target in $TARGETS; do
			run_one "$round" "$scenario" "$target"
		done
	done
done

if [ -n "$OUT" ]; then
	cp "$RESULTS" "$OUT"
	log "raw results in $OUT"
fi
echo
cat "$WORK/header.txt"
echo
"$WORK/table" "$RESULTS"
