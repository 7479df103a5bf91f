"""Files as a test: artkit reads only through :mod:`artkit.reader` (regular files, capped sizes, safe loaders) and
writes only through :mod:`artkit.writer` (atomic, never over an input or a file of the user's). A module under
``src/artkit/`` that opens, loads or saves a file around them fails here, with its file and line.

Allowed around them: the two modules themselves; ``subprocess`` log files that ``engine/launch.py`` hands to
child processes (opened for writing once, in the run folder it made); sqlite's own file in the scan cache."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
GUARDS = {"artkit/reader.py", "artkit/writer.py"}
# calls that read or write a file by path, by their last name: open(), Path.read_text(), torch.load(), ...
FILE_CALLS = {
    "open",
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "read_csv",
    "load",  # torch.load, np.load, json.load, pickle.load
    "save",  # torch.save, np.save, image.save(path)
    "savez",
    "savefig",
    "safe_load",
    "load_file",  # safetensors
}
ALLOWED = {
    ("artkit/engine/launch.py", "open"),  # a fold's log file, handed to its child process
    ("artkit/models/weights.py", "load_file"),  # safetensors reads its own format, after the reader's checks
}
FILE_RECEIVERS_ONLY = {"save", "load"}  # these names count only when called on a module or an object, not bare
BY_PATH_ONLY = {"read_text", "read_bytes", "write_text", "write_bytes"}  # Path methods; bare, they are artkit's


def _violations(rel: str, source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name not in FILE_CALLS or (rel, name) in ALLOWED:
            continue
        if name in FILE_RECEIVERS_ONLY | BY_PATH_ONLY and not isinstance(func, ast.Attribute):
            continue  # a bare read_text(...) / write_text(...) is the reader's or the writer's own function
        if name == "load" and not node.args:
            continue  # Pillow's img.load() decodes an image already opened through the reader
        if name == "save" and _saves_to_buffer(node):
            continue
        if name == "open" and isinstance(func, ast.Attribute) and _receiver(func) in {"Image", "zipfile"}:
            pass  # Image.open(path) reads a file: it must get a file object from the reader
        found.append(f"src/{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def _receiver(func: ast.Attribute) -> str | None:
    return func.value.id if isinstance(func.value, ast.Name) else None


def _saves_to_buffer(node: ast.Call) -> bool:
    """``image.save(fh, ...)`` or ``torch.save(obj, fh)`` into a file object the writer opened (named fh/buf)."""
    names = {a.id for a in node.args if isinstance(a, ast.Name)}
    return bool(names & {"fh", "buf", "buffer"})


def _image_opens_path(rel: str, source: str) -> list[str]:
    """``Image.open(x)`` where x is not a file object from the reader (named fh, or a BytesIO)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "open"
            and _receiver(node.func) == "Image"
        ):
            arg = node.args[0] if node.args else None
            ok = (isinstance(arg, ast.Name) and arg.id == "fh") or (
                isinstance(arg, ast.Call) and "BytesIO" in ast.unparse(arg)
            )
            if not ok:
                found.append(f"src/{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def _modules() -> list[tuple[str, str]]:
    return [
        (p.relative_to(SRC).as_posix(), p.read_text(encoding="utf-8")) for p in sorted((SRC / "artkit").rglob("*.py"))
    ]


def test_files_are_read_and_written_only_through_the_reader_and_the_writer():
    found = [v for rel, source in _modules() if rel not in GUARDS for v in _violations(rel, source)]
    found = [v for v in found if "Image.open" not in v]  # checked below: it may take the reader's file object
    assert not found, "open, load or save files through artkit.reader / artkit.writer:\n" + "\n".join(found)


def test_images_are_opened_from_the_readers_file_objects():
    found = [v for rel, source in _modules() for v in _image_opens_path(rel, source)]
    assert not found, "open images with `with open_input(path, 'image') as fh, Image.open(fh)`:\n" + "\n".join(found)


def test_the_rules_catch_what_they_are_for():
    assert _violations("artkit/x.py", "import torch\ntorch.load('a.pt')\n")
    assert _violations("artkit/x.py", "from pathlib import Path\nPath('a').read_text()\n")
    assert _violations("artkit/x.py", "open('a')\n")
    assert _violations("artkit/x.py", "import pandas as pd\npd.read_csv('a.csv')\n")
    assert _violations("artkit/x.py", "img.save('out.png')\n")
    assert not _violations("artkit/x.py", "img.save(fh, format='PNG')\n")
    assert _image_opens_path("artkit/x.py", "Image.open(path)\n")
    assert not _image_opens_path("artkit/x.py", "Image.open(fh)\n")
