"""Fixtures of the metrics tests: a parsed scrape, and a gate model that holds its instance on demand.

``scrape(text)`` parses Prometheus text with ``prometheus_client.parser`` (the parser renames counter
samples to ``<name>_total`` on its side; the text itself must not carry that suffix, which
:class:`Scrape` checks).
"""

from __future__ import annotations

import re
import sys
import threading
import types
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics_models import GATE_MODULE, GATE_PY, gate_model  # noqa: F401  (gate_model re-exported for tests)




class Gate:
    """Which batches the gate model ran, and the tags it must wait for."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.batches: list[list[int]] = []
        self.held: set[int] = set()

    def entered(self, tags: list[int]) -> None:
        with self.cond:
            self.batches.append(tags)
            self.cond.notify_all()
            self.cond.wait_for(lambda: not self.held.intersection(tags), timeout=20)

    def hold(self, *tags: int) -> None:
        with self.cond:
            self.held.update(tags)

    def release(self) -> None:
        with self.cond:
            self.held.clear()
            self.cond.notify_all()

    def wait_for_batches(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.batches) >= n, timeout=20), self.batches


@pytest.fixture
def gate() -> Iterator[Gate]:
    module = types.ModuleType(GATE_MODULE)
    module.GATE = Gate()  # type: ignore[attr-defined]
    sys.modules[GATE_MODULE] = module
    try:
        yield module.GATE  # type: ignore[attr-defined]
    finally:
        module.GATE.release()  # type: ignore[attr-defined]
        sys.modules.pop(GATE_MODULE, None)


class Scrape:
    """One parsed scrape: ``families[name]`` and exact sample lookup by labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        assert not re.search(r"^\w+_total[{ ]", text, re.M), "a counter carries the _total suffix"
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def type(self, name: str) -> str:
        return self.families[name].type

    def samples(self, name: str, suffix: str = "") -> list[tuple[dict[str, str], float]]:
        fam = self.families[name]
        wanted = {name + suffix} if suffix else {name, name + "_total"}
        return [(dict(s.labels), s.value) for s in fam.samples if s.name in wanted]

    def value(self, name: str, suffix: str = "", **labels: str) -> float:
        found = [v for lab, v in self.samples(name, suffix) if all(lab.get(k) == str(x) for k, x in labels.items())]
        assert len(found) == 1, (name, suffix, labels, self.samples(name, suffix))
        return found[0]

    def labelsets(self, name: str, suffix: str = "") -> list[dict[str, str]]:
        return [lab for lab, _ in self.samples(name, suffix)]

    def models(self, name: str = "nv_inference_request_success") -> set[str]:
        return {lab["model"] for lab in self.labelsets(name)} if name in self.families else set()


@pytest.fixture
def scrape() -> Callable[[Any], Scrape]:
    """``scrape(engine_or_text)``: parse ``engine.metrics()`` (or a text)."""

    def parse(source: Any) -> Scrape:
        return Scrape(source if isinstance(source, str) else source.metrics())

    return parse
