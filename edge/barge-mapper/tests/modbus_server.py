#!/usr/bin/env python3
"""A Modbus TCP server (pymodbus) for barge-mapper's tests, and a one-shot reader.

  modbus_server.py serve PORT       serve on 127.0.0.1:PORT until killed
  modbus_server.py read PORT ADDR   print holding register ADDR (slave 1) and exit

Initial registers (protocol addresses as a client sends them):
  holding 0 = 235, 1 = 0x3412, 2 = 0x0002, 3 = 0x0001, 4 = 10
  input 0 = 42;  coil 0 = on;  discrete input 0 = on
"""
import asyncio
import logging
import sys


def serve(port):
    from pymodbus.datastore import (ModbusDeviceContext, ModbusSequentialDataBlock,
                                    ModbusServerContext)
    from pymodbus.server import StartAsyncTcpServer

    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    # pymodbus's blocks are 1-based: a block at 1 starts at protocol address 0.
    hr = [235, 0x3412, 0x0002, 0x0001, 10] + [0] * 10
    ir = [42] + [0] * 10
    co = [True] + [False] * 10
    di = [True] + [False] * 10
    dev = ModbusDeviceContext(
        di=ModbusSequentialDataBlock(1, di),
        co=ModbusSequentialDataBlock(1, co),
        hr=ModbusSequentialDataBlock(1, hr),
        ir=ModbusSequentialDataBlock(1, ir),
    )
    ctx = ModbusServerContext(devices={1: dev}, single=False)
    print(f"serving on 127.0.0.1:{port}", flush=True)
    asyncio.run(StartAsyncTcpServer(context=ctx, address=("127.0.0.1", port)))


def read(port, addr):
    from pymodbus.client import ModbusTcpClient

    c = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    if not c.connect():
        sys.exit("connect failed")
    r = c.read_holding_registers(addr, count=1, device_id=1)
    if r.isError():
        sys.exit(f"read failed: {r}")
    print(r.registers[0])
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        read(int(sys.argv[2]), int(sys.argv[3]))
