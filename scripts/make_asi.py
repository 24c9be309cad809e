"""Make the book's amorphous-silicon cells: melt-quench with Vink's Stillinger-Weber in JAX.

One-off generation, not part of any chapter's run.  For each seed:

1. random positions (no pair closer than 2.0 Å) of N atoms in a cubic cell at 2.30 g/cm³,
   relaxed briefly so that no pair overlaps (a diamond start does not melt at 3000 K);
2. 10 ps of Langevin dynamics at 3000 K (the melt);
3. a linear quench 3000 K → 300 K at 1e13 K/s (270 ps);
4. a 5 ps hold at 300 K;
5. minimisation (FIRE, float64) to max |F| < 1e-4 eV/Å.

It writes ``OUT/asi_512_seed{SEED}.extxyz`` (species, positions and cell), prints and saves each
cell's structure (mean coordination, fourfold fraction, bond-angle mean ± std) to
``OUT/structure.json``, and with ``--figure`` draws the angle and radial distributions.

    python scripts/make_asi.py --seeds 1 2 3 4 5 6 --out src/teachlib/data/asi
    python scripts/make_asi.py --figure --out src/teachlib/data/asi     # figure + PROVENANCE table

``--quick`` shortens every phase 100× (a smoke test: the result is not amorphous silicon).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

AVOGADRO = 6.02214076e23


def cell_side(n_atoms: int, density: float) -> float:
    """Side (Å) of the cubic cell holding ``n_atoms`` Si at ``density`` g/cm³."""
    from teachlib.silicon import MASS_SI

    volume_cm3 = n_atoms * MASS_SI / AVOGADRO / density
    return volume_cm3 ** (1 / 3) * 1e8


def melt_quench(seed: int, args) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run one melt-quench; returns positions (N, 3), box (3,) and a log dict."""
    import jax
    import jax.numpy as jnp

    from teachlib import silicon as si

    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    side = cell_side(args.n_atoms, args.density)
    box = np.full(3, side)
    config = si.MDConfig(dt=args.dt_fs * 1e-3, friction=args.friction)
    scale = 0.01 if args.quick else 1.0

    t0 = time.perf_counter()
    pos = si.random_positions(args.n_atoms, box, min_distance=2.0, rng=rng)
    with jax.enable_x64(True):  # a short relaxation removes the worst contacts
        pos, _, _ = si.fire_minimise(jnp.asarray(pos), box, fmax=0.5, max_steps=500)
    pos = jnp.asarray(np.asarray(pos), jnp.float32)
    box_j = jnp.asarray(box, jnp.float32)
    mass = si.MASS_SI * si.AMU
    velocities = rng.normal(0.0, np.sqrt(si.KB * args.t_melt / mass), pos.shape)
    velocities -= velocities.mean(axis=0)
    idx = si.neighbour_list(pos, box_j, cutoff=config.params.cutoff + config.skin,
                            capacity=config.capacity)
    state = dict(positions=pos, velocities=jnp.asarray(velocities, jnp.float32), box=box_j,
                 idx=idx, reference=pos)

    # The temperature schedule, one value per step: melt, quench, hold.
    dt_ps = config.dt
    n_melt = int(round(args.melt_ps * scale / dt_ps))
    quench_ps = (args.t_melt - args.t_final) / args.rate * 1e12 * scale
    n_quench = int(round(quench_ps / dt_ps))
    n_hold = int(round(args.hold_ps * scale / dt_ps))
    schedule = np.concatenate([
        np.full(n_melt, args.t_melt),
        np.linspace(args.t_melt, args.t_final, n_quench),
        np.full(n_hold, args.t_final),
    ]).astype(np.float32)
    chunk = args.chunk
    schedule = np.pad(schedule, (0, -len(schedule) % chunk), mode="edge")

    log = dict(time_ps=[], temperature_K=[], target_K=[], potential_eV_per_atom=[])
    max_neighbours, n_rebuilds, t_md = 0, 0, time.perf_counter()
    for start in range(0, len(schedule), chunk):
        key, sub = jax.random.split(key)
        state, out = si.langevin(state, sub, jnp.asarray(schedule[start:start + chunk]),
                                 n_steps=chunk, config=config)
        max_neighbours = max(max_neighbours, int(out["max_neighbours"].max()))
        if max_neighbours > config.capacity:
            raise OverflowError(f"{max_neighbours} neighbours > capacity {config.capacity}")
        n_rebuilds += int(out["rebuilt"].sum())
        log["time_ps"].append((start + chunk) * dt_ps)
        log["temperature_K"].append(float(out["temperature"].mean()))
        log["target_K"].append(float(schedule[start:start + chunk].mean()))
        log["potential_eV_per_atom"].append(float(out["potential"][-1]) / args.n_atoms)
        if (start // chunk) % args.print_every == 0:
            print(f"  seed {seed}  t = {log['time_ps'][-1]:7.1f} ps  T = "
                  f"{log['temperature_K'][-1]:6.0f} K (target {log['target_K'][-1]:6.0f})  "
                  f"E = {log['potential_eV_per_atom'][-1]:.4f} eV/atom", flush=True)
    n_steps = len(schedule)
    seconds_md = time.perf_counter() - t_md

    with jax.enable_x64(True):
        pos, e_min, fmax = si.fire_minimise(jnp.asarray(np.asarray(state["positions"]),
                                                        jnp.float64), box, fmax=1e-4)
    pos = np.asarray(pos)
    log.update(
        n_steps=n_steps, md_seconds=seconds_md, ms_per_step=1e3 * seconds_md / n_steps,
        neighbour_rebuilds=n_rebuilds, max_neighbours=max_neighbours,
        energy_min_eV_per_atom=e_min / args.n_atoms, fmax_eV_per_A=fmax,
        total_seconds=time.perf_counter() - t0,
    )
    return pos, box, log


def write_cell(path: Path, positions: np.ndarray, box: np.ndarray, seed: int) -> None:
    """Write species, positions (6 decimals) and the cell, nothing else, as extxyz."""
    lines = [
        str(len(positions)),
        f'Lattice="{box[0]:.6f} 0.0 0.0 0.0 {box[1]:.6f} 0.0 0.0 0.0 {box[2]:.6f}" '
        f'Properties=species:S:1:pos:R:3 seed={seed} pbc="T T T"',
    ]
    lines += [f"Si {x:.6f} {y:.6f} {z:.6f}" for x, y, z in positions]
    path.write_text("\n".join(lines) + "\n")


def draw_figure(out: Path, summaries: dict) -> None:
    """Bond-angle and radial distributions of every cell in ``out``."""
    import ase.io
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from teachlib import silicon as si

    fig, (ax_g, ax_a) = plt.subplots(1, 2, figsize=(10, 3.8))
    for path in sorted(out.glob("asi_*.extxyz")):
        atoms = ase.io.read(path)
        r, g = si.radial_distribution(atoms, r_max=8.0, n_bins=200)
        ax_g.plot(r, g, lw=1, label=path.stem)
        angles = si.bond_angles(atoms)
        ax_a.hist(angles, bins=np.arange(60, 181, 2.5), density=True, histtype="step",
                  label=path.stem)
    ax_g.axvline(si.BOND_CUTOFF, color="k", ls=":", lw=1)
    ax_g.set(xlabel="r (Å)", ylabel="g(r)", title="radial distribution")
    ax_a.axvline(109.47, color="k", ls=":", lw=1)
    ax_a.set(xlabel="bond angle (°)", ylabel="density",
             title=f"bond angles (bonds < {si.BOND_CUTOFF} Å)")
    ax_a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "asi_structure.png", dpi=110)
    print(f"wrote {out / 'asi_structure.png'}")


PROVENANCE = """# Amorphous-silicon cells: provenance

Made by `scripts/make_asi.py` in this repository (a one-off step, not part of any chapter's
run), with teachlib's own Stillinger-Weber potential in JAX (`teachlib.silicon`, tested
against jax-md's implementation, a brute-force double loop and finite differences in
`tests/test_silicon.py`).

Command (from the repository root):

    python scripts/make_asi.py --seeds {seeds} --out src/teachlib/data/asi
    python scripts/make_asi.py --figure --out src/teachlib/data/asi

## Protocol and parameters

- {n_atoms} Si atoms in a cubic periodic cell of side {side:.4f} Å ({density} g/cm³).
- Potential: Stillinger-Weber with Vink et al.'s a-Si parameters (J. Non-Cryst. Solids 282,
  248 (2001)): ε = {epsilon} eV, σ = {sigma} Å, A = {A}, B = {B}, p = 4, q = 0, a = {a}
  (cut-off {cutoff:.5f} Å), λ = {lam} (21 × 1.5), γ = {gamma}.
- Start: random positions, no pair closer than 2.0 Å, relaxed (FIRE, 500 steps at most) to
  remove the worst contacts. (A diamond start does not melt at 3000 K within 5 ps.)
- Langevin dynamics (BAOAB), time step {dt_fs} fs, friction {friction} /ps, float32:
  {melt_ps} ps melt at {t_melt:.0f} K; linear quench to {t_final:.0f} K at {rate:.0e} K/s
  ({quench_ps:.0f} ps); {hold_ps} ps hold at {t_final:.0f} K.
- Minimisation: FIRE in float64 to max |F| < 1e-4 eV/Å.
- Neighbour list: cut-off + 0.6 Å skin, rebuilt whenever an atom has moved more than half the
  skin; never more than 32 neighbours (checked at every step).
- Seed N seeds everything in that cell (positions, velocities, Langevin noise): `numpy`'s
  `default_rng(N)` and `jax.random.PRNGKey(N)`.

The files hold species, positions (Å, 6 decimals) and the cell, nothing else. The six
shipped cells were made with `teachlib/silicon.py` and the MD part of this script as of
commit ea36e58 (branch `asi`); `structure.json` beside them holds every figure below and the
exact arguments.

## Structure of each cell

Bonds are pairs closer than 2.85 Å (the first minimum of the radial distribution).

| file | coordination | fourfold | bond angle | E (eV/atom) | MD time |
|---|---|---|---|---|---|
{rows}
| **mean** | **{mean_z:.3f}** | **{mean_four:.1f} %** | **{mean_angle:.1f}° ± {mean_std:.1f}°** | | |

References: one such cell measured while the project was planned gave 3.996, 94.9 %,
109.1° ± 10.4°; a DFT model of a-Si has 3.991, 98.1 %, 109.1° ± 10.0°.

MD times were measured on {cpu} CPU cores shared with other jobs (jax {jax}): {ms:.1f} ms per
MD step on average, an upper bound for an idle machine.

![radial distribution and bond angles of the cells](asi_structure.png)
"""


def write_provenance(out: Path, summaries: dict) -> None:
    """Write ``out/PROVENANCE.md`` from the recorded figures of every cell."""
    from teachlib.silicon import VINK

    first = next(iter(summaries.values()))
    args = first["command_args"]
    ordered = sorted(summaries.items(), key=lambda kv: kv[1]["seed"])
    rows = "\n".join(
        f"| `{name}.extxyz` | {s['coordination']:.3f} | {100 * s['fourfold_fraction']:.1f} % | "
        f"{s['angle_mean_deg']:.1f}° ± {s['angle_std_deg']:.1f}° | {s['energy_min_eV_per_atom']:.4f} | "
        f"{s['total_seconds'] / 60:.0f} min |" for name, s in ordered)
    values = lambda key: [s[key] for _, s in ordered]  # noqa: E731
    text = PROVENANCE.format(
        seeds=" ".join(str(s["seed"]) for _, s in ordered), side=cell_side(args["n_atoms"], args["density"]),
        quench_ps=(args["t_melt"] - args["t_final"]) / args["rate"] * 1e12, rows=rows,
        mean_z=np.mean(values("coordination")), mean_four=100 * np.mean(values("fourfold_fraction")),
        mean_angle=np.mean(values("angle_mean_deg")), mean_std=np.mean(values("angle_std_deg")),
        cpu=2, jax=first["jax"], ms=np.mean(values("ms_per_step")),
        epsilon=VINK.epsilon, sigma=VINK.sigma, A=VINK.A, B=VINK.B, a=VINK.a, cutoff=VINK.cutoff,
        lam=VINK.lam, gamma=VINK.gamma, **{k: v for k, v in args.items() if k != "n_atoms"},
        n_atoms=args["n_atoms"])
    (out / "PROVENANCE.md").write_text(text)
    print(f"wrote {out / 'PROVENANCE.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=Path("src/teachlib/data/asi"))
    parser.add_argument("--log-dir", type=Path, default=Path("outputs/asi_logs"),
                        help="per-chunk temperature and energy logs (not shipped)")
    parser.add_argument("--n-atoms", type=int, default=512)
    parser.add_argument("--density", type=float, default=2.30, help="g/cm³")
    parser.add_argument("--t-melt", type=float, default=3000.0, help="K")
    parser.add_argument("--t-final", type=float, default=300.0, help="K")
    parser.add_argument("--melt-ps", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1e13, help="quench rate, K/s")
    parser.add_argument("--hold-ps", type=float, default=5.0)
    parser.add_argument("--dt-fs", type=float, default=1.0)
    parser.add_argument("--friction", type=float, default=2.0, help="Langevin, 1/ps")
    parser.add_argument("--chunk", type=int, default=1000, help="MD steps per jitted call")
    parser.add_argument("--print-every", type=int, default=10, help="chunks between prints")
    parser.add_argument("--quick", action="store_true", help="every phase 100× shorter")
    parser.add_argument("--figure", action="store_true",
                        help="draw the figure of all cells and write PROVENANCE.md")
    args = parser.parse_args()

    import ase.io
    import jax

    from teachlib import silicon as si

    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "structure.json"
    summaries = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for seed in args.seeds:
        print(f"seed {seed}: {args.n_atoms} atoms, {args.density} g/cm³", flush=True)
        positions, box, log = melt_quench(seed, args)
        name = f"asi_{args.n_atoms}_seed{seed}"
        write_cell(args.out / f"{name}.extxyz", positions, box, seed)
        summary = si.structure_summary(ase.io.read(args.out / f"{name}.extxyz"))
        summary |= {k: log[k] for k in ("energy_min_eV_per_atom", "fmax_eV_per_A", "ms_per_step",
                                         "n_steps", "total_seconds", "neighbour_rebuilds",
                                         "max_neighbours")}
        summary |= dict(seed=seed, quick=args.quick, jax=jax.__version__,
                        cpu=platform.processor() or platform.machine(),
                        command_args={k: (str(v) if isinstance(v, Path) else v)
                                      for k, v in vars(args).items() if k != "seeds"})
        summaries[name] = summary
        summary_path.write_text(json.dumps(summaries, indent=2) + "\n")
        args.log_dir.mkdir(parents=True, exist_ok=True)
        (args.log_dir / f"{name}.log.json").write_text(json.dumps(log) + "\n")
        print(f"{name}: coordination {summary['coordination']:.3f}, fourfold "
              f"{100 * summary['fourfold_fraction']:.1f} %, angles {summary['angle_mean_deg']:.1f}"
              f"° ± {summary['angle_std_deg']:.1f}°, E = {summary['energy_min_eV_per_atom']:.4f}"
              f" eV/atom, {summary['ms_per_step']:.2f} ms/step, {summary['total_seconds']:.0f} s",
              flush=True)
    if args.figure:
        draw_figure(args.out, summaries)
        write_provenance(args.out, summaries)


if __name__ == "__main__":
    main()
