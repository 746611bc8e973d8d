"""A Modbus server for townlink's interop tests, run by Debian's pymodbus 3.0.

usage: /usr/bin/python3 pymodbus_server.py rtu /dev/pts/N
       /usr/bin/python3 pymodbus_server.py tcp        (binds 127.0.0.1, a free port)

Prints "READY <port>" once it is serving, and exits when stdin closes.
Values are encoded by pymodbus's own BinaryPayloadBuilder, so the word
orders are checked against an implementation nobody here wrote.
Register map (protocol addresses, zero_mode):

holding  0      int16   -5
holding  1      uint16  253            (scale 0.1 -> 25.3)
holding  2..3   uint32  305419896 CDAB
holding  4..5   float32 12.5      ABCD
holding  6..7   int32   -100000   BADC
holding  8..9   float32 -1.5      DCBA
holding 10..13  int64   -1234567890123 DCBA
holding 14..15  uint32  4000000000 ABCD (scale 0.001 -> 4000000)
holding 16..19  float64 3.25      CDAB
input    0      uint16  2305           (scale 0.1 -> 230.5)
input    1..2   float32 50.0      CDAB
coils    0..9   1 0 1 1 0 0 0 1 1 0
discrete 0..4   0 1 1 0 1
Anything else (e.g. holding 100) answers exception 02.
"""
import asyncio
import os
import sys
import threading

from pymodbus.constants import Endian
from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.payload import BinaryPayloadBuilder

ORDERS = {
    "ABCD": (Endian.Big, Endian.Big),
    "CDAB": (Endian.Big, Endian.Little),
    "BADC": (Endian.Little, Endian.Big),
    "DCBA": (Endian.Little, Endian.Little),
}


def regs(kind, value, order="ABCD"):
    byteorder, wordorder = ORDERS[order]
    b = BinaryPayloadBuilder(byteorder=byteorder, wordorder=wordorder)
    getattr(b, "add_" + kind)(value)
    # to_registers() unpacks each 2-byte chunk big-endian: the register
    # value as it travels on the wire.
    return b.to_registers()


def context():
    hr = []
    hr += regs("16bit_int", -5)
    hr += regs("16bit_uint", 253)
    hr += regs("32bit_uint", 305419896, "CDAB")
    hr += regs("32bit_float", 12.5, "ABCD")
    hr += regs("32bit_int", -100000, "BADC")
    hr += regs("32bit_float", -1.5, "DCBA")
    hr += regs("64bit_int", -1234567890123, "DCBA")
    hr += regs("32bit_uint", 4000000000, "ABCD")
    hr += regs("64bit_float", 3.25, "CDAB")
    assert len(hr) == 20, len(hr)
    ir = regs("16bit_uint", 2305) + regs("32bit_float", 50.0, "CDAB")
    co = [bool(int(c)) for c in "1011000110"]
    di = [bool(int(c)) for c in "01101"]
    slave = ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(0, hr),
        ir=ModbusSequentialDataBlock(0, ir),
        co=ModbusSequentialDataBlock(0, co),
        di=ModbusSequentialDataBlock(0, di),
        zero_mode=True,
    )
    return ModbusServerContext(slaves=slave, single=True)


def exit_on_stdin_eof():
    sys.stdin.buffer.read()
    os._exit(0)


async def main():
    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    mode = sys.argv[1]
    if mode == "rtu":
        from pymodbus.framer.rtu_framer import ModbusRtuFramer
        from pymodbus.server.async_io import ModbusSerialServer

        server = ModbusSerialServer(
            context(), framer=ModbusRtuFramer, port=sys.argv[2], baudrate=9600
        )
        await server.start()
        if server.transport is None:
            print("ERROR cannot open " + sys.argv[2], flush=True)
            sys.exit(1)
        print("READY " + sys.argv[2], flush=True)
        await server.serve_forever()
    elif mode == "tcp":
        from pymodbus.server.async_io import ModbusTcpServer

        server = ModbusTcpServer(context(), address=("127.0.0.1", 0))
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        port = server.server.sockets[0].getsockname()[1]
        print("READY %d" % port, flush=True)
        await task
    else:
        sys.exit("usage: pymodbus_server.py rtu DEVICE | tcp")


asyncio.run(main())
