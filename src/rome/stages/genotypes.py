"""``rome genotypes``: the published cells shipped with rome, by name (rome.genotype.named).
Not a stage: it lists data files; each name works as ``train.genotype`` or timm's ``genotype=``."""

from __future__ import annotations

import argparse

from rome.errors import RomeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="print this cell's genotype text and source instead of the list")


def main(args: argparse.Namespace) -> int:
    from rome.genotype.named import published_dir, published_names, published_source

    if args.name:
        src = published_source(args.name)
        for key in ("name", "description", "paper", "code", "published", "space", "genotype_text"):
            print(f"{key}: {src.get(key)}")
        return 0
    for name in published_names():
        src = published_source(name)
        print(f"{name:10s} {src.get('description', '')}\n{'':10s} {src.get('paper', '')}; {src.get('published', '')}")
    print(f"(files: {published_dir()}; use: rome train --set train.genotype=NAME)")
    return 0


def run(*_: object) -> None:  # pragma: no cover - the CLI calls main
    raise RomeError("genotypes is run through `rome genotypes [NAME]`")
