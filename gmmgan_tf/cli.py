"""Command line: one absl flag per `Config` field, then dispatch on --mode.

User errors (bad flags, missing data, unwritable workdir, a workdir in use, a full disk, diverged
training) end the program with one line on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import re
import signal
import sys
import textwrap
import warnings

from absl import app, flags, logging

from gmmgan_tf import lock, run_options
from gmmgan_tf.config import Config
from gmmgan_tf.errors import Stopped, Terminated, TrainingDiverged, UserError, write_failure

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Declares --<field> for every Config field, with its default, help and choices."""
    for field in dataclasses.fields(Config):
        help_text, choices = field.metadata["help"], field.metadata["choices"]
        if choices:
            flags.DEFINE_enum(field.name, field.default, list(choices), help_text)
        elif isinstance(field.default, bool):
            flags.DEFINE_boolean(field.name, field.default, help_text)
        elif isinstance(field.default, int):
            flags.DEFINE_integer(field.name, field.default, help_text)
        elif isinstance(field.default, float):
            flags.DEFINE_float(field.name, field.default, help_text)
        else:
            flags.DEFINE_string(field.name, field.default, help_text)


class _Help(app.HelpFlag):
    """--help/--helpshort: the project's options, grouped as in config.py (absl's own lists
    only the main module's flags, which main.py has none of), exit 0."""

    def parse(self, arg):
        if self._parse(arg):
            print(grouped_help())
            sys.exit(0)


class _Helpshort(_Help):
    NAME, SHORT_NAME = "helpshort", None


def define_help_flags() -> None:
    app.define_help_flags()  # absl's --helpfull, --helpxml, ...; idempotent
    for flag in (_Help(), _Helpshort()):
        for name in filter(None, (flag.name, flag.short_name)):
            delattr(FLAGS, name)
        flags.DEFINE_flag(flag)


def sections() -> list[tuple[str, list[str]]]:
    """(title, field names) per `# --- title ---` comment of Config's source, in order."""
    groups = []
    for line in inspect.getsource(Config).splitlines():
        if title := re.match(r"\s*# --- (.*?) -*$", line):
            groups.append((title[1], []))
        elif name := re.match(r"\s*(\w+): \w+ = _field\(", line):
            groups[-1][1].append(name[1])
    return groups


def grouped_help() -> str:
    lines = [sys.modules["__main__"].__doc__ or "", "Options, grouped as in gmmgan_tf/config.py "
             "(--flagfile=FILE reads them from a file, one a line; --helpfull adds absl's)."]
    for title, names in sections():
        lines.append(f"\n{title}:")
        for name in names:
            flag = FLAGS[name]
            shown = f"[no]{name}" if isinstance(flag, flags.BooleanFlag) else name
            # flag.help: Config's help, after <choices> for an enum
            lines.append(textwrap.fill(f"--{shown}: {flag.help} (default: {flag.default!r})",
                                       width=100, initial_indent="  ", subsequent_indent="      ",
                                       break_long_words=False, break_on_hyphens=False))
    return "\n".join(lines)


def config_from_flags() -> Config:
    config = Config(**{f.name: FLAGS[f.name].value for f in dataclasses.fields(Config)})
    return config.resolved().validate()


def written_directory(config: Config) -> tuple[str, str] | None:
    """(directory, its flag) this command writes into, which it locks: the workdir, or for export
    and assign their own output directory (they only read the run); None for sample and
    interpolate (readers, adding one PNG atomically) and for the non-chief workers of a
    multi-worker run (they write to scratch; the chief holds the lock)."""
    if config.mode in ("sample", "interpolate"):
        return None
    if config.mode == "export":
        return config.export_dir, "--export_dir"
    if config.mode == "assign" and config.assign_dir:
        return config.assign_dir, "--assign_dir"
    if config.mode == "train" and config.strategy == "multi_worker":
        import tensorflow as tf

        from gmmgan_tf.distribute import is_chief_task

        if not is_chief_task(tf.distribute.cluster_resolver.TFConfigClusterResolver()):
            return None
    return config.workdir, "--workdir"


def dispatch(config: Config) -> None:
    target = written_directory(config)
    # Before anything is written: a second writer stops here, in about a second.
    with lock.hold(*target, config.mode) if target else contextlib.nullcontext():
        run_mode(config)


def run_mode(config: Config) -> None:
    from gmmgan_tf.data_check import check_available

    check_available(config)  # seconds, not TFDS's minutes of retries, when data is missing
    if config.mode == "export":
        from gmmgan_tf.provenance import check_export

        check_export(config)  # before the model loads
    if config.mode == "train":
        from gmmgan_tf.evaluation import headline

        if config.model == "mfa":
            from gmmgan_tf.mfa.train import train_mfa as train_and_evaluate
        else:
            from gmmgan_tf.train import train_and_evaluate

        metrics = train_and_evaluate(config)
        print(f"Done. Results in {config.workdir}: samples.png, metrics.json, checkpoints/, "
              f"tensorboard/ (tensorboard --logdir={config.workdir}).")
        print(headline(metrics))
    else:
        from gmmgan_tf import modes

        modes.run(config)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parsing, with its errors (and a --flagfile that is not text) as one line."""
    try:
        return FLAGS(argv)
    except flags.CantOpenFlagFileError as e:  # absl raises it handling open()'s OSError
        cause = e.__context__
        _fail(f"--flagfile: cannot open {cause.filename!r} ({cause.strerror}); see --helpshort")
    except flags.Error as e:
        # A flag written without its value ("--seed" as a --flagfile's last line, cut short)
        # takes the next argument, itself a --flag, as its value.
        swallowed = re.match(r"flag --(\w+)=(--[\w-]+)", str(e))
        if swallowed:
            name, taken = swallowed.groups()
            _fail(f"flag --{name} has no value (it took {taken} as one): write --{name}=VALUE; a "
                  "run's flags.cfg ending in it was cut short: run that run's training command "
                  "again to rewrite it")
        _fail(f"{e}; see --helpshort")
    except UnicodeDecodeError as e:
        _fail(f"a --flagfile is not text ({e.reason} at byte {e.start}); if it is a run's "
              "flags.cfg, run that run's training command again to rewrite it")


def main(argv) -> None:
    logging.set_verbosity(logging.WARNING)  # TF's INFO chatter; progress goes to stdout
    if len(argv) > 1:
        # A damaged --flagfile can hold megabytes that are not --flags: show their start only.
        shown = ", ".join(repr(arg) if len(arg) <= 40 else f"{arg[:10]!r}... ({len(arg)} "
                          "characters)" for arg in argv[1:4])
        _fail(f"unexpected arguments [{shown}{', ...' if len(argv) > 4 else ''}]; options are "
              "--flags (see --helpshort), and every line of a --flagfile must be one")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        config = config_from_flags()
        # Before the workdir is locked (which would create a missing one) or TF imported.
        run_options.check_command(config, {f.name for f in dataclasses.fields(Config)
                                           if FLAGS[f.name].present})
        dispatch(config)
    except TrainingDiverged as e:
        _fail(str(e), code=3)
    except UserError as e:
        _fail(str(e))
    except Stopped as e:
        print(e, flush=True)
    except KeyboardInterrupt as e:
        name, code = ("SIGTERM", 143) if isinstance(e, Terminated) else ("interrupted", 130)
        _fail(f"{name}: stopped, keeping no half-written file; run the same command again "
              "(training resumes from its last checkpoint)", code)
    except Exception as e:  # noqa: BLE001 - only write failures are turned into one line
        message = write_failure(e)
        if message is None:
            raise
        _fail(message)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame) -> None:
    raise Terminated()


def _fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run() -> None:
    """Console-script entry point (`gmmgan --flagfile=...`)."""
    # TensorFlow's C++ log below ERROR; without an NVIDIA driver also its ERROR lines (a failed
    # cuInit, grappler falling back), which there only alarm. With a driver they stay: a failed
    # cuInit is then why the GPU is unused. TF_CPP_MIN_LOG_LEVEL=0 shows everything (README).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL",
                          "2" if os.path.exists("/proc/driver/nvidia") else "3")
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # our datasets are shuffled
    define_flags()
    define_help_flags()
    app.run(main, flags_parser=parse_flags)
