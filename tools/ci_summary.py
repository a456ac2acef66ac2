#!/usr/bin/env python3
"""Prints one closing line for CI, 'N passed, N failed[, N skipped]', from meson testlog.json files.

Exits non-zero if any test failed, timed out or if no test ran at all, so a CI run that silently
ran nothing cannot pass.
"""
import json
import sys

GOOD = {"OK", "EXPECTEDFAIL"}
SKIP = {"SKIP"}


def main(paths):
    passed = failed = skipped = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                result = json.loads(line).get("result", "FAIL")
                if result in GOOD:
                    passed += 1
                elif result in SKIP:
                    skipped += 1
                else:
                    failed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
