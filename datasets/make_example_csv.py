"""Write the example CSV time series used by ``configs/example_csv.json``.
Two hours of converter telemetry at 1 Hz with a timestamp and a label column (``0`` or the fault name), shipped as
``examples/converter_telemetry.csv``; ``python -m datasets.make_example_csv`` writes it again, the same (see --help)."""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from datasets.converter import AFFECTED_SENSOR, NOISE_STD, SENSORS, sensor_readings
from utils.core.paths import user_path

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "examples" / "converter_telemetry.csv"
START = datetime(2024, 5, 1, 8, 0, 0)
FAULTS = {"voltage_spike": 3, "current_oscillation": 20, "temperature_drift": 30}  # rows per fault
MAGNITUDE = 8.0  # noise stds of the affected sensor
RIPPLE_CYCLES_PER_ROW = 0.1
OSC_CYCLES_PER_ROW = 0.23


def simulate_telemetry(rows: int, n_faults: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous telemetry (rows, 3) float64 and a label per row ("0" or the fault name); ValueError if the
    ``n_faults`` segments do not fit into ``rows``."""
    if n_faults < 1:
        raise ValueError(f"expected at least 1 fault, got {n_faults}")
    kinds = np.resize(list(FAULTS), n_faults)
    longest = max(FAULTS[kind] for kind in kinds)
    if rows // n_faults <= longest:  # each fault starts at random inside its own slot of rows
        raise ValueError(f"{n_faults} faults need at least {n_faults * (longest + 1)} rows (a slot longer than the "
                         f"longest fault, {longest} rows, each), got {rows}")
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    walk = np.cumsum(rng.normal(0.0, 0.05, rows))
    load = 10.0 + 1.5 * np.sin(2 * np.pi * t / 1800.0) + walk - np.linspace(0.0, walk[-1], rows)
    heat = 38.0 + 0.04 * load**2
    temperature = heat.copy()
    for i in range(1, rows):  # first-order lag of the heat sink, time constant 120 s
        temperature[i] = temperature[i - 1] + (heat[i] - temperature[i - 1]) / 120.0
    x = sensor_readings(load, 2 * np.pi * RIPPLE_CYCLES_PER_ROW * t, 0.0, temperature, rng)
    labels = np.full(rows, "0", dtype=object)
    slot = rows // n_faults
    for i, kind in enumerate(kinds):
        length = FAULTS[kind]
        start = i * slot + int(rng.integers(0, slot - length))
        k, sensor = np.arange(length), AFFECTED_SENSOR[kind]
        scale, cells = MAGNITUDE * NOISE_STD[sensor], np.s_[start: start + length, SENSORS.index(sensor)]
        if kind == "voltage_spike":
            x[cells] += scale * np.sin(np.pi * (k + 1) / (length + 1))
        elif kind == "current_oscillation":
            x[cells] += scale * np.sin(2 * np.pi * OSC_CYCLES_PER_ROW * k + rng.uniform(0, 2 * np.pi))
        else:
            x[cells] += scale * (k + 1) / length
        labels[start: start + length] = kind
    return x, labels


def write_example_csv(path: str | Path = DEFAULT_OUTPUT, rows: int = 7200, n_faults: int = 24, seed: int = 7) -> Path:
    """Write the example file; returns its path."""
    path = Path(path)
    x, labels = simulate_telemetry(rows, n_faults, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("timestamp,voltage,current,temperature,label\n")
        handle.writelines(f"{(START + timedelta(seconds=i)).isoformat()},{x[i, 0]:.3f},{x[i, 1]:.3f},{x[i, 2]:.2f},"
                          f"{labels[i]}\n" for i in range(rows))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=user_path, default=str(DEFAULT_OUTPUT),
                        help="where to write (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=7200, help="rows, one per second (default: %(default)s)")
    parser.add_argument("--faults", type=int, default=24, help="fault segments (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        path = write_example_csv(args.output, args.rows, args.faults, args.seed)
    except ValueError as err:
        parser.error(f"--rows {args.rows} --faults {args.faults}: {err}")
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
