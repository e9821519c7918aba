"""Test-only (tests/flowers_loopback.py puts this directory first on PYTHONPATH): Oxford Flowers
102 comes from $GMMGAN_TEST_FLOWERS_URL instead of www.robots.ox.ac.uk. Two places name that
host: the TFDS builder's `_BASE_URL`, patched as its module is imported (importing TFDS here
would slow every start), and the URL that --download=auto probes."""
import importlib.abc
import importlib.util
import os
import sys

from gmmgan_tf import data_check

URL = os.environ["GMMGAN_TEST_FLOWERS_URL"]
BUILDER = "tensorflow_datasets.datasets.oxford_flowers102.oxford_flowers102_dataset_builder"
data_check.DOWNLOAD_URLS["oxford_flowers102"] = URL


class _PatchBuilder(importlib.abc.MetaPathFinder):
    """Finds BUILDER as usual, then sets its `_BASE_URL` once it has run."""

    def find_spec(self, name, path, target=None):
        if name != BUILDER:
            return None
        sys.meta_path.remove(self)  # the usual finders from here on
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module._BASE_URL = URL

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchBuilder())
