#!/usr/bin/env python3
"""Sends N datagrams at RATE per second to each of PORTS on 127.0.0.1, each from a new socket (as
from another meter: a new flow for Docker's NAT), numbered so the receiving side can count them.

    send.py N RATE PORT [PORT ...]
"""
import socket
import sys
import time

count, rate, ports = int(sys.argv[1]), float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
started = time.time()
for i in range(count):
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(('{"meter":"bench-%d","value":%d,"timestamp":"t"}' % (i, i)).encode(), ("127.0.0.1", port))
        s.close()
    delay = started + (i + 1) / rate - time.time()
    if delay > 0:
        time.sleep(delay)
print(f"sent {count} to each of {ports} in {time.time() - started:.1f} s")
