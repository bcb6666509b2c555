"""glyphnet report RUN_DIR: one self-contained page with every picture that applies."""
import base64
import json
import os
import re
import shutil

import pytest
from vis_runs import LAYERS, run_dir

from glyphnet import cli
from glyphnet.fileio import atomic_open
from glyphnet.inspection.report import write_report

COMMON = ["Summary", "Configuration", "Learning curves", "Weights", "Training dynamics",
          "Results on the test set", "What the network looks at and imagines"]
FIGURES = {  # the pictures (alt text) expected per model kind
    "all": ["learning-curves", "batch-losses", "weight-histograms", "training-dynamics",
            "gradient-angle", "confusion-matrix", "per-class-accuracy", "misclassified",
            "confident-mistakes", "correct", "saliency", "activation-maximisation"],
    "dense": ["first-layer-weights", "class-unit-weights"],
    "cnn": ["conv-filters", "feature-maps", "deconvolution"],
    "sigmoid": ["backwards-query", "activation-functions"],
}
EXPECTED = {"mlp": ["all", "dense"], "cnn": ["all", "cnn"], "sigmoid": ["all", "dense", "sigmoid"]}


def _temp_files(directory):
    """Temporary files atomic_open leaves behind if a write is cut short."""
    return [f for f in os.listdir(directory) if f.endswith(".tmp")]


def test_temp_file_check_sees_atomic_open_temp_files(tmp_path):
    with atomic_open(tmp_path / "report.html", "w") as f:
        f.write("half")
        assert len(_temp_files(tmp_path)) == 1
    assert not _temp_files(tmp_path) and (tmp_path / "report.html").read_text() == "half"


def _images(page):
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)">', page)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "cnn", "sigmoid"])
def test_report_has_every_section_and_picture(kind, tmp_path_factory):
    d = run_dir(kind, tmp_path_factory)
    messages = []
    path = write_report(d, log=messages.append)
    assert path == os.path.join(str(d), "report.html")
    page = open(path, encoding="utf-8").read()
    headings = re.findall(r"<h2 id=\"s\d+\">([^<]*)</h2>", page)
    expected = COMMON[:5] + (["Inside the convolutional layers"] if kind == "cnn" else []) + \
        COMMON[5:] + (["How the layers work"] if kind == "sigmoid" else [])
    assert headings == expected
    alts = [alt for alt, _ in _images(page)]
    wanted = [a for group in EXPECTED[kind] for a in FIGURES[group]]
    assert sorted(alts) == sorted(wanted)
    for _, data in _images(page):
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # self-contained: no external references of any kind
    assert not re.search(r"https?://|<link|<script|url\(", page)
    assert all(src.startswith("data:image/png;base64,")
               for src in re.findall(r'src="([^"]*)"', page))
    # the config, the metrics and the layers are on the page
    metrics = json.loads((d / "metrics.json").read_text())
    assert f"<td>{metrics['test_accuracy']:.4g}</td>" in page
    assert "Confusion matrix of the 200 test images." in page or kind == "cnn"
    assert (d / "config.toml").read_text().splitlines()[0] in page
    assert LAYERS[kind][0]["type"] in page
    assert messages[0] == "report: loading the test set" and messages[-1].startswith(
        "report: done in")
    assert not _temp_files(d)


@pytest.mark.slow
def test_report_command_and_errors(tmp_path_factory, tmp_path, capsys):
    old = tmp_path / "old"          # a run from before dynamics.npz existed
    shutil.copytree(run_dir("mlp", tmp_path_factory), old)
    os.remove(old / "dynamics.npz")
    assert cli.main(["report", str(old)]) == 0
    assert f"wrote {old}/report.html" in capsys.readouterr().out
    page = (old / "report.html").read_text()
    assert "Training dynamics" not in page and 'alt="weight-histograms"' in page
    partial = tmp_path / "partial"
    shutil.copytree(old, partial)
    os.remove(partial / "report.html")
    os.remove(partial / "model.npz")
    os.remove(partial / "history.csv")
    assert cli.main(["report", str(partial)]) == 1
    err = capsys.readouterr().err
    assert "missing model.npz, history.csv" in err and "Traceback" not in err
    assert not (partial / "report.html").exists()
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 1
    assert "no such run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_train_with_report_flag(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('[data]\ntrain_limit = 200\ntest_limit = 50\n[training]\nepochs = 1\n'
                   '[model]\nlayers = [{type = "dense", units = 10}, {type = "softmax"}]\n')
    out = tmp_path / "run"
    assert cli.main(["train", str(cfg), "--out", str(out), "--report"]) == 0
    assert f"wrote {out}/report.html" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert 'alt="first-layer-weights"' in page
    assert 'alt="class-unit-weights"' not in page      # a single-layer model
    assert (out / "dynamics.npz").exists()
