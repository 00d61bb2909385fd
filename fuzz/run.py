"""Run a fuzz target with atheris, or replay its corpus.

    python -m fuzz.run decode                         # fuzz until stopped (libFuzzer flags after --)
    python -m fuzz.run decode --seconds 60            # a time budget
    EXI_NO_EXTENSIONS=1 python -m fuzz.run decode     # the pure-Python build
    python -m fuzz.run decode --replay                # every corpus input once, no atheris
    python -m fuzz.run all --seconds 600              # every target in turn (the long campaign)

New inputs the fuzzer finds go to fuzz/work/<target>/ (not committed); the committed
seeds and regression inputs are fuzz/corpus/<target>/.  A finding stops the run and
leaves crash-<sha1> in the current directory: reproduce it with `--replay FILE`.
A hang is an input that takes more than 1 s (20 s in the pure-Python build); memory is
bounded at 2 GB resident.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
WORK = HERE / "work"


def corpus_files(name: str) -> list[Path]:
    d = CORPUS / name
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def replay(name: str, files=None) -> int:
    from .targets import TARGETS, check, quiet_logs
    quiet_logs()
    t = TARGETS[name]
    files = files or corpus_files(name)
    for p in files:
        data = Path(p).read_bytes()
        try:
            check(t, data)
        except BaseException:
            print(f"FINDING {name} {p}", file=sys.stderr)
            raise
    return len(files)


def fuzz(name: str, seconds: float, runs: int, extra: list[str], work: Path = None,
         corpus: bool = True, deep: bool = True) -> None:
    import atheris
    with atheris.instrument_imports(include=["exi"]):
        import exi  # noqa: F401
        from exi.capture import reader, render, summary  # noqa: F401
        from exi.v2g import sdp, v2gtp  # noqa: F401
        from exi.v2g.session import testing  # noqa: F401
    if exi.IMPLEMENTATION != "compiled" and deep:
        # the pure build loads the engine's sources past the import hook: instrument them now
        for mod in [m for n, m in sys.modules.items() if n.startswith("exi.") and m is not None]:
            for obj in list(vars(mod).values()):
                if getattr(obj, "__module__", None) == mod.__name__:
                    _instrument(atheris, obj)
    from .targets import TARGETS, check, quiet_logs
    quiet_logs()
    t = TARGETS[name]
    work = (work or WORK) / name
    work.mkdir(parents=True, exist_ok=True)
    # a hang is > 1 s per input; the pure-Python build is ~100x slower per input
    timeout = 20 if exi.IMPLEMENTATION != "compiled" else 1
    args = [sys.argv[0], str(work)] + ([str(CORPUS / name)] if corpus else [])
    args += [f"-timeout={timeout}", "-rss_limit_mb=2048",
            "-max_len=65536" if name == "capture" else "-max_len=8192", "-print_final_stats=1"]
    if seconds:
        args.append(f"-max_total_time={int(seconds)}")
    if runs:
        args.append(f"-runs={runs}")
    atheris.Setup(args + extra, lambda data: check(t, data))
    atheris.Fuzz()


NAMES = ("capture", "decode", "decode_fragment", "evcc", "from_dict", "from_xml", "sdp", "secc", "v2gtp")


def _instrument(atheris, obj) -> None:
    import types
    if isinstance(obj, types.FunctionType):
        try:
            atheris.instrument_func(obj)
        except Exception:      # noqa: BLE001 - already instrumented, or not instrumentable
            pass
    elif isinstance(obj, type):
        for v in vars(obj).values():
            if isinstance(v, types.FunctionType):
                _instrument(atheris, v)


def main(argv=None) -> None:
    # no `import fuzz.targets` here: exi must first be imported under atheris' instrumentation
    ap = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("target", choices=NAMES + ("all",))
    ap.add_argument("--seconds", type=float, default=0, help="time budget per target (0: no limit)")
    ap.add_argument("--runs", type=int, default=0, help="number of inputs (0: no limit)")
    ap.add_argument("--work", type=Path, help=f"where new inputs go (default {WORK})")
    ap.add_argument("--no-corpus", action="store_true", help="start without the committed corpus")
    ap.add_argument("--shallow", action="store_true",
                    help="pure build: skip instrumenting the engine (faster start, less coverage)")
    ap.add_argument("--replay", nargs="*", metavar="FILE",
                    help="run the corpus (or these files) once each, without atheris")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []   # libFuzzer flags
    a = ap.parse_args(argv[:len(argv) - len(extra) - (1 if "--" in argv else 0)])
    a.libfuzzer = extra
    if a.target == "all":
        for name in NAMES:     # one process per target: libFuzzer exits when done
            cmd = [sys.executable, "-m", "fuzz.run", name, "--seconds", str(a.seconds), "--runs", str(a.runs)]
            if a.work:
                cmd += ["--work", str(a.work)]
            cmd += ["--replay", *a.replay] if a.replay is not None else ["--", *a.libfuzzer]
            t0 = time.monotonic()
            rc = subprocess.call(cmd, cwd=HERE.parent)
            print(f"== {name}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
            if rc:
                sys.exit(rc)
        return
    if a.replay is not None:
        n = replay(a.target, a.replay or None)
        print(f"{a.target}: {n} inputs replayed ({os.environ.get('EXI_NO_EXTENSIONS') and 'pure' or 'compiled'})")
        return
    fuzz(a.target, a.seconds, a.runs, a.libfuzzer, a.work, not a.no_corpus, not a.shallow)


if __name__ == "__main__":
    main()
