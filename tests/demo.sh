#!/bin/bash
# tests/demo.sh: `make demo`. Shows forge working offline, as whoever runs it:
# makes a tiny busybox base image (an OCI archive, from Debian's
# busybox-static), pulls it into a throw-away forge store, lists, tags and
# inspects it, and pushes it to an OCI layout. Expects bin/forge (make build).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /bin/busybox ] || ! /bin/busybox --list >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
	else
		echo "demo: needs /bin/busybox: sudo apt-get install busybox-static" >&2
		exit 1
	fi
fi

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/forge-demo.XXXXXX")
FORGE=(bin/forge --root "$DEMO/root" --runroot "$DEMO/runroot")
cleanup() {
	# The store holds files owned by subordinate IDs: remove them from inside
	# forge's user namespace, then the rest.
	"${FORGE[@]}" unshare rm -rf "$DEMO/root" "$DEMO/runroot" 2>/dev/null || true
	rm -rf "$DEMO" 2>/dev/null || echo "demo: could not remove all of $DEMO" >&2
}
trap cleanup EXIT

show() {
	local a line='$'
	for a in "$@"; do
		case $a in *[[:space:]]*) line+=" '$a'" ;; *) line+=" $a" ;; esac
	done
	printf '\n%s\n' "${line//$DEMO/\$DEMO}"
	"$@"
}

echo "A throw-away store and files in DEMO=$DEMO"
show go run ./tests/internal/mkbase -o "$DEMO/busybox.tar"
show "${FORGE[@]}" pull oci-archive:"$DEMO/busybox.tar"
id=$("${FORGE[@]}" images -q --no-trunc | head -n 1)
show "${FORGE[@]}" tag "$id" localhost/busybox:demo
show "${FORGE[@]}" images
show "${FORGE[@]}" inspect --format '{{.ID}} {{.Config.Config.Cmd}}' localhost/busybox:demo
show "${FORGE[@]}" push localhost/busybox:demo oci:"$DEMO/layout":busybox
show cat "$DEMO/layout/index.json"
echo
show "${FORGE[@]}" info
echo
echo "demo: done ($("${FORGE[@]}" version | head -n 1))"
