"""PNG plots and the Markdown comparison table of evaluation results."""
import numpy as np
import pytest

from gmmgan_tf.metrics.plots import (compare_table, plot_class_histogram, plot_ndb_bins,
                                     plot_ndb_bins_by_component)


def run_metrics(shift, covered):
    train = np.linspace(0.3, 0.1, 5)
    train /= train.sum()
    q = np.roll(train, shift)
    return {"ndb_over_k": 0.2 * shift, "ndb_js": 0.01 * shift, "ndb": shift, "ndb_bins": 5,
            "ndb_samples": 1000, "ndb_train_samples": 4000, "ndb_proportions": q.tolist(),
            "ndb_train_proportions": train.tolist(),
            "ndb_different": (np.abs(q - train) > 0.02).tolist(),
            "domain_fid": 10.0 - shift, "coverage_classes": covered,
            "coverage_shares": [1 / covered] * covered + [0.0] * (4 - covered), "my_extra": 1.5}


def test_plots_write_png_files(tmp_path):
    runs = [("gaussian", run_metrics(2, 3)), ("gmmgan", run_metrics(0, 4))]
    for plot, name, extra in ((plot_ndb_bins, "ndb.png", ()),
                              (plot_class_histogram, "classes.png", (np.full(4, 0.25),))):
        path = tmp_path / name
        plot(runs, str(path), *extra)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_bins_by_component_plot_writes_a_png(tmp_path):
    m = run_metrics(2, 3)
    q = np.asarray(m["ndb_proportions"])
    m.update(ndb_component_proportions=(q[:, None] * [0.5, 0.3, 0.2]).tolist(),
             component_matched_class=[4, -1, 1], component_alpha=[0.5, 0.3, 0.2])
    path = tmp_path / "by_component.png"
    plot_ndb_bins_by_component("gmmgan", m, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_plots_need_their_metrics(tmp_path):
    with pytest.raises(ValueError, match="NDB"):
        plot_ndb_bins([("a", {"sharpness": 1.0})], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="coverage"):
        plot_class_histogram([("a", {"sharpness": 1.0})], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="per-component NDB"):
        plot_ndb_bins_by_component("a", run_metrics(2, 3), str(tmp_path / "x.png"))


def test_compare_table_rows_columns_and_best_values():
    runs = [("gaussian", run_metrics(2, 3)), ("gmmgan", run_metrics(0, 4)),
            ("partial", {"ndb_over_k": 0.3})]
    lines = compare_table(runs).strip().split("\n")
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:4] == ["run", "NDB/K", "NDB JS", "domain FID"]
    # Known columns in TABLE_COLUMNS order, then the other scalars sorted; no lists.
    assert header[4:] == ["classes covered", "my_extra", "ndb", "ndb_bins", "ndb_samples",
                          "ndb_train_samples"]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in lines[2:]}
    assert rows["gmmgan"][1] == "**0.000**"  # lowest NDB/K is best
    assert rows["gaussian"][1] == "0.400"
    assert rows["gmmgan"][header.index("domain FID")] == "10.000"  # 10 - 0: highest, worse
    assert rows["gaussian"][header.index("domain FID")] == "**8.000**"
    assert rows["gmmgan"][header.index("classes covered")] == "**4**"
    assert rows["partial"][header.index("domain FID")] == "–"
    assert len(lines) == 2 + 3
