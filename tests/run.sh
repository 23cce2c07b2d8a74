#!/bin/bash
# tests/run.sh: the end-to-end run behind `make test`.
#
# Runs as root on a Debian 12 machine with only Go installed, and is idempotent:
# installs the Debian packages the tests use, creates the unprivileged user
# forgetest with subordinate ID ranges, builds forge and the test binary, makes
# the busybox fixture and a minimal Debian bookworm image (mmdebstrap, cached
# per day in /var/cache/forge-e2e), starts two real registries (one with htpasswd auth) as
# forgetest, mounts a small tmpfs for the full-disk tests, runs the unit tests as root and
# the end-to-end tests in tests/ as forgetest, then the TestChrootContainer tests as root
# (they run forge under tests/internal/nons, a simulated unprivileged container, and forge
# as forgetest for comparison), then stops the registries and removes everything it made.
#
#   tests/run.sh                 the whole run; exit status = the tests' status
#   tests/run.sh --setup-only    set up, leave the registries running, print the
#                                environment for running tests by hand
#   FORGE_STRESS=1 tests/run.sh  also the stress version of the kill test (100 SIGKILLs)
set -euo pipefail
cd "$(dirname "$0")/.."

TAGS="containers_image_openpgp containers_image_docker_daemon_stub exclude_graphdriver_zfs exclude_graphdriver_btrfs"
# libbtrfs-dev and libgpgme-dev: the C headers that let plain `go vet ./...` and `go build ./...`
# (without the Makefile's tags) compile the storage and image libraries. gcc and libc6-dev:
# `make build` links with cgo, and rootless's unit tests compile early.c on its own.
PACKAGES=(uidmap docker-registry skopeo umoci busybox-static apache2-utils procps mmdebstrap libbtrfs-dev libgpgme-dev gcc libc6-dev)
TEST_USER=forgetest
DENIED_DIR=/var/lib/forge-e2e-denied # root-owned 0700: a --root the test user cannot create
SMALL_FS_SIZE=64m                    # the tmpfs of the full-disk tests, $WORK/smallfs
DEBIAN_CACHE=/var/cache/forge-e2e     # mmdebstrap's bookworm rootfs, one tar per day
USER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SETUP_ONLY=false
[ "${1:-}" = --setup-only ] && SETUP_ONLY=true

log() { printf '\n=== run.sh: %s\n' "$*"; }
die() {
	printf 'run.sh: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and creates the test user): sudo make test"
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
	id -u "$TEST_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$TEST_USER"
	local f
	for f in /etc/subuid /etc/subgid; do
		touch "$f"
		grep -q "^$TEST_USER:" "$f" || echo "$TEST_USER:$(next_free_id "$f"):65536" >>"$f"
	done
	mkdir -p "$DENIED_DIR"
	chown root:root "$DENIED_DIR"
	chmod 0700 "$DENIED_DIR"
	echo "user $TEST_USER: $(grep "^$TEST_USER:" /etc/subuid) (subuid), $(grep "^$TEST_USER:" /etc/subgid) (subgid)"
}

# as_user CMD...: run CMD as the test user with a clean environment ($WORK-based).
# setpriv and env exec, so "${AS_USER[@]}" CMD & gives CMD's own PID in $!.
as_user() { "${AS_USER[@]}" "$@"; }

make_workdir() {
	WORK=$(mktemp -d /tmp/forge-e2e.XXXXXX)
	AS_USER=(setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups
		env -i HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" TMPDIR="$WORK/tmp" PATH="$USER_PATH" LANG=C.UTF-8)
	chmod 0755 "$WORK"
	mkdir -p "$WORK"/{bin,fixtures,home,run,tmp,reg,authreg}
	chown "$TEST_USER:$TEST_USER" "$WORK"/{home,run,tmp,reg,authreg}
	chmod 0700 "$WORK/run"
	# A small filesystem of the test user's own, for the full-disk tests.
	mkdir "$WORK/smallfs"
	mount -t tmpfs -o "size=$SMALL_FS_SIZE,mode=0755" forge-e2e-small "$WORK/smallfs"
	chown "$TEST_USER:$TEST_USER" "$WORK/smallfs"
}

# apt_mirror: the Debian mirror this machine's apt uses (the image's apt uses it too).
apt_mirror() {
	local uri=
	[ ! -f /etc/apt/sources.list.d/debian.sources ] ||
		uri=$(awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
	[ -n "$uri" ] || [ ! -f /etc/apt/sources.list ] ||
		uri=$(awk '$1 == "deb" && !/security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
	echo "${uri:-http://deb.debian.org/debian}"
}

# make_debian: $WORK/fixtures/debian.tar, a minimal Debian bookworm image (OCI archive)
# whose apt sources point at this machine's mirror. The mmdebstrap rootfs is built as root
# and kept in $DEBIAN_CACHE for the day, so that reruns take seconds instead of a minute.
make_debian() {
	local mirror rootfs
	mirror=$(apt_mirror)
	rootfs="$DEBIAN_CACHE/bookworm-minbase-$(date -u +%Y%m%d).tar"
	mkdir -p "$DEBIAN_CACHE"
	if [ ! -s "$rootfs" ]; then
		echo "mmdebstrap bookworm from $mirror (about a minute)"
		rm -f "$DEBIAN_CACHE"/bookworm-minbase-*.tar
		mmdebstrap --quiet --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' \
			bookworm "$DEBIAN_CACHE/partial.tar" "$mirror"
		mv "$DEBIAN_CACHE/partial.tar" "$rootfs"
	else
		echo "debian rootfs from the cache: $rootfs"
	fi
	go run ./tests/internal/mkbase -rootfs-tar "$rootfs" -cmd bash -tag bookworm-slim -o "$WORK/fixtures/debian.tar"
}

# http_status PORT PATH: the status code of GET PATH (empty when nothing answers).
http_status() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
		IFS=' ' read -r -t 5 _ code _ <&3 || true
		echo "${code:-}"
	) 2>/dev/null
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_registry NAME [htpasswd-file]: start docker-registry as the test user on a
# free port, with storage and logs in $WORK/NAME; sets NAME_PORT and NAME_PID.
start_registry() {
	local name=$1 htpasswd=${2:-} dir=$WORK/$1 port pid i attempt
	for attempt in $(seq 1 20); do
		port=$((20000 + RANDOM % 40000))
		port_in_use "$port" && continue
		{
			echo "version: 0.1"
			echo "log: {level: info, accesslog: {disabled: false}}"
			echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
			echo "http: {addr: 127.0.0.1:$port, secret: forge-e2e-$name}"
			[ -z "$htpasswd" ] || echo "auth: {htpasswd: {realm: forge-e2e, path: $htpasswd}}"
		} >"$dir/config.yml"
		# The access log (one line per request) goes to stdout, the rest to stderr.
		"${AS_USER[@]}" docker-registry serve "$dir/config.yml" >"$dir/access.log" 2>"$dir/registry.log" &
		pid=$!
		PIDS+=("$pid")
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			if [ -n "$(http_status "$port" /v2/)" ]; then
				printf -v "${name^^}_PORT" %s "$port"
				printf -v "${name^^}_PID" %s "$pid"
				echo "registry $name: 127.0.0.1:$port (pid $pid, /v2/ answers $(http_status "$port" /v2/))"
				return
			fi
			sleep 0.2
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "registry $name did not come up on port $port (attempt $attempt):"
		tail -n 5 "$dir/registry.log"
	done
	die "could not start registry $name"
}

write_registries_conf() {
	cat >"$WORK/registries.conf" <<EOF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:$REG_PORT"
insecure = true

[[registry]]
location = "127.0.0.1:$REG_PORT"
insecure = true

[[registry]]
location = "127.0.0.1:$AUTHREG_PORT"
insecure = true
EOF
}

cleanup() {
	local status=$? pid
	if [ "$SETUP_ONLY" = true ] && [ "$status" = 0 ]; then
		return
	fi
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	# Stores hold files owned by forgetest's subordinate IDs: only root removes them.
	if [ -n "${WORK:-}" ]; then
		! mountpoint -q "$WORK/smallfs" || umount "$WORK/smallfs"
		rm -rf "$WORK"
	fi
	exit "$status"
}

PIDS=()
WORK=
trap cleanup EXIT

log "packages"
install_packages
log "test user"
create_user
make_workdir
echo "work dir: $WORK"

if [ "$SETUP_ONLY" = false ]; then
	log "build (as root)"
	make build
	cp bin/forge "$WORK/bin/forge"
	go test -c -o "$WORK/bin/e2e.test" -tags "$TAGS" ./tests/
fi
go build -o "$WORK/bin/nons" ./tests/internal/nons

log "fixtures"
go run ./tests/internal/mkbase -o "$WORK/fixtures/busybox.tar"
go run ./tests/internal/mkbase -hello "a variant image for the corruption tests
" -o "$WORK/fixtures/variant.tar"
make_debian
chmod -R a+rX "$WORK/bin" "$WORK/fixtures"
ls -l "$WORK/fixtures"

log "registries (as $TEST_USER)"
htpasswd -Bbn forge s3cret >"$WORK/authreg/htpasswd"
chmod 0644 "$WORK/authreg/htpasswd"
start_registry reg
start_registry authreg "$WORK/authreg/htpasswd"
as_user skopeo --insecure-policy copy -q --dest-tls-verify=false \
	"oci-archive:$WORK/fixtures/busybox.tar" "docker://127.0.0.1:$REG_PORT/library/busybox:latest"
echo "pushed busybox: $(as_user skopeo inspect --tls-verify=false --format '{{.Digest}}' \
	"docker://127.0.0.1:$REG_PORT/library/busybox:latest")"
as_user skopeo --insecure-policy copy -q --dest-tls-verify=false \
	"oci-archive:$WORK/fixtures/debian.tar" "docker://127.0.0.1:$REG_PORT/library/debian:bookworm-slim"
echo "pushed debian: $(as_user skopeo inspect --tls-verify=false --format '{{.Digest}}' \
	"docker://127.0.0.1:$REG_PORT/library/debian:bookworm-slim")"
write_registries_conf

E2E_ENV=(
	FORGE_BIN="$WORK/bin/forge"
	FORGE_REGISTRY="127.0.0.1:$REG_PORT"
	FORGE_AUTH_REGISTRY="127.0.0.1:$AUTHREG_PORT"
	FORGE_REGISTRY_LOG="$WORK/reg/access.log"
	FORGE_AUTH_REGISTRY_LOG="$WORK/authreg/access.log"
	FORGE_REGISTRIES_CONF="$WORK/registries.conf"
	FORGE_FIXTURES="$WORK/fixtures"
	FORGE_DENIED_DIR="$DENIED_DIR"
	FORGE_SMALL_FS="$WORK/smallfs"
	FORGE_STRESS="${FORGE_STRESS:-}"           # 1: the kill test kills 100 times, not 10
	FORGE_STRESS_SEED="${FORGE_STRESS_SEED:-}" # repeats a kill test's random moments
)
# The root phase: forge as root under nons (chroot isolation), forgetest's forge for comparison.
mkdir -p "$WORK/roothome"
ROOT_ENV=(env -i HOME="$WORK/roothome" TMPDIR="$WORK/tmp" PATH="$USER_PATH" LANG=C.UTF-8
	"${E2E_ENV[@]}" FORGE_NONS="$WORK/bin/nons" FORGE_AS_USER="${AS_USER[*]}")

if [ "$SETUP_ONLY" = true ]; then
	printf '%s\n' "${E2E_ENV[@]}" >"$WORK/e2e.env"
	cat <<EOF

Set up; registries left running (pids ${PIDS[*]}). Environment in $WORK/e2e.env.
Run tests as $TEST_USER, e.g.:
  go test -c -o $WORK/bin/e2e.test -tags "$TAGS" ./tests/ && cp bin/forge $WORK/bin/forge
  cd $WORK && setpriv --reuid=$TEST_USER --regid=$TEST_USER --init-groups env -i HOME=$WORK/home \\
    XDG_RUNTIME_DIR=$WORK/run TMPDIR=$WORK/tmp PATH=$USER_PATH \$(cat $WORK/e2e.env) $WORK/bin/e2e.test -test.v
and the chroot isolation tests as root:
  cd $WORK && ${ROOT_ENV[*]@Q} $WORK/bin/e2e.test -test.v -test.run '^TestChrootContainer'
Stop: kill ${PIDS[*]}; umount $WORK/smallfs; rm -rf $WORK
EOF
	exit 0
fi

log "unit tests (as root)"
unit_status=0
make unit || unit_status=$?

log "end-to-end tests (as $TEST_USER)"
e2e_status=0
(cd "$WORK" && as_user "${E2E_ENV[@]}" "$WORK/bin/e2e.test" -test.v -test.timeout 20m) 2>&1 |
	tee "$WORK/e2e.log" || e2e_status=$?

log "end-to-end tests of chroot isolation (as root, in a simulated unprivileged container)"
(cd "$WORK" && "${ROOT_ENV[@]}" "$WORK/bin/e2e.test" -test.v -test.timeout 10m -test.run '^TestChrootContainer') 2>&1 |
	tee "$WORK/e2e-root.log" || e2e_status=$?

log "summary"
# The root phase's tests skip in the first run (they need root): only its own result counts.
grep -E '^\s*--- (FAIL|SKIP)' "$WORK/e2e.log" | grep -v 'TestChrootContainer' || true
grep -E '^\s*--- (FAIL|SKIP)' "$WORK/e2e-root.log" || true
passed=$(cat "$WORK/e2e.log" "$WORK/e2e-root.log" | grep -cE '^\s*--- PASS' || true)
failed=$(cat "$WORK/e2e.log" "$WORK/e2e-root.log" | grep -cE '^\s*--- FAIL' || true)
skipped=$(grep -E '^\s*--- SKIP' "$WORK/e2e.log" | grep -cv 'TestChrootContainer' || true)
[ "$unit_status" = 0 ] && echo "unit tests: ok" || echo "unit tests: FAIL (exit $unit_status)"
[ "$e2e_status" = 0 ] && echo "e2e tests: ok" || echo "e2e tests: FAIL (exit $e2e_status)"
echo "e2e: $passed passed, $failed failed, $skipped skipped"
[ "$unit_status" = 0 ] && [ "$e2e_status" = 0 ]
