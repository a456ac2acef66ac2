#!/usr/bin/env python3
"""Runs one file of the adversarial suite (what `meson test --suite adversarial` runs).

    python3 test/adversarial/run.py test_memory.py [-k NAME]

Exit status: 0 passed, 1 failed or no test ran, 77 (meson's "skipped") when the roundhouse
binary is missing.
Honours ROUNDHOUSE_BIN like the e2e suites.
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="test_*.py in this directory")
    parser.add_argument("-k", dest="patterns", action="append", default=[])
    parser.add_argument("-v", "--verbose", action="store_true")
    opts = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.dont_write_bytecode = True
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
    import server_fixture

    if not os.access(server_fixture.roundhouse_bin(), os.X_OK):
        print("run.py: roundhouse binary not found at %s" % server_fixture.roundhouse_bin(),
              file=sys.stderr)
        return 77
    loader = unittest.TestLoader()
    if opts.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in opts.patterns]
    suite = loader.discover(HERE, pattern=opts.file, top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=2 if opts.verbose else 1).run(suite)
    if result.testsRun == 0:
        # A misspelt file or -k pattern must not pass as green.
        filters = "".join(" -k " + p for p in opts.patterns)
        print("run.py: no tests ran (%s%s)" % (opts.file, filters), file=sys.stderr)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
