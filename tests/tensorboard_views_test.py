"""What `tensorboard --logdir=<workdir>` shows of a trained run, read back through TensorBoard's
own HParams and Projector plugins (their HTTP handlers, as the dashboard calls them)."""
import dataclasses
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import hparams_plugin
from tensorboard.plugins.projector import ProjectorConfig
from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin
from werkzeug.test import Client
from werkzeug.wrappers import Response

from conftest import tiny_config, without_tensorflow
from gmmgan_tf import hparams, images, modes, projector, train
from gmmgan_tf import workdir as wd

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained workdir: (config, metrics)."""
    workdir = str(tmp_path_factory.mktemp("run"))
    config = dataclasses.replace(tiny_config(), workdir=workdir, epochs=2, steps_per_epoch=2,
                                 eval_every=0, eval_quality=False, seed=3)
    return config, train.train_and_evaluate(config)


def _plugin_client(plugin_class, logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    context = base_plugin.TBContext(
        logdir=logdir, multiplexer=multiplexer,
        data_provider=data_provider.MultiplexerDataProvider(multiplexer, logdir))
    apps = plugin_class(context).get_plugin_apps()
    return lambda route, **kw: Client(apps[route], Response).open(route, **kw)


def _hparams_request(client, route, body):
    response = client(route, method="POST", data=json.dumps(body),
                      content_type="application/json")
    assert response.status_code == 200, response.data[:500]
    return json.loads(response.data)


def test_hparams_dashboard_shows_the_options_and_final_metrics(trained):
    _check_hparams(*trained)


def test_a_finished_run_without_hparams_gets_them_from_its_files(trained):
    config, metrics = trained
    root = hparams.logdir(config.workdir)
    for name in os.listdir(root):
        if name.startswith("events.out.tfevents"):
            os.remove(os.path.join(root, name))
    hparams.backfill(config.workdir)
    _check_hparams(config, metrics)


def test_backfill_leaves_a_run_with_hparams_as_it_is(trained, capsys):
    config, _ = trained
    root = hparams.logdir(config.workdir)
    before = sorted(os.listdir(root))
    assert hparams.main([config.workdir]) == 0
    assert capsys.readouterr().out == (f"{config.workdir}: already has its HParams in {root}; "
                                       "nothing written\n")
    assert sorted(os.listdir(root)) == before  # no second row in the HParams table


def test_hparams_without_runs_prints_its_usage_at_once():
    result = subprocess.run([sys.executable, "-m", "gmmgan_tf.hparams"], capture_output=True,
                            text=True, timeout=60, env=without_tensorflow(),
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "usage: python -m gmmgan_tf.hparams WORKDIR [WORKDIR ...]  (finished training runs, "
        "e.g. runs/s2/*: gives each its row in TensorBoard's HParams)"]
    assert result.stdout == ""


def _check_hparams(config, metrics):
    """The HParams plugin's experiment and session groups of `config.workdir`."""
    client = _plugin_client(hparams_plugin.HParamsPlugin, config.workdir)
    experiment = _hparams_request(client, "/experiment", {"experimentName": ""})
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert names == {p.name for p in hparams.hparams()}
    assert {"model", "num_components", "consistency", "diversity_weight", "seed"} <= names
    tags = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert tags == {"final/" + name for name in hparams.METRICS}

    groups = _hparams_request(client, "/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"], "colParams": [],
        "startIndex": 0, "sliceSize": 10})["sessionGroups"]
    assert len(groups) == 1 and groups[0]["sessions"][0]["name"] == "tensorboard"
    for name, value in groups[0]["hparams"].items():
        expected = getattr(config, name)
        assert value == expected, name  # numbers come back as floats: 3.0 == 3
    written = {m["name"]["tag"][len("final/"):]: m["value"] for m in groups[0]["metricValues"]}
    expected = {k: metrics[k] for k in hparams.METRICS if k in metrics}
    assert {"pcm_acc", "pcm_nmi", "agreement_identity", "diversity_ratio_min"} <= set(expected)
    assert written.keys() == expected.keys()
    for name, value in expected.items():
        assert written[name] == pytest.approx(value, abs=1e-6), name


def test_options_that_config_lacks_are_skipped(monkeypatch):
    monkeypatch.setattr(hparams, "HPARAMS", ("model", "no_such_option", "seed"))
    assert [p.name for p in hparams.hparams()] == ["model", "seed"]


def _check_projector(logdir, run, config):
    """The Projector run `run` of `logdir` against the model's own responsibilities."""
    _, bundle, model = wd.load_trained_model(config.workdir)
    n = min(len(bundle.test_images), projector.MAX_IMAGES)
    held_out, labels = bundle.test_images[:n], bundle.test_labels[:n]
    client = _plugin_client(ProjectorPlugin, logdir)
    assert run in json.loads(client("/runs").data)
    info = json.loads(client("/info", query_string={"run": run}).data)
    (embedding,) = info["embeddings"]
    name = embedding["tensorName"]
    features = np.frombuffer(
        client("/tensor", query_string={"run": run, "name": name}).data, np.float32)
    features = features.reshape(embedding["tensorShape"])
    assert features.shape[0] == n
    # Penultimate: the PCM's last Dense layer turns these features into its Pr(k|x).
    kernel, bias = (v.numpy() for v in model.pcm.dense.weights)
    logits = features @ kernel + bias
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    responsibilities = model.responsibilities(held_out)
    np.testing.assert_allclose(softmax, responsibilities, atol=1e-5)

    rows = client("/metadata", query_string={"run": run, "name": name}).data.decode()
    rows = [r.split("\t") for r in rows.strip("\n").split("\n")]
    assert rows[0] == ["label", "component", "responsibility"] and len(rows) == n + 1
    table = np.array(rows[1:], float)
    np.testing.assert_array_equal(table[:, 0], labels)
    np.testing.assert_array_equal(table[:, 1], responsibilities.argmax(1))
    np.testing.assert_allclose(table[:, 2], responsibilities.max(1), atol=1e-4)

    sprite = np.asarray(Image.open(io.BytesIO(
        client("/sprite_image", query_string={"run": run, "name": name}).data)))
    side, (h, w) = math.ceil(math.sqrt(n)), held_out.shape[1:3]
    assert embedding["sprite"]["singleImageDim"] == [w, h]
    assert sprite.shape[:2] == (side * h, side * w)
    row, col = divmod(n - 1, side)  # the last image's tile
    np.testing.assert_array_equal(sprite[row * h:(row + 1) * h, col * w:(col + 1) * w],
                                  images.to_uint8(held_out[-1])[..., 0])
    config_file = os.path.join(projector.directory(config.workdir), projector.CONFIG_FILE)
    parsed = text_format.Parse(open(config_file).read(), ProjectorConfig())
    assert parsed.embeddings[0].metadata_path == "metadata.tsv"


def test_training_writes_a_projector_view_of_the_held_out_images(trained):
    config, _ = trained
    _check_projector(config.workdir, "tensorboard/projector", config)


def test_evaluate_rewrites_it_and_a_parent_logdir_finds_it(trained, tmp_path):
    config, _ = trained
    stale = os.path.join(projector.directory(config.workdir), "metadata.tsv")
    open(stale, "w").write("stale\n")
    modes.evaluate_workdir(config.workdir, dataclasses.replace(config, mode="evaluate"))
    assert open(stale).readline().startswith("label")
    assert not [d for d in os.listdir(os.path.dirname(projector.directory(config.workdir)))
                if d.startswith(".")]  # no staging directory left behind
    # `tensorboard --logdir=<parent of the workdir>`: the run is <workdir name>/tensorboard/...
    parent, name = os.path.split(config.workdir)
    _check_projector(parent, f"{name}/tensorboard/projector", config)
