"""``rome pipeline --write | --check``: keep dvc.yaml equal to what the stage table and the
stages' imports imply (see rome.pipeline). Not a stage: it runs no computation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rome.errors import RomeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite dvc.yaml")
    mode.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml is stale")
    mode.add_argument("--show", metavar="STAGE",
                      help="what a stage depends on and writes, grouped: params, code (counted per package), data, outs")
    parser.add_argument("--bare", action="store_true",
                        help="with --show: the stage's code files only, one bare path a line (for scripts)")
    parser.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"), help="the file (default: %(default)s)")


def show_lines(stage: str) -> list[str]:
    """dvc.yaml's entry of one stage, grouped for a reader: params sections, code files counted per
    package (the list is ``--bare``), upstream data, and outputs by kind (out / metric / plot)."""
    from collections import Counter

    from rome.pipeline.dvcfile import stage_entry
    from rome.pipeline.spec import STAGES

    spec = STAGES[stage]
    entry = stage_entry(spec)
    code = [d for d in entry["deps"] if d.startswith("src/")]
    data = [d for d in entry["deps"] if not d.startswith("src/")]
    params = [p if isinstance(p, str) else f"{k}: {', '.join(v)}" for p in entry["params"]
              for k, v in ([(None, None)] if isinstance(p, str) else p.items())]
    packages = Counter(str(Path(f).parent.relative_to("src")).replace("/", ".") for f in code)
    lines = [f"{stage} ({spec.scope} scope): {entry['cmd']}",
             f"params ({len(params)}):", *(f"  {p}" for p in params),
             f"code ({len(code)} files; `rome pipeline --show {stage} --bare` lists them):",
             *(f"  {pkg}: {n}" for pkg, n in sorted(packages.items())),
             f"data ({len(data)}):", *(f"  {d}" for d in data)]
    for kind in ("out", "metric", "plot"):
        outs = [o.path for o in spec.outputs if o.kind == kind]
        if outs:
            lines += [f"{kind}s ({len(outs)}):", *(f"  {o}" for o in outs)]
    return lines


def main(args: argparse.Namespace) -> int:
    from rome.pipeline import dvcfile
    from rome.pipeline.codedeps import stage_code_files
    from rome.pipeline.spec import STAGES

    if args.show:
        if args.show not in STAGES:
            raise RomeError(f"--show {args.show!r}: unknown stage; expected one of {list(STAGES)}")
        if args.bare:
            print("\n".join(stage_code_files(args.show)))
        else:
            print("\n".join(show_lines(args.show)))
        return 0
    if args.write:
        print(dvcfile.write(args.dvc_yaml))
        return 0
    if dvcfile.is_current(args.dvc_yaml):
        print(f"{args.dvc_yaml}: up to date")
        return 0
    print(f"{args.dvc_yaml}: stale; run `rome pipeline --write`", file=sys.stderr)
    return 1


def run(*_: object) -> None:  # pragma: no cover - the CLI calls main
    raise RomeError("pipeline is run through `rome pipeline --write|--check`")
