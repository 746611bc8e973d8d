#!/usr/bin/python3
"""Writes the CBOR golden payloads with Debian's python3-cbor2, an encoder
no one on the team wrote. Run from this directory: /usr/bin/python3 gen_cbor.py"""
from decimal import Decimal
import cbor2

def w(path, obj, extra=b""):
    with open(path, "wb") as f:
        f.write(cbor2.dumps(obj) + extra)

env = lambda ev, ts, p: {"schema": "gw.v1", "msg_id": "c-" + ev, "ts": ts, "seq": 7,
                          "device_id": "zfy-001", "device_type": "bodycam", "event": ev, "payload": p}
# lat/lon as decimal fractions (tag 4), temperature as a float.
w("valid/position.cbor", env("device.position", 1732950001000,
  {"lat": Decimal("31.2987654"), "lon": Decimal("120.5854321"), "datum": "BD09",
   "alt_m": 12, "speed_kmh": 4.25, "heading_deg": Decimal("90.5"), "fix": "2d", "sats": 5}))
w("valid/status.cbor", env("device.status", 1732950000123,
  {"online": True, "battery_pct": 64, "storage_free_mb": 1024, "recording": False,
   "temperature_c": 36.6, "charging": True, "network": "WiFi", "officer_id": "A12345"}))
w("valid/evidence.cbor", env("evidence.file", 1732950070000,
  {"file_id": "F-1", "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
   "size_bytes": 1, "duration_s": 0, "start_at": 1732950002000, "end_at": 1732950002000,
   "officer_id": "100234", "media_type": "photo"}))
# bare payload, float coordinates.
w("valid/sos_bare.cbor", {"lat": 31.3, "lon": 120.6, "datum": "WGS84", "active": True})
# invalid
w("invalid/position_trailing.cbor", env("device.position", 1732950001000,
  {"lat": Decimal("31.2"), "lon": Decimal("120.5"), "datum": "WGS84"}), b"\x00")
w("invalid/status_bytes.cbor", {"battery_pct": 50, "storage_free_mb": 1, "recording": False, "serial": b"ZFY"})
w("invalid/position_float_lat.cbor", {"lat": 91.25, "lon": 120.5, "datum": "WGS84"})
w("invalid/status_tag.cbor", {"battery_pct": cbor2.CBORTag(100, 5), "storage_free_mb": 1, "recording": False})
# A map with the key "battery_pct" twice: A3 6B battery_pct 18 32 6B battery_pct 18 33 69 recording F4
with open("invalid/status_dupkey.cbor", "wb") as f:
    f.write(b"\xa3\x6bbattery_pct\x18\x32\x6bbattery_pct\x18\x33\x69recording\xf4")
with open("invalid/not_a_map.cbor", "wb") as f:
    f.write(cbor2.dumps([1, 2, 3]))
