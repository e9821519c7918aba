"""gmmgan_tf entry point: flags -> validated Config -> train / evaluate / sample / export.

    python main.py                                  # short training on mnist_5k (offline)
    python main.py --flagfile=flags/mnist_5k.cfg    # an experiment
    python main.py --mode=evaluate --workdir=runs/x
"""
from gmmgan_tf import cli

if __name__ == "__main__":
    cli.run()
