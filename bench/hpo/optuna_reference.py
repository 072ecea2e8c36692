#!/usr/bin/env python3
"""Optuna's TPESampler (defaults) on the test functions of `strata bench tpe`, same spaces and
budget, one JSON line per run: {"function", "sampler": "optuna-tpe", "seed", "best"}.

    python3 optuna_reference.py --trials 50 --seeds 10
"""
import argparse
import json
import math

import optuna


def branin(trial):
    x1 = trial.suggest_float("x1", -5, 10)
    x2 = trial.suggest_float("x2", 0, 15)
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(trial):
    x = [trial.suggest_float(f"x{j + 1}", 0, 1) for j in range(6)]
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))) for i in range(4))


def mixed(trial):
    lr = trial.suggest_float("lr", 1e-5, 1, log=True)
    units = trial.suggest_int("units", 1, 100)
    activation = trial.suggest_categorical("activation", ["relu", "tanh", "sigmoid"])
    return (math.log10(lr) + 3) ** 2 + (units - 37) ** 2 / 100 + {"relu": 0, "tanh": 0.5, "sigmoid": 1}[activation]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name, f in (("branin", branin), ("hartmann6", hartmann6), ("mixed", mixed)):
        for seed in range(args.seeds):
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(f, n_trials=args.trials)
            print(json.dumps({"function": name, "sampler": "optuna-tpe", "seed": seed, "best": study.best_value}))


if __name__ == "__main__":
    main()
