"""The Keras-style progress display of ``Trainer.fit``.

``verbose=1`` on a terminal shows a live tqdm bar per epoch::

    Epoch 3/10
    54/54 [==============================] 1s 12ms/step - loss: 0.2103 - accuracy: 0.9412

While the epoch runs, the live line is kept to the terminal's width (80
columns when the terminal reports none) by leaving out whole ``name: value``
entries from the end, never cutting one. When the epoch ends, the bar is
replaced by the complete line, every value included, however long (the
terminal wraps it), so what callbacks print afterwards follows it.

``verbose=2``, or ``verbose=1`` when the output is not a terminal (a log file,
CI), prints the same complete line once per epoch, when the epoch ends.
``verbose=0`` prints nothing.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Optional, TextIO

from tqdm import tqdm


def _log_entries(logs: dict) -> list[str]:
    """``[" - loss: 0.2103", " - accuracy: 0.9412"]``: one entry per logged value."""
    parts = []
    for k, v in logs.items():
        if isinstance(v, float):
            parts.append(f"{k}: {v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{k}: {v:.4e}")
        else:
            parts.append(f"{k}: {v}")
    return [f" - {p}" for p in parts]


def format_logs(logs: dict) -> str:
    """``" - loss: 0.2103 - accuracy: 0.9412"`` from a logs dict (4 significant decimals)."""
    return "".join(_log_entries(logs))


def terminal_columns() -> int:
    """The terminal's width in columns; 80 when it is unknown or reported as 0."""
    try:
        columns = shutil.get_terminal_size().columns
    except (OSError, ValueError):
        columns = 0
    return columns if columns > 0 else 80


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
            # The width is fixed for the epoch; the tail is fitted to it in update(), so tqdm
            # never has to cut the line, and close() replaces the bar by the complete line.
            self.columns = terminal_columns()
            self.bar = _KerasBar(total=steps, file=self.stream, ascii=".=", leave=False,
                                 ncols=self.columns,
                                 bar_format="{n_fmt}/{total_fmt} [{bar:30}] {keras}")

    def _line_tail(self, done: int, logs: dict, room: Optional[int] = None) -> str:
        """Time, time per step, then the log entries; only whole entries that fit ``room``."""
        elapsed = time.perf_counter() - self.start
        tail = f"{_duration(elapsed)} {_per_step(elapsed, done)}"
        for entry in _log_entries(logs):
            if room is not None and len(tail) + len(entry) > room:
                break
            tail += entry
        return tail

    def update(self, done: int, logs: dict) -> None:
        """Show ``done`` of ``steps`` steps with the running ``logs``."""
        if self.bar is not None:
            head = 2 * len(str(self.steps)) + 1 + self.BAR_WIDTH + 4  # "n/N [" + bar + "] "
            self.bar.n = done
            self.bar.keras_tail = self._line_tail(done, logs, room=self.columns - 1 - head)
            self.bar.refresh()

    def close(self, logs: dict) -> None:
        """End the epoch with its complete line: every value, validation included."""
        if self.bar is not None:
            self.bar.close()  # clears the live line
        if self.verbose:
            bar = "=" * self.BAR_WIDTH
            print(f"{self.steps}/{self.steps} [{bar}] {self._line_tail(self.steps, logs)}",
                  file=self.stream, flush=True)
