#!/usr/bin/env python3
"""Run the Jenkins simulator: python3 tools/jenkins_sim/jenkins_sim.py --port 8080 --world world.json"""

import argparse
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jenkins_sim.server import Simulator  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description="Simulated Jenkins REST API for roundhouse")
    ap.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--world", help="world JSON file (see README.md)")
    ap.add_argument("--virtual-clock", action="store_true",
                    help="time moves only through POST /_fake/advance (default: real time)")
    args = ap.parse_args(argv)
    spec = {}
    if args.world:
        with open(args.world, encoding="utf-8") as f:
            spec = json.load(f)
    sim = Simulator(spec, realtime=not args.virtual_clock, host=args.host)
    sim.start(args.port)
    print(sim.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    if not args.virtual_clock:
        while not done.wait(0.2):  # real-time mode: let builds end without requests
            sim.world.tick()
    else:
        done.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
