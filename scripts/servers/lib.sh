# shellcheck shell=bash
# Shared helpers of scripts/test-servers, sourced by it before the per-server
# scripts (scripts/servers/NAME.sh): settings, ports, pid files, daemons, the
# Python venv, the S3 self-check, env files.

# ---------------------------------------------------------------------------------
# settings

# Where everything lives: the Python venv, node modules, each server's data, logs,
# configs and pid files, and the env files <name>.env. Absolute, because the pid
# check (pid_is_ours) looks for it in the daemons' command lines.
STATE=${TFSYNC_TEST_SERVERS_STATE:-$ROOT/target/test-servers}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
VENV=$STATE/venv
PY=$VENV/bin/python

# Every port is PORT_BASE + an offset, bound to 127.0.0.1 only:
#   0-9    the endpoint of each server (moto 0, seaweedfs 1, ceph 2, s3rver 3, dynalite 4)
#   10-19  seaweedfs's master, volume, filer and s3 gRPC ports
#   20-29  ceph's mon (20) and osds (21-29)
#   30-    free: the internal ports of the next servers go here, 10 per server
PORT_BASE=${TFSYNC_TEST_PORT_BASE:-19000}
if ! [[ $PORT_BASE =~ ^[0-9]+$ ]] || ((PORT_BASE < 1024 || PORT_BASE > 65000)); then
	printf 'test-servers: error: TFSYNC_TEST_PORT_BASE=%s: want a number 1024-65000\n' "$PORT_BASE" >&2
	exit 2
fi
PORT_BASE=$((10#$PORT_BASE))

# port OFFSET: the port PORT_BASE + OFFSET.
port() { echo $((PORT_BASE + $1)); }

# Used by the per-server scripts too.
# shellcheck disable=SC2034
{
	ACCESS_KEY=tfsynctestkey
	SECRET_KEY=tfsynctestsecret0123456789
	REGION=us-east-1
	START_TIMEOUT=${TEST_SERVERS_START_TIMEOUT:-60} # seconds, per server
}

# boto3: the S3 self-checks; prometheus-client: the tests parse `--output prometheus` with its parser.
PIP_BASE=(boto3 prometheus-client)

export AWS_EC2_METADATA_DISABLED=true

# ---------------------------------------------------------------------------------
# messages and time

log() { printf '%s\n' "test-servers: $*" >&2; }
die() { log "error: $*"; exit 1; }

now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------
# paths

server_dir() { echo "$STATE/$1"; }
pid_dir() { echo "$STATE/$1/pids"; }
log_dir() { echo "$STATE/$1/log"; }
env_file() { echo "$STATE/$1.env"; }

# ---------------------------------------------------------------------------------
# processes: only ever the ones started here, found by their pid files

# Something accepts TCP connections on 127.0.0.1:$1.
port_open() {
	# shellcheck disable=SC2016 # $1 is expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# True if $1 is a live (non-zombie) process that this state directory started: its
# command line mentions "$STATE/" (every daemon is started with a path under it),
# which guards against a recycled pid and against the servers of another state
# directory (another checkout, another port base).
pid_is_ours() {
	local pid=$1 stat cmdline
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *"$STATE/"* ]]
}

# Pid files of a server, in start order (they are named NN-process.pid).
pid_files() {
	local dir
	dir=$(pid_dir "$1")
	[[ -d $dir ]] || return 0
	find "$dir" -maxdepth 1 -name '*.pid' -print | sort
}

# Pids of a server's processes that are alive, in start order.
live_pids() {
	local f pid
	while read -r f; do
		[[ -n $f ]] || continue
		pid=$(<"$f")
		if pid_is_ours "$pid"; then echo "$pid"; fi
	done < <(pid_files "$1")
}

# 0: every pid file names a live process of ours (and there is at least one).
all_alive() {
	local f n=0
	while read -r f; do
		[[ -n $f ]] || continue
		pid_is_ours "$(<"$f")" || return 1
		n=$((n + 1))
	done < <(pid_files "$1")
	((n > 0))
}

# run_daemon SERVER NN-NAME CMD...: start CMD in the background, detached from this
# shell's session, with its output in the server's log dir and its pid in a pid file.
# CMD must name a path under $STATE (see pid_is_ours).
run_daemon() {
	local server=$1 name=$2
	shift 2
	local pidfile logfile
	pidfile=$(pid_dir "$server")/$name.pid
	logfile=$(log_dir "$server")/${name#*-}.out
	mkdir -p "$(pid_dir "$server")" "$(log_dir "$server")"
	# The inner bash writes its own pid and execs the daemon, so the pid is right
	# even if setsid has to fork. fd 9 (our lock) must not leak into the daemon.
	# shellcheck disable=SC2016 # expanded by the inner bash
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
		</dev/null >"$logfile" 2>&1 9>&- &
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidfile ]] && return 0
		sleep 0.02
	done
	die "$server: $name did not start"
}

# Stop one process of ours: SIGTERM, wait up to GRACE seconds, then SIGKILL and
# wait. A zombie counts as gone (whoever adopted it reaps it). A pid that is not
# ours (pid_is_ours) is left alone.
stop_pid() {
	local pid=$1 grace=$2 quiet=${3:-} i
	pid_is_ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 20; i++)); do
		pid_is_ours "$pid" || return 0
		sleep 0.05
	done
	[[ -n $quiet ]] || log "pid $pid still running ${grace}s after SIGTERM: SIGKILL"
	pid_is_ours "$pid" || return 0
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		pid_is_ours "$pid" || return 0
		sleep 0.05
	done
	die "pid $pid does not exit"
}

# stop_server_processes SERVER GRACE [quiet]: stop every process of a server that
# has a pid file, last started first.
stop_server_processes() {
	local server=$1 grace=$2 quiet=${3:-} f
	while read -r f; do
		[[ -n $f ]] || continue
		stop_pid "$(<"$f")" "$grace" "$quiet"
		rm -f "$f"
	done < <(pid_files "$server" | sort -r)
}

show_logs() {
	local server=$1 f
	for f in "$(log_dir "$server")"/*; do
		[[ -f $f ]] || continue
		printf '\n==> %s (last 40 lines) <==\n' "$f" >&2
		tail -n 40 "$f" >&2
	done
}

# ---------------------------------------------------------------------------------
# installation

as_root() {
	if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

apt_install() {
	local start
	start=$(now)
	log "apt-get install $*"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
		log "apt-get install failed; running apt-get update and retrying"
		as_root apt-get update
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
	fi
	log "apt-get install: done in $(elapsed_since "$start")s"
}

# The venv with PIP_BASE (the self-checks need boto3 whatever the server).
ensure_venv() {
	if [[ -x $PY ]] && venv_has "${PIP_BASE[@]}"; then
		return 0
	fi
	local python=${PYTHON:-python3}
	command -v "$python" >/dev/null || apt_install python3 python3-venv
	if [[ ! -x $PY ]] || ! "$PY" -c 'import sys' 2>/dev/null; then
		rm -rf "$VENV"
		log "creating venv $VENV"
		if ! "$python" -m venv "$VENV"; then
			# Debian's python3 has no ensurepip without python3-venv.
			rm -rf "$VENV"
			apt_install python3-venv
			"$python" -m venv "$VENV"
		fi
	fi
	pip_install "${PIP_BASE[@]}"
}

# venv_has PACKAGE...: each is installed in the venv (checked without importing: fast).
venv_has() {
	"$PY" -c 'import sys, importlib.metadata as m; [m.version(p) for p in sys.argv[1:]]' "$@" 2>/dev/null
}

venv_version() {
	"$PY" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$1" 2>/dev/null
}

pip_install() {
	local start
	start=$(now)
	log "pip install $*"
	"$PY" -m pip install --disable-pip-version-check --quiet "$@"
	log "pip install: done in $(elapsed_since "$start")s"
}

# npm_install PACKAGE@VERSION: into $STATE/node (installs Debian's nodejs and npm
# when npm is missing).
npm_install() {
	command -v npm >/dev/null || apt_install nodejs npm
	local start
	start=$(now)
	log "npm install $1"
	mkdir -p "$STATE/node"
	npm install --prefix "$STATE/node" --no-audit --no-fund --loglevel=error "$1" >&2
	log "npm install: done in $(elapsed_since "$start")s"
}

# ---------------------------------------------------------------------------------
# the S3 self-check (scripts/servers/s3_check.py, boto3 from the venv)

# s3_check SERVER TIMEOUT PORT ACCESS_KEY SECRET_KEY [CONDITIONAL]: wait up to
# TIMEOUT seconds (while SERVER's processes live) for S3 on PORT to answer, then
# create a bucket, PUT twice with If-None-Match: * (the second must be a 412; only
# stored and read back with CONDITIONAL=0), delete both.
# Exit 0: fine; 3: no S3 answer; 4: the self-check failed.
s3_check() {
	local server=$1 timeout=$2 port=$3 access=$4 secret=$5 conditional=${6:-1} pids
	pids=$(live_pids "$server" | tr '\n' ' ')
	# shellcheck disable=SC2086 # word-splitting the pid list is intended
	TS_ACCESS_KEY=$access TS_SECRET_KEY=$secret TS_CONDITIONAL=$conditional \
		AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		"$PY" "$SERVERS_DIR/s3_check.py" "$port" "$timeout" $pids
}

# s3_env PORT ACCESS_KEY SECRET_KEY: the env file lines of an S3 server.
s3_env() {
	cat <<ENV
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$1
export AWS_ACCESS_KEY_ID=$2
export AWS_SECRET_ACCESS_KEY=$3
export AWS_REGION=$REGION
ENV
}
