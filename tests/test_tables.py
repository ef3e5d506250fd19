"""Paper tables as pipeline targets (rome.tables): definitions checked with one-line errors, scales
that keep a table's structure, runs shared and reused, DVC and Snakemake running the same calls and
writing the same report, and a changed row rerunning that row alone."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_working_tree
from rome import cli
from rome.errors import RomeError
from rome.tables import dvcstages
from rome.tables.definition import get_scale, load_scales, load_table, table_names
from rome.tables.runs import plan_table, unique_runs

BIN = Path(sys.executable).parent
TABLES = REPO / "tables"


def test_every_table_and_scale_loads_and_plans() -> None:
    assert set(table_names(TABLES)) >= {"s0", "rdarts", "ablation", "nb201", "memory"}
    for name in table_names(TABLES):
        table = load_table(name, TABLES)
        for scale in load_scales(TABLES).values():
            plans = plan_table(table, scale)
            assert [p.row.id for p in plans] == [r.id for r in table.rows]
            for plan in plans:
                assert plan.skipped or len(plan.runs) == min(table.seeds, scale.seeds or table.seeds)


def _ablation(scale: str) -> dict[str, dict]:
    table = load_table("ablation", TABLES)
    return {p.row.id: dict(p.runs[0].flags) for p in plan_table(table, get_scale(scale, TABLES))}


def test_a_scale_shrinks_epochs_by_the_preset_ratio_and_keeps_k() -> None:
    paper, smoke = _ablation("paper"), _ablation("smoke")
    for row in paper:
        assert smoke[row]["search.k_samples"] == paper[row]["search.k_samples"]
        assert smoke[row]["search.topology"] == paper[row]["search.topology"]
    # paper epochs 350/87/50/35; smoke preset 2 vs paper preset 50 epochs: x 0.04, rounded, at least 1
    assert [smoke[f"td-on-k{k}"]["search.epochs"] for k in (1, 4, 7, 10)] == [14, 3, 2, 1]
    assert [paper[f"td-on-k{k}"]["search.epochs"] for k in (1, 4, 7, 10)] == [350, 87, 50, 35]
    assert smoke["td-on-k1"]["preset"] == "smoke" and paper["td-on-k1"]["preset"] == "paper"


def test_size_overrides_apply_at_paper_scale_only() -> None:
    table = load_table("rdarts", TABLES)
    row = "cifar100-s2-rome"
    paper = {p.row.id: dict(p.runs[0].flags) for p in plan_table(table, get_scale("paper", TABLES))}
    smoke = {p.row.id: dict(p.runs[0].flags) for p in plan_table(table, get_scale("smoke", TABLES))}
    assert (paper[row]["train.layers"], paper[row]["train.init_channels"]) == (8, 16)
    assert "train.layers" not in smoke[row] and smoke[row]["data.dataset"] == "mnist5k"


def test_rows_with_one_configuration_share_one_run() -> None:
    s0 = plan_table(load_table("s0", TABLES), get_scale("smoke", TABLES))
    by_row = {p.row.id: p.runs[0].name for p in s0}
    # at smoke scale CIFAR-10 and CIFAR-100 both stand in as mnist5k: same flags, same run
    assert by_row["c10-rome"] == by_row["c100-rome"] and by_row["c10-rome"] != by_row["c10-gdas"]
    assert len(unique_runs(s0)) == 7  # darts, pc_darts, gdas, rome + the three reference-mode rows
    # at cpu scale CIFAR-100 is not available: said, not silently dropped
    cpu = {p.row.id: p for p in plan_table(load_table("s0", TABLES), get_scale("cpu", TABLES))}
    assert cpu["c100-rome"].skipped and "cifar100" in cpu["c100-rome"].skipped and not cpu["c100-rome"].runs


def test_changing_one_row_changes_that_rows_runs_only(tmp_path: Path) -> None:
    root = shutil.copytree(TABLES, tmp_path / "tables", ignore=shutil.ignore_patterns("runs", "pipelines"))
    before = {p.row.id: p.runs[0].name for p in plan_table(load_table("ablation", root), get_scale("smoke", root))}
    doc = yaml.safe_load((root / "ablation.yaml").read_text())
    doc["rows"]["td-on-k4"]["overrides"]["search.epochs"] = 200
    (root / "ablation.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    after = {p.row.id: p.runs[0].name for p in plan_table(load_table("ablation", root), get_scale("smoke", root))}
    assert {r for r in before if before[r] != after[r]} == {"td-on-k4"}


# ----------------------------------------------------------------------------- bad table files


def _bad_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change) -> tuple[int, list[str]]:
    root = shutil.copytree(TABLES, tmp_path / "tables", ignore=shutil.ignore_patterns("runs", "pipelines"))
    doc = yaml.safe_load((root / "ablation.yaml").read_text())
    change(doc)
    (root / "bad.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return cli.main(["table", "bad", "--check"]), []


BAD = [
    (lambda d: d.update(colour="red"), "tables/bad.yaml: colour: unknown key"),
    (lambda d: d["rows"]["td-on-k4"]["published"].pop("top1"), "rows.td-on-k4.published: no published value for 'top1'"),
    (lambda d: d["rows"]["td-on-k4"].update(algorithm="enas"), "rows.td-on-k4.algorithm = 'enas': unknown algorithm"),
    (lambda d: d["rows"]["td-on-k4"]["overrides"].update({"search.k_sample": 3}),
     "rows.td-on-k4.overrides.search.k_sample: not a params key"),
    (lambda d: d["rows"]["td-on-k4"].update(space="s9"), "rows.td-on-k4.space = 's9': unknown space"),
    (lambda d: d.update(until="train"), "until = \"train\": expected one of"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_a_bad_table_file_gets_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture, change, message: str) -> None:
    rc, _ = _bad_table(tmp_path, monkeypatch, change)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("rome table: error: ") and message in err[0], err


def test_unknown_table_and_scale_name_the_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(RomeError, match=r"table 'nope': no file tables/nope.yaml; expected one of \["):
        load_table("nope")
    with pytest.raises(RomeError, match=r"--scale 'huge': unknown scale; expected one of \['smoke', 'cpu', 'paper'\]"):
        get_scale("huge")


# ----------------------------------------------------------------------------- the two engines


def test_dvc_stages_and_snakemake_jobs_are_the_same_rome_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    scale = get_scale("smoke", TABLES)
    tables = [load_table(n, TABLES) for n in table_names(TABLES)]
    doc = yaml.safe_load(dvcstages.render(tables, scale))
    dvc_cmds = {" ".join(s["cmd"].split()) for name, s in doc["stages"].items() if not name.startswith("report-")}
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    targets = [f"reports/tables/smoke/{t.name}.md" for t in tables]
    res = subprocess.run([str(BIN / "snakemake"), "-n", "-p", "--forceall", "--cores", "1", *targets], cwd=REPO,
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    shells = re.findall(r"^(?:Shell command: )?(rome (?:prepare|search|derive|train|evaluate) .*)$", res.stdout, re.M)
    smk_cmds = {re.sub(r"\s+--threads \d+", "", re.sub(r"\s+>\s+\S+\s+2>&1$", "", s)).strip() for s in shells}
    runs = unique_runs([p for t in tables for p in plan_table(t, scale)])
    assert smk_cmds == dvc_cmds
    assert len(dvc_cmds) == len({r.prepared.id for r in runs}) + sum(len(r.stages) for r in runs)
    reports = re.findall(r"^(?:Shell command: )?rome table (\S+) --scale smoke --report", res.stdout, re.M)
    assert sorted(reports) == sorted(t.name for t in tables)


def test_a_report_without_runs_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(TABLES, tmp_path / "tables", ignore=shutil.ignore_patterns("runs", "pipelines"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["table", "s0", "--scale", "cpu", "--report"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "reports/tables/cpu/s0.csv")))
    status = {r["row"]: r["status"] for r in rows}
    assert status["c10-rome"] == "not run yet" and status["c100-rome"].startswith("not run at this scale: no cifar100")
    assert all(r["ours_mean"] == "" for r in rows) and {r["published"] for r in rows if r["row"] == "c10-rome"} == {"2.58"}
    md = (tmp_path / "reports/tables/cpu/s0.md").read_text()
    assert "| ROME, CIFAR-10 | - | 2.58 +- 0.07 | - | not run yet |" in md
    assert (tmp_path / "reports/tables/cpu/s0.png").stat().st_size > 1000


# ----------------------------------------------------------------------------- end to end (slow)

TINY = {
    "schema_version": 1, "title": "tiny", "source": "test", "metrics": [{"name": "top1", "label": "top-1 (%)"},
                                                                        {"name": "n_param_free_normal", "label": "pf"}],
    "seeds": 1, "until": "evaluate", "defaults": {"dataset": "cifar10", "space": "darts", "algorithm": "rome"},
    "rows": {
        "a": {"label": "A", "overrides": {"search.k_samples": 1},
              "published": {"top1": {"value": 97.0, "source": "t"}, "n_param_free_normal": {"value": 1, "source": "t"}}},
        "b": {"label": "B", "overrides": {"search.k_samples": 2, "search.epochs": 25},
              "published": {"top1": {"value": None, "source": "t"}, "n_param_free_normal": {"value": None, "source": "t"}}},
    },
}


def _sh(cmd: list[str], repo: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(repo / "src"), "WANDB_MODE": "disabled",
           "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_SERVICE", None)
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, f"{cmd}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def table_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_working_tree(tmp_path_factory.mktemp("tables") / "repo")
    (repo.parent / "shared").symlink_to(REPO.parent / "shared")  # ../shared/data, as on every machine
    (repo / "tables" / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        _sh(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], repo)
    return repo


def _ran(log: str) -> set[str]:
    return set(re.findall(r"Running stage '[^']*:([^']+)'", log))


@pytest.mark.slow
def test_a_table_through_dvc_then_snakemake_reuses_runs_and_reruns_one_changed_row(table_repo: Path) -> None:
    repo = table_repo
    first = _sh(["rome", "table", "tiny", "--engine", "dvc"], repo)
    ran = _ran(first.stdout + first.stderr)
    assert len([s for s in ran if s.startswith("evaluate-")]) == 2 and "report-tiny" in ran
    report = repo / "reports/tables/smoke/tiny.csv"
    rows = {(r["row"], r["metric"]): r for r in csv.DictReader(open(report))}
    assert rows[("a", "top1")]["status"] == "done" and float(rows[("a", "top1")]["ours_mean"]) >= 0
    assert rows[("a", "top1")]["difference"] != "" and rows[("b", "top1")]["difference"] == ""

    again = _sh(["rome", "table", "tiny", "--engine", "dvc"], repo)
    assert _ran(again.stdout + again.stderr) == set()  # every row reused

    doc = yaml.safe_load((repo / "tables/tiny.yaml").read_text())
    doc["rows"]["b"]["overrides"]["search.epochs"] = 50  # smoke: 1 -> 2 epochs
    (repo / "tables/tiny.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    changed = _sh(["rome", "table", "tiny", "--engine", "dvc"], repo)
    reran = _ran(changed.stdout + changed.stderr)
    b_run = next(p.runs[0].name for p in plan_table(load_table("tiny", repo / "tables"), get_scale("smoke", repo / "tables"))
                 if p.row.id == "b")
    assert reran == {f"{s}-{b_run}" for s in ("search", "derive", "train", "evaluate")} | {"report-tiny"}, reran
    by_dvc = {p: (repo / "reports/tables/smoke" / p).read_bytes() for p in ("tiny.md", "tiny.csv")}

    shutil.rmtree(repo / "tables" / "runs")
    shutil.rmtree(repo / "reports" / "tables")
    _sh(["rome", "table", "tiny", "--engine", "snakemake"], repo)
    assert {p: (repo / "reports/tables/smoke" / p).read_bytes() for p in ("tiny.md", "tiny.csv")} == by_dvc
    nothing = _sh(["rome", "table", "tiny", "--engine", "snakemake"], repo)
    assert "Nothing to be done" in nothing.stdout + nothing.stderr

    audit = _sh(["rome", "table", "tiny", "--audit", "a"], repo)
    assert "workspace would reproduce it: YES" in audit.stdout


@pytest.mark.tables
def test_every_table_at_smoke_scale_through_both_engines_gives_the_same_reports(tmp_path: Path) -> None:
    """All five tables (about 30 distinct runs, some 15 minutes on 2 cores): `pytest -m tables`."""
    repo = copy_working_tree(tmp_path / "repo")
    (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        _sh(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], repo)
    names = [n for n in table_names(repo / "tables")]
    _sh(["rome", "table", "--engine", "dvc"], repo)
    reports = repo / "reports/tables/smoke"
    by_dvc = {p.name: p.read_bytes() for p in sorted(reports.glob("*.csv"))}
    assert sorted(by_dvc) == sorted(f"{n}.csv" for n in names)
    for name, data in by_dvc.items():
        rows = list(csv.DictReader(data.decode().splitlines()))
        assert rows and all(r["status"] == "done" for r in rows), (name, [r["status"] for r in rows])
    shutil.rmtree(repo / "tables" / "runs")
    shutil.rmtree(reports)
    _sh(["rome", "table", "--engine", "snakemake"], repo)
    by_smk = {p.name: p.read_bytes() for p in sorted(reports.glob("*.csv"))}

    def comparable(name: str, data: bytes) -> list[dict]:
        rows = list(csv.DictReader(data.decode().splitlines()))
        if name == "memory.csv":  # a measurement (peak RSS): equal structure, not equal bytes
            for r in rows:
                r["ours_mean"] = r["difference"] = ""
        return rows

    assert {n: comparable(n, d) for n, d in by_smk.items()} == {n: comparable(n, d) for n, d in by_dvc.items()}


def test_plan_says_which_run_folders_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(TABLES, tmp_path / "tables", ignore=shutil.ignore_patterns("runs", "pipelines"))
    monkeypatch.chdir(tmp_path)
    plans = plan_table(load_table("ablation"), get_scale("smoke"))
    run = plans[0].runs[0]
    run.folder("search").mkdir(parents=True)
    assert cli.main(["table", "ablation", "--scale", "smoke", "--plan"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    first = next(k for k in doc if k.startswith(f"{plans[0].row.id} "))
    assert doc[first][str(run.root / f"seed{run.seed}")] in ("done", "partial: search done")
    others = [v for k, row in doc.items() if k != first and isinstance(row, dict) for v in row.values()]
    assert others and set(others) <= {"missing", "done", "partial: search done"}
