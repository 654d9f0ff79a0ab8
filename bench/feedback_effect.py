"""What CSM corrections do to the next model, measured on a held-out period.

The story simulated: the CRM does not record every churn. Self-serve SMB contracts lapse
without anyone closing them (``--missing-smb`` of SMB churns have no churn date in the
export, ``--missing-other`` of the rest), so the model learns that SMB accounts rarely churn.
CSMs see each week's digest (their top 10 accounts by the model trained on that data) and
answer "Correct…" on a share of them (``--answer-rate``) some days later: "already churned"
when the account has churned by then, "at risk" when it churns later within the horizon,
"not at risk" or "renewed" otherwise; ``--noise`` of the answers are wrong.

Three models per seed, all evaluated on the same held-out weeks against the TRUE outcomes:
the one trained on the CRM data, the one trained on it with the corrections
(``models.feedback_labels``, as `churnbot train --with-feedback` does), and an oracle trained
on the true labels (the ceiling no feedback can pass).

Usage: .venv/bin/python bench/feedback_effect.py [--seeds 5] [--accounts 3000] [--weeks 78]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from models.contract import AccountSchema, load_schema
from models.features import FeatureSet, load_features
from models.feedback_labels import feedback_labels
from models.generator import generate_accounts
from models.labels import make_labels, time_split
from models.metrics import brier, pr_auc, roc_auc, top_decile
from models.train import train_model

CONFIG = Path(__file__).resolve().parent.parent / "config"


def sample_features() -> FeatureSet:
    """The shipped config's features (the sample book's 18)."""
    return load_features(CONFIG / "features.yaml", load_schema(CONFIG / "schema.yaml"))[0]


HORIZON = 90
DIGEST_SIZE = 10


def hide_churns(
    truth: pd.DataFrame, rng: np.random.Generator, smb: float, other: float
) -> pd.DataFrame:
    """The CRM export: some accounts' churn dates never recorded (by account, so every row
    of a lost account says "retained")."""
    churned = truth.loc[truth["churn_date"].notna(), ["account_id", "segment"]].drop_duplicates(
        "account_id"
    )
    share = np.where(churned["segment"] == "smb", smb, other)
    hidden = set(churned["account_id"][rng.random(len(churned)) < share])
    crm = truth.copy()
    crm.loc[crm["account_id"].isin(hidden), "churn_date"] = pd.NaT
    return crm


def csm_answers(
    truth: pd.DataFrame,
    crm: pd.DataFrame,
    schema: AccountSchema,
    risk: np.ndarray,
    rng: np.random.Generator,
    *,
    answer_rate: float,
    noise: float,
) -> pd.DataFrame:
    """Corrections on each CSM's weekly top 10 of the training weeks, as the stream stores
    them (the columns ``models.feedback_labels`` reads)."""
    train = time_split(crm, schema, HORIZON).train
    shown = train.assign(risk=risk).sort_values("risk", ascending=False)
    shown = shown.groupby(["as_of", "owner_csm"]).head(DIGEST_SIZE)
    shown = shown[rng.random(len(shown)) < answer_rate]
    churn = truth.groupby("account_id")["churn_date"].min()
    rows = []
    for account, as_of in shown[["account_id", "as_of"]].itertuples(index=False):
        at = as_of + pd.Timedelta(days=int(rng.integers(7, 60)))
        churned_at = churn.get(account)
        if pd.notna(churned_at) and churned_at <= at:
            state = "churned"
        elif pd.notna(churned_at) and churned_at <= as_of + pd.Timedelta(days=HORIZON):
            state = "at_risk"
        else:
            state = "renewed" if rng.random() < 0.3 else "not_at_risk"
        if rng.random() < noise:  # a CSM who is wrong
            state = "not_at_risk" if state in ("churned", "at_risk") else "churned"
        rows.append(
            {
                "event_id": uuid.uuid4().hex,
                "at": at.tz_localize("UTC"),
                "kind": "correction",
                "account_id": account,
                "as_of": as_of.date().isoformat(),
                "real_state": state,
            }
        )
    return pd.DataFrame(rows)


def held_out(estimator: object, truth: pd.DataFrame, schema: AccountSchema) -> dict[str, float]:
    """Metrics on the held-out weeks, against the true outcomes."""
    rows = time_split(truth, schema, HORIZON).evaluate
    y = make_labels(rows, schema, HORIZON).to_numpy(dtype=bool)
    p = estimator.predict_proba(sample_features().build(rows))[:, 1]  # type: ignore[attr-defined]
    decile = top_decile(y, p)
    return {
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "top_decile_precision": decile.precision,
        "brier": brier(y, p),
        "mean_risk_over_rate": float(p.mean() / y.mean()),
    }


def run(seed: int, args: argparse.Namespace, schema: AccountSchema) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    truth = generate_accounts(args.accounts, args.weeks, seed=seed, end=dt.date(2026, 11, 16))
    truth_frame = truth.accounts
    crm = hide_churns(truth_frame, rng, args.missing_smb, args.missing_other)
    plain = train_model(crm, schema, sample_features(), horizon_days=HORIZON)
    train_rows = time_split(crm, schema, HORIZON).train
    deployed = plain.estimator.predict_proba(sample_features().build(train_rows))[:, 1]
    events = csm_answers(
        truth_frame, crm, schema, deployed, rng, answer_rate=args.answer_rate, noise=args.noise
    )
    feedback = feedback_labels(
        events, crm, schema, horizon_days=HORIZON, confirmed_weight=args.weight
    )
    corrected = train_model(
        crm,
        schema,
        sample_features(),
        horizon_days=HORIZON,
        label_overrides=feedback.labels,
        sample_weight=feedback.weights,
    )
    oracle = train_model(truth_frame, schema, sample_features(), horizon_days=HORIZON)
    missing = int(
        (make_labels(train_rows, schema, HORIZON) != make_labels(
            truth_frame.loc[train_rows.index], schema, HORIZON
        )).sum()
    )  # fmt: skip
    print(
        f"seed {seed}: {len(train_rows):,} training rows, {missing:,} of them labelled "
        f"'retained' by the CRM although the account churned; {feedback.corrections:,} "
        f"corrections, {len(feedback.used):,} used, {feedback.flipped:,} labels fixed, "
        f"{len(feedback.weights):,} rows weighted",
        flush=True,
    )
    return {
        "CRM data": held_out(plain.estimator, truth_frame, schema),
        "CRM data + feedback": held_out(corrected.estimator, truth_frame, schema),
        "true labels (oracle)": held_out(oracle.estimator, truth_frame, schema),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--weeks", type=int, default=78)
    parser.add_argument("--missing-smb", type=float, default=0.6)
    parser.add_argument("--missing-other", type=float, default=0.1)
    parser.add_argument("--answer-rate", type=float, default=0.4)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--weight", type=float, default=2.0)
    args = parser.parse_args()
    schema = load_schema(CONFIG / "schema.yaml")
    results = [run(seed, args, schema) for seed in range(1, args.seeds + 1)]
    metrics = list(results[0]["CRM data"])
    print(
        f"\nheld-out period, true outcomes; mean (min-max) over {args.seeds} seeds; "
        f"{args.missing_smb:.0%} of SMB and {args.missing_other:.0%} of other churns missing "
        f"from the CRM, CSMs answer {args.answer_rate:.0%} of their digest, {args.noise:.0%} "
        "of answers wrong"
    )
    print(f"{'model':<22}" + "".join(f"{m:>24}" for m in metrics))
    for model in results[0]:
        cells = []
        for metric in metrics:
            values = [r[model][metric] for r in results]
            cells.append(
                f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})".rjust(24)
            )
        print(f"{model:<22}" + "".join(cells))
    for metric in ("roc_auc", "pr_auc", "top_decile_precision"):
        deltas = [r["CRM data + feedback"][metric] - r["CRM data"][metric] for r in results]
        gaps = [r["true labels (oracle)"][metric] - r["CRM data"][metric] for r in results]
        print(
            f"feedback - CRM data, {metric}, per seed: "
            + ", ".join(f"{d:+.3f}" for d in deltas)
            + f" (the oracle's lead: {', '.join(f'{g:+.3f}' for g in gaps)})"
        )


if __name__ == "__main__":
    main()
