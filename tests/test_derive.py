"""``rome derive`` end to end on hand-made search folders (the search stage's output contract)."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from conftest import smoke
from rome import cli
from rome.errors import RomeError
from rome.genotype import Genotype, NB201Genotype, load_genotype
from rome.paths import stage_dir
from rome.stages import derive

OPS7 = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
DARTS_EDGES = [[src, 2 + m] for m in range(4) for src in range(2 + m)]
NB201_EDGES = [[0, 1], [0, 2], [1, 2], [0, 3], [1, 3], [2, 3]]
SEARCH_PROVENANCE = {"stage": "search", "params": {"seed": 0}, "params_hash": "abc", "code": {"commit": None},
                     "data_sha256": "f" * 64}


def write_search(folder: Path, space: str, algorithm: str, tensors: dict[str, np.ndarray], variant: str = "v2",
                 **meta_extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb201 = space == "nb201"
    ops = NB201_OPS if nb201 else OPS7
    edges = NB201_EDGES if nb201 else DARTS_EDGES
    cells = ["normal"] if nb201 else ["normal", "reduce"]
    meta = {"schema_version": 1, "space": space, "algorithm": algorithm, "variant": variant,
            "ops": {c: [ops] * len(edges) for c in cells}, "edges": edges,
            "in_degree": None if nb201 else [2, 2, 2, 2], "provenance": SEARCH_PROVENANCE, **meta_extra}
    (folder / "search.json").write_text(json.dumps(meta))
    save_file({k: v.astype(np.float32) for k, v in tensors.items()}, str(folder / "arch.safetensors"))
    return folder


def rome_tensors() -> dict[str, np.ndarray]:
    """alpha favours sep_conv_3x3 except on a few edges; beta picks inputs (1, 0), (2, 1), (0, 3), (4, 2)."""
    alpha = np.zeros((14, 7))
    alpha[:, 3] = 1.0
    alpha[2, 2] = 2.0  # node1 <- 0 would be skip_connect but beta drops that edge
    alpha[3, 5] = 2.0  # node1 <- 1: dil_conv_3x3
    alpha[13, 2] = 2.0  # node3 <- 4: skip_connect
    beta = np.zeros(14)
    beta[[1, 0]] = [2.0, 1.0]
    beta[[4, 3]] = [2.0, 1.0]
    beta[[5, 8]] = [2.0, 1.0]
    beta[[13, 11]] = [2.0, 1.0]
    return {"alpha_normal": alpha, "alpha_reduce": np.roll(alpha, 1, axis=1), "beta_normal": beta, "beta_reduce": beta}


EXPECTED_NORMAL = (("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("dil_conv_3x3", 1),
                   ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("skip_connect", 4), ("sep_conv_3x3", 2))


def test_derive_rome_end_to_end(smoke_params: dict):
    search = write_search(stage_dir(smoke_params, "search"), "darts", "rome", rome_tensors())
    out = derive.run(smoke_params, stage_dir(smoke_params, "derive"), argparse.Namespace())
    assert out == stage_dir(smoke_params, "derive")
    assert sorted(p.name for p in out.iterdir()) == ["cells", "genotype.json", "genotype.txt", "metrics.json"]
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["normal.png", "reduce.png"]
    for png in ("normal.png", "reduce.png"):
        png = out / "cells" / png
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert set(json.loads((out / "metrics.json").read_text())) == {"n_param_free_normal", "n_param_free_reduce"}
    doc = json.loads((out / "genotype.json").read_text())
    g = load_genotype(out / "genotype.json")
    assert isinstance(g, Genotype) and g.normal == EXPECTED_NORMAL and g.normal_concat == (2, 3, 4, 5)
    assert load_genotype(out / "genotype.txt") == g
    assert doc["schema_version"] == 1 and doc["space"] == "darts" and doc["rule"] == "rome"
    assert doc["n_param_free"] == {"normal": 1, "reduce": sum(op in ("skip_connect", "max_pool_3x3", "avg_pool_3x3")
                                                              for op, _ in g.reduce)}
    assert doc["search_provenance"] == SEARCH_PROVENANCE
    assert doc["provenance"]["stage"] == "derive" and "derive" in doc["provenance"]["params"]
    assert doc["provenance"]["data_sha256"] == "f" * 64
    probs = doc["probabilities"]["normal"]
    assert len(probs["alpha"]) == 14 and abs(sum(probs["alpha"][0]) - 1) < 1e-5
    assert probs["beta"][0] == pytest.approx(1 / (1 + np.e), abs=1e-5)  # softmax within node 0
    assert doc["search"] == {"algorithm": "rome", "variant": "v2"}  # no machine path: the bytes must not depend on where it ran


def test_rolled_reduce_alpha_is_argmaxed_per_edge(smoke_params: dict):
    t = rome_tensors()
    write_search(stage_dir(smoke_params, "search"), "darts", "rome", t)
    g = load_genotype(derive.run(smoke_params, stage_dir(smoke_params, "derive"), None) / "genotype.json")
    ops = [OPS7[int(np.argmax(t["alpha_reduce"][e]))] for e in (1, 0, 4, 3, 5, 8, 13, 11)]
    assert [op for op, _ in g.reduce] == ops
    first = {f: (stage_dir(smoke_params, "derive") / f).read_bytes() for f in ("cells/normal.png", "genotype.txt", "genotype.json")}
    again = derive.run(smoke_params, stage_dir(smoke_params, "derive"), None)
    assert {f: (again / f).read_bytes() for f in first} == first  # re-deriving reproduces the files byte for byte


def test_derive_v1_pairs_and_no_plot(tmp_path: Path):
    params = smoke(tmp_path / "results", "search.rome_variant=v1", "derive.plot=false")
    pairs = [(a, b, 2 + m) for m in range(4) for a, b in itertools.combinations(range(2 + m), 2)]
    beta = np.zeros(len(pairs))
    best = {2: (0, 1), 3: (0, 2), 4: (1, 3), 5: (2, 4)}
    for i, (a, b, d) in enumerate(pairs):
        if best[d] == (a, b):
            beta[i] = 1.0
    alpha = np.zeros((14, 7))
    alpha[:, 4] = 1.0
    t = {"alpha_normal": alpha, "alpha_reduce": alpha, "beta_normal": beta, "beta_reduce": beta}
    write_search(stage_dir(params, "search"), "darts", "rome", t, variant="v1")
    out = derive.run(params, stage_dir(params, "derive"), None)
    assert not list(out.glob("*.png"))
    g = load_genotype(out / "genotype.json")
    assert [i for _, i in g.normal] == [0, 1, 0, 2, 1, 3, 2, 4]
    assert {op for op, _ in g.normal} == {"sep_conv_5x5"}
    doc = json.loads((out / "genotype.json").read_text())
    assert len(doc["probabilities"]["normal"]["beta"]) == len(pairs) == 1 + 3 + 6 + 10


def test_derive_gdas_and_darts_rules_without_beta(tmp_path: Path):
    alpha = np.zeros((14, 7))
    alpha[0, [3, 4]] = [3.0, 2.9]  # node0: the two best (op, input) pairs read input 0
    alpha[1, 5] = 1.0
    for algorithm, rule, node0 in [("gdas", "gdas", (("sep_conv_3x3", 0), ("sep_conv_5x5", 0))),
                                   ("darts", "darts", (("sep_conv_3x3", 0), ("dil_conv_3x3", 1)))]:
        params = smoke(tmp_path / algorithm, f"search.algorithm={algorithm}")
        write_search(stage_dir(params, "search"), "darts", algorithm, {"alpha_normal": alpha, "alpha_reduce": alpha})
        out = derive.run(params, stage_dir(params, "derive"), None)
        doc = json.loads((out / "genotype.json").read_text())
        assert doc["rule"] == rule and doc["probabilities"]["normal"]["beta"] is None
        assert load_genotype(out / "genotype.json").normal[:2] == node0
        assert (out / "cells" / "normal.png").is_file()  # parallel edges (gdas: input 0 twice) are drawn too


def test_derive_nb201(tmp_path: Path):
    params = smoke(tmp_path / "results", "search.space=nb201")
    alpha = np.zeros((6, 5))
    for e, op in enumerate([3, 0, 4, 1, 2, 1]):
        alpha[e, op] = 1.0
    write_search(stage_dir(params, "search"), "nb201", "rome", {"alpha_normal": alpha})
    out = derive.run(params, stage_dir(params, "derive"), None)
    doc = json.loads((out / "genotype.json").read_text())
    arch = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
    assert doc["nb201_arch"] == arch and doc["rule"] == "nb201"
    assert load_genotype(out / "genotype.json") == NB201Genotype.from_arch_str(arch)
    assert (out / "genotype.txt").read_text().strip() == arch
    assert (out / "cells" / "cell.png").is_file()


def test_derive_cli_and_bad_search_folders(tmp_path: Path, capsys: pytest.CaptureFixture):
    results = tmp_path / "results"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(f"preset: smoke\nresults_dir: {results}\nderive: {{plot: false}}\n")
    params = smoke(results, "derive.plot=false")
    search = stage_dir(params, "search")
    # missing search folder: exit 2 with one line naming the file
    assert cli.main(["derive", "--params", str(params_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "search.json: search summary not found" in err
    write_search(search, "darts", "rome", rome_tensors())
    assert cli.main(["derive", "--params", str(params_file)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(stage_dir(params, "derive"))
    other = tmp_path / "elsewhere"
    assert cli.main(["derive", "--params", str(params_file), "--input", f"search={search}", "--out", str(other)]) == 0
    assert load_genotype(other / "genotype.json").normal == EXPECTED_NORMAL
    # beta of the wrong length
    t = rome_tensors()
    t["beta_normal"] = np.zeros(5)
    write_search(search, "darts", "rome", t)
    with pytest.raises(RomeError, match=r"arch.safetensors: beta_normal has shape \[5\]: expected \[14\]"):
        derive.run(params, tmp_path / "out", None)
    # a search summary from the future
    write_search(search, "darts", "rome", rome_tensors(), schema_version=7)
    with pytest.raises(RomeError, match=r"search.json: schema_version = 7: expected <= 1"):
        derive.run(params, tmp_path / "out", None)
    # a missing tensor
    write_search(search, "darts", "rome", {"alpha_normal": np.zeros((14, 7))})
    with pytest.raises(RomeError, match="tensor 'alpha_reduce' missing"):
        derive.run(params, tmp_path / "out", None)
    assert not (tmp_path / "out").exists()  # failed runs leave nothing behind
