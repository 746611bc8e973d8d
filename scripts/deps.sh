#!/usr/bin/env bash
# Installs the system packages Townlink's tests, demo and benchmarks use,
# when they are missing. Needs root (or sudo) and apt; otherwise it says
# what to install and fails.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v mbpoll >/dev/null 2>&1 || need+=(mbpoll)
command -v socat >/dev/null 2>&1 || need+=(socat)
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || need+=(python3-pymodbus)
  /usr/bin/python3 -c 'import cbor2' >/dev/null 2>&1 || need+=(python3-cbor2)
  /usr/bin/python3 -c 'import paho.mqtt' >/dev/null 2>&1 || need+=(python3-paho-mqtt)
  /usr/bin/python3 -c 'import serial' >/dev/null 2>&1 || need+=(python3-serial)
else
  need+=(python3 python3-pymodbus python3-cbor2 python3-paho-mqtt python3-serial)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "deps: installing ${need[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "deps: missing ${need[*]}; run as root: apt-get install ${need[*]}" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: missing ${need[*]} and no apt-get here; install them with your package manager" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts mosquitto as a service on :1883; tests start their own on free ports.
