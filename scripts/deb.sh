#!/usr/bin/env bash
# Debian packages of townlink from the static binaries of scripts/dist.sh,
# built with nfpm (packaging/nfpm.yaml). nfpm runs with `go run pkg@version`,
# so it is no dependency of the gateway's module (go.mod stays clean).
#   dist/townlink_<version>_{amd64,arm64,armhf}.deb
# ARCHS limits the architectures (e.g. ARCHS=amd64); DIST (default dist) is
# where the binaries are read and the packages written.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0}
DIST=${DIST:-dist}
VERSION=${VERSION:-$(sed -n 's/^var Version = "\(.*\)"$/\1/p' gateway/gateway.go)}
# Debian orders "~" before anything: 0.1.0~dev < 0.1.0.
DEBVERSION=${DEBVERSION:-${VERSION//-/\~}}
for arch in ${ARCHS:-amd64 arm64 armhf}; do
	case $arch in
	amd64) bin=$DIST/townlink-linux-amd64 ;;
	arm64) bin=$DIST/townlink-linux-arm64 ;;
	armhf) bin=$DIST/townlink-linux-armv7 ;;
	*) echo "deb: unknown arch $arch" >&2; exit 2 ;;
	esac
	[ -x "$bin" ] || { echo "deb: $bin missing: run make dist first" >&2; exit 1; }
	out=$DIST/townlink_${DEBVERSION}_${arch}.deb
	# nfpm expands variables in some fields only: fill in the template.
	cfg=$(mktemp)
	trap 'rm -f "$cfg"' EXIT
	sed -e "s|\${ARCH}|$arch|g" -e "s|\${VERSION}|$DEBVERSION|g" -e "s|\${BINARY}|$bin|g" \
		packaging/nfpm.yaml >"$cfg"
	$GO run "$NFPM" package --config "$cfg" --packager deb --target "$out" >&2
	echo "deb: $out" >&2
done
DIST=$DIST scripts/sums.sh
