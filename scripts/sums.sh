#!/usr/bin/env bash
# $DIST/SHA256SUMS (default dist/) over every binary and package in dist/ (sha256sum -c reads it).
set -euo pipefail
cd "$(dirname "$0")/.."
cd "${DIST:-dist}"
ls | grep -v '^SHA256SUMS$' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS
cat SHA256SUMS >&2
