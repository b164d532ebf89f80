"""``python -m lamproof.derivations --write [NAME…]`` regenerates the committed ``.tex`` files;
``--check`` exits 1 when one of them is stale."""

from __future__ import annotations

import argparse
import sys

from lamproof import derivations


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lamproof.derivations")
    parser.add_argument("names", nargs="*")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the .tex files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a committed .tex is stale")
    args = parser.parse_args(argv)
    if args.write:
        for path in derivations.write_tex(args.names or None):
            print(path)
        return 0
    stale = [
        n
        for n in (args.names or derivations.NAMES)
        if derivations.tex_file(n).read_text(encoding="utf-8") != derivations.latex(n)
    ]
    for name in stale:
        print(f"stale: {derivations.tex_file(name)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
