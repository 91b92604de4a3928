#!/usr/bin/env python3
"""Writes python_repr.txt: tricky doubles with CPython's repr(v) and repr(round(v, 4)).

Each line: the IEEE-754 bits in hex, repr(v), repr(round(v, 4)), tab-separated. Run with any CPython 3:
    python3 tests/data/make_python_repr.py > tests/data/python_repr.txt
The values are deterministic (fixed seed), so the file only changes with the list below.
"""
import math
import random
import struct
import sys


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def from_bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


values = []


def add(v, neighbours=True):
    values.append(v)
    if neighbours and math.isfinite(v):
        values.append(math.nextafter(v, math.inf))
        values.append(math.nextafter(v, -math.inf))


# Powers of ten across the whole range, with their neighbours.
for k in range(-325, 309):
    add(float("1e%d" % k))
# The repr switch points: 1e16 (exponent form above) and 1e-4 (exponent form below).
for v in [1e16, 9999999999999998.0, 1e16 - 2, 1e16 + 2, 1.5e16, 123456789012345678.0, 1e-4, 0.0001, 0.00009999999999999999,
          0.00010000000000000002, 9.999e-5, 1.0001e-4, 5e-5, 0.00012345, 1e15, 999999999999999.9, 2.0 ** 53, 2.0 ** 53 + 2,
          2.0 ** 63, 2.0 ** 64, 1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, 1e-323, 0.1, 0.2, 0.3, 0.1 + 0.2,
          1 / 3, 2 / 3, math.pi, math.e, 100.0, 1234.5, 123456.789, 18.911049999999992]:
    add(v)
# Subnormals.
for b in [1, 2, 3, 1000, 123456789, 0x000FFFFFFFFFFFFF, 0x0008000000000000]:
    add(from_bits(b), neighbours=False)
# Ties and near-ties for round(v, 4): decimal halves (not exact in binary) and exact binary halves.
for k in range(0, 200):
    add(k / 20000 + 0.00005 * (k % 2))
    add((2 * k + 1) / 20000)
    add(k + 0.00005, neighbours=False)
    add(k * 1.11 + 0.00015, neighbours=False)
for e in range(5, 20):
    for n in range(1, 40, 3):
        add(n / 2.0 ** e, neighbours=False)
# Typical boundaries: values with many decimals around the SMB counts' scale.
rng = random.Random(20240601)
for _ in range(400):
    add(rng.uniform(-1000, 1000), neighbours=False)
    add(rng.uniform(0, 1e-3), neighbours=False)
for _ in range(300):
    b = rng.getrandbits(64)
    v = from_bits(b)
    if math.isfinite(v):
        add(v, neighbours=False)
for _ in range(300):
    add(round(rng.uniform(0, 500), rng.randint(0, 6)), neighbours=False)
# Zeros and non-finite values.
for v in [0.0, -0.0, math.inf, -math.inf]:
    add(v, neighbours=False)

seen = set()
out = []
for v in values + [-v for v in values]:
    b = bits(v)
    if b in seen:
        continue
    seen.add(b)
    out.append("%016x\t%s\t%s" % (b, repr(v), repr(round(v, 4))))
out.append("%016x\t%s\t%s" % (bits(math.nan), repr(math.nan), repr(round(math.nan, 4))))
sys.stdout.write("\n".join(out) + "\n")
