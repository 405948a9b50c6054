"""Wall times of the healthcheck probes a project's supervisor recorded
(called by tests/bench/run.sh):
    python3 probe_walls.py CONTAINERS_DIR [SECONDS]
reads the container records in CONTAINERS_DIR (each keeps its last 5
probes), polling them for SECONDS (default 0: once) to gather more, and
prints: the number of distinct probes, the median and the max wall time
in ms."""
import glob
import json
import sys
import time
from datetime import datetime


def ts(s):
    # RFC 3339 with up to 9 fraction digits; datetime takes 6
    head, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0"))


def main():
    seen = {}
    end = time.time() + float(sys.argv[2] if len(sys.argv) > 2 else 0)
    while True:
        for f in glob.glob(sys.argv[1] + "/*.json"):
            try:
                log = json.load(open(f)).get("health", {}).get("log", [])
            except ValueError:
                continue  # caught mid-replace
            for p in log:
                seen[(f, p["start"])] = (ts(p["end"]) - ts(p["start"])) * 1000
        if time.time() >= end:
            break
        time.sleep(0.3)
    w = sorted(seen.values())
    print(len(w), w[len(w) // 2] if w else 0, w[-1] if w else 0)


main()
