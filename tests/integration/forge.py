#!/usr/bin/python3
"""Forged and corrupted Sluice datagrams for the robustness suite (stdlib).

  forge.py send CLASS HOST PORT COUNT [--pcap FILE] [--key-id HEX] [--seed S]
  forge.py count FILE          datagrams, DATA blocks and beacons in a capture

CLASS (what RX must drop, and where: docs/protocol.md section 9):
  random      random bytes, 1..1472 long          datagram/magic (mostly)
  oversize    random bytes, 1473..8000 long (beyond a 1500-MTU slot)
                                                  link/overflow
  header      valid DATA header (magic, version 1, type 1, exact length,
              S = 128, k' = m' = 1, random session, epoch 1..2^31 and
              seq < 2^40 (inside RX's replay jump bounds, so they reach the
              decoder), key id --key-id or random), random symbol, correct CRC32C
                                                  block/magic (decodes, not a block)
  header-k    the same with k' = 2..64: never completes, fills the FEC table
                                                  fec/table_full, fec/undecodable
  beacon      a BEACON with the trusted --key-id, valid fields, epoch
              1..2^31, random signature, correct CRC32C
                                                  beacon/signature, beacon/budget,
                                                  beacon/range (seq beyond what TX can have sent)
  bitflip     datagrams of --pcap, one random bit flipped (CRC kept)
                                                  frame/crc, beacon/crc (mostly)
  truncated   datagrams of --pcap cut short       datagram|frame|beacon/truncated, frame/length
  version     datagrams of --pcap, version byte != 1   datagram/version
  replay      datagrams of --pcap, unchanged, in capture order (COUNT: at most
              that many; 0 = all)                 what RX decides (other key, old epoch)

Sends from wherever it runs (the tests run it in sl-ot) and paces itself so
the veth queue and RX's socket buffer are not the bottleneck. Bounded: at
most COUNT datagrams and 120 s. Prints the number sent.
"""
import os
import random
import socket
import struct
import sys
import time

MAGIC = b"SL"
HDR = 44


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
    """CRC-32C (Castagnoli): reflected poly 0x82F63B78, init and final XOR
    0xFFFFFFFF (check value of b"123456789": 0xE3069283)."""
    c = 0xFFFFFFFF
    t = _T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def read_pcap(path):
    """UDP payloads of a classic pcap file (Ethernet or raw IPv4), in order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("%s: not a pcap file" % path)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a pcap file" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if linktype == 1:                       # Ethernet
            if len(pkt) < 14 or pkt[12:14] != b"\x08\x00":
                continue
            pkt = pkt[14:]
        elif linktype not in (101, 228):        # raw IP / IPv4
            raise ValueError("%s: link type %d" % (path, linktype))
        if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] != 17:
            continue
        ihl = (pkt[0] & 15) * 4
        total = struct.unpack(">H", pkt[2:4])[0]
        udp = pkt[ihl:total]
        if len(udp) < 8:
            continue
        out.append(udp[8:])
    return out


def count(path):
    """(datagrams, distinct DATA blocks, beacons) in a capture."""
    dgs = read_pcap(path)
    blocks = {(d[4:6], d[8:16], d[24:32]) for d in dgs if d[:4] == b"SL\x01\x01"}
    beacons = sum(1 for d in dgs if d[:4] == b"SL\x01\x02")
    return len(dgs), len(blocks), beacons


def data_frame(rnd, key_id, k, m, s=64):
    index = rnd.randrange(k + m)
    hdr = struct.pack(">2sBBHHQQQ8sBBBB", MAGIC, 1, 1, 0, s, rnd.getrandbits(64), 1 + rnd.getrandbits(31),
                      rnd.getrandbits(40), key_id or rnd.randbytes(8), k, m, index, 0)
    body = hdr + rnd.randbytes(s)
    return body + struct.pack(">I", crc32c(body))


def beacon(rnd, key_id):
    f = struct.pack(">2sBBHHQQ8sQQQHBBBBHI16s16sQQQQ", MAGIC, 1, 2, 0, 0, rnd.getrandbits(64),
                    1 + rnd.getrandbits(31), key_id, rnd.getrandbits(32), int(time.time() * 1e6),
                    rnd.getrandbits(16), 1424, 64, 16, 16, 0, 0, 100000, rnd.randbytes(16),
                    rnd.randbytes(16), 0, 0, rnd.getrandbits(16), rnd.getrandbits(20))
    assert len(f) == 132
    body = f + rnd.randbytes(64)
    return body + struct.pack(">I", crc32c(body))


def generate(cls, rnd, n, pcap, key_id):
    if cls in ("bitflip", "truncated", "version", "replay"):
        src = read_pcap(pcap)
        if not src:
            raise ValueError("%s holds no datagrams" % pcap)
    if cls == "replay":
        yield from src[:n] if n else src
        return
    for i in range(n):
        if cls == "random":
            yield rnd.randbytes(rnd.randrange(1, 1473))
        elif cls == "oversize":
            yield rnd.randbytes(rnd.randrange(1473, 8001))
        elif cls == "header":
            yield data_frame(rnd, key_id, 1, 1, 128)
        elif cls == "header-k":
            yield data_frame(rnd, key_id, rnd.randrange(2, 65), rnd.randrange(1, 17))
        elif cls == "beacon":
            yield beacon(rnd, key_id)
        elif cls == "bitflip":
            d = bytearray(src[i % len(src)])
            bit = rnd.randrange(len(d) * 8)
            d[bit // 8] ^= 1 << (bit % 8)
            yield bytes(d)
        elif cls == "truncated":
            d = src[i % len(src)]
            yield d[:rnd.randrange(len(d))]
        elif cls == "version":
            d = bytearray(src[i % len(src)])
            d[2] = rnd.choice([0] + list(range(2, 256)))
            yield bytes(d)
        else:
            raise ValueError("unknown class " + cls)


def send(cls, host, port, n, pcap=None, key_id=None, seed=1):
    rnd = random.Random("%s/%d" % (cls, seed))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    deadline = time.monotonic() + 120
    sent = 0
    for d in generate(cls, rnd, n, pcap, key_id):
        if time.monotonic() > deadline:
            break
        try:
            s.sendto(d, (host, port))
        except OSError:
            time.sleep(0.01)        # a full queue: back off, count it as not sent
            continue
        sent += 1
        if sent % 16 == 0:
            time.sleep(0.001)       # ~12k datagrams/s at most: below RX's drain rate
                                    # (ASan build included), so its socket never overflows
    return sent


def main(argv):
    if len(argv) >= 2 and argv[0] == "count":
        print("%d %d %d" % count(argv[1]))
        return 0
    if len(argv) < 5 or argv[0] != "send":
        sys.stderr.write(__doc__)
        return 2
    cls, host, port, n = argv[1], argv[2], int(argv[3]), int(argv[4])
    opts = dict(zip(argv[5::2], argv[6::2]))
    key_id = bytes.fromhex(opts["--key-id"]) if "--key-id" in opts else None
    print(send(cls, host, port, n, opts.get("--pcap"), key_id, int(opts.get("--seed", "1"))))
    return 0


if __name__ == "__main__":
    assert crc32c(b"123456789") == 0xE3069283 and crc32c(bytes(32)) == 0x8A9136AA
    sys.exit(main(sys.argv[1:]))
