# gmmgan_tf: `make install && make run`, then `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install run test test-slow bench data clean

# Where TFDS data sets live: TFDS's own default, as with --data_dir=''.
DATA_DIR ?= $(or $(TFDS_DATA_DIR),$(HOME)/tensorflow_datasets)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(PY) main.py --flagfile=flags/quick.cfg

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) -m benchmarks.run_all

# Fashion-MNIST offline: Debian's dataset-fashion-mnist (IDX files) -> TFDS fashion_mnist in DATA_DIR.
data: install
	test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist; }
	$(PY) -m gmmgan_tf.prepare_data fashion_mnist --data_dir=$(DATA_DIR)

clean:
	rm -rf runs/quick runs/smoke
