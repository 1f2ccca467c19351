#!/usr/bin/python3
"""Instructions per request by function, from two callgrind runs of the same proxy that
served N1 and N2 requests (bench/h2cost.sh with CGDIR=dir keeps them): the difference of each
function's count divided by N2 - N1, so start-up and shutdown cancel out.

Usage: bench/cgdiff.py cg.ROW.N1.out cg.ROW.N2.out [--inclusive] [--top N]
"""
import re
import subprocess
import sys


def counts(path, inclusive):
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", "--inclusive=" + ("yes" if inclusive else "no"),
         path], capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if not m or ":" not in m.group(2) or m.group(2).startswith("PROGRAM"):
            continue
        res[m.group(2)] = res.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return res


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    inclusive = "--inclusive" in sys.argv
    top = 40
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
        args.remove(str(top))
    if len(args) != 2:
        sys.exit(__doc__)
    n = [int(re.search(r"\.(\d+)\.out$", a).group(1)) for a in args]
    a, b = counts(args[0], inclusive), counts(args[1], inclusive)
    d = {k: (b.get(k, 0) - a.get(k, 0)) / (n[1] - n[0]) for k in set(a) | set(b)}
    total = sum(v for v in d.values()) if not inclusive else None
    if total is not None:
        print(f"{total:10.0f}  total (self, per request)")
    for k, v in sorted(d.items(), key=lambda kv: -abs(kv[1]))[:top]:
        print(f"{v:10.0f}  {k}")


if __name__ == "__main__":
    main()
