#!/usr/bin/env python3
"""Replaces one generated section of a Markdown file, leaving the others as they are.

    python3 scripts/compression_table.py runs/compression | python3 scripts/doc_sections.py docs/EXPERIMENTS.md compression

A section is the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`; a section the file
does not have yet is appended. The file is written atomically (a temporary file, then rename).
"""
import os
import sys


def replace(path, name, text):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = open(path).read() if os.path.exists(path) else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        _, tail = rest.split(end, 1)
        new = head + block + tail.lstrip("\n")
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: doc_sections.py FILE SECTION < text")
    replace(sys.argv[1], sys.argv[2], sys.stdin.read())
