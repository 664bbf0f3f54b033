"""Where the C++ RNN loops are built and what is said when they cannot be (no compiler needed:
the tools, torch's ``load`` and the library loader are monkeypatched)."""
from __future__ import annotations

import logging
import shutil

import pytest
import torch
import torch.utils.cpp_extension

from graphs.kernels import native


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process that has not loaded the loops, with an empty extensions folder."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.delenv("ANOMALY_NATIVE_RNN", raising=False)
    monkeypatch.setattr(native, "_ops", native._NOT_LOADED)
    monkeypatch.setattr(native, "_registered", lambda: False)
    return tmp_path


def _tools(monkeypatch, present: set[str]) -> None:
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name in present else None)


def _never(*args, **kwargs):
    raise AssertionError("must not be called")


def test_the_build_key_follows_the_source_not_the_checkout(monkeypatch, tmp_path) -> None:
    key = native.build_key()
    copy = tmp_path / "another_clone" / "rnn_loops.cpp"
    copy.parent.mkdir()
    copy.write_bytes(native.SOURCE.read_bytes())
    monkeypatch.setattr(native, "SOURCE", copy)
    assert native.build_key() == key
    copy.write_bytes(native.SOURCE.read_bytes() + b"\n// changed\n")
    assert native.build_key() != key


@pytest.mark.parametrize("present, said, not_said", [
    ({"ninja"}, "no C++ compiler: 'c++' is not on PATH", "ninja"),
    ({"ninja", "g++"}, "set CXX=g++", "ninja"),
    ({"c++"}, "no 'ninja' on PATH", "compiler"),
])
def test_missing_tools_are_named_and_the_fallback_is_worded_honestly(monkeypatch, fresh, caplog, present, said,
                                                                      not_said) -> None:
    _tools(monkeypatch, present)
    monkeypatch.setattr(torch.utils.cpp_extension, "load", _never)
    with caplog.at_level(logging.INFO, logger="anomaly"), pytest.warns(RuntimeWarning) as record:
        assert native.rnn_loops() is None
    message = str(record[0].message)
    assert said in message and not_said not in message
    assert "the same results, bit for bit" in message and "slower" in message
    assert "Building" not in caplog.text


def test_a_cached_build_is_loaded_without_building_or_saying_so(monkeypatch, fresh, caplog) -> None:
    name = f"anomaly_rnn_loops_{native.build_key()}"
    library = fresh / "ext" / name / f"{name}.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"")
    loaded = []
    _tools(monkeypatch, set())  # no tools needed to load what is built
    monkeypatch.setattr(torch.utils.cpp_extension, "load", _never)
    monkeypatch.setattr(torch.ops, "load_library", loaded.append)
    with caplog.at_level(logging.INFO, logger="anomaly"):
        assert native.rnn_loops() is torch.ops.anomaly_rnn
    assert loaded == [str(library)]
    assert "Building" not in caplog.text


def test_a_build_says_so_and_compiles_a_copy_in_the_cache(monkeypatch, fresh, caplog, capsys) -> None:
    calls = []
    _tools(monkeypatch, {"c++", "ninja"})
    monkeypatch.setattr(torch.utils.cpp_extension, "load", lambda name, **kw: calls.append((name, kw)))
    with caplog.at_level(logging.INFO, logger="anomaly"):
        assert native.rnn_loops() is torch.ops.anomaly_rnn
    (name, kwargs), = calls
    build_dir = fresh / "ext" / name
    assert kwargs["build_directory"] == str(build_dir)
    assert kwargs["sources"] == [str(build_dir / "rnn_loops.cpp")]
    assert (build_dir / "rnn_loops.cpp").read_bytes() == native.SOURCE.read_bytes()
    # the "anomaly" logger writes to stdout once a run set it up (no propagation to caplog then)
    assert "Building the C++ RNN loops" in caplog.text + capsys.readouterr().out


def test_a_failed_build_falls_back_naming_the_error(monkeypatch, fresh) -> None:
    def fails(*args, **kwargs):
        raise RuntimeError("Error building extension\nrnn_loops.cpp:1: error: something")

    _tools(monkeypatch, {"c++", "ninja"})
    monkeypatch.setattr(torch.utils.cpp_extension, "load", fails)
    with pytest.warns(RuntimeWarning, match="the build failed: rnn_loops.cpp:1: error: something"):
        assert native.rnn_loops() is None


def test_a_broken_cached_library_falls_back_naming_it(monkeypatch, fresh) -> None:
    name = f"anomaly_rnn_loops_{native.build_key()}"
    library = fresh / "ext" / name / f"{name}.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"not a library")
    monkeypatch.setattr(torch.utils.cpp_extension, "load", _never)
    with pytest.warns(RuntimeWarning, match=f"loading {library} failed"):
        assert native.rnn_loops() is None
