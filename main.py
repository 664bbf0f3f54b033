"""Train and evaluate an anomaly detector from a JSON config.

Usage:
    python main.py configs/vae_converter.json
    python main.py configs/vae_converter.json --set trainer.epochs=5 --set model.latent_dim=2
    python main.py configs/vae_converter.json --resume
"""
from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (kept free of heavy imports so --help is instant)."""
    parser = argparse.ArgumentParser(
        description="Train an unsupervised time-series anomaly detector and evaluate it. "
        "Outputs go to <experiments_dir>/<exp_name>/ (config.json, checkpoints/, summaries/, out/, logs/).",
        epilog="Exit codes: 0 success, 2 a problem with the input (config, data, checkpoint, run folder), "
        "1 an internal error. TensorBoard: tensorboard --logdir experiments",
    )
    parser.add_argument("config", help="path to a JSON config, e.g. configs/vae_converter.json")
    parser.add_argument("--resume", action="store_true",
                        help="continue this config's run folder from checkpoints/last.pt "
                        "(same epoch and step numbering)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, validated like the file; repeatable, e.g. "
                        "--set trainer.epochs=5 --set model.hidden_sizes=[64,32]. Values are JSON "
                        "(numbers, true/false, null, lists) or plain strings")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Validate the config, build the agent, train and evaluate; returns the metrics."""
    import agents  # noqa: F401  (fills the registries)
    from utils.registry import AGENTS
    from utils.config import load_config
    from utils.logger import setup_logging
    from utils.run_folder import check_run_dir, create_run_dir

    config = load_config(args.config, args.overrides)
    logger = setup_logging()
    run_dir = check_run_dir(config, args.resume)
    agent = AGENTS.get(config.agent)(config, run_dir, resume=args.resume)
    create_run_dir(config, args.resume)
    setup_logging(run_dir / "logs" / "train.log")
    data = agent.data
    logger.info("Run folder: %s  (device %s)", run_dir, agent.device)
    logger.info("Windows (N, T, F): train %s, val %s, test %s with %d anomalies; features %s",
                data.train.x.shape, data.val.x.shape, data.test.x.shape, int(data.test.y.sum()),
                ", ".join(data.feature_names))
    return agent.run()


def main(argv: list[str] | None = None) -> int:
    """Entry point; a user's mistake prints one message and returns 2."""
    args = parse_args(argv)
    from utils.errors import UserError

    try:
        run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
