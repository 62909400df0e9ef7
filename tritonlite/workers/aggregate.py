"""Sum what several workers report so one answer covers all of them.

Counters, gauges and histogram buckets add up; ``last_inference`` is the latest of the workers'.
Summary quantiles cannot be added: the largest worker value is reported (an upper bound).
"""

from __future__ import annotations

from typing import Any


def _sample_key(line: str) -> tuple[str, str] | None:
    """``name{labels} value`` -> (``name{labels}``, value text); None for comments and blanks."""
    if not line or line.startswith("#"):
        return None
    head, sep, value = line.rpartition(" ")
    if not sep or not head:
        return None
    return head, value


def merge_metrics(texts: list[str]) -> str:
    """One Prometheus text (format 0.0.4) whose samples are the sums of the workers' samples."""
    order: list[str] = []  # sample keys and comment lines, in first-seen order
    values: dict[str, float] = {}
    seen_comments: set[str] = set()
    for text in texts:
        for line in text.splitlines():
            parsed = _sample_key(line)
            if parsed is None:
                if line and line not in seen_comments:
                    seen_comments.add(line)
                    order.append("\0" + line)
                continue
            key, raw = parsed
            try:
                value = float(raw)
            except ValueError:
                continue
            if key not in values:
                order.append(key)
                values[key] = value
            elif 'quantile="' in key:
                values[key] = max(values[key], value)
            else:
                values[key] += value
    out: list[str] = []
    for item in order:
        if item.startswith("\0"):
            out.append(item[1:])
        else:
            v = values[item]
            out.append(f"{item} {int(v) if v == int(v) and abs(v) < 2**63 else repr(v)}")
    return "\n".join(out) + "\n"


def _add(into: Any, other: Any, key: str = "") -> Any:
    if isinstance(into, dict) and isinstance(other, dict):
        for k, v in other.items():
            into[k] = _add(into[k], v, k) if k in into else v
        return into
    if isinstance(into, bool) or isinstance(other, bool):
        return into
    if isinstance(into, (int, float)) and isinstance(other, (int, float)):
        return max(into, other) if key == "last_inference" else into + other
    return into  # names, versions: the same on every worker


def _merge_batches(into: list[dict[str, Any]], other: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_size = {b["batch_size"]: b for b in into}
    for b in other:
        if b["batch_size"] in by_size:
            _add(by_size[b["batch_size"]], {k: v for k, v in b.items() if k != "batch_size"})
        else:
            by_size[b["batch_size"]] = b
    return [by_size[s] for s in sorted(by_size)]


def merge_statistics(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"model_stats": [...]}`` with each (name, version) summed over the workers' answers."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    for answer in answers:
        for stat in answer.get("model_stats", []):
            key = (stat["name"], stat["version"])
            if key not in merged:
                merged[key] = stat
                order.append(key)
                continue
            mine = merged[key]
            batches = _merge_batches(mine.get("batch_stats", []), stat.get("batch_stats", []))
            _add(mine, {k: v for k, v in stat.items() if k != "batch_stats"})
            mine["batch_stats"] = batches
    return {"model_stats": [merged[k] for k in order]}


__all__ = ["merge_metrics", "merge_statistics"]
