"""Issue 19, the output half: rome never deletes, replaces or sweeps what it did not write, and every
way a write can fail or a run can be stopped ends in one line. One test (or group) per row, through
the CLI; each asserts the exit status, a one-line message naming the file, no traceback, and what
must hold on disk (the user's files byte-identical)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_working_tree, one_line_error as one_error, run_rome as rome

from rome import artifacts, cli
from rome.config import load_params
from rome.paths import checkpoint_dir, run_record_path

RUN = Path("mnist5k/darts/rome/seed0")
BIN = Path(sys.executable).parent


@pytest.fixture
def ws(tmp_path: Path, prepared_smoke: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace (the working folder): params.yaml (smoke preset) and a copy of the prepared smoke data."""
    results = tmp_path / "results"
    shutil.copytree(prepared_smoke, results / "mnist5k" / "prepare")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"preset": "smoke", "results_dir": str(results)}))
    monkeypatch.chdir(tmp_path)
    return tmp_path




def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) -> sha256: 'byte-identical' made checkable."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO / "src")}


# ----------------------------------------------------------------------------- --out: a folder rome did not write


def test_out_folder_with_user_files_is_refused_untouched(ws: Path, capsys: pytest.CaptureFixture) -> None:
    precious = ws / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("t\n")
    (precious / "notes").mkdir()
    (precious / "notes" / "a.md").write_text("a\n")
    before = digest(precious)
    rc, lines = rome(ws, capsys, "prepare", "--out", str(precious))
    one_error(rc, lines, "prepare", str(precious), "thesis.txt", "did not write", "nothing touched")
    assert digest(precious) == before
    assert sorted(p.name for p in ws.iterdir()) == ["params.yaml", "precious", "results"]  # no lock, no temp


def test_out_holding_another_stages_artifact_is_refused(ws: Path, capsys: pytest.CaptureFixture) -> None:
    prepared = ws / "results" / "mnist5k" / "prepare"
    before = digest(prepared)
    rc, lines = rome(ws, capsys, "derive", "--out", str(prepared))
    one_error(rc, lines, "derive", str(prepared), "manifest.json", "genotype.json of rome derive")
    assert digest(prepared) == before


def test_own_artifact_is_replaced_but_not_with_a_foreign_file_beside_it(ws: Path, capsys: pytest.CaptureFixture) -> None:
    out = ws / "again"
    assert rome(ws, capsys, "prepare", "--out", str(out))[0] == 0
    assert rome(ws, capsys, "prepare", "--out", str(out))[0] == 0  # its own artifact: replaced (rerun)
    (out / "mine.txt").write_text("mine\n")
    before = digest(out)
    rc, lines = rome(ws, capsys, "prepare", "--out", str(out))
    one_error(rc, lines, "prepare", str(out), "mine.txt")
    assert digest(out) == before


def test_a_document_of_the_right_name_but_not_rome_is_foreign(ws: Path, capsys: pytest.CaptureFixture) -> None:
    out = ws / "lookalike"
    out.mkdir()
    (out / "manifest.json").write_text('{"mine": true}\n')
    rc, lines = rome(ws, capsys, "prepare", "--out", str(out))
    one_error(rc, lines, "prepare", str(out), "manifest.json")
    assert (out / "manifest.json").read_text() == '{"mine": true}\n'


@pytest.mark.parametrize("which", ["working folder", "ancestor", "home", "root", "repository"])
def test_places_never_replaced_even_when_empty(ws: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                               which: str) -> None:
    empty = ws / "empty"
    (empty / "sub").mkdir(parents=True)
    repo = ws / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "work").mkdir()
    cwd, out, reason = {
        "working folder": (empty / "sub", ".", "it is the working folder"),
        "ancestor": (empty / "sub", "..", "it is an ancestor of the working folder"),
        "home": (empty / "sub", str(empty), "it is the home folder"),
        "root": (empty / "sub", "/", "it is the file system root"),
        "repository": (repo / "work", str(repo), "it is a repository root"),
    }[which]
    if which == "home":
        monkeypatch.chdir(ws)
        (empty / "sub").rmdir()
        monkeypatch.setenv("HOME", str(empty))
    else:
        monkeypatch.chdir(cwd)
    before = digest(ws)
    rc, lines = rome(ws, capsys, "prepare", "--out", out)
    one_error(rc, lines, "prepare", reason)
    assert digest(ws) == before and cwd.exists() or which == "home"
    assert empty.is_dir() and repo.joinpath(".git").is_dir()


def test_out_naming_a_file_is_refused_and_never_swept(ws: Path, capsys: pytest.CaptureFixture) -> None:
    afile = ws / "afile"
    afile.write_text("precious\n")
    lookalike = ws / f".afile.old-{dead_pid()}"  # a user's file named like litter, no rome lock record
    lookalike.write_text("also mine\n")
    for _ in range(2):
        rc, lines = rome(ws, capsys, "prepare", "--out", str(afile))
        one_error(rc, lines, "prepare", str(afile), "is an existing file")
    assert afile.read_text() == "precious\n" and lookalike.read_text() == "also mine\n"
    assert sorted(p.name for p in ws.iterdir()) == sorted([lookalike.name, "afile", "params.yaml", "results"])


# ----------------------------------------------------------------------------- litter: only what rome provably made


def _killed_holder(folders: list[Path], litter: list[str]) -> int:
    """A process that holds the locks of ``folders`` as a rome run does, makes ``litter`` (relative to each
    folder's parent, ``{pid}`` filled in), and is SIGKILLed: what a killed run leaves. Returns its PID."""
    code = ("import sys, time; from pathlib import Path; from rome import locks\n"
            f"folders = [Path(f) for f in {[str(f) for f in folders]!r}]\n"
            "with locks.hold(folders):\n"
            f"    for rel in {litter!r}:\n"
            "        p = folders[0].parent / rel.format(pid=__import__('os').getpid())\n"
            "        p.parent.mkdir(parents=True, exist_ok=True)\n"
            "        (p.mkdir() if rel.endswith('/') else p.write_bytes(b'half'))\n"
            "    print('held', flush=True); time.sleep(120)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env())
    assert p.stdout.readline().strip() == "held"
    p.send_signal(signal.SIGKILL)
    p.wait()
    return p.pid


def test_litter_swept_only_with_the_lock_records_proof(ws: Path, capsys: pytest.CaptureFixture) -> None:
    seed_dir = ws / "results" / RUN
    search_dir = seed_dir / "search"
    ckpt = checkpoint_dir(load_params(ws / "params.yaml"), "search")
    pid = _killed_holder([search_dir, ckpt], [".search.tmp-{pid}/", ".search.old-{pid}/"])
    (ckpt).mkdir(parents=True, exist_ok=True)
    (ckpt / f".last.pt.tmp-{pid}").write_bytes(b"half a checkpoint")
    proven = [seed_dir / f".search.tmp-{pid}", seed_dir / f".search.old-{pid}", ckpt / f".last.pt.tmp-{pid}"]
    other = dead_pid()  # dead, but never recorded holding these folders: a user's files, whatever their names
    # (beside the output: the checkpoint folder is rome's own state, emptied whole when a search completes)
    users = [seed_dir / f".search.tmp-{other}", seed_dir / f".search.old-{other}", seed_dir / f".search.lock.old-{pid}"]
    for p in users:
        p.write_text("user data\n")
    assert all(p.exists() for p in proven)
    rc, lines = rome(ws, capsys, "search")
    assert rc == 0, lines
    assert not any(p.exists() for p in proven), "the dead run's own leftovers (its PID in the lock record) go"
    assert all(p.read_text() == "user data\n" for p in users[:2]), "names alone prove nothing: never deleted"
    swept = [line for line in lines if "temporary file(s) of killed runs" in line]
    assert len(swept) == 1 and "removed 3 temporary file(s)" in swept[0], lines
    assert all(str(p) in swept[0] for p in proven) and not any(str(p) in swept[0] for p in users), swept
    # (users[2] sits in rome's own checkpoint folder under state/, which a finished search clears whole)


# ----------------------------------------------------------------------------- read-only, immutable, busy output


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_unwritable_output_place_is_one_line(ws: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                             code: int) -> None:
    """Creating the temporary folder fails (a read-only mount; root ignores chmod, so the errno is injected)."""
    out = ws / "ro"
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if self.name.startswith(".ro.tmp-"):
            raise OSError(code, os.strerror(code), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    rc, lines = rome(ws, capsys, "prepare", "--out", str(out))
    one_error(rc, lines, "prepare", str(out), os.strerror(code))
    assert not [p for p in ws.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_read_only_place_fails_at_the_first_write_naming_the_folder(ws: Path, capsys: pytest.CaptureFixture,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The first write of a run is its lock beside the folder: on a read-only mount that fails, and the
    line still names the folder (the lock file in brackets), not a traceback from filelock."""
    out = ws / "mnt" / "out"
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if self == ws / "mnt":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    rc, lines = rome(ws, capsys, "prepare", "--out", str(out))
    line = one_error(rc, lines, "prepare", os.strerror(errno.EROFS))
    assert line.startswith(f"rome prepare: error: {out}: cannot write there"), line
    assert sorted(p.name for p in ws.iterdir()) == ["params.yaml", "results"]


def test_busy_output_folder_leaves_no_temporary_folder(ws: Path, capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The old folder cannot be renamed (a mount point, an immutable folder): one line, old one intact, no temp."""
    out = ws / "busy"
    assert rome(ws, capsys, "prepare", "--out", str(out))[0] == 0
    before = digest(out)
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        if Path(src) == out:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(src))
        real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", replace)
    rc, lines = rome(ws, capsys, "prepare", "--out", str(out))
    one_error(rc, lines, "prepare", str(out), os.strerror(errno.EBUSY))
    assert digest(out) == before
    assert not [p for p in ws.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


# ----------------------------------------------------------------------------- SIGTERM / SIGINT


def _search_cmd(ws: Path) -> list[str]:
    return [sys.executable, "-m", "rome.cli", "search", "--params", str(ws / "params.yaml"),
            "--set", "search.epochs=3"]


def _stop_after_first_epoch(ws: Path, sig: int) -> tuple[int, str]:
    # SIGINT back to its default in the child: under a backgrounded pytest it is inherited as ignored,
    # and rome (like Python) leaves an ignored SIGINT ignored
    p = subprocess.Popen(_search_cmd(ws), cwd=ws, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in p.stderr:
        seen.append(line)
        if line.startswith("search epoch 1/3"):
            p.send_signal(sig)
            break
    rest = p.stderr.read()
    p.wait(timeout=120)
    return p.returncode, "".join(seen) + rest


def test_sigterm_stops_in_one_line_and_resume_is_byte_identical(ws: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                prepared_smoke: Path) -> None:
    rc, err = _stop_after_first_epoch(ws, signal.SIGTERM)
    assert rc == 143, err
    assert re.search(r"^rome search: stopped by SIGTERM after epoch [12]/3; rerun the same command to resume$", err,
                     re.MULTILINE), err
    assert "Traceback" not in err
    assert not [p for p in ws.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
    resumed = subprocess.run(_search_cmd(ws), cwd=ws, env=env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "search: resuming" in resumed.stderr
    ref = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(prepared_smoke, ref / "results" / "mnist5k" / "prepare")
    (ref / "params.yaml").write_text(yaml.safe_dump({"preset": "smoke", "results_dir": str(ref / "results")}))
    straight = subprocess.run(_search_cmd(ref), cwd=ref, env=env(), capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    a, b = digest(ws / "results" / RUN / "search"), digest(ref / "results" / RUN / "search")
    assert "checkpoint.pt" in a and a == b


def test_sigint_stops_in_one_line_with_130(ws: Path) -> None:
    rc, err = _stop_after_first_epoch(ws, signal.SIGINT)
    assert rc == 130, err
    assert re.search(r"^rome search: stopped by SIGINT after epoch [12]/3; rerun the same command to resume$", err, re.MULTILINE)
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- errors in logs


def test_error_line_starts_its_own_line_after_a_progress_bar(ws: Path) -> None:
    """A log file (stderr not a terminal): the bar's ``\\r`` text must not share the error's line."""
    log = ws / "search.log"
    with open(log, "w") as fh:
        res = subprocess.run([*_search_cmd(ws), "--set", "search.w_lr=1000000.0"], cwd=ws, env=env(),
                             stdout=subprocess.DEVNULL, stderr=fh, timeout=300)
    text = log.read_text()
    assert res.returncode == 2, text
    errors = [line for line in text.split("\n") if "rome search: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("rome search: error:"), repr(text[-400:])


# ----------------------------------------------------------------------------- rome table --report with no runs


def test_report_never_replaced_by_an_emptier_one(tmp_path: Path) -> None:
    repo = copy_working_tree(tmp_path / "clone")  # a fresh clone: committed reports, no runs
    report = repo / "reports" / "tables" / "smoke"
    before = digest(report)
    assert any(line.split(",")[6] for line in (report / "ablation.csv").read_text().splitlines()[1:]), "needs filled rows"
    cmd = [sys.executable, "-m", "rome.cli", "table", "ablation", "--scale", "smoke", "--report"]
    e = {**env(), "PYTHONPATH": str(repo / "src")}
    res = subprocess.run(cmd, cwd=repo, env=e, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert lines[0].startswith("rome table: error: reports/tables/smoke/ablation.csv: holds ") and "--force" in lines[0]
    assert digest(report) == before
    forced = subprocess.run([*cmd, "--force"], cwd=repo, env=e, capture_output=True, text=True, timeout=300)
    assert forced.returncode == 0, forced.stderr
    assert "not run yet" in (report / "ablation.csv").read_text()


# ----------------------------------------------------------------------------- run records


def test_two_out_folders_keep_two_run_records(ws: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = ws / "a", ws / "b"
    for out in (a, b):
        assert rome(ws, capsys, "prepare", "--out", str(out))[0] == 0
    params = load_params(ws / "params.yaml")
    rec_a, rec_b = run_record_path(params, "prepare", a), run_record_path(params, "prepare", b)
    assert rec_a != rec_b
    assert json.loads(rec_a.read_text())["artifact"] == str(a)
    assert json.loads(rec_b.read_text())["artifact"] == str(b)
    capsys.readouterr()
    rc = cli.main(["audit", str(a), "--params", str(ws / "params.yaml"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["stages"]["prepare"]["created_unix"] == json.loads(rec_a.read_text())["created_unix"]


# ----------------------------------------------------------------------------- outputs made by the other engine


def test_snakemake_does_not_serve_dvc_outputs_made_with_other_params(tmp_path: Path) -> None:
    from test_staleness import copy_repo, set_yaml, sh, smk_jobs

    repo = copy_repo(tmp_path / "repo")
    sh(["dvc", "repro", "search@mnist5k-darts-rome-0"], repo)
    assert "search" not in smk_jobs(repo), "the same params: DVC's search is current, not rerun"
    set_yaml(repo, "params.yaml", "search", "epochs", 3)
    assert "search" in smk_jobs(repo), "search.epochs changed: the search DVC made must be rebuilt"


def test_shared_reports_folder_and_its_plots_are_rewritable_but_foreign_files_stay(tmp_path: Path) -> None:
    """aggregate writes its files into reports/, which it shares (tables/ beside them), and replaces
    reports/plots/ (no document of its own): an engine's pre-created empty folders and a previous
    aggregate's files are no obstacle, a user's file in plots/ is."""
    from rome.errors import RomeError
    from rome.outputs import LAYOUTS, check_replaceable

    reports = tmp_path / "reports"
    (reports / "tables" / "smoke").mkdir(parents=True)
    (reports / "tables" / "smoke" / "ablation.csv").write_text("committed\n")
    (reports / "plots").mkdir()  # Snakemake/DVC make the folders of declared outputs before the job
    check_replaceable(reports, LAYOUTS["aggregate"])
    for name in ("search_history.csv", "train_summary.csv"):
        (reports / "plots" / name).write_text("x\n")
    check_replaceable(reports / "plots", LAYOUTS["aggregate plots"])  # a rerun replaces its own plots
    (reports / "plots" / "mine.png").write_bytes(b"png")
    with pytest.raises(RomeError, match="mine.png"):
        check_replaceable(reports / "plots", LAYOUTS["aggregate plots"])
