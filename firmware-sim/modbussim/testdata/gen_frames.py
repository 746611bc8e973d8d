#!/usr/bin/python3
# Regenerates frames.txt. The PDUs are the worked examples of the MODBUS
# Application Protocol Specification V1.1b3 (§6.1-6.12, §7) and public
# frames from /work/shared/vectors/frames.json; the RTU CRCs are computed
# by pymodbus (Debian python3-pymodbus 3.0, an implementation nobody on
# this team wrote): run with /usr/bin/python3 testdata/gen_frames.py > testdata/frames.txt
from pymodbus.utilities import computeCRC

def adu(hexs):
    b = bytes.fromhex(hexs)
    c = computeCRC(b)
    return (b + c.to_bytes(2, "big")).hex(" ").upper()

AP = "MODBUS Application Protocol V1.1b3"
CRC = "RTU address 0x11 and CRC-16 added (CRC by pymodbus computeCRC)"
cases = [
    ("fc01-read-coils", f"{AP} §6.1 example: coils 20-38 read as CD 6B 05; {CRC}",
     ["unit 17", "set coil 19 1 0 1 1 0 0 1 1 1 1 0 1 0 1 1 0 1 0 1"],
     adu("11 01 0013 0013"), adu("11 01 03 CD 6B 05"), []),
    ("fc02-read-discrete-inputs", f"{AP} §6.2 example: inputs 197-218 read as AC DB 35; {CRC}",
     ["unit 17", "set discrete 196 0 0 1 1 0 1 0 1 1 1 0 1 1 0 1 1 1 0 1 0 1 1"],
     adu("11 02 00C4 0016"), adu("11 02 03 AC DB 35"), []),
    ("fc03-read-holding", f"{AP} §6.3 example: registers 108-110 = 555, 0, 100; {CRC}",
     ["unit 17", "set holding 107 0x022B 0x0000 0x0064"],
     adu("11 03 006B 0003"), adu("11 03 06 022B 0000 0064"), []),
    ("fc03-simplymodbus", "simplymodbus.ca FC03 example; reply is frames.json 'pymodbus test_framer.py line 374'",
     ["unit 17", "set holding 107 0xAE41 0x5652 0x4340"],
     "11 03 00 6B 00 03 76 87", "11 03 06 AE 41 56 52 43 40 49 AD", []),
    ("fc03-pymodbus-framer", "frames.json: pymodbus test/framer/test_framer.py lines 124-125",
     ["unit 17", "set holding 124 0x008D 0x008E"],
     "11 03 00 7C 00 02 07 43", "11 03 04 00 8D 00 8E FB BD", []),
    ("fc04-read-input", f"{AP} §6.4 example: input register 9 = 10; {CRC}",
     ["unit 17", "set input 8 10"],
     adu("11 04 0008 0001"), adu("11 04 02 000A"), []),
    ("fc05-write-coil", "frames.json: simplymodbus FC05 example (coil 173 ON), reply is the echo",
     ["unit 17", "set coil 172 0"],
     "11 05 00 AC FF 00 4E 8B", "11 05 00 AC FF 00 4E 8B", ["want coil 172 1"]),
    ("fc06-write-register", "frames.json: simplymodbus FC06 example (register 40002 = 3), reply is the echo",
     ["unit 17", "set holding 1 0"],
     "11 06 00 01 00 03 9A 9B", "11 06 00 01 00 03 9A 9B", ["want holding 1 3"]),
    ("fc15-write-coils", f"{AP} §6.11 example: 10 coils from 20 = CD 01; {CRC}",
     ["unit 17", "set coil 19 0 0 0 0 0 0 0 0 0 0"],
     adu("11 0F 0013 000A 02 CD 01"), adu("11 0F 0013 000A"), ["want coil 19 1 0 1 1 0 0 1 1 1 0"]),
    ("fc16-write-registers", f"{AP} §6.12 example: registers 2-3 = 000A 0102; {CRC}",
     ["unit 17", "set holding 1 0 0"],
     adu("11 10 0001 0002 04 000A 0102"), adu("11 10 0001 0002"), ["want holding 1 0x000A 0x0102"]),
    ("fc16-goburrow", "frames.json: goburrow/modbus rtuclient_test.go line 32 (reply); request values chosen here, CRC by pymodbus",
     ["unit 1", "set holding 35328 0 0 0"],
     adu("01 10 8A00 0003 06 0001 0002 0003"), "01 10 8A 00 00 03 AA 10", ["want holding 35328 1 2 3"]),
    ("exception-02-spec", f"{AP} §7 example: read coil 1186 that does not exist gives 81 02; {CRC}",
     ["unit 17"],
     adu("11 01 04A1 0001"), adu("11 81 02"), []),
    ("exception-02-pymodbus", "frames.json: pymodbus test_framer.py line 126 (11 83 02 C1 34)",
     ["unit 17", "set holding 107 1 2"],
     "11 03 00 6B 00 03 76 87", "11 83 02 C1 34", []),
    ("exception-04-injected", "frames.json: Bender isoGEN523 manual exception example (03 83 04 E1 33)",
     ["unit 3", "set holding 0 1", "fault exception:4"],
     adu("03 03 0000 0001"), "03 83 04 E1 33", []),
    ("exception-01-illegal-function", f"{AP} §7: FC 07 (read exception status) is not implemented; {CRC}",
     ["unit 17"],
     adu("11 07"), adu("11 87 01"), []),
    ("exception-03-quantity-zero", f"{AP} §6.3: quantity 0 is outside 1..125; {CRC}",
     ["unit 17", "set holding 0 1"],
     adu("11 03 0000 0000"), adu("11 83 03"), []),
    ("exception-03-quantity-126", f"{AP} §6.3: quantity 126 is outside 1..125; {CRC}",
     ["unit 17", "set holding 0 1"],
     adu("11 03 0000 007E"), adu("11 83 03"), []),
    ("exception-03-coil-value", f"{AP} §6.5: a coil value other than FF00/0000 is illegal; {CRC}",
     ["unit 17", "set coil 172 0"],
     adu("11 05 00AC 1234"), adu("11 85 03"), ["want coil 172 0"]),
    ("exception-03-bytecount", f"{AP} §6.12: byte count must be 2 x quantity; {CRC}",
     ["unit 17", "set holding 1 0 0"],
     adu("11 10 0001 0002 02 000A"), adu("11 90 03"), ["want holding 1 0 0"]),
    ("exception-02-range-end", f"{AP} §6.3: start + quantity past 65536; {CRC}",
     ["unit 17", "set holding 65535 1"],
     adu("11 03 FFFF 0002"), adu("11 83 02"), []),
    ("broadcast-write", "MODBUS over Serial Line V1.02 §2.1: address 0 is a broadcast write, never answered",
     ["unit 17", "set holding 1 0", "unit 18", "set holding 1 0"],
     adu("00 06 0001 0007"), "none", ["unit 17", "want holding 1 7", "unit 18", "want holding 1 7"]),
    ("bad-crc-ignored", "MODBUS over Serial Line V1.02 §2.4.3/§2.5.1: a frame with a bad CRC is discarded, no reply",
     ["unit 17", "set holding 107 1 2 3"],
     "11 03 00 6B 00 03 76 88", "none", []),
    ("other-unit-ignored", "MODBUS over Serial Line V1.02 §2.2: only the addressed slave answers",
     ["unit 17", "set holding 107 1 2 3"],
     adu("12 03 006B 0003"), "none", []),
    ("garbage-then-request", "resync: a noise byte before a good request is dropped",
     ["unit 17", "set holding 107 0xAE41 0x5652 0x4340"],
     "FF 11 03 00 6B 00 03 76 87", "11 03 06 AE 41 56 52 43 40 49 AD", []),
    ("spec-crc-example", "pymodbus test_extras.py line 16 request 01 03 00 00 00 05 85 C9; reply CRC by pymodbus",
     ["unit 1", "set holding 0 1 2 3 4 5"],
     "01 03 00 00 00 05 85 C9", adu("01 03 0A 0001 0002 0003 0004 0005"), []),
]
print("# Golden exchanges for firmware-sim/modbussim. Generated by gen_frames.py; edit that, not this.")
print("# case NAME / source TEXT / unit ID (selects the unit for later lines) / set TABLE ADDR VALUES... /")
print("# fault SPEC / req HEX / rep HEX|none / want TABLE ADDR VALUES... (checked after the exchange)")
for name, src, setup, req, rep, want in cases:
    print()
    print("case", name)
    print("source", src)
    for l in setup:
        print(l)
    print("req", req)
    print("rep", rep)
    for l in want:
        print(l)
