"""jaxdl's XLA flag: added only when safe, never over the user's own choice."""

from jaxdl import _xla


def test_adds_the_flag_next_to_existing_ones(monkeypatch):
    monkeypatch.setattr(_xla.metadata, "version", lambda name: "0.10.2")
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert _xla.configure(env)
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2 " + _xla.YNN_FLAG


def test_respects_the_user_and_unknown_versions(monkeypatch):
    monkeypatch.setattr(_xla.metadata, "version", lambda name: "0.10.2")
    mine = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_dot,eltwise"}
    assert not _xla.configure(mine)
    assert mine["XLA_FLAGS"].endswith("eltwise")
    assert not _xla.configure({"JAXDL_KEEP_XLA_FLAGS": "1"})
    monkeypatch.setattr(_xla.metadata, "version", lambda name: "0.11.0")
    env = {}
    assert not _xla.configure(env) and "XLA_FLAGS" not in env
