"""One tower session on every core against one single-threaded session per core, beside a producer.

On a 2-core CPU fgm-extract runs the tower's intra-op threads beside the producer thread (decode,
flow, preprocessing). Each op of a two-thread session waits for its slower thread, so whenever the
producer takes a core the whole tower stalls. The alternative measured here: one single-threaded
session per core, each on its own batch, so the producer slows only one of them. Both arrangements
encode the same batches, alternating round by round, with and without a one-thread load that
stands in for the producer (OpenCV resizing and blurring 640 x 480 frames). Random ViT-B-32
weights; `--runtime onnx-int8` (default) or `onnx` runs ONNX Runtime sessions, `--runtime torch`
runs the torch model from as many threads, each with its own intra-op thread count.

    python benchmarks/tower_threads_bench.py [--runtime onnx-int8|onnx|torch] [--rounds 4] [--batches 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np


def producer_load(stop: threading.Event) -> None:
    """About one core of OpenCV work with short sleeps, like the producer feeding the tower."""
    import cv2

    frame = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    while not stop.is_set():
        cv2.resize(frame, (298, 224), interpolation=cv2.INTER_AREA)
        cv2.GaussianBlur(frame, (5, 5), 0)
        time.sleep(0.002)


def set_threads(n: int) -> None:
    """torch's intra-op threads for the calling thread (its OpenMP setting is per thread); ONNX sessions ignore it."""
    import torch

    torch.set_num_threads(n)


def torch_sessions(clip, x: np.ndarray, cores: int) -> list:
    """[(encode x, threads)]: the torch model with every core, then `cores` single-thread users of it."""
    import torch

    pixels = torch.from_numpy(x)
    run = lambda: clip.encode_batch(pixels)  # noqa: E731 - a session is just a call here
    run()  # warm-up
    return [(run, cores)] + [(run, 1)] * cores


def onnx_sessions(clip, x: np.ndarray, cores: int, runtime: str, tmp: str) -> list:
    """[(run x, threads)]: one ONNX Runtime session with every core, then `cores` single-thread sessions."""
    import onnxruntime as ort

    from extract.clip_runtime import runtime_spec
    from extract.onnx_export import onnx_tower_path

    path, _ = onnx_tower_path(clip, tokens=False, int8=runtime_spec(runtime).int8, cache_dir=tmp)

    def session(threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        s.run(None, {"pixels": x})  # warm-up
        return (lambda: s.run(None, {"pixels": x})), cores  # a torch thread count, which ONNX ignores

    return [session(cores)] + [session(1) for _ in range(cores)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--runtime", default="onnx-int8")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batches", type=int, default=4, help="batches of 32 per arrangement and round")
    args = ap.parse_args()

    import cv2

    from extract.clip_model import input_size, load_clip

    cv2.setNumThreads(1)
    cores = os.cpu_count() or 2
    clip = load_clip(args.model, "none", 0, "cpu")
    size = input_size(clip.model)
    x = np.random.default_rng(0).standard_normal((32, 3, size, size)).astype(np.float32)  # (N, 3, S, S)
    with tempfile.TemporaryDirectory() as tmp:
        sessions = torch_sessions(clip, x, cores) if args.runtime == "torch" else \
            onnx_sessions(clip, x, cores, args.runtime, tmp)  # [(run, threads)]: one wide, then `cores` narrow
        (wide, wide_threads), narrow = sessions[0], sessions[1:]

        def one_wide() -> None:
            set_threads(wide_threads)
            for _ in range(args.batches):
                wide()

        def per_core() -> None:
            share = [args.batches // cores + (i < args.batches % cores) for i in range(cores)]

            def work(run, threads: int, k: int) -> None:
                set_threads(threads)
                for _ in range(k):
                    run()

            threads = [threading.Thread(target=work, args=(run, n, k)) for (run, n), k in zip(narrow, share)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        arrangements = {f"1 session x {cores} threads": one_wide, f"{cores} sessions x 1 thread": per_core}
        rates: dict[tuple[str, bool], list[float]] = {(n, load): [] for n in arrangements for load in (False, True)}
        for r in range(args.rounds):
            for load in (False, True):
                for name in (list(arrangements) if r % 2 == 0 else list(arrangements)[::-1]):
                    stop = threading.Event()
                    if load:
                        threading.Thread(target=producer_load, args=(stop,), daemon=True).start()
                    t0 = time.perf_counter()
                    arrangements[name]()
                    rates[(name, load)].append(32 * args.batches / (time.perf_counter() - t0))
                    stop.set()
                    time.sleep(0.05)
    print(f"{args.model} {args.runtime}, random weights, {cores} cores, batch 32, medians of {args.rounds} rounds")
    print(f"{'':28s} {'alone img/s':>12s} {'beside the load':>16s}")
    for name in arrangements:
        print(f"{name:28s} {np.median(rates[(name, False)]):12.1f} {np.median(rates[(name, True)]):16.1f}")


if __name__ == "__main__":
    main()
