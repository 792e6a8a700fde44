# bench/lib.sh: helpers for bench/run (sourced, bash only).
#
# Starts the release portal and a private nginx on free 127.0.0.1 ports, stops them on exit
# (also on Ctrl-C), and compares two URLs with wrk in alternating rounds: see bench/README.md.
# Everything it creates lives in one temporary directory, removed at exit.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# as_root, apt_install, ensure_postgres: shared with scripts/serve and scripts/test.
# shellcheck source=../scripts/lib.sh
. "$ROOT/scripts/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}   # length of one wrk run
ROUNDS=${ROUNDS:-5}                 # alternating rounds per comparison (medians are reported)
BENCH_WARMUP=${BENCH_WARMUP:-1}     # seconds of wrk on each URL before the rounds (0: none)
WRK_THREADS=2
WRK_CONNECTIONS=32
PORTAL_BIN=${BENCH_BIN:-$ROOT/target/release/nanoclip} # BENCH_BIN: another build (no build then)
# The portal reads content/, static/ and var/ from its working directory when they exist there.
PORTAL_CWD=${BENCH_CWD:-$ROOT}

BENCH_TMP=""          # temporary directory (nginx prefix and root, logs, wrk outputs)
NGINX_PID=""
NGINX_ROOT=""
NGINX_URL=""
PORTAL_URL=""
CURRENT_CHILD=""      # wrk or the start-up timer while they run, so that cleanup can stop them
BENCH_HEADERS=()      # extra request headers ("Name: value") for curl and wrk: a session cookie
declare -A PORTAL_PID=() PORTAL_PORT=()
FAILURES=0
TABLE=""              # the result table, printed at the end
NOTES=""              # lines printed under the table
HEADER_ARGS=()        # set by header_args

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'bench: warning: %s\n' "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# --- set-up and clean-up ----------------------------------------------------------------------

bench_init() {
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nanoclip-bench.XXXXXX")
  # nginx's workers drop root privileges: they must be able to read the served files.
  chmod 755 "$BENCH_TMP"
  trap bench_cleanup EXIT
  trap 'printf "\nbench: interrupted\n" >&2; exit 130' INT
  trap 'printf "bench: terminated\n" >&2; exit 143' TERM HUP
}

# Sends SIGTERM to PID (our own child), waits up to SECONDS for it, then SIGKILL.
stop_pid() {
  local pid=$1 seconds=${2:-40} i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "process $pid did not stop within ${seconds}s: killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

bench_cleanup() {
  local status=$? name
  trap - EXIT INT TERM HUP
  set +e
  stop_pid "$CURRENT_CHILD" 10
  # The keeper last: when it started the private PostgreSQL cluster, it stops it as it exits.
  for name in "${!PORTAL_PID[@]}"; do
    [ "$name" = keeper ] || stop_pid "${PORTAL_PID[$name]}"
  done
  # A script's own clean-up (bench/credits drops its databases), while the database still runs.
  if declare -F bench_before_keeper_stops >/dev/null; then bench_before_keeper_stops; fi
  stop_pid "${PORTAL_PID[keeper]:-}"
  stop_pid "$NGINX_PID" 10
  if [ -n "${BENCH_KEEP:-}" ]; then
    printf 'bench: kept %s (wrk outputs in wrk/, portal logs, nginx/)\n' "$BENCH_TMP" >&2
  elif [ -n "$BENCH_TMP" ]; then
    rm -rf "$BENCH_TMP"
  fi
  exit "$status"
}

# run_tracked OUTFILE COMMAND...: runs COMMAND in the background with its stdout in OUTFILE
# (stderr too for wrk, whose errors belong with its output) and waits for it, so that a signal
# reaches our trap at once and the trap can stop the command (a foreground child would delay the
# trap until it ends). The redirection must not wrap this function: the trap would inherit it.
run_tracked() {
  local out=$1 status=0
  shift
  if [ "$1" = wrk ]; then "$@" >"$out" 2>&1 & else "$@" >"$out" & fi
  CURRENT_CHILD=$!
  wait "$CURRENT_CHILD" || status=$?
  CURRENT_CHILD=""
  return "$status"
}

# --- tools ------------------------------------------------------------------------------------

ensure_bench_tools() {
  local missing=() nginx_was_running=""
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    pgrep -x nginx >/dev/null 2>&1 && nginx_was_running=1
    log "installing ${missing[*]}"
    apt_install "${missing[@]}" || die "could not install ${missing[*]}: install them (apt-get install -y ${missing[*]}) and run again"
    # Debian's package may start the system nginx on port 80: stop what the install started.
    if [ -z "$nginx_was_running" ] && [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
      log "stopping the system nginx that the package installation started"
      as_root kill -QUIT "$(cat /run/nginx.pid)" 2>/dev/null || true
    fi
  fi
  NGINX_BIN=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
  ensure_postgres
}

build_portal() {
  if [ -n "${BENCH_BIN:-}" ]; then
    [ -x "$PORTAL_BIN" ] || die "BENCH_BIN=$PORTAL_BIN is not an executable"
    warn "BENCH_BIN is set: benchmarking $PORTAL_BIN, no build"
    return 0
  fi
  if [ -n "${BENCH_NO_BUILD:-}" ]; then
    [ -x "$PORTAL_BIN" ] || die "BENCH_NO_BUILD is set but $PORTAL_BIN does not exist"
    warn "BENCH_NO_BUILD is set: using $PORTAL_BIN as it is"
    return 0
  fi
  log "cargo build --release --bin nanoclip (a no-op when up to date; a cold build takes minutes)"
  (cd "$ROOT" && SQLX_OFFLINE="${SQLX_OFFLINE:-true}" cargo build --release --bin nanoclip) \
    || die "the release build failed (see above)"
}

# --- ports ------------------------------------------------------------------------------------

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Fails with a clear message when something already listens on 127.0.0.1:PORT.
check_port_free() {
  local port=$1 who=$2 variable=$3 holder=""
  if python3 - "$port" <<'PY'; then return 0; fi
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover is no obstacle
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
  command -v ss >/dev/null 2>&1 && holder=$(ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/ (held by \1)/p' | head -1)
  die "port $port for $who is busy$holder: stop what listens there, or set $variable to another port (unset: a free one)"
}

# --- the portal -------------------------------------------------------------------------------

# start_portal NAME [PORT]: runs `nanoclip serve` on 127.0.0.1:PORT (default: a free port), waits
# for /healthz to answer 200 and sets PORTAL_PID[NAME] and PORTAL_PORT[NAME].
start_portal() {
  local name=$1 port=${2:-} pid logfile i
  [ -n "$port" ] || port=$(free_port)
  check_port_free "$port" "the portal ($name)" "BENCH_${name^^}_PORT"
  logfile="$BENCH_TMP/portal-$name.log"
  (cd "$PORTAL_CWD" && NANOCLIP_BIND="127.0.0.1:$port" exec "$PORTAL_BIN" serve) >>"$logfile" 2>&1 </dev/null &
  pid=$!
  PORTAL_PID[$name]=$pid
  PORTAL_PORT[$name]=$port
  for ((i = 0; i < 1200; i++)); do # 120 s: a first start may initialise the cluster and migrate
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz")" = 200 ]; then
      kill -0 "$pid" 2>/dev/null || break # someone else answered on that port
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 30 "$logfile" >&2
  kill -0 "$pid" 2>/dev/null && die "the portal ($name) did not answer 200 on /healthz within 120 s (log above)"
  die "the portal ($name) exited before answering on /healthz (log above)"
}

stop_portal() {
  local name=$1
  stop_pid "${PORTAL_PID[$name]:-}"
  unset "PORTAL_PID[$name]"
}

# The number of actix workers, from the portal's log ("starting 2 workers"); else the CPU count.
portal_workers() {
  local n
  n=$(sed -n 's/.*starting \([0-9][0-9]*\) workers.*/\1/p' "$BENCH_TMP/portal-$1.log" 2>/dev/null | tail -1)
  echo "${n:-$(nproc)}"
}

# --- nginx ------------------------------------------------------------------------------------

# start_nginx WORKERS [PORT]: a private nginx serving NGINX_ROOT (empty at first; scenarios put
# the portal's bytes there), with no access log. Sets NGINX_URL.
start_nginx() {
  local workers=$1 port=${2:-} dir="$BENCH_TMP/nginx" i
  [ -n "$port" ] || port=$(free_port)
  check_port_free "$port" "nginx" BENCH_NGINX_PORT
  NGINX_ROOT="$BENCH_TMP/www"
  mkdir -p "$dir/temp" "$NGINX_ROOT"
  chmod 755 "$NGINX_ROOT"
  cat >"$dir/nginx.conf" <<EOF
# Written by bench/lib.sh: a private nginx, the baseline of the portal's benchmarks.
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    types {
        text/html html;
        text/css css;
        text/javascript js;
        application/json json;
        image/svg+xml svg;
    }
    default_type application/octet-stream;
    # The portal says "text/css; charset=utf-8" and "text/html; charset=utf-8": so does nginx.
    charset utf-8;
    charset_types text/css text/html text/plain text/javascript;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    # actix keeps a connection for any number of requests; nginx closes it after 1000 by default.
    keepalive_requests 1000000;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        root $NGINX_ROOT;
        # Files without extension, at the same paths as on the portal.
        location = /healthz { default_type application/json; }
        location /aide/ { default_type text/html; }
    }
}
EOF
  "$NGINX_BIN" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/test.log" 2>&1 \
    || { cat "$dir/test.log" >&2; die "nginx rejects the configuration written in $dir/nginx.conf (above)"; }
  "$NGINX_BIN" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" </dev/null >>"$dir/stdout.log" 2>&1 &
  NGINX_PID=$!
  NGINX_URL="http://127.0.0.1:$port"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$NGINX_URL/")" != 000 ]; then return 0; fi
    sleep 0.1
  done
  cat "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null
  die "nginx did not start on port $port (log above)"
}

# --- HTTP helpers -----------------------------------------------------------------------------

# header_args: sets HEADER_ARGS to the -H options of BENCH_HEADERS (the same for curl and wrk).
header_args() {
  local h
  HEADER_ARGS=()
  for h in "${BENCH_HEADERS[@]}"; do HEADER_ARGS+=(-H "$h"); done
}

# http_status URL: the status code of a GET (000 when nothing answers).
http_status() {
  header_args
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${HEADER_ARGS[@]}" "$1" || true
}

# fetch_to URL FILE: saves the body (no compression asked, as wrk) and succeeds on 200 only.
fetch_to() {
  local code
  header_args
  code=$(curl -s -o "$2" -w '%{http_code}' --max-time 10 "${HEADER_ARGS[@]}" "$1" || true)
  [ "$code" = 200 ]
}

# publish FILE PATH: puts FILE in nginx's root at PATH (e.g. /static/app.1234abcd.css).
publish() {
  local target="$NGINX_ROOT$2"
  mkdir -p "$(dirname "$target")"
  cp "$1" "$target"
  chmod -R a+rX "$NGINX_ROOT"
}

# response_sizes URL: "HEADERS_BYTES BODY_BYTES" of a GET.
response_sizes() {
  header_args
  curl -s -o /dev/null -w '%{size_header} %{size_download}' --max-time 10 "${HEADER_ARGS[@]}" "$1" || echo "? ?"
}

# --- wrk --------------------------------------------------------------------------------------

# parse_wrk FILE: "RPS P50 P90 P99 NON2XX SOCKET_ERRORS", latencies in ms.
parse_wrk() {
  awk '
    function ms(v,   n, u) {
      n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
      if (u == "us") return n / 1000
      if (u == "ms") return n
      if (u == "s") return n * 1000
      if (u == "m") return n * 60000
      if (u == "h") return n * 3600000
      return -1
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "90%" { p90 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { gsub(",", ""); sock = $4 + $6 + $8 + $10 }
    END {
      if (rps == "" || p99 == "") exit 1
      printf "%s %s %s %s %d %d\n", rps, p50, p90, p99, bad, sock
    }' "$1"
}

# wrk_args URL [THREADS]: wrk's target arguments. A URL "@FILE" cycles through the request
# paths listed in FILE (bench/queries.py) on the portal, each wrk thread through its own share
# (bench/paths.lua).
wrk_args() {
  if [[ $1 == @* ]]; then
    printf '%s\n' -s "$BENCH_DIR/paths.lua" "$PORTAL_URL" -- "${1#@}" "${2:-$WRK_THREADS}"
  else
    printf '%s\n' "$1"
  fi
}

# first_url URL: a URL to check before measuring (for "@FILE", the first path of FILE).
first_url() {
  if [[ $1 == @* ]]; then
    printf '%s%s\n' "$PORTAL_URL" "$(head -1 "${1#@}" | cut -f1)"
  else
    printf '%s\n' "$1"
  fi
}

# wrk_run URL OUTFILE [SECONDS] [CONNECTIONS] [THREADS]
wrk_run() {
  local threads=${5:-$WRK_THREADS} target
  mapfile -t target < <(wrk_args "$1" "$threads")
  header_args
  run_tracked "$2" wrk -t"$threads" -c"${4:-$WRK_CONNECTIONS}" -d"${3:-$BENCH_SECONDS}s" --latency "${HEADER_ARGS[@]}" "${target[@]}" \
    || { cat "$2" >&2; die "wrk failed on $1"; }
}

median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# --- the table --------------------------------------------------------------------------------

TABLE_FORMAT='%-20s %-11s %9s %8s %8s %8s %7s  %s\n'

table_row() {
  local line
  # shellcheck disable=SC2059
  line=$(printf "$TABLE_FORMAT" "$@")
  line=${line%"${line##*[! ]}"} # no trailing blanks
  TABLE+="$line"$'\n'
  printf '%s\n' "$line" >&2
}

table_header() {
  table_row scenario server 'req/s' 'p50 ms' 'p90 ms' 'p99 ms' errors verdict
}

note() {
  NOTES+="$*"$'\n'
}

fail() {
  FAILURES=$((FAILURES + 1))
}

# compare NAME URL BASELINE_URL [MIN_RPS_RATIO|-] [MAX_P99_RATIO|-] [LABEL] [BASELINE_LABEL]
#
# ROUNDS alternating wrk runs (URL, baseline, URL, baseline...) with identical settings after a
# warm-up of each; prints the medians side by side, the ratios URL/baseline of requests/s and p99,
# and PASS/FAIL against the targets ("-": no target). Any non-2xx/3xx response or socket error
# counts as a failure: a benchmark of error pages measures nothing.
compare() {
  local name=$1 url=$2 base=$3 min_rps=${4:--} max_p99=${5:--} label=${6:-portal} blabel=${7:-nginx}
  local r side u out vals errors=0 berrors=0 non2xx=0 sockets=0 verdict="" targets=""
  local -a rps=() p50=() p90=() p99=() brps=() bp50=() bp90=() bp99=()
  local workdir="$BENCH_TMP/wrk/$name"
  mkdir -p "$workdir"
  for side in a b; do # both URLs must answer 200 before we measure them
    u=$url; [ $side = b ] && u=$base
    u=$(first_url "$u")
    [ "$(http_status "$u")" = 200 ] || die "$name: $u does not answer 200"
  done
  if [ "$BENCH_WARMUP" != 0 ]; then
    log "$name: warm-up (${BENCH_WARMUP}s each)"
    wrk_run "$url" "$workdir/warmup-a" "$BENCH_WARMUP"
    wrk_run "$base" "$workdir/warmup-b" "$BENCH_WARMUP"
  fi
  for ((r = 1; r <= ROUNDS; r++)); do
    for side in a b; do
      if [ $side = a ]; then u=$url; else u=$base; fi
      log "$name: round $r/$ROUNDS, $([ $side = a ] && echo "$label" || echo "$blabel") (${BENCH_SECONDS}s)"
      out="$workdir/round$r-$side"
      wrk_run "$u" "$out"
      vals=$(parse_wrk "$out") || { cat "$out" >&2; die "$name: cannot read wrk's output (above)"; }
      set -- $vals
      if [ $side = a ]; then
        rps+=("$1"); p50+=("$2"); p90+=("$3"); p99+=("$4"); errors=$((errors + $5 + $6))
      else
        brps+=("$1"); bp50+=("$2"); bp90+=("$3"); bp99+=("$4"); berrors=$((berrors + $5 + $6))
      fi
      non2xx=$((non2xx + $5))
      sockets=$((sockets + $6))
      [ $(($5 + $6)) -eq 0 ] || warn "$name: $5 non-2xx/3xx responses and $6 socket errors in $out"
    done
  done
  local m_rps m_p50 m_p90 m_p99 b_rps b_p50 b_p90 b_p99 ratio_rps ratio_p99
  m_rps=$(median "${rps[@]}"); m_p50=$(median "${p50[@]}"); m_p90=$(median "${p90[@]}"); m_p99=$(median "${p99[@]}")
  b_rps=$(median "${brps[@]}"); b_p50=$(median "${bp50[@]}"); b_p90=$(median "${bp90[@]}"); b_p99=$(median "${bp99[@]}")
  ratio_rps=$(awk -v a="$m_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  ratio_p99=$(awk -v a="$m_p99" -v b="$b_p99" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  if [ "$min_rps" != - ]; then
    targets+="rps>=${min_rps}x "
    awk -v r="$ratio_rps" -v t="$min_rps" 'BEGIN { exit !(r + 0 >= t + 0) }' || verdict+="rps ${ratio_rps}<${min_rps} "
  fi
  if [ "$max_p99" != - ]; then
    targets+="p99<=${max_p99}x "
    awk -v r="$ratio_p99" -v t="$max_p99" 'BEGIN { exit !(r + 0 <= t + 0) }' || verdict+="p99 ${ratio_p99}>${max_p99} "
  fi
  [ "$non2xx" -eq 0 ] || verdict+="$non2xx non-2xx "
  [ "$sockets" -eq 0 ] || verdict+="$sockets socket errors "
  if [ -n "$verdict" ]; then
    verdict="FAIL: ${verdict% }"
    fail
  elif [ -n "$targets" ]; then
    verdict="PASS (${targets% })"
  else
    verdict="(no target)"
  fi
  local f='%.0f' l='%.2f'
  table_row "$name" "$label" "$(printf $f "$m_rps")" "$(printf $l "$m_p50")" "$(printf $l "$m_p90")" "$(printf $l "$m_p99")" "$errors" ""
  table_row "" "$blabel" "$(printf $f "$b_rps")" "$(printf $l "$b_p50")" "$(printf $l "$b_p90")" "$(printf $l "$b_p99")" "$berrors" ""
  table_row "" "ratio" "$ratio_rps" "" "" "$ratio_p99" "" "$verdict"
  local sa sb what
  sa=$(response_sizes "$(first_url "$url")")
  sb=$(response_sizes "$(first_url "$base")")
  what="GET /${url#http://*/}"
  [[ $url != @* ]] || what="$(wc -l <"${url#@}") distinct paths of ${url#@} in turn, the first"
  note "$name: $label $what (headers ${sa% *} B + body ${sa#* } B) vs $blabel GET /${base#http://*/} (headers ${sb% *} B + body ${sb#* } B)"
}

# --- start-up time ----------------------------------------------------------------------------

# measure_startup RUNS OUTFILE: runs `nanoclip serve` RUNS times on free ports and writes to
# OUTFILE, one a line, the milliseconds from the exec to the first 200 on /healthz (startup.py).
# Not to be called in $(...): the trap must see the child to stop it on Ctrl-C.
measure_startup() {
  run_tracked "$2" python3 "$BENCH_DIR/startup.py" "$PORTAL_BIN" "$1" "$PORTAL_CWD" "$BENCH_TMP/portal-startup.log" \
    || { tail -n 30 "$BENCH_TMP/portal-startup.log" >&2; die "start-up measurement failed (portal log above)"; }
}
