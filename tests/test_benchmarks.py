"""The side-by-side benchmark (benchmarks/bench_peer.py): its statistics, its split, and that the
committed table and the book's appendix come from the script's JSON, never typed by hand."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
TABLE = REPO / "book" / "generated" / "peer_benchmark.md"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("bench_peer")


def test_quantile_matches_numpy(bench):
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 12):
        values = list(rng.normal(size=n))
        for q in (0.0, 0.25, 0.5, 0.75, 1.0):
            np.testing.assert_allclose(bench.quantile(values, q), np.quantile(values, q))


def test_run_summary_excludes_warmup_and_subtracts_a_steady_epoch(bench):
    # epoch 0 takes 10 s (compile), the rest 2 s for 4 steps; training starts at t = 1 s
    epochs = [{"start": 1.5, "end": 11.5, "steps": 4}]
    epochs += [{"start": 11.5 + 2 * k, "end": 13.5 + 2 * k, "steps": 4} for k in range(4)]
    run = {"epochs": epochs, "fit_start": 1.0, "data_start": 0.25, "rss_after_imports_mib": 300.0,
           "test_bec_mae": 0.1, "test_raman_mae": 1.0, "n_parameters": 10, "versions": {},
           "os": {"max_rss_mib": 900.0, "load_before": [1.0, 1.0, 1.0], "user_s": 3.0,
                  "system_s": 1.0, "wall_s": 20.0}}
    summary = bench.run_summary(run, warmup=1)
    np.testing.assert_allclose(summary["step_s"], [0.5] * 4)
    np.testing.assert_allclose(summary["compile_s"], 11.5 - 1.0 - 2.0)
    np.testing.assert_allclose(summary["data_s"], 0.75)
    side = bench.side_summary([run, run], warmup=1)
    np.testing.assert_allclose([side["step_median_s"], side["step_iqr_s"], side["step_samples"]],
                               [0.5, 0.0, 8])


def test_split_is_seeded_disjoint_and_40_5_5(bench):
    split = bench.split_ids(50, seed=0)
    assert split == bench.split_ids(50, seed=0)
    assert split != bench.split_ids(50, seed=1)
    parts = [split["train"], split["val"], split["test"]]
    assert [len(p) for p in parts] == [40, 5, 5]
    np.testing.assert_array_equal(sorted(sum(parts, [])), np.arange(50))


def test_teachlib_worker_trains_and_reports(bench, bto_dir, tmp_path):
    """The teachlib side runs end to end (one small epoch) on the inputs the driver writes."""
    import subprocess

    data, split_path, split = bench.prepare_inputs(tmp_path, bto_dir, 0)
    out = tmp_path / "teachlib.json"
    subprocess.run([sys.executable, str(BENCH / "teachlib_worker.py"), "--data", str(data),
                    "--split", str(split_path), "--out", str(out), "--epochs", "2",
                    "--batch-size", "20", "--cutoff", "3.5",
                    "--hidden-irreps", "4x0e + 2x1o + 2x1e + 2x2e + 2x2o",
                    "--radial-hidden", "4", "--readout-mul", "1"], check=True, cwd=REPO)
    result = json.loads(out.read_text())
    assert [e["steps"] for e in result["epochs"]] == [2, 2]
    assert np.isfinite(result["test_bec_mae"]) and np.isfinite(result["test_raman_mae"])


def test_species_mean_baseline(bench, tmp_path):
    rng = np.random.default_rng(0)
    numbers = np.tile([56, 22, 8, 8, 8], (6, 1))  # 6 snapshots of 5 atoms
    per_species = {56: 2.7, 22: 7.0, 8: -3.2}
    born = np.stack([[np.eye(3) * per_species[z] for z in row] for row in numbers])
    noise = rng.normal(size=born.shape)
    np.savez(tmp_path / "d.npz", numbers=numbers, born_charges=born + noise,
             raman_tensors=np.zeros(numbers.shape + (3, 3, 3)))
    split = {"train": [0, 1, 2, 3], "val": [4], "test": [5]}
    baseline = bench.species_mean_baseline(tmp_path / "d.npz", split)
    train_mean = {z: (born + noise)[:4][numbers[:4] == z].mean(0) for z in per_species}
    expected = np.mean([np.abs(train_mean[z] - (born + noise)[5, k]).mean()
                        for k, z in enumerate(numbers[5])])
    np.testing.assert_allclose([baseline["test_bec_mae"], baseline["test_raman_mae"]], [expected, 0.0])


def test_peer_is_pinned_for_the_benchmark_and_never_a_book_dependency():
    pins = (BENCH / "peer-requirements.txt").read_text()
    for package in ("e3response==0.1.3", "tensorial==0.6.5", "reax==0.6.14"):
        assert re.search(rf"^{re.escape(package)}$", pins, re.MULTILINE), package
    book_requirements = (REPO / "requirements.txt").read_text() + (REPO / "pyproject.toml").read_text()
    for package in ("e3response", "tensorial", "reax"):
        assert package not in book_requirements, package
    assert "benchmarks/.peer-venv/" in (REPO / ".gitignore").read_text()


def test_committed_table_is_rendered_from_the_committed_json(bench):
    report = json.loads((RESULTS / "peer_benchmark.json").read_text())
    assert bench.table_path(RESULTS) == TABLE
    assert TABLE.read_text() == bench.render_markdown(report), \
        "run `python benchmarks/bench_peer.py --render-only`"
    for side in ("peer", "teachlib"):
        summary = report["summary"][side]
        assert summary["runs"] == report["settings"]["rounds"] >= 1
        assert summary["step_median_s"] > 0 and summary["max_rss_mib"] > 0
        assert np.isfinite(summary["test_bec_mae"])
    # the same settings reached both workers
    for run in report["runs"]["peer"] + report["runs"]["teachlib"]:
        assert len(run["epochs"]) == report["settings"]["epochs"]
        assert run["n_test_atoms"] == 135 * report["settings"]["n_test"]
        assert run["x64"] is False


def test_appendix_includes_the_generated_table_and_is_in_the_toc():
    page = (REPO / "book" / "appendix_performance.md").read_text()
    include = re.search(r"```\{include\}\s+(\S+)", page)
    assert include, "the appendix must {include} the generated table"
    assert (REPO / "book" / include.group(1)).resolve() == TABLE.resolve()
    assert not re.search(r"\d+\.\d+\s*(s|ms|MiB)\b", page), "numbers belong in the generated table"
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert "book/appendix_performance" in files
