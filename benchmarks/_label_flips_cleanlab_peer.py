"""Peer for benchmarks/label_flips.py, run in a benchmark venv with cleanlab (AGPL: never imported by dataward).

Reads one or more .npz jobs (``y``, ``probs``: dataward's calibrated out-of-fold probabilities, and either ``text``
or ``features``) and prints JSON, one object a job (a list for several, so cleanlab is imported once), with
two flag lists: ``cleanlab-same-probs`` (``find_label_issues`` on
dataward's probabilities) and ``cleanlab-default`` (``CleanLearning`` over a logistic regression with its
own cross-validation, on word TF-IDF for text or standardised features).
"""

from __future__ import annotations

import json
import sys

import numpy as np
from cleanlab.classification import CleanLearning
from cleanlab.filter import find_label_issues
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def _one(path: str) -> dict[str, list[bool]]:
    job = np.load(path, allow_pickle=False)
    y = job["y"].astype(np.int64)
    same = find_label_issues(labels=y, pred_probs=job["probs"], n_jobs=1)
    if "text" in job.files:
        x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform([str(t) for t in job["text"]])
        clf = LogisticRegression(max_iter=500, C=10)
    else:
        x = StandardScaler().fit_transform(job["features"])
        clf = LogisticRegression(max_iter=500)
    cl = CleanLearning(clf=clf, seed=int(job["seed"]), find_label_issues_kwargs={"n_jobs": 1})
    default = cl.find_label_issues(x, y)["is_label_issue"].to_numpy()
    return {"cleanlab-same-probs": same.tolist(), "cleanlab-default": default.tolist()}


def main() -> int:
    out = [_one(path) for path in sys.argv[1:]]
    json.dump(out[0] if len(out) == 1 else out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
