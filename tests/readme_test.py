"""The README's flagfile table and Layout name every file of flags/ and gmmgan_tf/, and no other."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()


def _section(title: str) -> str:
    """The README's text from the heading `title` to the next heading."""
    start = README.index(f"\n{title}\n")
    end = README.find("\n#", start + len(title) + 2)
    return README[start:end]


def layout_paths() -> set[str]:
    """Paths named by the Layout block's tree: a row `  name/` opens a folder for the more
    indented rows below it; rows that name no file or folder continue a description."""
    paths, folders = set(), []  # folders: (indent, "parent/") of the open folders
    for line in _section("## Layout").splitlines():
        name = line.split()[0] if line.strip() else ""
        if not re.fullmatch(r"[\w.]+(\.py|\.cfg|/)", name):
            continue
        indent = len(line) - len(line.lstrip())
        while folders and folders[-1][0] >= indent:
            folders.pop()
        path = "".join(folder for _, folder in folders) + name
        paths.add(path)
        if name.endswith("/"):
            folders.append((indent, name))
    return paths


def test_flagfile_table_has_a_row_per_flagfile():
    rows = set(re.findall(r"^\| `([\w.]+\.cfg)` \|", _section("### Flagfiles (`flags/`)"),
                          re.MULTILINE))
    files = {os.path.basename(f) for f in glob.glob(os.path.join(ROOT, "flags", "*.cfg"))}
    assert rows == files


def test_layout_names_every_module():
    modules = {os.path.relpath(f, ROOT) for f in glob.glob(
        os.path.join(ROOT, "gmmgan_tf", "**", "*.py"), recursive=True)
        if os.path.basename(f) != "__init__.py"}
    listed = {p for p in layout_paths() if p.endswith(".py") and p.startswith("gmmgan_tf/")}
    assert listed == modules
