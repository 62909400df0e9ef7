"""One Prometheus page for the whole application: every replica's ``nv_*`` series, labelled.

Each replica renders its engine's page (``InferenceEngine.metrics()``); :func:`merge_replica_pages`
adds ``replica="<unique id>"`` to every sample and keeps each family's samples together under one
HELP/TYPE header, as the text exposition format requires.
"""

from __future__ import annotations

from tritonlite.metrics._text import escape_label_value


def _labelled(sample: str, label: str) -> str:
    name_end = len(sample)
    for i, ch in enumerate(sample):
        if ch in "{ ":
            name_end = i
            break
    name, rest = sample[:name_end], sample[name_end:]
    if rest.startswith("{"):
        inner = rest[1:]
        return f"{name}{{{label}}}" + inner[1:] if inner.startswith("}") else f"{name}{{{label},{inner}"
    return f"{name}{{{label}}}{rest}"


def merge_replica_pages(pages: dict[str, str]) -> str:
    """Merge ``{replica id: metrics text}`` into one exposition page with a ``replica`` label."""
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for replica in sorted(pages):
        label = f'replica="{escape_label_value(replica)}"'
        family = ""
        for line in pages[replica].splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                    head = headers.setdefault(family, [])
                    if line not in head:
                        head.append(line)
                    samples.setdefault(family, [])
                continue
            samples.setdefault(family, []).append(_labelled(line, label))
    out: list[str] = []
    for family, lines in samples.items():
        out.extend(headers.get(family, []))
        out.extend(lines)
    return "\n".join(out) + ("\n" if out else "")


__all__ = ["merge_replica_pages"]
