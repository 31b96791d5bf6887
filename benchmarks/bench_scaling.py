"""How fit time and peak memory grow with rows and features, for three kinds of input.

Inputs, all of synthetic float32 rows in [0, 1) written once to ``.npy`` files:

* ``memory``: the file read into a numpy array, then ``fit``.
* ``memmap``: the file opened with ``np.load(mmap_mode="r")``, then ``fit``: sklae
  reads one mini-batch at a time.
* ``dask``: ``dask_ml.wrappers.Incremental`` over a dask array whose chunks of
  100000 rows are each loaded from the file by a delayed task (one
  ``partial_fit`` per chunk, dask's synchronous scheduler). The array is built
  from per-chunk loads, as from a stack of files, because
  ``da.from_array(memmap)`` held every chunk in memory at once when measured.

Each configuration runs in a fresh Python process (``--worker``), which first
trains a 1000-row warm-up fit (imports, torch's allocator), records that
resident memory as the model's own footprint, then opens the input and trains one
epoch of a 784-64-16-64-784 style network (``hidden_layer_sizes=(64,)``,
``code_size=16``, batch 512). A thread samples ``/proc/self/status`` every 10 ms
for the peak of anonymous resident memory (``RssAnon``: what the process
allocated), of file-backed resident memory (``RssFile``: pages of the
memmapped file, which the kernel can drop at will) and of their sum (``ru_maxrss``
is not used: Linux carries it over from the parent process across ``exec``).
What a memmap saves shows in ``RssAnon``: its peak above the footprint as the
rows grow. The files are freshly written, so the kernel's page cache holds them:
times are for a warm cache, not disk reads.

Usage::

    python benchmarks/bench_scaling.py                # full sweep (up to 1M x 784, ~3 GB)
    python benchmarks/bench_scaling.py --quick        # 10k and 100k rows only

Results go to ``benchmarks/results/scaling[_quick][_cuda].{md,json,png}``
(``--output-dir``); the data files to ``--work-dir``.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from _common import (
    Timer,
    add_common_arguments,
    format_provenance_markdown,
    parse_args,
    png_metadata,
    provenance,
)

DASK_CHUNK_ROWS = 100_000
MODEL = {"code_size": 16, "hidden_layer_sizes": (64,), "batch_size": 512, "random_state": 0}


def data_file(work_dir, n_rows, n_features):
    """Path of the synthetic rows (written on first use, in chunks)."""
    path = Path(work_dir) / f"rows_{n_rows}x{n_features}.npy"
    if not path.exists():
        partial = path.with_suffix(".partial.npy")
        rows = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.float32, shape=(n_rows, n_features)
        )
        rng = np.random.default_rng(0)
        step = max(1, 2**26 // (4 * n_features))
        for start in range(0, n_rows, step):
            stop = min(n_rows, start + step)
            rows[start:stop] = rng.random((stop - start, n_features), dtype=np.float32)
        rows.flush()
        del rows
        partial.rename(path)
    return path


class PeakMemory:
    """Peaks of RssAnon and RssFile (MB), sampled in a thread."""

    def __init__(self, interval=0.01):
        self.interval = interval
        self.anon = self.file = self.total = 0.0
        self._stop = threading.Event()

    @staticmethod
    def read():
        values = {}
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("RssAnon:", "RssFile:")):
                    key, amount, _ = line.split()
                    values[key[:-1]] = int(amount) / 1024
        return values["RssAnon"], values["RssFile"]

    def _sample(self):
        while not self._stop.is_set():
            self._update(*self.read())
            time.sleep(self.interval)

    def _update(self, anon, file):
        self.anon, self.file = max(self.anon, anon), max(self.file, file)
        self.total = max(self.total, anon + file)

    def __enter__(self):
        self._update(*self.read())
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._update(*self.read())


def load_rows(path, start, stop):
    """Rows ``start:stop`` of the ``.npy`` file, read into memory."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def worker(args):
    """One configuration, in this (fresh) process; prints a JSON line."""
    warnings.simplefilter("ignore")
    from sklae import AutoencoderTransformer

    if args.input == "dask":
        # Imported before the footprint is read: libraries are not data.
        import dask
        import dask.array as da
        from dask_ml.wrappers import Incremental

    path = data_file(args.work_dir, args.rows, args.features)
    warm_up = np.random.default_rng(1).random((1000, args.features), dtype=np.float32)
    AutoencoderTransformer(**MODEL, max_iter=1, device=args.device).fit(warm_up)
    footprint_anon, _ = PeakMemory.read()

    model = AutoencoderTransformer(**MODEL, max_iter=1, device=args.device)
    timer = Timer(args.device)
    with PeakMemory() as peak:
        if args.input == "memory":
            X = np.load(path)
            with timer:
                model.fit(X)
        elif args.input == "memmap":
            X = np.load(path, mmap_mode="r")
            with timer:
                model.fit(X)
        else:
            chunked = da.concatenate(
                [
                    da.from_delayed(
                        dask.delayed(load_rows)(
                            path, first, min(first + DASK_CHUNK_ROWS, args.rows)
                        ),
                        shape=(min(first + DASK_CHUNK_ROWS, args.rows) - first, args.features),
                        dtype=np.float32,
                    )
                    for first in range(0, args.rows, DASK_CHUNK_ROWS)
                ]
            )
            with timer, dask.config.set(scheduler="synchronous"):
                Incremental(model, shuffle_blocks=False).fit(chunked)
    print(
        json.dumps(
            {
                "input": args.input,
                "rows": args.rows,
                "features": args.features,
                "seconds_per_epoch": timer.seconds,
                "footprint_anon_mb": footprint_anon,
                "peak_anon_mb": peak.anon,
                "peak_file_mb": peak.file,
                "peak_rss_mb": peak.total,
                "data_mb": args.rows * args.features * 4 / 2**20,
            }
        )
    )


def run_configuration(script_args, rows, features, input_kind):
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--rows",
        str(rows),
        "--features",
        str(features),
        "--input",
        input_kind,
        "--work-dir",
        script_args.work_dir,
        "--device",
        script_args.device,
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": str(script_args.threads)}
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, env=environment
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def write_results(results, script_args, stamp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir = script_args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = "scaling_quick" if script_args.quick else "scaling"
    if script_args.device != "cpu":
        stem += f"_{script_args.device}"
    lines = [
        "# Scaling of fit time and memory with rows and features",
        "",
        format_provenance_markdown(stamp),
        f"{script_args.threads} torch thread(s) per run (`OMP_NUM_THREADS`). Synthetic float32 "
        "rows in [0, 1); one epoch of `AutoencoderTransformer(code_size=16, "
        "hidden_layer_sizes=(64,), batch_size=512)`; each row of the table is a fresh "
        "process. Memory in MB: `footprint` = anonymous resident memory after a warm-up "
        "fit (the model and libraries), `peak anon` = the peak of anonymous resident "
        "memory during the fit, `extra` = peak anon - footprint, `peak file` = the peak "
        "of file-backed resident pages (the memmapped file, reclaimable by the kernel), "
        "`peak RSS` = the peak of their sum. Files in the page cache (warm).",
        "",
        "| input | rows | features | data MB | s / epoch | us / row | footprint | "
        "peak anon | extra | peak file | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        extra = r["peak_anon_mb"] - r["footprint_anon_mb"]
        lines.append(
            f"| {r['input']} | {r['rows']} | {r['features']} | {r['data_mb']:.0f} | "
            f"{r['seconds_per_epoch']:.2f} | {1e6 * r['seconds_per_epoch'] / r['rows']:.1f} | "
            f"{r['footprint_anon_mb']:.0f} | {r['peak_anon_mb']:.0f} | {extra:.0f} | "
            f"{r['peak_file_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
        )
    by_rows = [r for r in results if r["features"] == script_args.features]
    memmaps = [r for r in by_rows if r["input"] == "memmap"]
    if memmaps:
        largest = max(memmaps, key=lambda r: r["rows"])
        extra = largest["peak_anon_mb"] - largest["footprint_anon_mb"]
        lines += [
            "",
            f"Memmap at the largest size, {largest['rows']} x {largest['features']}: peak anon "
            f"{extra:.0f} MB above the footprint, for {largest['data_mb']:.0f} MB of data.",
            "",
        ]
    for kind in ("memory", "memmap", "dask"):
        runs = sorted((r for r in by_rows if r["input"] == kind), key=lambda r: r["rows"])
        if len(runs) >= 2:
            ratio = (runs[-1]["seconds_per_epoch"] / runs[0]["seconds_per_epoch"]) / (
                runs[-1]["rows"] / runs[0]["rows"]
            )
            growth = runs[-1]["seconds_per_epoch"] / runs[0]["seconds_per_epoch"]
            lines.append(
                f"- {kind}: time grew {growth:.1f}x for {runs[-1]['rows'] // runs[0]['rows']}x "
                f"the rows (time per row, largest / smallest: {ratio:.2f}; 1.0 = linear)."
            )
    table = output_dir / f"{stem}.md"
    table.write_text("\n".join(lines) + "\n")
    (output_dir / f"{stem}.json").write_text(
        json.dumps({"provenance": stamp, "results": results}, indent=1) + "\n"
    )

    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, marker in (("memory", "o"), ("memmap", "s"), ("dask", "^")):
        runs = sorted((r for r in by_rows if r["input"] == kind), key=lambda r: r["rows"])
        if not runs:
            continue
        rows = [r["rows"] for r in runs]
        time_axis.plot(rows, [r["seconds_per_epoch"] for r in runs], marker=marker, label=kind)
        memory_axis.plot(
            rows,
            [r["peak_anon_mb"] - r["footprint_anon_mb"] for r in runs],
            marker=marker,
            label=kind,
        )
    for axis in (time_axis, memory_axis):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(f"rows ({script_args.features} features)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    time_axis.set_ylabel("seconds per epoch")
    memory_axis.set_ylabel("peak anonymous RSS above footprint (MB)")
    figure.suptitle("sklae: fit time and memory vs rows")
    figure.tight_layout()
    figure.savefig(output_dir / f"{stem}.png", dpi=110, metadata=png_metadata(stamp))
    print(table.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--input", choices=("memory", "memmap", "dask"), help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", default="/tmp/sklae_scaling", help="where data files go")
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    parser.add_argument(
        "--inputs",
        nargs="+",
        default=["memory", "memmap", "dask"],
        choices=("memory", "memmap", "dask"),
    )
    add_common_arguments(
        parser,
        data_dir=False,
        device=True,
        threads=1,
        threads_help="torch threads per run (OMP_NUM_THREADS, default 1)",
    )
    args = parse_args(parser, argv)
    if args.worker:
        worker(args)
        return
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    row_counts = (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)
    feature_counts = (50, 200, 784, 2000)
    configurations = [(rows, args.features) for rows in row_counts]
    configurations += [(100_000, f) for f in feature_counts if f != args.features]
    stamp = provenance(
        extra_packages=("dask", "dask-ml") if "dask" in args.inputs else (),
        device=args.device,
        threads=args.threads,
        argv=argv,
        script=__file__,
    )
    results = []
    for rows, features in configurations:
        data_file(args.work_dir, rows, features)
        for kind in args.inputs:
            result = run_configuration(args, rows, features, kind)
            print(json.dumps(result), flush=True)
            results.append(result)
    write_results(results, args, stamp)


if __name__ == "__main__":
    main()
