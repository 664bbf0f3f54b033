"""The command line: train and evaluate an anomaly detector from a JSON config, or score or export its run
(``python main.py CONFIG [--set SECTION.KEY=VALUE] [--resume] [--mode score|export ...]``; ``--help``; README.md)."""
from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (kept free of heavy imports so --help is instant)."""
    parser = argparse.ArgumentParser(
        description="Train an unsupervised time-series anomaly detector and evaluate it. Outputs go to "
        "<experiments_dir>/<exp_name>/ (config.json, checkpoints/, summaries/, out/, logs/).",
        epilog="Exit codes: 0 success, 2 a problem with the input (config, data, checkpoint, run folder), 1 an "
        "internal error, 130/143 stopped by SIGINT (Ctrl-C)/SIGTERM after saving checkpoints/last.pt (continue with "
        "--resume; live scoring: after writing all it scored). TensorBoard: tensorboard --logdir experiments")
    add = parser.add_argument
    path = os.path.expanduser  # the type of path options: a leading ~ is the home folder (--output=~/x.csv: no shell
    # expands it there)
    add("config", type=path, help="path to a JSON config, e.g. configs/vae_converter.json")
    add("--resume", action="store_true", help="continue this config's run folder from checkpoints/last.pt (same "
        "epoch and step numbering)")
    add("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a "
        "config value, validated like the file; repeatable, e.g. --set trainer.epochs=5 --set "
        "model.hidden_sizes=[64,32]. Values are JSON (numbers, true/false, null, lists) or plain strings")
    add("--mode", choices=("train", "score", "export"), default="train", help="train (default); score: score "
        "--input with the run's checkpoints/best.pt and write --output (CSV, one row per window) and its incidents "
        "(runs of alarmed time steps) beside it; export: write the scoring model to --output in --format")
    add("--input", help="score: the data to score, .csv (header with the feature names) or .npy ((rows, F) or (N, "
        "T, F)); '-': CSV rows from standard input, scored live as they arrive (header first; Ctrl-C ends it with "
        "everything written so far intact)", type=path)
    add("--output", help="score: the scores CSV to write (a file: written whole once scored; from --input -, it "
        "grows line by line); '-': standard output, line by line, incidents then go to standard error unless "
        "--incidents names a file; export: the model file to write", type=path)
    add("--incidents", metavar="FILE", help="score: the incidents CSV (default: beside --output, scores.csv -> "
        "scores.incidents.csv)", type=path)
    add("--merge-gap", type=int, metavar="ROWS", help="score: alarmed time steps at most ROWS quiet rows apart are "
        "one incident (default: the run's evaluation.incident_merge_gap, or the window length)")
    add("--overwrite", action="store_true",
        help="score/export: replace an existing --output file (never the input or a run folder's file)")
    add("--stride", type=int, help="score: rows between window starts (default: the trained window length, i.e. "
        "consecutive non-overlapping windows; with --per-step 1)")
    add("--per-step", action="store_true", help="score: one output row per time step (row, [time], score_*, "
        "alarm_*, pvalue_*, top_feature), the run's evaluation.point_aggregation (default max) of the windows "
        "covering it; windows start every row unless --stride is given (CSV or (rows, F) .npy input, or a pipe)")
    add("--baselines", action="store_true", help="score: add score_*/alarm_*/pvalue_* columns of the run's baselines "
        "(kNN, PCA, IsolationForest) fitted at the end of its training")
    add("--reference-rows", type=int, metavar="N", help="score, runs trained with data.normalize=per_recording: "
        "the input is one recording, standardised (as the run's were by their training part) by the mean and std "
        "of its first N rows, taken as normal operation (default: the run's training part, data.train_end or the "
        "shortest one of its recordings); an input of fewer rows is refused")
    add("--nproc-per-node", type=int, metavar="N", help="train with N processes on this machine "
        "(DistributedDataParallel), started as torchrun --nproc_per_node=N starts them; a problem with the input "
        "still exits 2 with its one line (torchrun itself turns any failed process into exit 1 and a traceback of "
        "its own)")
    add("--format", dest="export_format", choices=("onnx", "torchscript"),
        help="export: onnx (needs the optional onnx package) or torchscript")
    args = parser.parse_args(argv)
    needed = {"score": ("input", "output"), "export": ("output", "export_format"), "train": ()}[args.mode]
    if missing := [_option(name) for name in needed if getattr(args, name) is None]:
        parser.error(f"--mode {args.mode} needs {' and '.join(missing)}")
    if args.mode == "export" and args.output == "-":
        parser.error("--output -: export writes a model file and its FILE.json; give a file name (e.g. model.pt)")
    if args.nproc_per_node is not None and (args.mode != "train" or not 1 <= args.nproc_per_node <= 1024):
        parser.error("--nproc-per-node N: N from 1 to 1024 processes, with --mode train only")
    for name, modes in MODES_OF_OPTIONS.items():  # never silently unused (--input with training: not its data)
        value = getattr(args, name)  # None or False: not given (0 == False, but --stride 0 is given)
        if args.mode not in modes and value is not None and value is not False:
            parser.error(f"{_option(name)} applies to {' and '.join('--mode ' + mode for mode in modes)} only, not "
                         f"--mode {args.mode}")
    return args


#: The modes that use an option of the command line, by its argparse dest (--nproc-per-node: checked with its range).
MODES_OF_OPTIONS = {"resume": ("train",), "input": ("score",), "output": ("score", "export"),
                    "incidents": ("score",), "merge_gap": ("score",), "overwrite": ("score", "export"),
                    "stride": ("score",), "per_step": ("score",), "baselines": ("score",),
                    "reference_rows": ("score",), "export_format": ("export",)}


def _option(dest: str) -> str:
    """How the command line spells the option of argparse dest ``dest`` (``merge_gap``: ``--merge-gap``)."""
    return "--format" if dest == "export_format" else "--" + dest.replace("_", "-")


@contextlib.contextmanager
def collection_paused(freeze: bool) -> Iterator[None]:
    """Pause the garbage collector while a run starts (torch's imports make objects by the hundred thousand, none
    garbage: docs/benchmarks.md); ``freeze`` (the command line's process ends with the run): ``gc.freeze`` them too."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def run(args: argparse.Namespace) -> dict:
    """Validate the config, build the agent, train and evaluate; returns the metrics."""
    if args.mode != "train":
        return score_or_export(args)
    with collection_paused(args.command_line):
        import agents  # noqa: F401  (fills the registries)
        from agents.parts import select_device
        from datasets.csv_reading import header_text
        from utils.core.config import load_config
        from utils.core.registry import AGENTS
        from utils.runs.run_folder import RunLock, create_run_dir, refuse_a_moved_run, remove_unsaved_run, run_dir_of
        from utils.runtime.distributed import barrier, cuda_device_for, init_from_env, shutdown
        from utils.runtime.logger import log_warnings, setup_logging

    config = load_config(args.config, args.overrides)
    device = select_device(config.device)
    dist_info = init_from_env(device)  # under torchrun: join the process group
    logger = setup_logging(hold=dist_info.is_main)  # logs/train.log begins with its lines
    run_dir = args.run_dir = run_dir_of(config)
    created = not run_dir.exists()  # a folder this process makes is removed again if it ends without a checkpoint
    lock, shown = RunLock(run_dir), log_warnings()  # Python's warnings go to logs/train.log too
    try:
        if args.resume:
            refuse_a_moved_run(args.config, run_dir)
        lock = _check_and_lock(config, args.resume, dist_info)
        if args.resume:
            from agents.base import finished_run
            if (finished := finished_run(run_dir, config)) is not None:  # nothing to train: every file stays as it is
                logger.info("%s", finished)
                return {"finished": finished}
        barrier(dist_info)  # every rank has checked before rank 0 creates the folder
        with collection_paused(args.command_line):  # the first optimizer imports torch._dynamo
            agent = AGENTS.get(config.agent)(config, run_dir, resume=args.resume,
                                             device=cuda_device_for(dist_info, device), dist=dist_info)
        if dist_info.is_main:
            create_run_dir(config, args.resume, lock=lock)
            setup_logging(agent.folder.train_log)
        barrier(dist_info)
        data = agent.data
        logger.info("Run folder: %s  (device %s, %d process%s)", run_dir, agent.device, dist_info.world_size,
                    "es" if dist_info.enabled else "")
        logger.info("Windows (N, T, F): train %s, val %s, test %s with %d anomalies; features %s",
                    data.train.x.shape, data.val.x.shape, data.test.x.shape, int(data.test.y.sum()),
                    header_text(list(data.feature_names)))
        result = agent.run()
        barrier(dist_info)  # leave the process group together: rank 0 evaluates while the others wait
        return result
    except BaseException:
        if dist_info.is_main and created and lock.held:  # never another process's folder
            args.removed = remove_unsaved_run(run_dir)
        raise
    finally:
        warnings.showwarning = shown
        lock.release()
        shutdown(dist_info)


def _check_and_lock(config: object, resume: bool, dist_info: object) -> object:
    """Check the run folder and take its lock (rank 0 takes it for every rank); under torchrun every rank
    raises the first rank's error, so each says the same line and exits 2."""
    from utils.runs.run_folder import RunLock, check_run_dir, lock_run_dir
    from utils.runtime.distributed import shared_error
    error, lock = None, None
    try:
        run_dir = check_run_dir(config, resume, locked=not dist_info.is_main)  # ranks other than 0 do not probe
        lock = lock_run_dir(run_dir) if dist_info.is_main and run_dir.is_dir() else RunLock(run_dir)
    except Exception as err:  # noqa: BLE001  (shared, then raised)
        error = err
    error = shared_error(dist_info, error)
    if error is not None:
        if lock is not None:
            lock.release()
        raise error
    return lock


def score_or_export(args: argparse.Namespace) -> dict:
    """--mode score|export: the trained detector of this config's finished run (its checkpoints/best.pt)."""
    with collection_paused(args.command_line):
        from agents.detector.detector import Detector, export_detector
        from agents.score_files import format_summary, score_file
        from utils.core.config import load_config
        from utils.core.errors import RunFolderError
        from utils.runs.run_folder import refuse_a_moved_run, run_dir_of, training_pid
        from utils.runtime.logger import setup_logging

    config = load_config(args.config, args.overrides)
    setup_logging()
    run_dir = run_dir_of(config)
    refuse_a_moved_run(args.config, run_dir)
    if (pid := training_pid(run_dir)) is not None:
        raise RunFolderError(f"{run_dir} is being trained now (PID {pid}): its checkpoints/best.pt changes until "
                             f"that run ends; --mode {args.mode} once it has finished")
    detector = Detector.load(run_dir, device=config.device)
    refuse_shape_overrides(args.overrides, config, detector.config, run_dir, args.mode)
    # deployment choices: the config given now decides them (the run's own config.json keeps the trained values)
    for key in DEPLOYMENT_KEYS:
        detector.config.setdefault("evaluation", {})[key] = config.evaluation[key]
    if args.mode == "score":
        options = dict(stride=args.stride, merge_gap=args.merge_gap, overwrite=args.overwrite, config_path=args.config,
                       incidents_path=args.incidents, per_step=args.per_step, baselines=args.baselines,
                       reference_rows=args.reference_rows)
        if "-" in (args.input, args.output):  # live: rows scored as they arrive, lines written as they are
            from agents.score_files import live_score
            if args.output == "-":  # standard output is the scores': log messages go to standard error
                _log_to_stderr()
            return live_score(detector, args.input, args.output, **options)
        summary = score_file(detector, args.input, args.output, **options)
        print(format_summary(summary))
        return summary
    meta = export_detector(detector, args.export_format, args.output, overwrite=args.overwrite,
                           config_path=args.config)
    print(f"Exported {meta['format']} model to {args.output} (input {meta['input']['shape']}, outputs "
          f"{', '.join(meta['outputs'])}; threshold {meta['threshold']:.6g} on {meta['score_name']}); "
          f"metadata in {args.output}.json")
    return meta


#: Sections whose keys decide the windows a run scores and the model that scores them: fixed at training.
SHAPE_SECTIONS = ("data", "model", "loss")
#: Evaluation keys that decide the scores and their calibrated thresholds: fixed at training too.
CALIBRATED_KEYS = tuple(f"evaluation.{k}" for k in ("false_alarm_rate", "threshold_percentile", "scaler", "scores",
                                                    "baselines", "batch_size"))
#: Evaluation keys --mode score takes from the config given now: how time steps alarm and incidents form.
DEPLOYMENT_KEYS = ("threshold_adapt_rate", "point_aggregation", "incident_merge_gap")


def refuse_shape_overrides(overrides: list[str], config: dict, trained: dict, run_dir: object, mode: str) -> None:
    """ConfigError for a score/export ``--set`` that changes a key the trained run fixed (:data:`SHAPE_SECTIONS`,
    :data:`CALIBRATED_KEYS`): ``best.pt``'s detector scores with its own windows and thresholds (it would be unused)."""
    import json

    from utils.core.errors import ConfigError
    for key in (item.partition("=")[0].strip() for item in overrides):
        fixed = key.split(".")[0] in SHAPE_SECTIONS or key.startswith(CALIBRATED_KEYS)
        # a whole section (--set evaluation={...}) holds calibrated keys too
        for dotted in [key] if fixed else [name for name in CALIBRATED_KEYS if name.startswith(key + ".")]:
            now, then = _dotted(config, dotted), _dotted(trained, dotted)
            if json.dumps(now) == json.dumps(then):
                continue
            given = f"{key}={json.dumps(now)}" if dotted == key else f"{key} ({dotted}={json.dumps(now)})"
            raise ConfigError(f"--set {given}: the run {run_dir} was trained with {dotted}="
                              f"{json.dumps(then)}, and --mode {mode} uses that trained detector "
                              "(checkpoints/best.pt) with the windows, model, scores and thresholds it was trained "
                              "and calibrated with; drop this --set, or train a new run with it (add --set "
                              "exp_name=NEW_NAME to the training command)")


def _dotted(tree: dict, key: str) -> object:
    """The value at a dotted key, or None when a part is missing."""
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _log_to_stderr() -> None:
    """The project logger's console output to standard error instead of standard output."""
    import logging

    from utils.runtime.logger import LOGGER_NAME
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if not isinstance(handler, logging.FileHandler):
            logger.removeHandler(handler)
            console = logging.StreamHandler(sys.stderr)
            console.setLevel(handler.level)
            console.setFormatter(handler.formatter)
            logger.addHandler(console)


def main(argv: list[str] | None = None, command_line: bool = False) -> int:
    """Entry point; a user's mistake prints one message and returns 2. ``command_line``: called by :func:`cli`,
    whose process ends with the run (see :func:`collection_paused`)."""
    args = parse_args(argv)
    args.command_line = command_line
    from utils.core.errors import UserError, WriteError
    from utils.runtime.signals import (STOPPED_AT_ONCE, TerminateAsInterrupt, ignore_stop_signals, other_rank,
                                       restore_handlers)
    if other_rank():  # Python's warnings too: rank 0 prints them once
        warnings.simplefilter("ignore")
    try:
        if args.nproc_per_node is not None and "LOCAL_RANK" not in os.environ:
            return launch_processes(args, argv)
        with TerminateAsInterrupt():
            result = run(args)
        if args.mode == "score" and isinstance(result, dict):  # live scoring stopped by a signal: 130/143
            return int(result.get("exit_code", 0))
    except (WriteError, OSError) as err:
        if isinstance(err, OSError) and err.errno not in WRITE_ERRNOS:
            raise
        what = err if isinstance(err, WriteError) else f"cannot write {err.filename or 'a file'} ({err.strerror})"
        tell(f"error: {what}; free some space or fix the permissions, then {after_write_error(args, argv)}", args)
        return 2
    except UserError as err:
        tell(f"error: {err}", args)
        return 2
    except KeyboardInterrupt as err:  # utils.runtime.signals.Interrupted, or Ctrl-C outside the training loop
        previous = ignore_stop_signals()  # a further Ctrl-C would only break this report and the exit
        if getattr(args, "mode", "train") == "train":
            step = next_step(args, argv)
            message = f"{str(err) or 'SIGINT received: ' + STOPPED_AT_ONCE}\n{step[0].upper()}{step[1:]}"
        else:  # score and export have nothing to resume
            message = "stopped before it finished; run the same command again"
        tell(f"\n{message}", args)
        if argv is not None:  # called in-process: the caller gets its handlers back
            restore_handlers(previous)
        return getattr(err, "exit_code", 130)
    return 0


def tell(message: str, args: argparse.Namespace) -> None:
    """``message`` on standard error, from rank 0 alone under torchrun (each rank meets the same error or stop), and
    at the end of a training run's logs/train.log; every rank also leaves it for the launcher, which prints what rank
    0 did not (:func:`unseen_errors`)."""
    import logging

    from utils.core.errors import WriteError
    from utils.runtime.logger import log_to_file
    from utils.runtime.signals import other_rank, torchrun_place
    if not other_rank():
        print(message, file=sys.stderr)
    if getattr(args, "run_dir", None) is not None:  # set once this call's run logs (not a previous call's run)
        with contextlib.suppress(WriteError):  # the log file that failed: the console has said it
            log_to_file(message, logging.ERROR if message.startswith("error:") else logging.WARNING)
    if folder := os.environ.get(MESSAGES_ENV):
        with open(os.path.join(folder, str(torchrun_place()[0])), "w", encoding="utf-8") as handle:
            handle.write(message)


#: The folder where each process under --nproc-per-node leaves its error or stop line, named by its rank.
MESSAGES_ENV = "TS_ANOMALY_RANK_MESSAGES"


def launch_processes(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Start ``--nproc-per-node`` processes as torchrun does, the config checked first; 2, 130/143 or 1 if one fails."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    import agents  # noqa: F401  (fills the registries the config is checked against)
    from utils.core.config import load_config
    load_config(args.config, args.overrides)
    child_argv = without_option(list(sys.argv[1:] if argv is None else argv), "--nproc-per-node")
    launch = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=args.nproc_per_node, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the processes say what failed
    messages = os.environ[MESSAGES_ENV] = tempfile.mkdtemp(prefix="ts-anomaly-ranks-")
    try:
        elastic_launch(launch, sys.executable)(os.path.abspath(__file__), *child_argv)
    except SignalException as err:  # Ctrl-C or SIGTERM here: the launcher passed it on and waited for the processes
        return 128 + int(err.sigval)
    except ChildFailedError as err:
        codes = sorted({failure.exitcode for failure in err.failures.values()})
        for line in unseen_errors(Path(messages)):
            print(line, file=sys.stderr)
        for code in (2, 130, 143):
            if code in codes:
                return code
        print(f"error: training process(es) failed with exit code(s) {codes}; their output is above",
              file=sys.stderr)
        return 1
    finally:
        del os.environ[MESSAGES_ENV]
        shutil.rmtree(messages, ignore_errors=True)
    return 0


def unseen_errors(folder: Path) -> list[str]:
    """The error lines that processes other than rank 0 left in ``folder`` (:func:`tell`) and rank 0 did not print
    (it may have met another, or been stopped by the launcher first), each as ``rank N: error: ...``."""
    left = {int(path.name): path.read_text(encoding="utf-8") for path in folder.iterdir() if path.name.isdigit()}
    printed = left.pop(0, None)
    unseen: dict[str, int] = {}
    for rank, text in sorted(left.items()):
        if text.startswith("error:") and text != printed:
            unseen.setdefault(text, rank)
    return [f"rank {rank}: {text}" for text, rank in unseen.items()]


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` and ``option=VALUE``."""
    out, items = [], iter(argv)
    for item in items:
        if item == option:
            next(items, None)  # its value
        elif not item.startswith(option + "="):
            out.append(item)
    return out


#: errno values of a file that cannot be written: no space or quota, read-only, permissions, a path through a file.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
                errno.EFBIG}


def next_step(args: argparse.Namespace, argv: list[str] | None, inline: bool = False) -> str:
    """What continues a stopped or failed training run: the same command plus --resume when it has a
    checkpoints/last.pt, else without it (this process removed its folder). ``inline``: worded to follow "then"."""
    import shlex

    from utils.runs.run_folder import RunFolder
    prog, given = ("main.py", argv) if argv is not None else (sys.argv[0], sys.argv[1:])
    resume = shlex.join(["python", prog, *[arg for arg in given if arg != "--resume"], "--resume"])
    run_dir = getattr(args, "run_dir", None)
    if run_dir is not None and RunFolder(run_dir).last.is_file():
        return f"resume with: {resume}"
    removed = f"; its folder {run_dir} was removed" if getattr(args, "removed", False) else ""
    why = f"nothing was saved yet, so there is nothing to resume{removed}"
    start = resume.removesuffix(" --resume")  # the same command without --resume
    return f"start again ({why}) with: {start}" if inline else f"{why}. Start again with: {start}"


def after_write_error(args: argparse.Namespace, argv: list[str] | None) -> str:
    """What to run once the disk has room again."""
    if args.mode == "train":
        return next_step(args, argv, inline=True)
    if args.output not in (None, "-") and not args.overwrite and os.path.isfile(args.output):  # live scoring's lines
        return (f"run the same command again with --overwrite ({args.output} holds the whole lines written before the "
                "failure, and the command without --overwrite refuses to replace it)")
    return "run the same command again"


def cli() -> int:
    """:func:`main`, its objects frozen so the exit skips Python's final full collection (about 1 s with torch)."""
    code = main(command_line=True)
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(cli())
