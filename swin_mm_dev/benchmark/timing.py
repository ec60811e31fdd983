"""Wall-clock timing of competing steps, interleaved so background load hits all alike."""
import statistics
import time
from typing import Callable, Dict, List


def summarize(seconds: List[float]) -> dict:
    """Median and spread (quartiles, min, max) in milliseconds."""
    ms = sorted(s * 1e3 for s in seconds)
    quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return dict(median_ms=statistics.median(ms), q1_ms=quartiles[0], q3_ms=quartiles[2],
                min_ms=ms[0], max_ms=ms[-1], runs=len(ms))


def interleaved(steps: Dict[str, Callable[[], object]], repeats: int,
                warmup: int) -> Dict[str, dict]:
    """Time each step `repeats` times, rotating the order every round (A B, B A, ...)."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times = {name: [] for name in names}
    for round_ in range(repeats):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return {name: summarize(values) for name, values in times.items()}
