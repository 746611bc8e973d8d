#!/usr/bin/env bash
# Static release binaries of townlink (CGO_ENABLED=0) for the gateway's
# boards, and SHA256SUMS beside them:
#   dist/townlink-linux-amd64   dist/townlink-linux-arm64   dist/townlink-linux-armv7
# VERSION (default: gateway.Version) is stamped into the binary. TARGETS
# limits the builds (e.g. TARGETS=amd64); DIST (default dist) is where they go.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
VERSION=${VERSION:-$(sed -n 's/^var Version = "\(.*\)"$/\1/p' gateway/gateway.go)}
DIST=${DIST:-dist}
mkdir -p "$DIST"
for target in ${TARGETS:-amd64 arm64 armv7}; do
	goarch=$target goarm=
	if [ "$target" = armv7 ]; then goarch=arm goarm=7; fi
	echo "dist: townlink-linux-$target ($VERSION)" >&2
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm $GO build -trimpath \
		-ldflags "-s -w -X github.com/townlink/townlink/gateway.Version=$VERSION" \
		-o "$DIST/townlink-linux-$target" ./gateway/cmd/townlink
done
DIST=$DIST scripts/sums.sh
