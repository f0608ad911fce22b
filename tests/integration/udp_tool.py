#!/usr/bin/python3
"""Tiny UDP sender/receiver for rig tests (stdlib only).

  udp_tool.py send HOST PORT COUNT [SIZE]   send COUNT datagrams, numbered
  udp_tool.py recv HOST PORT SECONDS        count datagrams until SECONDS of
                                            silence (after the first) or 3x
                                            SECONDS in all; prints the count
                                            and how many arrived late
"""
import socket
import sys
import time


def send(host, port, count, size=200):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        s.sendto(i.to_bytes(4, "big") + b"x" * (size - 4), (host, port))
        if i % 64 == 63:
            time.sleep(0.001)      # stay below the veth queue limit
    print(count)


def recv(host, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((host, port))
    print("ready", flush=True)
    n = 0
    late = 0         # datagrams arriving after a higher-numbered one
    top = -1
    deadline = time.monotonic() + 3 * seconds
    s.settimeout(seconds)
    while time.monotonic() < deadline:
        try:
            d = s.recv(65535)
        except socket.timeout:
            break
        n += 1
        seq = int.from_bytes(d[:4], "big")
        if seq < top:
            late += 1
        top = max(top, seq)
    print(n, late, flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
             int(sys.argv[5]) if len(sys.argv) > 5 else 200)
    elif cmd == "recv":
        recv(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("usage: udp_tool.py send|recv ...")
