"""Tests of utils.figures (style, data, evaluation): every figure renders, is labelled and saves."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, roc_auc_score

from utils.figures import (NORMAL_COLOR, kind_colors, plot_confusion_matrix, plot_latent, plot_loss_curves,
                           plot_reconstructions, plot_roc_pr, plot_score_histogram, plot_signal_examples,
                           save_figure)

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ANOMALIES = ["voltage_spike", "current_oscillation", "temperature_drift"]
FEATURES = ["voltage", "current", "temperature"]


def _data(n_normal: int = 30, n_anomaly: int = 5, t: int = 40, seed: int = 0):
    """Windows (N, T, 3) in [0, 1] and their kinds; the last anomaly kind has ONE sample."""
    rng = np.random.default_rng(seed)
    kind = np.array(["normal"] * n_normal + [k for k in ANOMALIES[:-1] for _ in range(n_anomaly)]
                    + [ANOMALIES[-1]])
    steps = np.linspace(0, 4 * np.pi, t)
    x = 0.5 + 0.3 * np.sin(steps)[None, :, None] + rng.normal(0, 0.03, (len(kind), t, 3))
    x[kind == "voltage_spike", 10:14, 0] += 0.4
    x[kind == "temperature_drift", :, 2] += np.linspace(0, 0.4, t)
    return np.clip(x, 0, 1), kind


def _save_and_check(fig: Figure, tmp_path: Path, name: str) -> Path:
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    save_figure(fig, path)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5_000, f"{name}.png is suspiciously small ({len(data)} bytes)"
    return path


def _check_labelled(*axes) -> None:
    for ax in axes:
        assert ax.get_title(), "axes without title"
        assert ax.get_xlabel(), f"axes {ax.get_title()!r} has no x label"
        assert ax.get_ylabel(), f"axes {ax.get_title()!r} has no y label"


def _legend_labels(legend) -> list[str]:
    assert legend is not None, "legend missing"
    return [text.get_text() for text in legend.get_texts()]


def _fresh_python(*args: str) -> str:
    """Run ``python *args`` at the repository root, runtime warnings as errors; return its stripped stdout."""
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", *args], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_modules_do_not_use_pyplot():
    code = ("import io, sys; import numpy as np; import utils.figures as figures; "
            "from utils.figures import plots, report, style; "
            "fig = figures.plot_latent(np.arange(6.0).reshape(3, 2), ['normal'] * 3); "
            "fig.savefig(io.BytesIO(), format='png'); print('matplotlib.pyplot' in sys.modules)")
    assert _fresh_python("-c", code) == "False"


def test_importing_agents_imports_no_figures():
    """Agents import utils.figures (and so Matplotlib) only inside the functions that plot."""
    code = "import sys, agents; print(sorted(m for m in sys.modules if m.startswith(('utils.fig', 'matplotlib'))))"
    assert _fresh_python("-c", code) == "[]"


def test_report_module_runs_as_a_script(tmp_path):
    """``python -m utils.figures.report RUN_FOLDER`` rewrites out/report.md."""
    (tmp_path / "out").mkdir()
    config = {"exp_name": "cli", "agent": "vae", "data": {"name": "csv"}, "model": {"name": "vae"},
              "loss": {"name": "vae"}, "trainer": {}, "evaluation": {}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "out" / "metrics.json").write_text(json.dumps({"scores": {}}))
    assert _fresh_python("-m", "utils.figures.report", str(tmp_path)) == str(tmp_path / "out" / "report.md")
    assert (tmp_path / "out" / "report.md").read_text().startswith("# Run report: cli\n")


def test_package_reexports_the_plot_functions():
    import utils.figures as figures
    from utils.figures import plots, style, timeline
    assert {n for n in figures.__all__ if n.startswith("plot_")} == {*plots.__all__, "plot_timeline"}
    assert all(getattr(figures, n) is getattr(m, n) for m in (plots, style, timeline) for n in m.__all__
               if n in figures.__all__)


def test_kind_colors_are_consistent_and_distinct():
    a = kind_colors(["voltage_spike", "normal", "current_oscillation", "normal"])
    b = kind_colors(["current_oscillation", "voltage_spike", "normal"])
    assert a == b and a["normal"] == NORMAL_COLOR
    assert len(set(a.values())) == 3
    many = kind_colors(["normal"] + [f"class_{i}" for i in range(15)])
    assert len(set(many.values())) == 16 and many["normal"] == NORMAL_COLOR
    assert kind_colors(["class_2"]) == {"class_2": kind_colors(["class_2", "normal"])["class_2"]}


def test_save_figure_is_atomic_and_leaves_no_temp_file(tmp_path):
    fig = plot_loss_curves({"train": [3.0, 2.0, 1.0]})
    target = tmp_path / "sub" / "loss.png"
    save_figure(fig, target)
    save_figure(fig, target)  # overwrite in place
    assert [p.name for p in target.parent.iterdir()] == ["loss.png"]
    assert target.read_bytes().startswith(PNG_MAGIC)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    before = target.read_bytes()
    fig.savefig = broken
    with pytest.raises(RuntimeError):
        save_figure(fig, target)
    assert [p.name for p in target.parent.iterdir()] == ["loss.png"]
    assert target.read_bytes() == before


def test_signal_examples_grid_legend_and_single_sample_kind(tmp_path):
    x, kind = _data()
    fig = plot_signal_examples(x, kind, FEATURES, seed=3)
    _save_and_check(fig, tmp_path, "signals")
    assert len(fig.axes) == len(FEATURES) * len(ANOMALIES)
    _check_labelled(*fig.axes)
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)
    assert _legend_labels(fig.legends[0]) == ["normal"] + sorted(ANOMALIES)
    assert fig.axes[0].get_title() == "voltage: current_oscillation"


def test_signal_examples_compare_a_normal_window_at_the_anomalys_operating_point():
    t = 40
    levels = np.r_[np.full(20, 0.2), np.full(20, 0.8), [0.8, 0.2]]  # 40 normals at two levels, 2 anomalies
    kind = np.array(["normal"] * 40 + ["voltage_spike", "current_oscillation"])
    x = levels[:, None, None] + np.random.default_rng(0).normal(0, 0.01, (len(kind), t, 1))
    x[40, 5:8, 0] += 0.5
    for seed in range(5):
        fig = plot_signal_examples(x, kind, ["voltage"], seed=seed)
        for ax in fig.axes:  # each column: its anomaly window and a normal one at the same level
            normal, anomaly = (np.median(line.get_ydata()) for line in ax.get_lines())
            assert abs(normal - anomaly) < 0.05, (seed, ax.get_title())


def test_signal_examples_without_anomalies(tmp_path):
    x, kind = _data()
    mask = kind == "normal"
    fig = plot_signal_examples(x[mask, :, :1], kind[mask], ["voltage"])
    _save_and_check(fig, tmp_path, "signals_normal")
    assert len(fig.axes) == 1
    _check_labelled(*fig.axes)
    assert _legend_labels(fig.legends[0]) == ["normal"]


def test_loss_curves_two_axes_with_log_components(tmp_path):
    history = {"train": [1.0, 0.6, 0.4, 0.3], "val": [1.1, 0.7, 0.5, 0.45],
               "train_recon": [0.9, 0.5, 0.3, 0.2], "train_kl": [0.01, 0.05, 0.08, 0.1]}
    fig = plot_loss_curves(history)
    _save_and_check(fig, tmp_path, "loss")
    left, right = fig.axes
    _check_labelled(left, right)
    assert left.get_title() == "Training and validation loss"
    assert _legend_labels(left.get_legend()) == ["train", "val"]
    assert _legend_labels(right.get_legend()) == ["train_recon", "train_kl"]
    assert right.get_yscale() == "log" and left.get_yscale() == "log"  # the late fall stays visible
    assert list(left.get_lines()[0].get_xdata()) == [1, 2, 3, 4]  # epochs are 1-based


def test_loss_curves_train_only_and_non_positive_components(tmp_path):
    fig = plot_loss_curves({"train": [2.0]}, title="Loss")
    _save_and_check(fig, tmp_path, "loss_single")
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Loss"
    _check_labelled(*fig.axes)
    fig = plot_loss_curves({"train": [1.0, 0.5], "val": [], "elbo": [-3.0, -1.0]})
    assert fig.axes[1].get_yscale() == "linear"
    fig = plot_loss_curves({"train": [1.0, -0.5]})  # a negative loss: linear
    assert fig.axes[0].get_yscale() == "linear" and fig.axes[0].get_ylabel() == "Loss"


def test_roc_pr_legends_show_auc_and_ap(tmp_path):
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(80), np.ones(20)].astype(int)
    scores = {"mse": y + rng.normal(0, 0.7, 100), "mahalanobis": y + rng.normal(0, 1.5, 100)}
    fig = plot_roc_pr(y, scores)
    _save_and_check(fig, tmp_path, "roc_pr")
    roc, pr = fig.axes
    _check_labelled(roc, pr)
    roc_labels, pr_labels = _legend_labels(roc.get_legend()), _legend_labels(pr.get_legend())
    auc = roc_auc_score(y, scores["mse"])
    ap = average_precision_score(y, scores["mahalanobis"])
    assert roc_labels[0] == f"mse (AUC = {auc:.3f})" and roc_labels[-1].startswith("chance")
    assert pr_labels[1] == f"mahalanobis (AP = {ap:.3f})"
    assert pr_labels[-1] == "base rate = 0.200"


def test_roc_pr_with_one_class_only(tmp_path):
    fig = plot_roc_pr(np.zeros(30), {"mse": np.random.default_rng(0).random(30)})
    _save_and_check(fig, tmp_path, "roc_pr_one_class")
    _check_labelled(*fig.axes)
    with pytest.raises(ValueError, match="values"):
        plot_roc_pr(np.zeros(3), {"mse": np.zeros(4)})


@pytest.mark.parametrize("d, xlabel, ylabel", [(1, "Sample index", "z1"), (2, "z1", "z2"),
                                               (5, r"PC1 \(\d+\.\d% var\)", r"PC2 \(\d+\.\d% var\)")])
def test_latent_for_each_dimension(tmp_path, d, xlabel, ylabel):
    rng = np.random.default_rng(d)
    _, kind = _data()
    z = rng.normal(size=(len(kind), d)) + 3.0 * (kind != "normal")[:, None]
    fig = plot_latent(z, kind)
    _save_and_check(fig, tmp_path, f"latent_{d}")
    ax, = fig.axes
    _check_labelled(ax)
    assert re.fullmatch(xlabel, ax.get_xlabel()) and re.fullmatch(ylabel, ax.get_ylabel())
    labels = _legend_labels(ax.get_legend())
    assert [label.split(" (n=")[0] for label in labels] == ["normal"] + sorted(ANOMALIES)
    assert labels[-1] == "voltage_spike (n=5)"


def test_latent_normals_only_and_single_sample(tmp_path):
    fig = plot_latent(np.random.default_rng(0).normal(size=(40, 2)), np.array(["normal"] * 40))
    _save_and_check(fig, tmp_path, "latent_normal")
    assert _legend_labels(fig.axes[0].get_legend()) == ["normal (n=40)"]
    fig = plot_latent(np.ones((1, 5)), np.array(["class_2"]))  # too few samples for PCA
    _check_labelled(*fig.axes)


def test_reconstructions_two_by_two_with_mse_titles(tmp_path):
    x, kind = _data()
    x_hat = np.clip(x + 0.05, 0, 1)
    fig = plot_reconstructions(x, x_hat, kind, FEATURES)
    _save_and_check(fig, tmp_path, "reconstructions")
    assert len(fig.axes) == 4
    assert fig.axes[0].get_gridspec().get_geometry() == (2, 2)
    _check_labelled(*fig.axes)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("normal (sample 0)")
    assert [t.split(" (")[0] for t in titles] == ["normal"] + sorted(ANOMALIES)
    mse = float(np.mean((x[0] - x_hat[0]) ** 2))
    assert f"MSE = {mse:.3g}" in titles[0]
    assert all(len(ax.get_lines()) == 2 * len(FEATURES) for ax in fig.axes)
    assert _legend_labels(fig.legends[0]) == FEATURES + ["original", "reconstruction"]


def test_reconstructions_name_the_models_error_and_scaling():
    x, kind = _data()
    x_hat = x + 0.1
    fig = plot_reconstructions(x, x_hat, kind, FEATURES, error_kind="mae", scaler="none")
    mae = float(np.mean(np.abs(x[0] - x_hat[0])))
    assert f"MAE = {mae:.3g}" in fig.axes[0].get_title() and "MSE" not in fig.axes[0].get_title()
    assert {ax.get_ylabel() for ax in fig.axes} == {"Value (unscaled)"}
    fig = plot_reconstructions(x, x_hat, kind, FEATURES)
    assert {ax.get_ylabel() for ax in fig.axes} == {"Value (min-max scaled)"}
    with pytest.raises(ValueError, match="error_kind"):
        plot_reconstructions(x, x_hat, kind, FEATURES, error_kind="rmse")


@pytest.mark.parametrize("n_kinds, geometry", [(1, (1, 1)), (2, (1, 2)), (3, (2, 2))])
def test_reconstructions_layout_for_fewer_kinds(tmp_path, n_kinds, geometry):
    x, kind = _data()
    keep = np.isin(kind, ["normal", *sorted(ANOMALIES)][:n_kinds])
    fig = plot_reconstructions(x[keep], x[keep] * 0.9, kind[keep], FEATURES)
    assert len(fig.axes) == n_kinds
    assert fig.axes[0].get_gridspec().get_geometry() == geometry
    _check_labelled(*fig.axes)
    if n_kinds == 1:
        _save_and_check(fig, tmp_path, "reconstructions_normal")
    with pytest.raises(ValueError, match="shape"):
        plot_reconstructions(x, x[:, :-1], kind, FEATURES)


def test_figures_of_hundreds_of_sensors_show_a_few_and_say_so(tmp_path):
    # 400 sensors: the reconstructions drew 800 lines per panel; the signal examples left 392 out unsaid
    x, kind = _data()
    wide = np.concatenate([x] * 134, axis=2)[:, :, :400]
    names = [f"s{i:03d}" for i in range(400)]
    x_hat = wide.copy()
    x_hat[:, :, 250] += 0.5  # the largest error in every panel
    fig = plot_reconstructions(wide, x_hat, kind, names)
    for ax in fig.axes:
        assert len(ax.get_lines()) == 2 * 8
        shown = _legend_labels(ax.get_legend())
        assert len(shown) == 8 and "s250" in shown and shown == sorted(shown)
    assert "the 8 of 400 sensors with the largest MSE" in fig.get_suptitle()
    assert _legend_labels(fig.legends[0]) == ["original", "reconstruction"]
    height, width, _ = save_figure(fig, tmp_path / "reconstructions.png").shape
    assert height < 1500 and width < 2000
    fig = plot_signal_examples(wide, kind, names)
    assert len(fig.axes) == 8 * len(ANOMALIES)
    assert "the first 8 of 400 sensors (392 left out)" in fig.get_suptitle()
    assert "left out" not in plot_signal_examples(x, kind, FEATURES).get_suptitle()


def test_confusion_matrix_counts_percentages_and_colorbar(tmp_path):
    fig = plot_confusion_matrix([[90, 10], [5, 15]])
    _save_and_check(fig, tmp_path, "confusion")
    ax, colorbar = fig.axes
    _check_labelled(ax)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted", "True")
    assert colorbar.get_ylabel() == "Count"
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["90\n90.0%", "10\n10.0%", "5\n25.0%", "15\n75.0%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["normal", "anomaly"]


def test_confusion_matrix_multiclass_and_empty_row(tmp_path):
    labels = ["normal", "class_2", "class_3", "class_4", "class_5"]
    cm = np.arange(25).reshape(5, 5)
    cm[4] = 0
    fig = plot_confusion_matrix(cm, labels, title="ECG5000")
    _save_and_check(fig, tmp_path, "confusion_5")
    assert fig.axes[0].get_title() == "ECG5000"
    assert fig.axes[0].texts[-1].get_text() == "0"
    with pytest.raises(ValueError, match="labels"):
        plot_confusion_matrix(cm)


def test_score_histogram_log_axis_and_threshold(tmp_path):
    rng = np.random.default_rng(2)
    _, kind = _data()
    scores = np.where(kind == "normal", rng.lognormal(-6, 0.5, len(kind)), rng.lognormal(-2, 1, len(kind)))
    fig = plot_score_histogram(scores, kind, 0.01, "Reconstruction MSE")
    _save_and_check(fig, tmp_path, "hist_log")
    ax, = fig.axes
    _check_labelled(ax)
    assert ax.get_xscale() == "log"
    labels = _legend_labels(ax.get_legend())
    assert labels[:-1] == ["normal (n=30)", "current_oscillation (n=5)", "temperature_drift (n=1)",
                           "voltage_spike (n=5)"]
    assert labels[-1] == "threshold = 0.01"


def test_score_histogram_linear_no_threshold_and_normals_only(tmp_path):
    scores = np.random.default_rng(3).normal(2.0, 0.5, 50)
    kind = np.array(["normal"] * 50)
    fig = plot_score_histogram(scores, kind, None, "Mahalanobis distance")
    _save_and_check(fig, tmp_path, "hist_linear")
    ax, = fig.axes
    _check_labelled(ax)
    assert ax.get_xscale() == "linear"
    assert _legend_labels(ax.get_legend()) == ["normal (n=50)"]
    fig = plot_score_histogram(np.full(5, 1.0), np.array(["normal"] * 4 + ["class_2"]), 1.0, "Flat")
    _check_labelled(*fig.axes)


def test_figures_can_be_built_and_saved_from_threads(tmp_path):
    x, kind = _data()

    def work(i: int) -> int:
        fig = plot_latent(x[:, :, 0], kind) if i % 2 else plot_reconstructions(x, x, kind, FEATURES)
        path = tmp_path / f"thread_{i}.png"
        save_figure(fig, path)
        return len(path.read_bytes())

    with ThreadPoolExecutor(max_workers=4) as pool:
        sizes = list(pool.map(work, range(4)))
    assert all(size > 5_000 for size in sizes)


def test_save_figure_returns_the_pixels_it_wrote(tmp_path):
    """The image logged to TensorBoard is the PNG on disk, drawn once."""
    from matplotlib.image import imread

    from utils.figures.style import SAVE_DPI

    fig = plot_loss_curves({"train": [3.0, 2.0, 1.0]})
    image = save_figure(fig, tmp_path / "loss.png")
    on_disk = (imread(tmp_path / "loss.png")[..., :3] * 255).round().astype(np.uint8)
    width, height = fig.get_size_inches() * SAVE_DPI
    assert image.dtype == np.uint8 and image.shape == (round(height), round(width), 3)
    assert np.array_equal(image, on_disk) and image.min() < 128 < image.max()
