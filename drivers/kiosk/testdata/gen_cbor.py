#!/usr/bin/python3
"""Writes the CBOR golden payloads with Debian's python3-cbor2, an encoder
no one on the team wrote. Run from this directory: /usr/bin/python3 gen_cbor.py"""
import cbor2
from decimal import Decimal

def w(path, obj, extra=b""):
    with open(path, "wb") as f:
        f.write(cbor2.dumps(obj) + extra)

w("valid/service_rated.cbor", {"schema": "gw.v1", "ts": 1732950650000, "device_id": "hall-kiosk-1", "device_type": "queue",
  "event": "service.rated", "payload": {"ticket_no": "C101", "rating": 2, "reasons": ["long_wait"],
  "dimensions": {"overall": 2, "efficiency": 1, "level": 3, "attitude": 3}, "business_type": "business-license"}})
w("valid/service_finished.cbor", {"ticket_no": "C101", "service_s": Decimal("300.125"), "queue_id": "Q3", "window_no": 4})
w("invalid/privacy_id.cbor", {"ticket_no": "C101", "business_type": "x", "who": "110101199003074258"})
w("invalid/privacy_id_uint.cbor", {"ticket_no": "C101", "business_type": "x", "who": 110101199003074258})
with open("invalid/dupkey.cbor", "wb") as f:  # {"ticket_no": "A1", "ticket_no": "A2"}
    f.write(b"\xa2\x69ticket_no\x62A1\x69ticket_no\x62A2")
