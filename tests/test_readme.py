"""The README's Python snippets run as written (in order, in one namespace)."""

import pathlib
import re

from jaxdl import compilation

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(compilation.CACHE_ENV, str(tmp_path / "xla"))  # the cache section's dir
    namespace = {}
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    finally:
        compilation.disable_cache()  # the rest of this test process runs without it
    assert namespace["path"] == tmp_path / "xla"                    # the startup section
    assert (tmp_path / "curves.png").exists()
    assert namespace["fresh"].epoch == 4
    assert namespace["samples"].shape == (1000, 2)           # the GAN section
    assert list((tmp_path / "gan_samples").glob("samples_epoch_3.png"))
    assert namespace["codes"].shape == (len(namespace["x_test"]), 2)
    result, pop = namespace["result"], namespace["pop"]                # the tune section
    assert len(result.trials) == 5 and (tmp_path / "search.png").exists()
    assert len((tmp_path / "study.jsonl").read_text().splitlines()) == 6   # header + 5 trials
    assert len(pop.histories) == 4 and pop.final[pop.best_index]["val_accuracy"] > 0.5
