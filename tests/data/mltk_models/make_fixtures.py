#!/usr/bin/env python3
"""Builds the MLTK-format DensityFunction model fixtures in this folder.

MLTK (AI Toolkit 5.7.4) saves a model as `lookups/__mlspl_<name>.mlmodel`: a CSV with the header
`algo,model,options` and one row. `model` is the JSON of the DensityFunction object written by MLTK's
codec: every registered object becomes `{"__mlspl_type": [module, class], "dict": obj.__dict__}`, numpy
arrays become `{"__mlspl_type": ["numpy", "ndarray"], "npy": base64(np.save bytes)}`, numpy integer scalars
become `{"__mlspl_type": ["numpy", "int64"], "ndarray": <one-element array>}`, and Python's json module
writes `Infinity`/`NaN` literals. numpy float64 values are Python floats and print as plain JSON numbers.

This script does not use MLTK's code: it builds objects with the same modules, class names and `__dict__`
keys (spec `densityfunction.md` §5.2) from the same fits (scipy `norm.fit`/`expon.fit` on pandas-typed
groups), and encodes them the same way. It also writes:

- `train.csv`: the training rows (HourOfDay as Splunk's `strftime(_time, "%H")` text, `07`);
- `apply.csv`: the training rows plus a few outliers and an unseen group;
- `expected_<model>.csv`: MLTK's `IsOutlier(count)` and `BoundaryRanges` for every `apply.csv` row under
  the model's stored threshold, computed with scipy as MLTK does (empty for the unseen group).

Run with a Python that has numpy, scipy and pandas:  python3 make_fixtures.py  (deterministic output).
"""

import base64
import csv
import io
import json
import os

import numpy as np
import pandas as pd
import scipy.stats as stats

HERE = os.path.dirname(os.path.abspath(__file__))
DF = "algos.DensityFunction"
PD = "algos_support.density_function."


class Obj:
    """An object the codec writes as `{"__mlspl_type": [module, name], "dict": __dict__}`."""

    def __init__(self, module, name, **fields):
        self.module, self.name, self.fields = module, name, fields


class Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, Obj):
            return {"__mlspl_type": [o.module, o.name], "dict": o.fields}
        if isinstance(o, np.ndarray):
            if o.dtype.hasobject:
                o = o.astype("U")
            bio = io.BytesIO()
            np.save(bio, o, allow_pickle=False)
            return {
                "__mlspl_type": ["numpy", "ndarray"],
                "npy": base64.b64encode(bio.getvalue()).decode("utf8"),
            }
        if isinstance(o, (np.integer, np.bool_)):
            return {"__mlspl_type": ["numpy", type(o).__name__], "ndarray": np.array([o])}
        return super().default(o)


def base_dist(data, metric=None):
    return dict(
        _mean=None, _std=None, _min=data.min(), _max=data.max(), _metric=metric,
        _distance=None, _cardinality=int(data.shape[0]), _other_params={}, _data=data,
        _extension={}, _exclude_dist=None,
    )


def fit_dist(kind, data):
    if kind == "norm":
        d = base_dist(data, "wasserstein")
        d["_mean"], d["_std"] = stats.norm.fit(data)
        if d["_std"] == 0:
            d["_std"] = 0.000001
        d["_distance"] = 0.5
        return Obj(PD + "normal_distribution", "NormalDistribution", **d)
    if kind == "expon":
        d = base_dist(data, "wasserstein")
        d["_mean"], d["_std"] = stats.expon.fit(data)
        d["_distance"] = 0.25
        return Obj(PD + "exponential_distribution", "ExponentialDistribution", **d)
    if kind == "kde":
        d = base_dist(data, "wasserstein")
        d["_mean"], d["_std"] = float(data.mean()), float(data.std())
        d["_max_param_size"] = 10000
        d["_other_params"] = {"bandwidth": 1.5, "parameter size": int(data.shape[0])}
        return Obj(PD + "kde_distribution", "KDEDistribution", **d)
    if kind.startswith("auto:"):
        inner = fit_dist(kind[5:], data)
        d = base_dist(data, "wasserstein")
        d.update(_dist=inner, _mlspl_limits={"max_groups": "5000"}, _distance=inner.fields["_distance"])
        return Obj(PD + "distribution_factory", "AutoSelectDistribution", **d)
    raise ValueError(kind)


LIMITS = {"default_prob_threshold": "0.01", "max_groups": "5000", "max_threshold_num": "5",
          "max_fields_in_by_clause": "8", "min_data_size_to_fit": "50"}


def model_row(df, name, dist_type, kind, split_by, params, args, threshold):
    """One `.mlmodel` row. `params` as MLTK's convert_params leaves them; `threshold` = (t, lower, upper)."""
    feature = "count"
    if split_by:
        dists = {}
        for label, g in df.groupby(split_by, sort=True):
            if not isinstance(label, tuple):
                label = (label,)
            # PSC's pandas hands numpy scalars to MLTK for integer columns.
            label = tuple(np.int64(v) if isinstance(v, (int, np.integer)) else v for v in label)
            key = "_".join(map(str, label))
            dists[key] = Obj(DF, "LabeledDistribution",
                             dist=fit_dist(kind, g[feature].values),
                             fields={k: v for k, v in zip(split_by, label)})
    else:
        dists = fit_dist(kind, df[feature].values)
    t, lower, upper = threshold
    algo = Obj(
        DF, "DensityFunction",
        _params=params, _dist_type=dist_type, _exclude_dist=None, _metric="wasserstein", _regul=0.0,
        _max_depth=10, _max_leaf_nodes=1024, _supervise_split_by=False, _distance=0.5, _dist=dists,
        _min_data_size=50, _min_samples_leaf=50, _tree=None, _options_dt=None,
        _threshold=Obj(PD + "outlier_threshold", "OutlierThreshold", threshold=t, lower=lower, upper=upper),
        split_by=split_by or None, _show_options_values=None,
        _warned_on_few_training_data=True, _warned_on_missing_group=False,
        _warned_on_expon_lower_threshold=False, _warned_on_beta_upper_threshold=False,
        feature_variables=[feature],
    )
    options = {"args": args, "feature_variables": [feature], "split_by": split_by,
               "params": {k: (",".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in params.items()},
               "model_name": name, "algo_name": "DensityFunction", "mlspl_limits": LIMITS,
               "kfold_cv": None, "output_name": None}
    return ["DensityFunction", json.dumps(algo, cls=Encoder), json.dumps(options)]


def write_model(name, row):
    with open(os.path.join(HERE, "lookups", "__mlspl_%s.mlmodel" % name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["algo", "model", "options"])
        w.writerow(row)


def safe_str(v):
    if v == np.inf:
        return "Infinity"
    if v == -np.inf:
        return "-Infinity"
    return str(round(v, 4)) if isinstance(v, float) else str(v)


def expected(apply_df, fitted, kind, t):
    """MLTK's IsOutlier(count) and BoundaryRanges for each row under threshold t."""
    rows = []
    for _, r in apply_df.iterrows():
        key = (int(r["HourOfDay"]), r["DayOfWeek"])
        if key not in fitted:
            rows.append(["", ""])
            continue
        data = fitted[key]
        x = float(r["count"])
        if kind == "norm":
            mean, std = stats.norm.fit(data)
            d = stats.norm(loc=mean, scale=std)
            lo, up = d.ppf(t / 2), d.ppf(1 - t / 2)
            out = x < lo or x > up
            text = "%s:%s:%s\n%s:%s:%s" % ("-Infinity", safe_str(round(lo, 4)), t / 2, safe_str(round(up, 4)), "Infinity", t / 2)
        else:
            loc, scale = stats.expon.fit(data)
            up = stats.expon(loc=loc, scale=scale).ppf(1 - t)
            mn = data.min()
            out = (-np.inf < x < mn) or (up < x < np.inf)
            text = "-Infinity:%s:0\n%s:Infinity:%s" % (mn, safe_str(round(up, 4)), round(t, 4))
        rows.append(["1.0" if out else "0.0", text])
    return rows


def main():
    os.makedirs(os.path.join(HERE, "lookups"), exist_ok=True)
    rng = np.random.default_rng(20240611)
    rows = []
    for day in ["Monday", "Tuesday"]:
        for hour in [7, 8, 9, 10]:
            for i in range(40):
                rows.append(["%02d" % hour, day, int(rng.poisson(20 + hour))])
    with open(os.path.join(HERE, "train.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["HourOfDay", "DayOfWeek", "count"])
        w.writerows(rows)
    extra = [["07", "Monday", 90], ["08", "Tuesday", 0], ["10", "Monday", 1], ["09", "Tuesday", 55],
             ["11", "Monday", 20], ["7", "Monday", 300]]
    with open(os.path.join(HERE, "apply.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["HourOfDay", "DayOfWeek", "count"])
        w.writerows(rows + extra)

    # Read back as MLTK does: pandas types "07" as the integer 7.
    df = pd.read_csv(os.path.join(HERE, "train.csv"))
    apply_df = pd.read_csv(os.path.join(HERE, "apply.csv"))
    by = ["HourOfDay", "DayOfWeek"]
    fitted = {k: g["count"].values for k, g in df.groupby(by)}

    write_model("smb_norm", model_row(
        df, "smb_norm", "norm", "norm", by, {"threshold": [0.01]},
        ["count"], ([0.01], None, None)))
    write_model("smb_expon", model_row(
        df, "smb_expon", "expon", "expon", by, {"threshold": [0.005]},
        ["count", "dist=expon", "threshold=0.005"], ([0.005], None, None)))
    # Python's json writes NaN/Infinity literals; MLTK's distances can be either.
    row = model_row(df, "flat_auto", "auto", "auto:norm", [], {"show_density": True}, ["count"],
                    ([0.01], None, None))
    row[1] = row[1].replace('"_distance": 0.5', '"_distance": NaN', 1).replace(
        '"_distance": 0.5', '"_distance": Infinity', 1)
    write_model("flat_auto", row)
    write_model("hour_lower", model_row(
        df, "hour_lower", "norm", "norm", ["HourOfDay"], {"lower_threshold": [0.05]},
        ["count"], ([0.01], [0.05], None)))
    write_model("kde_model", model_row(
        df, "kde_model", "gaussian_kde", "kde", by, {}, ["count"], ([0.01], None, None)))
    write_model("linreg", ["LinearRegression", json.dumps({"__mlspl_type": ["algos.LinearRegression", "LinearRegression"], "dict": {}}), "{}"])
    # A damaged base64 payload in the first numpy array.
    row = model_row(df, "corrupt", "norm", "norm", [], {}, ["count"], ([0.01], None, None))
    row[1] = row[1].replace('"npy": "k05VTVBZ', '"npy": "k05V!!!!', 1)
    write_model("corrupt", row)

    for name, kind, t in [("smb_norm", "norm", 0.01), ("smb_expon", "expon", 0.005)]:
        with open(os.path.join(HERE, "expected_%s.csv" % name), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["IsOutlier(count)", "BoundaryRanges"])
            w.writerows(expected(apply_df, fitted, kind, t))


if __name__ == "__main__":
    main()
