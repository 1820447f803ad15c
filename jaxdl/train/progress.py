"""The Keras-style progress display of ``Trainer.fit``.

``verbose=1`` on a terminal shows a live tqdm bar per epoch::

    Epoch 3/10
    54/54 [==============================] 1s 12ms/step - loss: 0.2103 - accuracy: 0.9412

``verbose=2``, or ``verbose=1`` when the output is not a terminal (a log file,
CI), prints the same line once per epoch, when the epoch ends. ``verbose=0``
prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from tqdm import tqdm


def format_logs(logs: dict) -> str:
    """``" - loss: 0.2103 - accuracy: 0.9412"`` from a logs dict (4 significant decimals)."""
    parts = []
    for k, v in logs.items():
        if isinstance(v, float):
            parts.append(f"{k}: {v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{k}: {v:.4e}")
        else:
            parts.append(f"{k}: {v}")
    return "".join(f" - {p}" for p in parts)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"


def _per_step(seconds: float, steps: int) -> str:
    t = seconds / max(steps, 1)
    if t >= 1:
        return f"{t:.2f}s/step"
    if t >= 1e-3:
        return f"{t * 1e3:.0f}ms/step"
    return f"{t * 1e6:.0f}us/step"


class _KerasBar(tqdm):
    """A tqdm bar whose format has a ``{keras}`` field: the Keras-style tail of the line."""

    keras_tail = ""

    @property
    def format_dict(self):
        d = super().format_dict
        d["keras"] = self.keras_tail
        return d


class EpochProgress:
    """Progress of one epoch: ``update(steps_done, logs)`` then ``close(logs)``."""

    BAR_WIDTH = 30

    def __init__(self, epoch: int, epochs: int, steps: int, verbose: int,
                 stream: Optional[TextIO] = None):
        self.stream = stream or sys.stdout
        self.steps = steps
        self.start = time.perf_counter()
        live = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.verbose = verbose
        self.bar = None
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}", file=self.stream, flush=True)
        if live:
            self.bar = _KerasBar(total=steps, file=self.stream, ascii=".=", leave=True,
                                 bar_format="{n_fmt}/{total_fmt} [{bar:30}] {keras}")

    def _line_tail(self, done: int, logs: dict) -> str:
        elapsed = time.perf_counter() - self.start
        return f"{_duration(elapsed)} {_per_step(elapsed, done)}{format_logs(logs)}"

    def update(self, done: int, logs: dict) -> None:
        """Show ``done`` of ``steps`` steps with the running ``logs``."""
        if self.bar is not None:
            self.bar.n = done
            self.bar.keras_tail = self._line_tail(done, logs)
            self.bar.refresh()

    def close(self, logs: dict) -> None:
        """End the epoch with its final logs (validation included)."""
        if self.bar is not None:
            self.bar.n = self.steps
            self.bar.keras_tail = self._line_tail(self.steps, logs)
            self.bar.close()
        elif self.verbose:
            bar = "=" * self.BAR_WIDTH
            print(f"{self.steps}/{self.steps} [{bar}] {self._line_tail(self.steps, logs)}",
                  file=self.stream, flush=True)
