#!/bin/bash
# bench/run.sh: the side-by-side benchmark behind `make bench` (forge against Buildah).
#
# Runs as root on a Debian 12 machine with Go installed, and is idempotent: installs the
# Debian packages it uses (buildah, pigz, time, the registry, ...), creates the
# unprivileged user forgebench with subordinate ID ranges, builds forge (`make build`) and
# the harness (bench/*.go), makes the busybox base image with tests/internal/mkbase,
# starts a local registry as forgebench, then runs the harness: it generates the other
# fixtures in code, runs every build as forgebench (those of the chroot measure as root)
# and prints the results table, which a full run also writes into docs/benchmarks.md.
# The benchmark is never part of `make test`.
#
#   BENCH_QUICK=1     1 repetition and small sizes, for development; writes no docs
#   BENCH_REPS=N      repetitions (default 3)
#   BENCH_CASES=a,b   only these cases: tiny steps20 copy-20k run-big multistage base-100k base-busybox redis-like
#   BENCH_PUSH=0      skip the push measure
#   BENCH_REGCACHE=0  skip the registry-cache measure (steps20 and redis-like, forge only)
#   BENCH_CHROOT=0    skip the chroot measure (base-100k as root, --isolation chroot, vfs; forge only)
#   BENCH_OUT=FILE    where the results go (default docs/benchmarks.md; none in quick mode)
#   BENCH_KEEP=1      keep the work directory (logs, fixtures) after the run
#   BENCH_DROP_CACHES=0  do not drop the page cache before each cold build
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(uidmap docker-registry skopeo busybox-static buildah pigz time procps)
BENCH_USER=forgebench
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] || QUICK=1
if [ "$QUICK" = 1 ]; then
	REPS=${BENCH_REPS:-1}
	OUT=${BENCH_OUT:-}
else
	REPS=${BENCH_REPS:-3}
	OUT=${BENCH_OUT:-docs/benchmarks.md}
fi

log() { printf '\n=== bench: %s\n' "$*"; }
die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and creates the user $BENCH_USER): sudo make bench"
export CGO_ENABLED=0 DEBIAN_FRONTEND=noninteractive

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all packages present: ${PACKAGES[*]}"
		return
	fi
	log "installing ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# next_free_id FILE: the first ID after every range in /etc/subuid-style FILE (at least 300000).
next_free_id() {
	awk -F: 'BEGIN { m = 300000 } { e = $2 + $3; if (e > m) m = e } END { print m }' "$1"
}

create_user() {
	id -u "$BENCH_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$BENCH_USER"
	local f
	for f in /etc/subuid /etc/subgid; do
		touch "$f"
		grep -q "^$BENCH_USER:" "$f" || echo "$BENCH_USER:$(next_free_id "$f"):65536" >>"$f"
	done
	echo "user $BENCH_USER: $(grep "^$BENCH_USER:" /etc/subuid) (subuid), $(grep "^$BENCH_USER:" /etc/subgid) (subgid)"
}

# The work directory is on disk (/var/tmp), not a tmpfs: stores and contexts are real I/O.
make_workdir() {
	WORK=$(mktemp -d /var/tmp/forge-bench.XXXXXX)
	chmod 0755 "$WORK"
	mkdir -p "$WORK"/{bin,fixtures,home,run,tmp,reg}
	chown "$BENCH_USER:$BENCH_USER" "$WORK"/{home,run,tmp,reg}
	chmod 0700 "$WORK/run"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_registry: docker-registry as the bench user on a free port; sets REG_PORT.
start_registry() {
	local port i attempt
	for attempt in $(seq 1 20); do
		port=$((20000 + RANDOM % 40000))
		port_in_use "$port" && continue
		cat >"$WORK/reg/config.yml" <<-EOF
			version: 0.1
			log: {level: warn, accesslog: {disabled: true}}
			storage: {filesystem: {rootdirectory: $WORK/reg/data}, delete: {enabled: true}}
			http: {addr: 127.0.0.1:$port, secret: forge-bench}
		EOF
		setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --init-groups \
			docker-registry serve "$WORK/reg/config.yml" >"$WORK/reg/registry.log" 2>&1 &
		REG_PID=$!
		for i in $(seq 1 50); do
			kill -0 "$REG_PID" 2>/dev/null || break
			if port_in_use "$port"; then
				REG_PORT=$port
				echo "registry: 127.0.0.1:$port (pid $REG_PID)"
				return
			fi
			sleep 0.2
		done
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
		REG_PID=
		echo "registry did not come up on port $port (attempt $attempt)"
	done
	die "could not start the registry"
}

cleanup() {
	local status=$?
	if [ -n "${REG_PID:-}" ]; then
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	fi
	# Stores hold files owned by the user's subordinate IDs: only root removes them.
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		[ -z "${WORK:-}" ] || echo "bench: kept $WORK"
	else
		[ -z "${WORK:-}" ] || rm -rf "$WORK"
	fi
	exit "$status"
}

WORK=
REG_PID=
trap cleanup EXIT

log "packages"
install_packages
log "user"
create_user
make_workdir
echo "work dir: $WORK"

log "build (as root)"
make build
cp bin/forge "$WORK/bin/forge"
go build -o "$WORK/bin/forgebench" ./bench
go run ./tests/internal/mkbase -o "$WORK/fixtures/busybox.tar"
chmod -R a+rX "$WORK/bin" "$WORK/fixtures"

log "registry (as $BENCH_USER)"
start_registry

log "benchmark ($REPS repetitions$([ "$QUICK" = 1 ] && echo ", quick"))"
args=(-work "$WORK" -user "$BENCH_USER" -forge "$WORK/bin/forge" -registry "127.0.0.1:$REG_PORT"
	-busybox "$WORK/fixtures/busybox.tar" -reps "$REPS")
[ "$QUICK" = 0 ] || args+=(-quick)
[ -z "${BENCH_CASES:-}" ] || args+=(-cases "$BENCH_CASES")
[ "${BENCH_PUSH:-1}" != 0 ] || args+=(-no-push)
[ "${BENCH_REGCACHE:-1}" != 0 ] || args+=(-no-regcache)
[ "${BENCH_CHROOT:-1}" != 0 ] || args+=(-no-chroot)
[ "${BENCH_DROP_CACHES:-1}" = 0 ] || args+=(-drop-caches)
[ -z "$OUT" ] || args+=(-out "$OUT")
"$WORK/bin/forgebench" "${args[@]}"
