#!/usr/bin/python3
"""A scripted Bitcoin peer for the relay's P2P test (relay/tests/p2p_python.rs),
built on python-bitcoinlib's message classes (bitcoin.messages): an
implementation of the protocol independent of the Rust `bitcoin` crate.

It listens first and prints `LISTEN <port>` (the relay is started with
`--connect` to it), then reads `RELAY <host:port>` (the relay's P2P
address) on stdin and plays, on regtest:

  W  the relay's outbound peer (it connected to us): version from the relay
     first, wtxidrelay negotiated both ways;
  S  an inbound peer at 70016 with wtxidrelay: the source of a segwit tx by
     inv -> getdata -> tx;
  T  an inbound peer at 70015 (no wtxidrelay): hears of it by txid, asks for
     it with and without its witness, gets notfound for the unknown, and
     sends a legacy tx unsolicited;
  G  a peer that sends garbage: the relay must close it.

Every check is an assertion; the script prints `DONE <json>` and exits 0 when
all held. Usage: peer.py <transactions.txt>
"""

import hashlib
import json
import os
import socket
import struct
import sys
from io import BytesIO

import bitcoin
from bitcoin.core import CTransaction, x
from bitcoin.messages import (MsgSerializable, messagemap, msg_getdata,
                              msg_inv, msg_ping, msg_pong, msg_tx,
                              msg_verack, msg_version)
from bitcoin.net import CInv

bitcoin.SelectParams("regtest")

MSG_TX = 1
MSG_WTX = 5
MSG_WITNESS_TX = 0x40000001
TIMEOUT = 10.0


class msg_wtxidrelay(MsgSerializable):
    """BIP 339 (not in python-bitcoinlib 0.11): an empty payload."""
    command = b"wtxidrelay"

    @classmethod
    def msg_deser(cls, f, protover=None):
        return cls()

    def msg_ser(self, f):
        pass


class msg_sendaddrv2(msg_wtxidrelay):
    """BIP 155: an empty payload."""
    command = b"sendaddrv2"


messagemap[b"wtxidrelay"] = msg_wtxidrelay
messagemap[b"sendaddrv2"] = msg_sendaddrv2


def sha256d(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


class Peer:
    def __init__(self, sock, name):
        self.s = sock
        self.s.settimeout(TIMEOUT)
        self.name = name
        self.pings = 0

    def send(self, m):
        self.s.sendall(m.to_bytes())

    def recv(self):
        """The next message (pings from the relay answered and counted)."""
        while True:
            h = read_exact(self.s, 24)
            assert h[:4] == bitcoin.params.MESSAGE_START, (self.name, h)
            command = h[4:16].split(b"\x00", 1)[0]
            (length,) = struct.unpack("<I", h[16:20])
            payload = read_exact(self.s, length)
            assert sha256d(payload)[:4] == h[20:24], (self.name, command)
            assert command in messagemap, (self.name, command)
            m = messagemap[command].msg_deser(BytesIO(payload))
            if command == b"ping":
                self.pings += 1
                self.send(msg_pong(nonce=m.nonce))
                continue
            return command, m

    def expect(self, command):
        got, m = self.recv()
        assert got == command, "%s: expected %r, got %r" % (self.name, command, got)
        return m

    def quiet(self):
        """Nothing queued for us: a ping's pong comes back first."""
        nonce = int.from_bytes(os.urandom(8), "little")
        self.send(msg_ping(nonce=nonce))
        m = self.expect(b"pong")
        assert m.nonce == nonce, (self.name, m.nonce, nonce)


def version(v):
    m = msg_version(v)
    m.nVersion = v
    m.nServices = 8
    m.nStartingHeight = 0
    return m


def check_relay_version(m):
    assert m.nVersion == 70016, m.nVersion
    assert m.strSubVer.startswith(b"/sprint-relay:") and m.strSubVer.endswith(b"/"), m.strSubVer
    assert m.nStartingHeight == 0, m.nStartingHeight
    assert m.fRelay, "the relay flag"
    assert m.nServices & 8, "NODE_WITNESS"
    return m.nNonce


def inbound(addr, name, v, wtxid):
    host, port = addr.rsplit(":", 1)
    p = Peer(socket.create_connection((host, int(port)), timeout=TIMEOUT), name)
    p.send(version(v))
    check_relay_version(p.expect(b"version"))
    if v >= 70016:
        p.expect(b"wtxidrelay")
    p.expect(b"sendaddrv2")
    p.expect(b"verack")
    if wtxid:
        p.send(msg_wtxidrelay())
    p.send(msg_verack())
    return p


def invs(m):
    return [(i.type, i.hash) for i in m.inv]


def inv_of(kind, h):
    i = CInv()
    i.type = kind
    i.hash = h
    return i


def main():
    txs = []
    for line in open(sys.argv[1]):
        if line.startswith("#"):
            continue
        name, kind, hexstr = line.split()
        raw = x(hexstr)
        tx = CTransaction.deserialize(raw)
        txs.append((name, kind, raw, tx, tx.GetTxid(), sha256d(raw)))
    segwit = next(t for t in txs if t[1] == "segwit")
    legacy = next(t for t in txs if t[1] == "legacy")
    assert segwit[4] != segwit[5] and legacy[4] == legacy[5]

    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ls.settimeout(TIMEOUT)
    print("LISTEN %d" % ls.getsockname()[1], flush=True)
    relay = sys.stdin.readline().split()[1]

    # W: the relay connects to us and speaks first.
    conn, _ = ls.accept()
    # One outbound connection: when W goes, the relay's reconnections fail.
    ls.close()
    w = Peer(conn, "W")
    nonce = check_relay_version(w.expect(b"version"))
    w.send(version(70016))
    w.expect(b"wtxidrelay")
    w.expect(b"sendaddrv2")
    w.expect(b"verack")
    w.send(msg_wtxidrelay())
    w.send(msg_sendaddrv2())
    w.send(msg_verack())

    s = inbound(relay, "S", 70016, True)
    t = inbound(relay, "T", 70015, False)
    for p in (w, s, t):
        p.quiet()

    # inv -> getdata -> tx, by wtxid.
    _, _, raw, tx, txid, wtxid = segwit
    m = msg_inv()
    m.inv = [inv_of(MSG_WTX, wtxid)]
    s.send(m)
    assert invs(s.expect(b"getdata")) == [(MSG_WTX, wtxid)]
    m = msg_tx()
    m.tx = tx
    s.send(m)
    # Announced by wtxid to W, by txid to T, not back to S.
    assert invs(w.expect(b"inv")) == [(MSG_WTX, wtxid)]
    assert invs(t.expect(b"inv")) == [(MSG_TX, txid)]
    s.quiet()

    # T asks with the witness, and for something unknown.
    unknown = bytes(range(32))
    g = msg_getdata()
    g.inv = [inv_of(MSG_WITNESS_TX, txid), inv_of(MSG_TX, unknown)]
    t.send(g)
    got = t.expect(b"tx").tx
    assert got.serialize() == raw and got.GetTxid() == txid
    assert invs(t.expect(b"notfound")) == [(MSG_TX, unknown)]
    # Without: the same transaction, stripped of its witness.
    g.inv = [inv_of(MSG_TX, txid)]
    t.send(g)
    got = t.expect(b"tx").tx
    assert got.GetTxid() == txid and not got.has_witness()
    # W by wtxid.
    g.inv = [inv_of(MSG_WTX, wtxid)]
    w.send(g)
    assert w.expect(b"tx").tx.serialize() == raw

    # An unsolicited legacy tx from T reaches S and W (its wtxid is its
    # txid), not T.
    _, _, lraw, ltx, ltxid, _ = legacy
    m = msg_tx()
    m.tx = ltx
    t.send(m)
    assert invs(s.expect(b"inv")) == [(MSG_WTX, ltxid)]
    assert invs(w.expect(b"inv")) == [(MSG_WTX, ltxid)]
    t.quiet()

    # The relay pings its peers (every 200 ms in the test): W answers.
    while w.pings == 0:
        w.quiet()

    # G: garbage, then the relay closes it.
    host, port = relay.rsplit(":", 1)
    gp = Peer(socket.create_connection((host, int(port)), timeout=TIMEOUT), "G")
    gp.s.sendall(b"\x00\x01garbage that is no message at all" + os.urandom(40))
    closed = False
    try:
        closed = gp.s.recv(1) == b""
    except ConnectionResetError:
        closed = True
    assert closed, "the relay kept a peer that sent garbage"

    print("DONE " + json.dumps({"relay_nonce": nonce, "w_pings": w.pings}), flush=True)
    for p in (w, s, t):
        p.s.close()


if __name__ == "__main__":
    main()
