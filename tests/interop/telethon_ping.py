#!/usr/bin/env python3
"""Telethon 1.x against the fake-dc binary.

Starts `fake-dc --listen 127.0.0.1:0`, reads the port from its first stdout
line, then for each transport Telethon offers creates an auth key with
Telethon's own MTProtoSender (its handshake: legacy p_q_inner_data, legacy
RSA encryption) and sends a ping, checking the pong's ping_id. Then, over
one connection, a few pings in a row, a get_future_salts, and a ping after a
reconnect with the same key.

Usage: telethon_ping.py PATH/TO/fake-dc
Exit status 0 when every required transport passes.
"""

import asyncio
import logging
import os
import random
import subprocess
import sys
import time

from telethon.crypto import AuthKey, rsa
from telethon.network import MTProtoSender
from telethon.network.connection import (
    ConnectionTcpAbridged,
    ConnectionTcpFull,
    ConnectionTcpIntermediate,
    ConnectionTcpObfuscated,
)
from telethon.network.connection.tcpintermediate import (
    IntermediatePacketCodec,
    RandomizedIntermediatePacketCodec,
)
from telethon.tl.functions import GetFutureSaltsRequest, PingRequest

TOTAL_TIMEOUT = 20.0
STEP_TIMEOUT = 10.0


class ConnectionTcpObfuscatedIntermediate(ConnectionTcpObfuscated):
    """obfuscated2 around Telethon's intermediate codec (tag eeeeeeee)."""

    packet_codec = IntermediatePacketCodec


class ConnectionTcpObfuscatedPadded(ConnectionTcpObfuscated):
    """obfuscated2 around Telethon's randomized (padded) intermediate codec
    (tag dddddddd). Telethon strips only len % 4 bytes of padding on
    receipt, while the padded transport allows 0..=15: see the report."""

    packet_codec = RandomizedIntermediatePacketCodec


# (name, connection class, required)
TRANSPORTS = [
    ("ConnectionTcpFull", ConnectionTcpFull, True),
    ("ConnectionTcpIntermediate", ConnectionTcpIntermediate, True),
    ("ConnectionTcpAbridged", ConnectionTcpAbridged, True),
    ("ConnectionTcpObfuscated", ConnectionTcpObfuscated, True),
    ("obfuscated intermediate (ConnectionTcpObfuscated + IntermediatePacketCodec)",
     ConnectionTcpObfuscatedIntermediate, True),
    ("obfuscated padded intermediate (ConnectionTcpObfuscated + RandomizedIntermediatePacketCodec)",
     ConnectionTcpObfuscatedPadded, False),
]


class Loggers(dict):
    def __missing__(self, key):
        return logging.getLogger(key)


def start_server(binary):
    key = subprocess.run([binary, "--print-public-key"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    pem, _, fp_line = key.partition("-----END RSA PUBLIC KEY-----")
    pem += "-----END RSA PUBLIC KEY-----\n"
    print("server key " + fp_line.strip(), flush=True)
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    line = proc.stdout.readline().strip()
    prefix = "listening on "
    if not line.startswith(prefix):
        proc.kill()
        raise RuntimeError("fake-dc did not say where it listens: %r" % line)
    host, _, port = line[len(prefix):].rpartition(":")
    return proc, pem, host, int(port)


async def run_one(conn_cls, host, port):
    loggers = Loggers()
    sender = MTProtoSender(AuthKey(None), loggers=loggers, retries=1, delay=0.1,
                           auto_reconnect=False, connect_timeout=STEP_TIMEOUT)
    conn = conn_cls(host, port, 2, loggers=loggers)
    await asyncio.wait_for(sender.connect(conn), STEP_TIMEOUT)
    try:
        assert sender.auth_key.key is not None, "no auth key"
        for _ in range(3):
            ping_id = random.getrandbits(63)
            pong = await asyncio.wait_for(sender.send(PingRequest(ping_id=ping_id)),
                                          STEP_TIMEOUT)
            assert pong.ping_id == ping_id, "pong %r for ping %d" % (pong, ping_id)
        salts = await asyncio.wait_for(sender.send(GetFutureSaltsRequest(num=2)),
                                       STEP_TIMEOUT)
        assert len(salts.salts) == 2, "future_salts %r" % salts
    finally:
        await sender.disconnect()
    # Same key, new connection, new session.
    key = sender.auth_key
    sender = MTProtoSender(key, loggers=loggers, retries=1, delay=0.1,
                           auto_reconnect=False, connect_timeout=STEP_TIMEOUT)
    await asyncio.wait_for(sender.connect(conn_cls(host, port, 2, loggers=loggers)),
                           STEP_TIMEOUT)
    try:
        ping_id = random.getrandbits(63)
        pong = await asyncio.wait_for(sender.send(PingRequest(ping_id=ping_id)), STEP_TIMEOUT)
        assert pong.ping_id == ping_id
    finally:
        await sender.disconnect()


def run_child(index, host, port, pem):
    """One transport in a child interpreter: a crash in Telethon's crypto
    (see ConnectionTcpObfuscatedPadded) cannot take the run down."""
    env = dict(os.environ, INTEROP_PEM=pem)
    try:
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--one", str(index), host, str(port)],
            env=env, capture_output=True, text=True, timeout=TOTAL_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        return False, "timed out after %.0f s" % (TOTAL_TIMEOUT + 5)
    if child.returncode == 0:
        return True, ""
    lines = (child.stdout + child.stderr).strip().splitlines()
    return False, "exit %d: %s" % (child.returncode, lines[-1] if lines else "no output")


async def one(index, host, port):
    logging.basicConfig(level=os.environ.get("INTEROP_LOG", "WARNING"))
    rsa.add_key(os.environ["INTEROP_PEM"], old=False)
    _, cls, _ = TRANSPORTS[index]
    await asyncio.wait_for(run_one(cls, host, port), TOTAL_TIMEOUT)


def main(binary):
    proc, pem, host, port = start_server(binary)
    results = []
    try:
        for index, (name, _, required) in enumerate(TRANSPORTS):
            started = time.monotonic()
            ok, err = run_child(index, host, port, pem)
            results.append((name, required, ok, err))
            status = "ok" if ok else ("FAIL" if required else "info")
            print("%-4s %s (%.2f s)%s" % (status, name,
                                         time.monotonic() - started,
                                         "" if ok else " " + err), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    for name, required, ok, err in results:
        if not required:
            print("note: %s is informative only: %s" % (name, "passed" if ok else "failed"))
    required = [r for r in results if r[1]]
    passed = sum(1 for r in required if r[2])
    print("telethon interop: %d passed, %d failed" % (passed, len(required) - passed),
          flush=True)
    return 0 if passed == len(required) else 1


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        asyncio.run(one(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
        sys.exit(0)
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
