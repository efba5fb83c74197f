"""Peer for benchmarks/trace.py, run inside .venv-bench-detection (cleanlab is AGPL: never imported by dataward).

Reads a JSON job {"text": [...] | null, "features": [[...]] | null, "labels": [...], "batches": [...]} on stdin,
finds label issues with cleanlab (cross-validated logistic-regression probabilities), and prints the batches
ordered by their number of label issues (most first) as JSON. It does not look at the incident's examples: it
is what a data-centric audit without the incident would point at.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import numpy as np
from cleanlab.filter import find_label_issues
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import StandardScaler


def main() -> int:
    job = json.load(sys.stdin)
    labels = np.asarray(job["labels"])
    _, y = np.unique(labels, return_inverse=True)
    if job.get("text") is not None:
        x = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(job["text"])
        clf = LogisticRegression(solver="liblinear", C=10)
    else:
        x = StandardScaler().fit_transform(np.asarray(job["features"], dtype=float))
        clf = LogisticRegression(max_iter=300, C=10)
    probs = cross_val_predict(clf, x, y, cv=3, method="predict_proba")
    issues = find_label_issues(y, probs)
    counts = Counter(np.asarray(job["batches"])[issues].tolist())
    order = sorted(set(job["batches"]), key=lambda b: (-counts.get(b, 0), b))
    json.dump([{"batch": b, "issues": counts.get(b, 0)} for b in order], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
