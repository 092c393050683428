"""N random mutants of the DICOM files in CORPUS, written to OUT (emptied first) as m000000…:
one to four of bit flips, lengths set to boundary values, item / delimiter / pixel-data / VR bytes
written at random places, bytes inserted, deleted and copied (after the 132-byte preamble).
Usage: mutate.py SEED N CORPUS OUT"""
import os, random, struct, sys
random.seed(int(sys.argv[1]))
n = int(sys.argv[2])
src, out = sys.argv[3], sys.argv[4]
files = [os.path.join(src, f) for f in os.listdir(src)]
for f in os.listdir(out): os.remove(os.path.join(out, f))
interesting = [0xFFFFFFFF, 0xFFFFFFFE, 0xF0000000, 0x80000000, 0x7FFFFFFF, 0, 1, 2, 3, 4, 5, 7, 8, 0xE000FFFE, 0xE00DFFFE, 0xE0DDFFFE]
tags = [b"\xfe\xff\x00\xe0", b"\xfe\xff\x0d\xe0", b"\xfe\xff\xdd\xe0", b"\xe0\x7f\x10\x00", b"SQ\x00\x00", b"UN\x00\x00", b"OB\x00\x00", b"US", b"UL", b"FD"]
for i in range(n):
    b = bytearray(open(random.choice(files), "rb").read())
    for _ in range(random.randint(1, 4)):
        if len(b) < 140: break
        k = random.random(); p = random.randrange(132, len(b))
        if k < 0.3:
            b[p] ^= 1 << random.randrange(8)
        elif k < 0.5:
            b[p:p+4] = struct.pack("<I", random.choice(interesting))
        elif k < 0.65:
            t = random.choice(tags); b[p:p+len(t)] = t
        elif k < 0.75:
            del b[p:p+random.randint(1, 16)]
        elif k < 0.85:
            b[p:p] = bytes(random.randrange(256) for _ in range(random.randint(1, 16)))
        else:
            q = random.randrange(132, len(b)); L = random.randint(1, 64)
            b[p:p] = b[q:q+L]
    open(os.path.join(out, "m%06d" % i), "wb").write(b)
