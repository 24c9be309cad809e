"""Side-by-side benchmark: teachlib against the peer implementation the book grows from.

Trains the same NequIP-style architecture on the same BaTiO3 snapshots and the same split,
once with teachlib (this repository, ``.venv``) and once with the peer, ``e3response`` +
``tensorial`` + ``reax`` from PyPI, which this script installs into its own virtual
environment (``benchmarks/.peer-venv``, pinned by ``benchmarks/peer-requirements.txt``; never a
dependency of the book). Each run is a separate process; the two sides alternate
(peer, teachlib, peer, teachlib, ...) so that background load falls on both.

Reported per side: compile time (the first epoch's overhead over a steady epoch, parameter
initialisation included), the median and interquartile range of the training-step time (epoch
wall time / steps, warm-up epochs excluded), peak memory (maximum resident set size of the
worker process), and the test MAE of the Born charges (and Raman tensors) after the same
number of epochs. Results go to ``benchmarks/results/peer_benchmark.json`` (every epoch of
every run) and the markdown table to ``book/generated/peer_benchmark.md``, which the book's
appendix page ``book/appendix_performance.md`` includes.

    .venv/bin/python benchmarks/bench_peer.py --epochs 20          # the full measurement
    .venv/bin/python benchmarks/bench_peer.py --epochs 3 --rounds 1 --out /tmp/bench  # a try
    .venv/bin/python benchmarks/bench_peer.py --render-only        # re-write the table from the .json

See benchmarks/README.md for the protocol and the differences between the two architectures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
BOOK_TABLE = REPO / "book" / "generated" / "peer_benchmark.md"  # {include}d by the appendix
PEER_VENV = HERE / ".peer-venv"
PEER_REQUIREMENTS = HERE / "peer-requirements.txt"
PEER_PACKAGES = ("e3response==0.1.3", "tensorial==0.6.5", "reax==0.6.14")
STAMP = ".bench-installed"
# the peer's example hidden irreps (16x0o + 16x0e + 16x1o + 16x1e) with l = 2 added
DEFAULT_HIDDEN = "16x0o + 16x0e + 16x1o + 16x1e + 8x2e + 8x2o"
SIDES = ("peer", "teachlib")

# What differs between the two sides, as far as the two libraries allow (README.md explains).
DIFFERENCES = [
    "Message passing: 3 interaction blocks on both sides. The peer's are 3 gated NequIP layers "
    "with the full hidden irreps, followed by linear readouts; teachlib's third block is "
    "already the readout (ungated, it forms only the irreps the heads read, 4 copies each), "
    "and the heads are species-wise linears.",
    "Irreps that no path can reach yet are left out of a teachlib block (block 1 holds "
    "16x0e+16x1o); the peer carries them as zero arrays.",
    "The peer's Raman 3o part is always zero (its hidden features stop at l = 2 and a linear "
    "readout cannot make l = 3); teachlib's last block forms 3o from 2e ⊗ 1o.",
    "Radial part: 8 Bessel functions and a radial MLP with one hidden layer of 8 on both sides; "
    "teachlib multiplies the basis by a smooth polynomial cutoff (p = 6), the peer's example "
    "has no envelope. Both divide the summed messages by √(mean neighbours).",
    "Species: one-hot + linear (peer, 4 classes incl. the padding's 0) vs an embedding "
    "(teachlib); the same function.",
    "Training recipe, each library's own: the peer's example (Adam, learning rate 0.01, loss "
    "1000·MSE(Z*) + MSE(Raman), raw targets, training set not shuffled, per-batch RMSE metrics "
    "computed in the step); teachlib's chapter-4 recipe (Adam with warm-up + cosine decay from "
    "a peak of 2e-2, the same mean learning rate over the run as the peer's constant 1e-2; "
    "targets shifted by the per-species mean, each MSE divided by its label's scale). "
    "Measured in label scales (rms of the shifted training targets: 0.68 e for Z*, 3.1 for "
    "Raman), the peer's loss weighs the Born charges about 50 times more than the Raman "
    "tensors; teachlib's weighs them equally.",
    "Batching: the peer concatenates a batch into one padded jraph graph in NumPy on every step; "
    "teachlib pads each snapshot once, keeps the data on the device, and vmaps the network over "
    "the batch inside one jitted lax.scan per epoch.",
    "Structures: both read the same positions (the Quantum ESPRESSO inputs via "
    "teachlib.data.load_batio3); the peer's own data module would read the rounded CIFs.",
]


# ------------------------------------------------------------------------------ environment --
def machine_info() -> dict:
    """CPU, cores, load, memory, software: what the numbers were measured on."""
    from teachlib.report import cpu_model

    cpu = cpu_model("unknown")
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               text=True, capture_output=True, check=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": memory_gib,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": commit,
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_peer_venv(venv: Path = PEER_VENV, requirements: Path = PEER_REQUIREMENTS) -> Path:
    """Create ``venv`` and install the pinned peer into it, unless already done; its python.

    Everything comes from PyPI through pip; the stamp file records which requirements file was
    installed, so an edited pin list reinstalls.
    """
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    wanted = _digest(requirements)
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    print(f"installing the peer into {venv} (pins: {requirements.name}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["-r", str(requirements)], check=True)
    check = "import e3response, tensorial, reax, jax; print(jax.__version__)"
    subprocess.run([str(python), "-c", check], check=True, capture_output=True)
    stamp.write_text(wanted + "\n")
    return python


# ------------------------------------------------------------------------------------- data --
def split_ids(n_snapshots: int, seed: int) -> dict:
    """Seeded 40/5/5 split by snapshot index: the chapter-4 split when teachlib has it.

    ``teachlib.data.split.split_snapshots`` (chapter 4) when present; otherwise the same rule
    written out (a permutation from ``numpy.random.default_rng(seed)`` cut 40/5/5).
    """
    try:
        from teachlib.data.split import split_snapshots
    except ImportError:
        import numpy as np

        order = np.random.default_rng(seed).permutation(n_snapshots)
        parts = np.split(order[:50], [40, 45])
        return {"train": sorted(map(int, parts[0])), "val": sorted(map(int, parts[1])),
                "test": sorted(map(int, parts[2])), "source": "numpy default_rng permutation, 40/5/5"}
    split = split_snapshots(n_snapshots, seed=seed)
    return {"train": list(split.train), "val": list(split.val), "test": list(split.test),
            "source": "teachlib.data.split.split_snapshots"}


def prepare_inputs(workdir: Path, data_folder, seed: int) -> tuple[Path, Path, dict]:
    """Write the snapshots (.npz, no pickle) and the split (.json) that both workers read."""
    import numpy as np

    from teachlib.data import load_batio3

    snapshots = load_batio3(data_folder)
    data_path, split_path = workdir / "snapshots.npz", workdir / "split.json"
    np.savez(data_path,
             positions=np.stack([a.positions for a in snapshots]),
             numbers=np.stack([a.numbers for a in snapshots]),
             cell=np.stack([a.cell.array for a in snapshots]),
             born_charges=np.stack([a.arrays["born_charges"] for a in snapshots]),
             raman_tensors=np.stack([a.arrays["raman_tensors"] for a in snapshots]),
             snapshot_ids=np.array([a.info["snapshot_id"] for a in snapshots]))
    split = split_ids(len(snapshots), seed)
    split_path.write_text(json.dumps(split) + "\n")
    return data_path, split_path, split


def species_mean_baseline(data_path: Path, split: dict) -> dict:
    """Test MAE of predicting each species' mean tensor over the training snapshots: where a
    network stands before it has learned anything beyond the species (chapter 4's baseline)."""
    import numpy as np

    with np.load(data_path, allow_pickle=False) as data:
        numbers = data["numbers"]
        errors = {}
        for label in ("born_charges", "raman_tensors"):
            train, test = data[label][split["train"]], data[label][split["test"]]
            z_train, z_test = numbers[split["train"]], numbers[split["test"]]
            prediction = np.zeros_like(test)
            for z in np.unique(z_train):
                prediction[z_test == z] = train[z_train == z].mean(axis=0)
            errors[label] = float(np.mean(np.abs(prediction - test)))
    return {"test_bec_mae": errors["born_charges"], "test_raman_mae": errors["raman_tensors"]}


# ---------------------------------------------------------------------------------- running --
def run_worker(side: str, python: Path, args: list[str], log: Path, *, nice: int = 0,
               timeout: float = 3600.0) -> dict:
    """Run one worker process; its own result plus what the OS measured of it."""
    script = HERE / f"{side}_worker.py"
    command = [str(python), str(script), *args]
    load_before = os.getloadavg()
    print(f"  {side}: {' '.join(shlex.quote(c) for c in command[1:])}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                   preexec_fn=(lambda: os.nice(nice)) if nice else None)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.2)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"the {side} worker failed (exit {process.returncode}); "
                           f"last lines of {log}:\n{tail}")
    out = Path(args[args.index("--out") + 1])
    result = json.loads(out.read_text())
    result["os"] = {"max_rss_mib": usage.ru_maxrss / 1024.0, "user_s": usage.ru_utime,
                    "system_s": usage.ru_stime, "wall_s": wall,
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]}
    return result


# ------------------------------------------------------------------------------- statistics --
def quantile(values, q: float) -> float:
    """Linear-interpolated quantile (NumPy's default), without NumPy."""
    values = sorted(values)
    if not values:
        return float("nan")
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def run_summary(run: dict, warmup: int) -> dict:
    """Step times, compile time and memory of one worker run."""
    epochs = run["epochs"]
    durations = [e["end"] - e["start"] for e in epochs]
    steady = durations[warmup:] or durations[-1:]
    steady_epoch = statistics.median(steady)
    steps = [(e["end"] - e["start"]) / e["steps"] for e in epochs[warmup:]] or \
        [(epochs[-1]["end"] - epochs[-1]["start"]) / epochs[-1]["steps"]]
    return {
        "step_s": steps,
        "steady_epoch_s": steady_epoch,
        # time from the start of training (parameters not yet initialised) to the end of the
        # first epoch, less one steady epoch: tracing + compilation + first-call overheads
        "compile_s": epochs[0]["end"] - run["fit_start"] - steady_epoch,
        "data_s": run["fit_start"] - run["data_start"],
        "max_rss_mib": run["os"]["max_rss_mib"],
        "rss_after_imports_mib": run["rss_after_imports_mib"],
        "test_bec_mae": run["test_bec_mae"],
        "test_raman_mae": run["test_raman_mae"],
        "load_before": run["os"]["load_before"],
        "cpu_s": run["os"]["user_s"] + run["os"]["system_s"],
        "wall_s": run["os"]["wall_s"],
    }


def side_summary(runs: list[dict], warmup: int) -> dict:
    per_run = [run_summary(r, warmup) for r in runs]
    steps = [s for r in per_run for s in r["step_s"]]
    q1, q3 = quantile(steps, 0.25), quantile(steps, 0.75)
    return {
        "runs": len(runs),
        "steps_per_epoch": runs[0]["epochs"][0]["steps"],
        "step_median_s": statistics.median(steps),
        "step_q1_s": q1,
        "step_q3_s": q3,
        "step_iqr_s": q3 - q1,
        "step_min_s": min(steps),
        "step_samples": len(steps),
        "compile_s": statistics.median(r["compile_s"] for r in per_run),
        "compile_s_runs": [r["compile_s"] for r in per_run],
        "data_s": statistics.median(r["data_s"] for r in per_run),
        "max_rss_mib": max(r["max_rss_mib"] for r in per_run),
        "rss_after_imports_mib": max(r["rss_after_imports_mib"] for r in per_run),
        "test_bec_mae": statistics.mean(r["test_bec_mae"] for r in per_run),
        "test_bec_mae_runs": [r["test_bec_mae"] for r in per_run],
        "test_raman_mae": statistics.mean(r["test_raman_mae"] for r in per_run),
        "test_raman_mae_runs": [r["test_raman_mae"] for r in per_run],
        "n_parameters": runs[0]["n_parameters"],
        "load_before_runs": [r["load_before"] for r in per_run],
        "versions": runs[0]["versions"],
    }


# -------------------------------------------------------------------------------- rendering --
def _f(x, digits=3):
    return f"{x:.{digits}g}" if isinstance(x, (int, float)) else str(x)


def render_markdown(report: dict) -> str:
    """The markdown table (and notes) that the book's appendix includes. Numbers only from
    ``report``; nothing here is typed by hand."""
    peer, tl = report["summary"]["peer"], report["summary"]["teachlib"]
    m, s = report["machine"], report["settings"]
    speedup = peer["step_median_s"] / tl["step_median_s"]
    rows = [
        ("compile, s (first epoch's overhead, init included)", _f(peer["compile_s"]), _f(tl["compile_s"]),
         _f(peer["compile_s"] / tl["compile_s"], 2) + "×"),
        (f"training step, median, s (batch of {s['batch_size']})", _f(peer["step_median_s"]),
         _f(tl["step_median_s"]), f"**{speedup:.2f}×**"),
        ("training step, IQR (q1–q3), s", f"{_f(peer['step_iqr_s'], 2)} ({_f(peer['step_q1_s'])}–{_f(peer['step_q3_s'])})",
         f"{_f(tl['step_iqr_s'], 2)} ({_f(tl['step_q1_s'])}–{_f(tl['step_q3_s'])})", ""),
        ("peak memory, max RSS of the process, MiB", f"{peer['max_rss_mib']:.0f}", f"{tl['max_rss_mib']:.0f}",
         _f(peer["max_rss_mib"] / tl["max_rss_mib"], 2) + "×"),
        ("memory after imports, MiB", f"{peer['rss_after_imports_mib']:.0f}", f"{tl['rss_after_imports_mib']:.0f}", ""),
        (f"test BEC MAE after {s['epochs']} epochs, e", _f(peer["test_bec_mae"]), _f(tl["test_bec_mae"]),
         _f(peer["test_bec_mae"] / tl["test_bec_mae"], 2) + "×"),
        (f"test Raman MAE after {s['epochs']} epochs", _f(peer["test_raman_mae"]), _f(tl["test_raman_mae"]),
         _f(peer["test_raman_mae"] / tl["test_raman_mae"], 2) + "×"),
        ("trainable parameters", str(peer["n_parameters"]), str(tl["n_parameters"]), ""),
        ("data preparation, s (graphs, statistics)", _f(peer["data_s"]), _f(tl["data_s"]), ""),
    ]
    versions = peer["versions"]
    lines = [
        f"Measured {m['date_utc']} on {m['cpu']} ({m['nproc']} cores available, "
        f"{m['memory_gib']} GiB), load average {m['load_average_start'][0]} at the start "
        f"(before each run: peer {', '.join(str(l[0]) for l in peer['load_before_runs'])}; "
        f"teachlib {', '.join(str(l[0]) for l in tl['load_before_runs'])}), "
        f"commit `{m['git_commit']}`.",
        "",
        f"| | peer: e3response {versions.get('e3response')} (tensorial {versions.get('tensorial')}, "
        f"reax {versions.get('reax')}) | teachlib {tl['versions'].get('teachlib')} | peer / teachlib |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += [
        "",
        f"Same data and split ({s['n_train']}/{s['n_val']}/{s['n_test']} snapshots of 135 atoms, "
        f"seed {s['seed']}), hidden irreps `{s['hidden_irreps']}`, spherical harmonics l ≤ 1, "
        f"3 message-passing blocks, cutoff {s['cutoff']} Å, batch {s['batch_size']} "
        f"({peer['steps_per_epoch']} steps per epoch on both sides), float32, JAX "
        f"{versions.get('jax')} on both sides, CPU. Runs per side: {s['rounds']}, alternating "
        f"(peer first); step times pooled over the runs, the first {s['warmup_epochs']} "
        f"epoch(s) of each run excluded ({peer['step_samples']} and {tl['step_samples']} samples); "
        "MAEs are means over the runs. A step is an epoch's wall time over its steps: each "
        "library's whole training step (batching, forward, backward, optimiser, its logging).",
    ]
    baseline = report.get("baseline_species_mean")
    if baseline:
        lines += ["", f"For reference, predicting each species' mean tensor over the training "
                  f"snapshots gives a test MAE of {_f(baseline['test_bec_mae'])} e for the Born "
                  f"charges and {_f(baseline['test_raman_mae'])} for the Raman tensors."]
    accuracy = report.get("accuracy")
    if accuracy:
        a_peer, a_tl = accuracy["peer"], accuracy["teachlib"]
        lines += [
            "", f"Accuracy with more optimiser steps: one run per side (peer first), batch "
            f"{accuracy['batch_size']}, {accuracy['epochs']} epochs ({a_peer['steps']} steps"
            + (f"; measured {accuracy['date_utc']}" if accuracy.get("date_utc") else "") + "):", "",
            "| | peer | teachlib | peer / teachlib |", "|---|---:|---:|---:|",
            f"| test BEC MAE, e | {_f(a_peer['test_bec_mae'])} | {_f(a_tl['test_bec_mae'])} | "
            f"{_f(a_peer['test_bec_mae'] / a_tl['test_bec_mae'], 2)}× |",
            f"| test Raman MAE | {_f(a_peer['test_raman_mae'])} | {_f(a_tl['test_raman_mae'])} | "
            f"{_f(a_peer['test_raman_mae'] / a_tl['test_raman_mae'], 2)}× |",
            f"| training step, median, s | {_f(a_peer['step_median_s'])} | {_f(a_tl['step_median_s'])} | "
            f"{_f(a_peer['step_median_s'] / a_tl['step_median_s'], 2)}× |",
            f"| training, s (compile included) | {a_peer['training_s']:.0f} | {a_tl['training_s']:.0f} | "
            f"{_f(a_peer['training_s'] / a_tl['training_s'], 2)}× |",
            f"| load average before the run | {a_peer['load_before'][0]} | {a_tl['load_before'][0]} | |",
        ]
    lines += ["", "What differs between the two sides (see benchmarks/README.md):", ""]
    lines += [f"- {d}" for d in report["differences"]]
    profile = report.get("profile")
    if profile:
        lines += ["", render_profile(profile)]
    return "\n".join(lines) + "\n"


def render_profile(profile: dict) -> str:
    lines = [f"Where teachlib's training step goes (one batch of {profile['batch_size']} "
             f"snapshots, median of {profile['repeats']} calls after compilation):", "",
             "| part | time, ms | share of the step |", "|---|---:|---:|"]
    total = profile["parts"]["train step (jit: forward, backward, Adam)"]
    for name, seconds in profile["parts"].items():
        lines.append(f"| {name} | {seconds * 1e3:.1f} | {100 * seconds / total:.0f} % |")
    ops = profile.get("ops", {})
    if "categories" in ops:
        total = ops["total_op_s"]
        lines += ["", f"The same step op by op (XLA ops from a `jax.profiler` trace, classified by the "
                  f"JAX source path of each op; {100 * ops['directions'].get('backward', 0) / total:.0f} % "
                  "of the op time is in the backward pass):", "",
                  "| category | time, ms | share of op time |", "|---|---:|---:|"]
        for name, seconds in ops["categories"].items():
            lines.append(f"| {name} | {seconds * 1e3:.1f} | {100 * seconds / total:.0f} % |")
        if ops.get("other_elementwise_by_primitive"):
            lines += ["", "The other element-wise work in the blocks, by JAX primitive (ms): " + ", ".join(
                f"{name} {1e3 * t:.1f}" for name, t in ops["other_elementwise_by_primitive"].items()) + "."]
    for note in profile.get("notes", []):
        lines += ["", note]
    return "\n".join(lines)


def table_path(out: Path) -> Path:
    """Where the markdown goes: the book's generated table for the default results folder,
    else beside the JSON (trial runs never touch the book)."""
    return BOOK_TABLE if Path(out).resolve() == RESULTS.resolve() else Path(out) / "peer_benchmark.md"


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "peer_benchmark.json", table_path(out)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(render_markdown(report))
    return json_path, md_path


def accuracy_phase(args, pythons: dict, inputs: list[str], work: Path) -> dict:
    """One longer run per side (peer first) at ``--accuracy-batch-size`` (more optimiser steps
    per epoch), for the test error after ``--accuracy-epochs`` epochs."""
    settings = inputs + ["--epochs", str(args.accuracy_epochs),
                         "--batch-size", str(args.accuracy_batch_size)]
    phase = {"epochs": args.accuracy_epochs, "batch_size": args.accuracy_batch_size}
    for side in SIDES:
        print(f"accuracy run, {side}", flush=True)
        out = work / f"{side}-accuracy.json"
        result = run_worker(side, pythons[side], settings + ["--out", str(out)],
                            work / f"{side}-accuracy.log", nice=args.nice, timeout=3 * 3600.0)
        summary = run_summary(result, min(args.warmup_epochs, args.accuracy_epochs - 1))
        phase[side] = {
            "test_bec_mae": result["test_bec_mae"], "test_raman_mae": result["test_raman_mae"],
            "steps": sum(e["steps"] for e in result["epochs"]),
            "step_median_s": statistics.median(summary["step_s"]),
            "training_s": result["epochs"][-1]["end"] - result["fit_start"],
            "load_before": result["os"]["load_before"], "run": result,
        }
        print(f"    test BEC MAE {result['test_bec_mae']:.4f} e after {phase[side]['steps']} steps "
              f"({phase[side]['training_s']:.0f} s)", flush=True)
    return phase


# ------------------------------------------------------------------------------------- main --
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per side, alternating peer / teachlib (default 3)")
    parser.add_argument("--batch-size", type=int, default=10,
                        help="snapshots per step; 10 divides the 40 training snapshots, so both "
                             "sides run 4 full steps per epoch (default 10)")
    parser.add_argument("--cutoff", type=float, default=5.0, help="Å (the peer example's r_max)")
    parser.add_argument("--hidden-irreps", default=DEFAULT_HIDDEN)
    parser.add_argument("--seed", type=int, default=0, help="split and initialisation")
    parser.add_argument("--warmup-epochs", type=int, default=2,
                        help="epochs of each run left out of the step statistics (default 2)")
    parser.add_argument("--data", default=None,
                        help="folder with the BaTiO3 archive (default: $TEACHLIB_DATA, cache, download)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for the JSON (default benchmarks/results; the table then goes "
                             "to book/generated/peer_benchmark.md, otherwise beside the JSON)")
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    parser.add_argument("--nice", type=int, default=0, help="niceness of both workers")
    parser.add_argument("--accuracy-epochs", type=int, default=0,
                        help="also one longer run per side for the test error (0: none)")
    parser.add_argument("--accuracy-batch-size", type=int, default=2,
                        help="batch size of the accuracy runs (default 2, chapter 4's)")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="add the accuracy runs to the existing JSON in --out, run nothing else")
    parser.add_argument("--profile", action="store_true",
                        help="also time the parts of teachlib's training step")
    parser.add_argument("--render-only", action="store_true",
                        help="re-write the table from the JSON in --out, run nothing")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.render_only:
        report = json.loads((args.out / "peer_benchmark.json").read_text())
        _, md = write_report(report, args.out)
        print(f"wrote {md}")
        return report
    if args.epochs <= args.warmup_epochs:
        raise SystemExit(f"--epochs must exceed --warmup-epochs ({args.warmup_epochs})")
    if args.accuracy_only:
        return add_accuracy(args, argv)
    machine = machine_info()
    print(f"{machine['date_utc']}: {machine['cpu']}, {machine['nproc']} cores, "
          f"load {machine['load_average_start']}", flush=True)
    peer_python = ensure_peer_venv(args.peer_venv)
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    data_path, split_path, split = prepare_inputs(work, args.data, args.seed)
    inputs = ["--data", str(data_path), "--split", str(split_path), "--cutoff", str(args.cutoff),
              "--hidden-irreps", args.hidden_irreps, "--seed", str(args.seed)]
    common = inputs + ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    pythons = {"peer": peer_python, "teachlib": Path(sys.executable)}
    runs = {side: [] for side in SIDES}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}", flush=True)
        for side in SIDES:
            out = work / f"{side}-{round_}.json"
            result = run_worker(side, pythons[side], common + ["--out", str(out)],
                                work / f"{side}-{round_}.log", nice=args.nice)
            runs[side].append(result)
            summary = run_summary(result, args.warmup_epochs)
            print(f"    step {statistics.median(summary['step_s']):.3f} s, compile "
                  f"{summary['compile_s']:.1f} s, max RSS {summary['max_rss_mib']:.0f} MiB, "
                  f"test BEC MAE {summary['test_bec_mae']:.4f} e", flush=True)
    report = {
        "machine": machine,
        "settings": {"epochs": args.epochs, "rounds": args.rounds, "batch_size": args.batch_size,
                     "cutoff": args.cutoff, "hidden_irreps": args.hidden_irreps,
                     "seed": args.seed, "warmup_epochs": args.warmup_epochs, "nice": args.nice,
                     "n_train": len(split["train"]), "n_val": len(split["val"]),
                     "n_test": len(split["test"]), "split": split,
                     "command": " ".join(["python", "benchmarks/bench_peer.py"] +
                                         [shlex.quote(a) for a in (argv or sys.argv[1:])])},
        "summary": {side: side_summary(runs[side], args.warmup_epochs) for side in SIDES},
        "baseline_species_mean": species_mean_baseline(data_path, split),
        "differences": DIFFERENCES,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
    }
    json_path, md_path = write_report(report, args.out)
    if args.accuracy_epochs:
        report["accuracy"] = accuracy_phase(args, pythons, inputs, work)
        json_path, md_path = write_report(report, args.out)
    if args.profile:
        print("profile of teachlib's training step", flush=True)
        out = work / "profile.json"
        try:
            result = run_worker("teachlib", pythons["teachlib"],
                                common + ["--out", str(out), "--profile"], work / "profile.log",
                                nice=args.nice)
        except RuntimeError as error:  # the measurement above stands without it
            print(f"the profile failed, results written without it:\n{error}", file=sys.stderr)
        else:
            report["profile"] = result["profile"]
            json_path, md_path = write_report(report, args.out)
    print(f"wrote {json_path} and {md_path}")
    print(render_markdown(report))
    return report


def add_accuracy(args, argv) -> dict:
    """``--accuracy-only``: run the accuracy phase and add it to the report in ``--out``."""
    path = args.out / "peer_benchmark.json"
    report = json.loads(path.read_text())
    s = report["settings"]
    if (args.cutoff, args.hidden_irreps, args.seed) != (s["cutoff"], s["hidden_irreps"], s["seed"]):
        raise SystemExit(f"--cutoff, --hidden-irreps and --seed must match {path}")
    if not args.accuracy_epochs:
        raise SystemExit("--accuracy-only needs --accuracy-epochs")
    pythons = {"peer": ensure_peer_venv(args.peer_venv), "teachlib": Path(sys.executable)}
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    data_path, split_path, split = prepare_inputs(work, args.data, args.seed)
    if split["test"] != s["split"]["test"] or split["train"] != s["split"]["train"]:
        raise SystemExit("the split differs from the one in the report")
    inputs = ["--data", str(data_path), "--split", str(split_path), "--cutoff", str(args.cutoff),
              "--hidden-irreps", args.hidden_irreps, "--seed", str(args.seed)]
    report["accuracy"] = accuracy_phase(args, pythons, inputs, work)
    report["accuracy"]["date_utc"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report["accuracy"]["command"] = " ".join(["python", "benchmarks/bench_peer.py"] +
                                             [shlex.quote(a) for a in (argv or sys.argv[1:])])
    report.setdefault("baseline_species_mean", species_mean_baseline(data_path, split))
    json_path, md_path = write_report(report, args.out)
    print(f"wrote {json_path} and {md_path}")
    return report


if __name__ == "__main__":
    main()
