#!/usr/bin/env bash
# The one list of the system dependencies Townlink's tests, demo and
# benchmarks use, each checked the way they use it (a binary on the path, a
# Python module imported by /usr/bin/python3, the interpreter the tests run).
#
#   scripts/deps.sh           install whatever is missing (root, or sudo), then check
#   scripts/deps.sh --check   only print what is present and what is missing;
#                             exit 1 if anything is missing
#
# .ci/run calls this script; nothing else keeps a package list.
set -euo pipefail

PY=/usr/bin/python3

# kind  what                 Debian package      used by
DEPS=(
  "bin   mosquitto            mosquitto           uplink and gateway tests (real county broker), bench"
  "bin   mosquitto_sub        mosquitto-clients   demo (watching the county broker by hand)"
  "bin   mbpoll               mbpoll              firmware-sim/modbussim interop (libmodbus master)"
  "bin   socat                socat               demo and manual serial tests (PTY pairs)"
  "bin   python3              python3             interop peers (/usr/bin/python3)"
  "bin   /usr/lib/postgresql/*/bin/initdb  postgresql  county store tests and make scale (uplink/county/pgstore)"
  "py    pymodbus.server      python3-pymodbus    drivers/modbus and gateway interop (pymodbus RTU/TCP server)"
  "py    pymodbus.datastore   python3-pymodbus    the pymodbus peer's register map"
  "py    serial_asyncio       python3-serial-asyncio  pymodbus.server's serial transport (only Recommended by python3-pymodbus)"
  "py    serial               python3-serial      pymodbus RTU over a PTY"
  "py    cbor2                python3-cbor2       uplink/wire golden files cross-check"
  "bin   chromium             chromium            the local page's end-to-end test (headless, driven by chromedp)"
  "bin   systemd-analyze      systemd             packaging: systemd-analyze verify of the unit"
  "bin   dpkg-deb             dpkg                packaging: the package is installed, upgraded and purged"
  "bin   qemu-aarch64-static  qemu-user-static    packaging: the arm64 build under qemu-user"
  "bin   qemu-arm-static      qemu-user-static    packaging: the armv7 build under qemu-user"
)

have() { # have KIND WHAT
  case "$1" in
    bin)
      if [ "$2" = python3 ]; then [ -x "$PY" ]; return; fi
      case "$2" in /*) compgen -G "$2" >/dev/null; return ;; esac
      command -v "$2" >/dev/null 2>&1 || [ -x "/usr/sbin/$2" ] ;;
    py) [ -x "$PY" ] && "$PY" -c "import $2" >/dev/null 2>&1 ;;
  esac
}

# check prints one line per dependency and sets MISSING to the packages to install.
check() {
  MISSING=()
  local quiet=${1:-}
  for line in "${DEPS[@]}"; do
    read -r kind what pkg why <<<"$line"
    if have "$kind" "$what"; then
      [ -z "$quiet" ] && printf '  ok       %-8s %-18s (%s)\n' "$kind" "$what" "$pkg"
    else
      [ -z "$quiet" ] && printf '  MISSING  %-8s %-18s apt-get install %s   — %s\n' "$kind" "$what" "$pkg" "$why"
      case " ${MISSING[*]-} " in *" $pkg "*) ;; *) MISSING+=("$pkg") ;; esac
    fi
  done
  return 0
}

if [ "${1:-}" = "--check" ]; then
  echo "deps: system dependencies of tests, demo and benchmarks"
  check
  if [ ${#MISSING[@]} -gt 0 ]; then
    echo "deps: MISSING ${#MISSING[@]} package(s); install with: apt-get install --no-install-recommends ${MISSING[*]}" >&2
    exit 1
  fi
  echo "deps: all present"
  exit 0
fi

check quiet
[ ${#MISSING[@]} -eq 0 ] && exit 0

echo "deps: installing ${MISSING[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "deps: missing ${MISSING[*]}; run as root: apt-get install ${MISSING[*]}" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing ${MISSING[*]} and no apt-get here; install them with your package manager" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Update once per run only when the package lists are empty or stale (CI
# runs it once itself; a developer machine may never have run it).
if [ -z "${DEPS_NO_UPDATE:-}" ]; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
# Debian starts mosquitto as a service on :1883; tests start their own on free ports.
check quiet
if [ ${#MISSING[@]} -gt 0 ]; then
  echo "deps: still missing after install: ${MISSING[*]}" >&2
  "$0" --check >&2 || true
  exit 1
fi
