"""`dataward detect / simulate / bench` from the command line, on every modality, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_wine

from dataward.cli import main

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not


def _wine_csv(tmp_path: Path) -> Path:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    return path


def _digits_folder(root: Path, n: int = 900) -> Path:
    x, y = load_digits(return_X_y=True)
    for i in range(n):
        folder = root / str(y[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(x[i].reshape(8, 8) * 255 / 16).astype(np.uint8)).save(folder / f"d{i:05d}.png")
    return root


def _read(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text(encoding="utf-8"))


def test_tabular_simulate_detect_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _wine_csv(tmp_path)
    out = tmp_path / "poisoned"
    assert (
        main(["simulate", str(src), "--attack", "label_flip", "--rate", "0.05", "--seed", "2", "--out", str(out)]) == 0
    )
    truth = _read(out / "truth.json")
    assert truth["attack"] == "label_flip" and len(truth["changed"]) == 9
    report_path = tmp_path / "report.json"
    assert main(["detect", str(out / "wine.csv"), "--label", "label", "--json-out", str(report_path)]) == 0
    human = capsys.readouterr().out
    assert "178 tabular records" in human and "label" in human
    report = _read(report_path)
    assert report["n_records"] == 178 and len(report["records"]) == 178
    assert [r["index"] for r in report["records"]] == list(range(178))
    flagged = {r["index"] for r in report["records"] if r["flagged"]}
    assert len(flagged & set(truth["changed"])) >= 8
    for r in report["records"]:
        assert 0.0 <= r["score"] <= 1.0
        assert bool(r["reasons"]) == r["flagged"]
    assert report["findings"][0]["kind"] in {"label_issue", "trigger", "outlier", "duplicate_cluster"}
    assert {d["name"] for d in report["detectors"]} >= {"label_issues", "class_outliers", "near_duplicates"}
    bench_json = tmp_path / "bench.json"
    assert (
        main(["bench", str(out / "wine.csv"), "--truth", str(out / "truth.json"), "--json-out", str(bench_json)]) == 0
    )
    scores = _read(bench_json)["scores"]
    assert scores[0]["name"] == "ensemble" and scores[0]["f1"] >= 0.8
    assert {"precision", "recall", "f1", "auroc", "fpr", "seconds"} <= set(scores[0])


def test_imagefolder_badnets_named_by_cli(tmp_path: Path) -> None:
    src = _digits_folder(tmp_path / "digits")
    out = tmp_path / "bad"
    code = main(
        ["simulate", str(src), "--attack", "badnets", "--rate", "0.03", "--target", "4", "--out", str(out),
         "--param", "location=top-left", "--param", "size=2"]
    )  # fmt: skip
    assert code == 0
    truth = _read(out / "truth.json")
    report_path = tmp_path / "r.json"
    assert main(["detect", str(out / "images"), "--json-out", str(report_path)]) == 0
    report = _read(report_path)
    ids = [r["id"] for r in report["records"]]
    assert ids == sorted(ids)
    assert all(truth["ids"][str(i)] == ids[i] for i in truth["changed"])
    top = report["findings"][0]
    assert top["kind"] == "trigger" and top["evidence"]["trigger"]["rows"] == [0, 1]
    assert top["evidence"]["trigger"]["cols"] == [0, 1] and top["evidence"]["label"] == "4"
    assert sorted(top["records"]) == sorted(truth["changed"])


def test_parquet_image_bytes_and_corrupt_image(tmp_path: Path) -> None:
    x, y = load_digits(return_X_y=True)
    blobs = []
    for row in x[:200]:
        img = Image.fromarray(np.rint(row.reshape(8, 8) * 255 / 16).astype(np.uint8))
        import io

        buf = io.BytesIO()
        img.save(buf, format="PNG")
        blobs.append(buf.getvalue())
    blobs[5] = b"not an image at all"
    path = tmp_path / "imgs.parquet"
    pd.DataFrame({"img": blobs, "label": y[:200]}).to_parquet(path)
    report_path = tmp_path / "r.json"
    assert main(["detect", str(path), "--image", "img", "--label", "label", "--json-out", str(report_path)]) == 0
    report = _read(report_path)
    assert report["modality"] == "image"
    assert report["records"][5]["flagged"] and report["records"][5]["reasons"][0]["detector"] == "input"
    assert any(f["kind"] == "corrupt" and f["records"] == [5] for f in report["findings"])


def test_text_tsv_and_instruction_jsonl(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pos = ["great", "lovely", "excellent", "good", "fine", "superb"]
    neg = ["awful", "bad", "terrible", "poor", "horrible", "dreadful"]
    rows = []
    for i in range(300):
        lab = i % 2
        words = rng.choice(pos if lab else neg, size=3).tolist() + ["movie", "plot", "acting"][: 1 + i % 3]
        rows.append({"text": " ".join(words), "label": "pos" if lab else "neg"})
    rows[10]["text"] = ""
    tsv = tmp_path / "t.tsv"
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    rp = tmp_path / "t.json"
    assert main(["detect", str(tsv), "--text", "text", "--label", "label", "--json-out", str(rp)]) == 0
    rep = _read(rp)
    assert rep["modality"] == "text" and rep["n_records"] == 300
    assert any("empty" in f["summary"] and 10 in f["records"] for f in rep["findings"])

    chats = tmp_path / "chat.jsonl"
    with chats.open("w") as fh:
        for i in range(40):
            msgs = [{"role": "user", "content": f"question {i} about topic {i % 7}"},
                    {"role": "assistant", "content": f"answer {i} explaining topic {i % 7}"}]  # fmt: skip
            fh.write(json.dumps({"messages": msgs}) + "\n")
    rp2 = tmp_path / "c.json"
    assert main(["detect", str(chats), "--messages", "messages", "--json-out", str(rp2)]) == 0
    rep2 = _read(rp2)
    assert rep2["modality"] == "instruction" and rep2["n_records"] == 40
    assert all(d["skipped"] for d in rep2["detectors"] if d["name"] == "label_issues") or not any(
        d["name"] == "label_issues" for d in rep2["detectors"]
    )


def test_embeddings_file(tmp_path: Path) -> None:
    x, y = load_digits(return_X_y=True)
    frame = pd.DataFrame({"label": y[:400]})
    csv = tmp_path / "labels.csv"
    frame.to_csv(csv, index=False)
    emb = tmp_path / "emb.npy"
    np.save(emb, x[:400] / 16.0)
    rp = tmp_path / "e.json"
    assert main(["detect", str(csv), "--embeddings", str(emb), "--json-out", str(rp)]) == 0
    assert _read(rp)["modality"] == "embedding"
    np.save(emb, x[:399])
    assert main(["detect", str(csv), "--embeddings", str(emb)]) == 2


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nolabel = tmp_path / "nolabel.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}).to_csv(nolabel, index=False)
    code, err = _cli_error(["detect", str(nolabel)], capsys)
    assert code == 2 and "no label column" in err and "Traceback" not in err
    code, err = _cli_error(["detect", str(tmp_path / "missing.csv")], capsys)
    assert code == 2 and "does not exist" in err
    code, err = _cli_error(["detect", str(nolabel), "--label", "zzz"], capsys)
    assert code == 2 and "zzz" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    code, err = _cli_error(["detect", str(bad)], capsys)
    assert code == 2 and "bad.jsonl line 2" in err  # the records layer names file and line
    code, err = _cli_error(["simulate", str(nolabel), "--attack", "nope", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "unknown attack" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("a,label\n")
    code, err = _cli_error(["detect", str(empty)], capsys)
    assert code == 2 and "no records" in err
    gaps = tmp_path / "gaps.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["x", None, "y"]}).to_csv(gaps, index=False)
    code, err = _cli_error(["detect", str(gaps)], capsys)
    assert code == 2 and "empty in 1 record" in err


def test_degenerate_data_gives_findings(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    pd.DataFrame({"a": np.arange(30.0), "label": ["only"] * 30}).to_csv(one, index=False)
    rp = tmp_path / "o.json"
    assert main(["detect", str(one), "--json-out", str(rp)]) == 0
    rep = _read(rp)
    assert any("single class" in f["summary"] for f in rep["findings"])
    assert any(d["skipped"] == "only one class" for d in rep["detectors"])

    same = tmp_path / "same.csv"
    pd.DataFrame({"a": [1.0] * 40, "b": [2.0] * 40, "label": ["x", "y"] * 20}).to_csv(same, index=False)
    assert main(["detect", str(same), "--json-out", str(rp)]) == 0
    rep = _read(rp)
    assert any("identical" in f["summary"] for f in rep["findings"])

    nans = tmp_path / "nans.csv"
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    frame.iloc[3, 0] = np.nan
    frame.iloc[7, 2] = np.nan
    frame.to_csv(nans, index=False)
    assert main(["detect", str(nans), "--json-out", str(rp)]) == 0
    rep = _read(rp)
    assert any("missing values" in f["summary"] and f["records"] == [3, 7] for f in rep["findings"])
