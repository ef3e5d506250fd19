"""``python -m benchmarks <name> [options]``: run one benchmark; the result JSON path is the last stdout line."""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmarks import BENCHMARKS, HELP


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="name", metavar="<name>", required=True)
    selected = next((a for a in argv if a in BENCHMARKS), None)
    for name, module_name in BENCHMARKS.items():
        # only the selected benchmark's module is imported (torch imports are slow)
        module = importlib.import_module(module_name) if name == selected else None
        doc = (module.__doc__ or "").strip().splitlines()[0] if module else HELP[name]
        p = sub.add_parser(name, help=HELP[name], description=doc)
        if module is not None:
            module.add_arguments(p)
    args = parser.parse_args(argv)
    from rome.errors import RomeError

    try:
        path = importlib.import_module(BENCHMARKS[args.name]).main(args, argv)
    except RomeError as exc:
        print(f"benchmarks {args.name}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
