#!/usr/bin/env python3
"""The id hashing of docs/serving.md ("Id hashing"), written from that page only, as a server in
another language would. Reads JSON lines {"feature", "buckets", "id"} on stdin and prints JSON lines
{"seed", "hash", "row"}."""
import json
import re
import sys

M = 0xFFFFFFFF


def rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & M


def fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M
    h ^= h >> 16
    return h


def mix(h, k):
    k = (k * 0xCC9E2D51) & M
    k = rotl(k, 15)
    k = (k * 0x1B873593) & M
    h ^= k
    h = rotl(h, 13)
    return (h * 5 + 0xE6546B64) & M


def utf16_units(s):
    b = s.encode('utf-16-le')
    return [b[i] | (b[i + 1] << 8) for i in range(0, len(b), 2)]


def hash_string(s, seed):
    units = utf16_units(s)
    h = seed
    for c in units:
        h = mix(h, c)
    return fmix32(h ^ len(units) ^ 0x5BD1E995)


def hash_integer(n, seed):
    u = n & 0xFFFFFFFFFFFFFFFF
    return fmix32(mix(mix(seed, u & M), u >> 32) ^ 8)


CANONICAL = re.compile(r'^-?(0|[1-9][0-9]*)$')


def hash_id(i, seed):
    if isinstance(i, int):
        return hash_integer(i, seed)
    if CANONICAL.match(i) and i != '-0' and abs(int(i)) <= 2**53 - 1:
        return hash_integer(int(i), seed)
    return hash_string(i, seed)


for line in sys.stdin:
    q = json.loads(line)
    seed = hash_string(q['feature'], 0x9747B28C)
    h = hash_id(q['id'], seed)
    print(json.dumps({'seed': seed, 'hash': h, 'row': h % q['buckets']}))
