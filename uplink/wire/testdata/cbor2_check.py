#!/usr/bin/python3
"""Independent check of Townlink's uplink encoding with Debian's python3-cbor2.

usage: cbor2_check.py golden FILE...   decode each golden file, check known
                                       content, re-encode canonically
       cbor2_check.py seq FILE         FILE is a CBOR sequence of batches;
                                       re-encode each canonically

dumps(obj, canonical=True) sorts map keys, uses the shortest integer and
float forms, and writes decimal.Decimal back as tag 4 [exp, mantissa]; for
the text-keyed maps of the contract its key order equals RFC 8949 §4.2.1
bytewise order. Exits non-zero on the first difference.

Encoding uses cbor2's pure-Python encoder (cbor2.encoder.dumps), not the C
accelerator that cbor2.dumps picks: in cbor2 5.4.6 the C extension's float16
packing rejects finite values with the top exponent (|x| in [32768, 65504],
e.g. 32768.0 comes out as fa47000000 instead of f97800; agronholm/cbor2
issue #157), so it is not canonical there. Decoding uses cbor2.loads (C).
"""
import base64
import decimal
import hashlib
import io
import os
import struct
import sys

import cbor2
from cbor2.encoder import dumps

# The test-only key of the signed goldens (golden_test.go goldenKey): the
# Ed25519 seed is the bytes 0..31. python3-cryptography verifies with it.
GOLDEN_SEED = bytes(range(32))


def golden_public_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.from_private_bytes(GOLDEN_SEED).public_key()


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def same(data, what):
    obj = cbor2.loads(data)
    out = dumps(obj, canonical=True)
    if out != data:
        fail("%s: cbor2 canonical re-encoding differs\n go:    %s\n cbor2: %s" % (what, data.hex(), out.hex()))
    return obj


def check_chain(batch):
    prev = bytes(32)
    sigs = 0
    for i, rec in enumerate(batch["recs"]):
        if rec["prev"] != prev:
            fail("evidence record %d: prev mismatch" % i)
        # hash covers the record without hash and sig (alg is hashed).
        unhashed = {k: v for k, v in rec.items() if k not in ("hash", "sig")}
        h = hashlib.sha256(dumps(unhashed, canonical=True)).digest()
        if h != rec["hash"]:
            fail("evidence record %d: hash %s, cbor2+hashlib say %s" % (i, rec["hash"].hex(), h.hex()))
        if "sig" in rec:
            if rec.get("alg") != "ed25519":
                fail("evidence record %d: alg %r" % (i, rec.get("alg")))
            golden_public_key().verify(rec["sig"], h)  # raises InvalidSignature
            sigs += 1
        prev = h
    if sigs:
        print("evidence chain ok (%d records, %d ed25519 signatures verified)" % (len(batch["recs"]), sigs))
    else:
        print("evidence chain ok (%d records)" % len(batch["recs"]))


def check_head(status):
    seq = status["last_seq"]["evidence"]
    msg = b"townlink/v1 evidence-head\x00" + status["gw"].encode() + b"\x00" + struct.pack(">Q", seq) + status["evidence_head"]
    golden_public_key().verify(status["evidence_head_sig"], msg)
    print("evidence head signature verified (seq %d)" % seq)


def golden(paths):
    for path in paths:
        name = os.path.basename(path)
        with open(path, "rb") as f:
            data = f.read()
        obj = same(data, name)
        print("%s: same bytes" % name)
        if name == "batch-telemetry.cbor":
            v = obj["recs"][0]["vals"]["energy_kwh"]
            if not isinstance(v, decimal.Decimal) or v != decimal.Decimal("123456.78") or str(v) != "123456.78":
                fail("energy_kwh decoded as %r, want Decimal('123456.78')" % (v,))
            print("energy_kwh %r" % (v,))
            volt = obj["recs"][0]["vals"]["voltage_a_v"]
            if volt != decimal.Decimal("229.7"):
                fail("voltage_a_v decoded as %r" % (volt,))
        if name in ("batch-evidence.cbor", "batch-evidence-signed.cbor"):
            check_chain(obj)
        if name == "status-signed.cbor":
            check_head(obj)
        if name == "batch-rejected.cbor":
            v = obj["recs"][0]["vals"]
            raw = base64.b64decode(v["raw_b64"], validate=True)
            if len(raw) != v["size"]:
                fail("rejected record: size %d, raw is %d bytes" % (v["size"], len(raw)))
            print("rejected raw %d bytes" % len(raw))
        if name == "gap.cbor":
            r = obj["recs"][0]
            if r["kind"] != "gap" or r["dev"] != obj["gw"]:
                fail("gap record: %r" % (r,))
            print("gap %d-%d %s" % (r["vals"]["from"], r["vals"]["to"], r["vals"]["reason"]))


def seq(path):
    with open(path, "rb") as f:
        data = f.read()
    fp = io.BytesIO(data)
    dec = cbor2.CBORDecoder(fp)
    n = 0
    while fp.tell() < len(data):
        start = fp.tell()
        obj = dec.decode()
        item = data[start:fp.tell()]
        out = dumps(obj, canonical=True)
        if out != item:
            fail("item %d: cbor2 canonical re-encoding differs\n go:    %s\n cbor2: %s" % (n, item.hex(), out.hex()))
        n += 1
    print("%d items, all same bytes" % n)


def selftest():
    # The pure-Python encoder must get the float16 edge right (RFC 8949
    # Appendix A: 65504.0 is f97bff) or the comparison proves nothing.
    for value, want in ((65504.0, "f97bff"), (32768.0, "f97800"), (5.960464477539063e-08, "f90001"), (100000.0, "fa47c35000")):
        got = dumps(value, canonical=True).hex()
        if got != want:
            fail("cbor2 encoder self-test: %r -> %s, want %s" % (value, got, want))


def main():
    selftest()
    if len(sys.argv) < 3:
        fail(__doc__)
    if sys.argv[1] == "golden":
        golden(sys.argv[2:])
    elif sys.argv[1] == "seq":
        seq(sys.argv[2])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()
