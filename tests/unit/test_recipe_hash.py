"""A recipe hashes the same on the host and inside the gateway, where pip has compiled its
Python files: otherwise each side would rebuild the image the other one made."""

from __future__ import annotations

from pathlib import Path

from onebox.templates.image import directory_hash


def test_recipe_hash_ignores_compiled_python(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM onebox/base:bookworm\n")
    (tmp_path / "settings.py").write_text("DEBUG = False\n")
    before = directory_hash(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "settings.cpython-311.pyc").write_bytes(b"\x00compiled")
    assert directory_hash(tmp_path) == before
    (tmp_path / "settings.py").write_text("DEBUG = True\n")
    assert directory_hash(tmp_path) != before
