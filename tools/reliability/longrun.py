"""Scenario 1, the soak: frames through the real node for a long time at a camera's rate, with prompt changes and
target churn. Memory must stay flat (RSS and the Python heap: last quarter / first quarter <= 1.05), threads and
descriptors constant, latency bounded (no queue grows), and every frame the camera sent accounted for: answered,
dropped by the node (counted) or lost on the way (sent - received)."""
from __future__ import annotations

import time

from reliability.launcher import LaunchedNode
from reliability.outcome import Outcome, number, percentile, quarter_ratio
from reliability.rig import Rig

FLAT = 1.05          # last / first quarter
DRAIN_S = 3.0        # no new answer for this long after the last frame: the node is done


def run(node: LaunchedNode, rig: Rig, frames: int, rate: float, sample_every: int = 500,
        prompt_every: int = 100, churn_every: int = 1000, progress: bool = False) -> Outcome:
    out = Outcome("soak")
    started = time.monotonic()
    node.find_pid()
    prompts = ["the red square", "the square on the grey table"]
    rig.prompt(prompts[0])
    answered0, sent0 = rig.answered_count(), rig.sent
    base, _ = rig.latest_diagnostics()
    published: dict[float, float] = {}
    period, t_start = 1.0 / rate, time.monotonic()
    wall0 = time.time()
    extra = None
    for i in range(frames):
        due = t_start + i * period
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamp = round(wall0 + i * period, 6)
        published[stamp] = time.monotonic()
        rig.send_frame(stamp)
        if prompt_every and i % prompt_every == prompt_every - 1:
            rig.prompt(prompts[(i // prompt_every) % 2])
        if churn_every and i % churn_every == churn_every // 2:  # a target comes, the one before goes
            if extra:
                rig.target(1, extra)
            extra = f"extra_{i}"
            rig.target(0, extra, "the grey background")
        if (i + 1) % sample_every == 0:
            out.table.append(_sample(node, rig, i + 1, started, answered0))
            if progress:
                print("     " + ", ".join(f"{k} {v}" for k, v in out.table[-1].items()), flush=True)
    late = time.monotonic() - t_start - frames * period
    _drain(rig)
    final, _ = rig.latest_diagnostics(after=time.monotonic())
    sent = rig.sent - sent0
    answered = rig.answered_count() - answered0
    received = number(final, "frames_received") - number(base, "frames_received")
    processed = number(final, "frames_processed") - number(base, "frames_processed")
    dropped = number(final, "dropped_frames") - number(base, "dropped_frames")
    bad = number(final, "bad_input") - number(base, "bad_input")
    lost = sent - received
    latencies = _latencies(rig, published)
    rss = [row["rss_mib"] for row in out.table]
    heap = [row["heap_blocks"] for row in out.table]
    threads = [row["threads"] for row in out.table]
    fds = [row["fds"] for row in out.table]
    q = max(len(latencies) // 4, 1)
    first_q, last_q = latencies[:q], latencies[-q:]
    out.figures.update({
        "frames sent": sent, "rate (Hz)": rate, "publisher behind schedule at the end (s)": round(late, 2),
        "received by the node": int(received), "answered (results received)": answered,
        "processed (node)": int(processed), "dropped by the node (counted)": int(dropped),
        "lost in transport (sent - received)": int(lost), "bad input": int(bad),
        "RSS first / last sample (MiB)": f"{rss[0]:.1f} / {rss[-1]:.1f}" if rss else "-",
        "RSS last / first quarter": round(quarter_ratio(rss), 4),
        "Python heap blocks first / last": f"{heap[0]:.0f} / {heap[-1]:.0f}" if heap else "-",
        "Python heap last / first quarter": round(quarter_ratio(heap), 4),
        "threads min / max": f"{min(threads)} / {max(threads)}" if threads else "-",
        "open fds min / max": f"{min(fds)} / {max(fds)}" if fds else "-",
        "publish -> result p50 / p95 / max, first quarter (ms)": _ms(first_q),
        "publish -> result p50 / p95 / max, last quarter (ms)": _ms(last_q),
        "node latency max, last window (s)": number(final, "latency_max_s"),
    })
    out.check(bool(rss) and quarter_ratio(rss) <= FLAT, f"RSS grew: last / first quarter {quarter_ratio(rss):.3f}")
    out.check(bool(heap) and quarter_ratio(heap) <= FLAT,
              f"Python heap grew: last / first quarter {quarter_ratio(heap):.3f}")
    out.check(len(set(threads)) <= 1, f"thread count changed: {sorted(set(threads))}")
    out.check(len(set(fds)) <= 1, f"open descriptors changed: {sorted(set(fds))}")
    out.check(answered == processed, f"answered {answered} != processed {processed} (results lost on the way back)")
    out.check(received == processed + dropped + bad,
              f"received {received} != processed {processed} + dropped {dropped} + bad {bad}")
    out.check(sent - answered == dropped + lost + bad,
              f"sent - answered = {sent - answered} != dropped {dropped} + lost in transport {lost} + bad {bad}")
    if first_q and last_q:
        bound = 2 * percentile(first_q, 95) + 0.25
        out.check(percentile(last_q, 95) <= bound,
                  f"latency grew (a queue?): p95 {percentile(last_q, 95):.3f} s > {bound:.3f} s")
    out.check(node.alive(), "the node died")
    out.seconds = time.monotonic() - started
    return out


def _sample(node: LaunchedNode, rig: Rig, frame: int, started: float, answered0: int) -> dict:
    proc = node.sample()
    values, _ = rig.latest_diagnostics(after=time.monotonic() - 2.0)
    return {"frame": frame, "t_s": round(time.monotonic() - started, 1), "rss_mib": round(proc.rss_mib, 1),
            "heap_blocks": int(number(values, "python_heap_blocks")), "threads": proc.threads, "fds": proc.fds,
            "answered": rig.answered_count() - answered0, "dropped": int(number(values, "dropped_frames")),
            "latency_p95_ms": round(1000 * number(values, "latency_p95_s"), 1)}


def _drain(rig: Rig) -> None:
    """Until no new answer came for DRAIN_S (the node has worked off what it holds)."""
    count, since = rig.answered_count(), time.monotonic()
    while time.monotonic() - since < DRAIN_S:
        time.sleep(0.2)
        if rig.answered_count() != count:
            count, since = rig.answered_count(), time.monotonic()


def _latencies(rig: Rig, published: dict[float, float]) -> list[float]:
    with rig.lock:
        return [rig.answered[s] - published[s] for s in sorted(published) if s in rig.answered]


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{1000 * percentile(values, p):.0f}" for p in (50, 95, 100))
