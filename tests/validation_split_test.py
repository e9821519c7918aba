"""Choose on validation, report on test: training, sweeps and --mode=evaluate read the split they
should, and nothing that chooses a setting reads the test split."""
import dataclasses
import json
import os
import runpy
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_config
from gmmgan_tf import data, evaluation, modes, train, workdir as wd
from gmmgan_tf.config import Config

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs")


class Sealed:
    """Stands in for a test array: any use but counting it fails the test."""

    def __init__(self, array):
        self.count = len(array)

    def __len__(self):
        return self.count

    def _refuse(self, *args, **kwargs):
        raise AssertionError("the test split was read while choosing")

    __getattr__ = __getitem__ = __iter__ = __array__ = __eq__ = _refuse


def sealed(bundle: data.DataBundle) -> data.DataBundle:
    return dataclasses.replace(bundle, test_images=Sealed(bundle.test_images),
                               test_labels=Sealed(bundle.test_labels))


def recording_evaluate(monkeypatch) -> list[str]:
    """Replaces evaluation.evaluate by a wrapper that notes the split each call scores."""
    scored, original = [], evaluation.evaluate

    def record(model, data_bundle, *args, **kwargs):
        scored.append(data_bundle.held_out)
        return original(model, data_bundle, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", record)
    return scored


def test_training_scores_validation_every_epoch_and_test_once_at_the_end(tmp_path, monkeypatch):
    scored = recording_evaluate(monkeypatch)
    config = tiny_config(workdir=str(tmp_path / "run"), epochs=2, steps_per_epoch=2,
                         eval_every=1, eval_quality=False)
    metrics = train.train_and_evaluate(config)
    assert scored == ["validation", "validation", "test"]
    bundle = data.load(config)
    assert metrics["val_pcm_acc"] == evaluation.pcm_clustering(
        _restored(config), bundle.for_scoring("validation"))["pcm_acc"]


def _restored(config: Config):
    _, _, model = wd.load_trained_model(config.workdir)
    return model


def test_a_run_with_a_sealed_test_split_trains_until_the_final_scoring(tmp_path, monkeypatch):
    """With the warm start on, every score before the end (warm-start stages, pre-training,
    per-epoch evaluation) reads the validation split only."""
    config = tiny_config(workdir=str(tmp_path / "run"), epochs=1, steps_per_epoch=1,
                         eval_every=1, eval_quality=False, pcm_init="embedding",
                         warm_start_autoencoder_steps=5, warm_start_dims=2,
                         pcm_pretrain_epochs=1)
    whole = data.load(config)
    small = sealed(dataclasses.replace(whole, train_images=whole.train_images[:300],
                                       train_labels=whole.train_labels[:300]))
    monkeypatch.setattr(data, "load", lambda config: small)
    monkeypatch.setattr(train, "finalize", lambda *args: {})  # the final scoring reads test
    metrics = train.train_and_evaluate(config)
    assert "val_warm_start_acc" in metrics and "val_pretrained_pcm_acc" in metrics
    assert not any(name.startswith(("warm_start_acc", "pretrained_")) for name in metrics)


def test_the_warm_start_sweep_never_reads_the_test_split(monkeypatch, capsys):
    whole = data.load(Config())
    small = sealed(dataclasses.replace(whole, train_images=whole.train_images[:200]))
    monkeypatch.setattr(data, "load", lambda config: small)
    monkeypatch.setattr(sys, "argv", ["warm_start_sweep.py", "--seeds=0", "--neighbors=5",
                                      "--steps=5", "--fit_images=200"])
    runpy.run_path(os.path.join(DOCS, "warm_start_sweep.py"), run_name="__main__")
    assert "validation ACC" in capsys.readouterr().out


def _write_folder(root) -> None:
    """Two classes of 20 distinct flat grey images each."""
    for label in range(2):
        (root / f"class{label}").mkdir(parents=True)
        for i in range(20):
            value = 10 + 6 * i + 120 * label
            Image.fromarray(np.full((28, 28), value, np.uint8)).save(
                root / f"class{label}" / f"{i}.png")


def test_evaluate_scores_the_images_the_run_held_out_whatever_its_own_seed(tmp_path, monkeypatch):
    _write_folder(tmp_path / "pictures")
    trained = tiny_config(dataset=f"folder:{tmp_path / 'pictures'}", image_size=28, seed=1,
                          workdir=str(tmp_path / "run"), epochs=1, steps_per_epoch=1,
                          batch_size=4, eval_every=0, eval_quality=False,
                          validation_fraction=0.0)
    train.train_and_evaluate(trained)
    seen = {}
    monkeypatch.setattr(evaluation, "evaluate",
                        lambda model, bundle, *args, **kwargs: seen.setdefault("bundle", bundle)
                        and {})
    modes.evaluate_workdir(trained.workdir, Config(mode="evaluate", eval_quality=False))
    held_out = data.load(trained)
    np.testing.assert_array_equal(seen["bundle"].test_images, held_out.test_images)
    rows = {r.tobytes() for r in held_out.train_images}
    assert not any(r.tobytes() in rows for r in seen["bundle"].test_images)


def test_a_run_saved_before_the_validation_split_and_the_average_is_read_back_as_trained(
        tmp_path):
    config = dataclasses.asdict(Config(workdir=str(tmp_path)))
    del config["validation_fraction"], config["ema_decay"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = wd.load_config(str(tmp_path))
    assert old.validation_fraction == 0.0 and old.ema_decay == 0.0
    assert Config().validation_fraction == 0.1 and Config().ema_decay == 0.999
