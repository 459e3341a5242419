from pathlib import Path

from supportlens.io.cache import cache_root


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("SUPPORTLENS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "supportlens"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "supportlens"


def test_every_cache_user_shares_the_root(tmp_path, monkeypatch):
    """Encoders, ONNX graphs and downloaded models move together with one variable."""
    from supportlens.models import onnx_runtime, packaged

    monkeypatch.setenv("SUPPORTLENS_CACHE", str(tmp_path / "c"))
    assert onnx_runtime.user_cache_dir() == tmp_path / "c"
    assert packaged.cache_root() == tmp_path / "c"
