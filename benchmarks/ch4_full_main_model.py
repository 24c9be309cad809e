"""Chapter 4's main model in the full profile, without the rest of the chapter.

The full chapter also trains the learning curve (6 sizes x 3 seeds), which takes hours on a
CPU; this script trains only the main model on the chapter's split and prints its test errors
next to the linear baseline's, so that the full profile's targets can be checked on a laptop
(about 15 minutes on 2 CPU cores)::

    TEACHLIB_DATA=../shared/data/bto .venv/bin/python benchmarks/ch4_full_main_model.py --seed 0
"""

import argparse
import json
import time

import teachlib
from teachlib import baselines, metrics, response
from teachlib.data import load_batio3
from teachlib.data.split import split_snapshots


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="split and initialisation")
    parser.add_argument("--profile", default="full", choices=teachlib.profiles.PROFILES)
    args = parser.parse_args(argv)
    cfg = teachlib.profiles.settings("04_bec_raman", args.profile)
    snapshots = load_batio3()
    split = split_snapshots(len(snapshots), seed=args.seed, **cfg.split)
    train, val, test = ([snapshots[i] for i in part] for part in split)
    truth = {label: baselines.stack_labels(test, label) for label in baselines.LABELS}

    linear = baselines.LinearNeighbours.fit(train, val, radii=cfg.linear_radii)
    predicted = baselines.predict_all(linear, test)
    result = {"profile": args.profile, "seed": args.seed,
              "linear": {label: metrics.mae(predicted[label], truth[label])
                         for label in baselines.LABELS}}
    config = response.ResponseConfig(**cfg.model)
    start = time.perf_counter()
    model, fit = response.train_response(
        train, val, config, epochs=cfg.epochs, batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, weights=cfg.loss_weights, patience=cfg.patience,
        seed=args.seed)
    result |= {"train_s": round(time.perf_counter() - start, 1), "epochs_run": fit.epochs_run,
               "best_epoch": fit.best_epoch}
    predicted = model.predict_many(test, padding=response.common_padding(config, snapshots))
    result |= {"bec_test_mae": metrics.mae(predicted["born_charges"], truth["born_charges"]),
               "raman_test_mae": metrics.mae(predicted["raman_tensors"], truth["raman_tensors"]),
               "targets": {"bec_test_mae": cfg.bec_bar, "raman_test_mae": cfg.raman_bar}}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
