# Regenerates the seed corpora of fuzz_html_scan and fuzz_decode from tests/unit/inject_cases.h.
# Run from the top of the tree with the system python3 (python3-brotli, python3-zstandard).
import re, gzip, zlib, brotli, zstandard, struct
src = open('tests/unit/inject_cases.h').read()
st = src.index('inject_cases[] = {'); body = src[st:src.index('};', st)]
entries = re.findall(r'\{"([a-z_0-9]+)",\s*((?:"(?:[^"\\]|\\.)*"\s*)+),', body)
docs = {}
for name, lits in entries:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', lits)
    s = ''.join(parts)
    b = s.encode('latin-1').decode('unicode_escape').encode('latin-1').replace(b'\x01', b'')
    docs[name] = b
print(len(docs), 'docs')
for i, (name, d) in enumerate(sorted(docs.items())):
    open(f'fuzz/corpus/fuzz_html_scan/{name}', 'wb').write(b'\x00' + d)
    n = len(d)
    cuts = [n // 3, n // 2, (2 * n) // 3]
    hdr = bytes([0x80 | 3]) + b''.join(struct.pack('<H', c) for c in cuts)
    open(f'fuzz/corpus/fuzz_html_scan/{name}_cuts', 'wb').write(hdr + d)
sel = ['next_app_router', 'no_head_meta', 'fragment', 'chained_head', 'xhtml', 'bom_ws']
page = b'<!DOCTYPE html><html><head><title>x</title></head><body>' + b''.join(b'<p id=%d>row %d</p>\n' % (i, i * 7919 % 1000) for i in range(300)) + b'</body></html>'
docs['page'] = page
sel.append('page')
def enc(kind, d):
    if kind == 0: return gzip.compress(d, 6, mtime=0)
    if kind == 1: return zlib.compress(d, 6) if len(d) % 2 else zlib.compress(d, 6)[2:-4]
    if kind == 2: return brotli.compress(d, quality=5)
    return zstandard.ZstdCompressor(level=3).compress(d)
names = ['gzip', 'deflate', 'br', 'zstd']
for name in sel:
    d = docs[name]
    for k in range(4):
        e = enc(k, d)
        for flag, step in ((0, 12), (4, 3), (4, 0)):
            b0 = k | flag | (step << 4)
            open(f'fuzz/corpus/fuzz_decode/{names[k]}_{name}_{b0:02x}', 'wb').write(bytes([b0]) + e)
d = docs['next_app_router']
open('fuzz/corpus/fuzz_decode/gzip_members', 'wb').write(bytes([0x50]) + gzip.compress(d[:100], mtime=0) + gzip.compress(d[100:], mtime=0))
open('fuzz/corpus/fuzz_decode/gzip_trailing', 'wb').write(bytes([0x50]) + gzip.compress(d, mtime=0) + b'\0\0garbage')
open('fuzz/corpus/fuzz_decode/deflate_raw', 'wb').write(bytes([0x51]) + zlib.compress(d)[2:-4])
open('fuzz/corpus/fuzz_decode/gzip_zeros', 'wb').write(bytes([0xc0]) + gzip.compress(b'<!doctype html><head>' + b" " * 3000000, 9, mtime=0))
open('fuzz/corpus/fuzz_decode/zstd_frames', 'wb').write(bytes([0x83]) + zstandard.ZstdCompressor().compress(d[:50]) + zstandard.ZstdCompressor().compress(d[50:]))
