"""Record the bundled example capture: our EVCC and SECC run a charging session across
two network namespaces joined by a veth pair while tcpdump records the link.

    sudo python examples/record_session.py --protocol din --mode dc --out examples/din_dc_session.pcap

Needs root, iproute2 and tcpdump.  Nothing leaves the veth pair.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.netns import NetnsPair, missing_prerequisites  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", default="din")
    ap.add_argument("--mode", default="dc")
    ap.add_argument("--loops", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "examples" / "din_dc_session.pcap")
    args = ap.parse_args()
    problem = missing_prerequisites()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    with NetnsPair() as pair:
        dump = pair.popen("secc", ["tcpdump", "-i", pair.iface["secc"], "-U", "-w", str(args.out),
                                   "ip6"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        secc = pair.popen("secc", [sys.executable, "-m", "exi", "secc", "--interface", pair.iface["secc"],
                                   "--protocols", args.protocol], stdout=subprocess.PIPE, text=True)
        secc.stdout.readline()          # "ready ..."
        evcc = pair.run("evcc", [sys.executable, "-m", "exi", "evcc", "--interface", pair.iface["evcc"],
                                 "--protocol", args.protocol, "--mode", args.mode,
                                 "--loops", str(args.loops)], timeout=120)
        time.sleep(0.5)
        secc.send_signal(signal.SIGTERM)
        secc.wait(timeout=10)
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)
        print(evcc.stdout.strip().splitlines()[-1] if evcc.stdout else "", file=sys.stderr)
        return evcc.returncode


if __name__ == "__main__":
    sys.exit(main())
