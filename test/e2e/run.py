#!/usr/bin/env python3
"""Entry point for the end-to-end and interop suites (what `meson test` runs).

    python3 test/e2e/run.py --suite protocol          # or admin, differential, durability, http,
                                                      # jenkins, interop, all
    python3 test/e2e/run.py --suite admin -k cancel   # only tests whose name matches
    python3 test/e2e/run.py --suite protocol --reference   # against gearmand 1.1.20

Exit status: 0 all passed, 1 any failure or error, 77 (meson's "skipped") when the roundhouse
binary is missing and the suite needs it. Honours ROUNDHOUSE_BIN and GEARMAN_REFERENCE.
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(HERE, "..", "interop")

SUITES = {
    "protocol": (HERE, "test_protocol.py"),
    "admin": (HERE, "test_admin.py"),
    "differential": (HERE, "test_differential.py"),
    "durability": (HERE, "test_durability.py"),
    "http": (HERE, "test_http.py"),
    "http-submit": (HERE, "test_http_submit.py"),
    "tls": (HERE, "test_tls.py"),
    "jenkins": (HERE, "test_jenkins.py"),
    "jenkins-failures": (HERE, "test_jenkins_failures.py"),
    "acl": (HERE, "test_acl.py"),
    "jenkins-tls": (HERE, "test_jenkins_tls.py"),
    "interop": (INTEROP, "test_*.py"),
}
SKIP_EXIT = 77


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True, choices=sorted(SUITES) + ["all"])
    parser.add_argument("-k", dest="patterns", action="append", default=[],
                        help="only run tests whose name contains this substring")
    parser.add_argument("--reference", action="store_true",
                        help="run against gearmand (sets GEARMAN_REFERENCE=1)")
    parser.add_argument("--reference-all", action="store_true",
                        help="as --reference, and also run the roundhouse-only tests (expected "
                             "to fail on gearmand: shows each deliberate difference)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-f", "--failfast", action="store_true")
    opts = parser.parse_args()

    if opts.reference_all:
        os.environ["GEARMAN_REFERENCE"] = "all"
    elif opts.reference:
        os.environ["GEARMAN_REFERENCE"] = "1"
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.dont_write_bytecode = True
    sys.path.insert(0, HERE)

    import server_fixture  # after the environment is final

    names = sorted(SUITES) if opts.suite == "all" else [opts.suite]
    binary = server_fixture.roundhouse_bin()
    needs_binary = not server_fixture.reference_mode() or "differential" in names
    if needs_binary and not os.access(binary, os.X_OK):
        if server_fixture.reference_mode():
            print("run.py: %s not found: differential sessions check gearmand only" % binary,
                  file=sys.stderr)
        else:
            print("run.py: roundhouse binary not found at %s (set ROUNDHOUSE_BIN, or use "
                  "--reference to run against gearmand)" % binary, file=sys.stderr)
            return SKIP_EXIT

    loader = unittest.TestLoader()
    if opts.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in opts.patterns]
    suite = unittest.TestSuite()
    for name in names:
        directory, pattern = SUITES[name]
        sys.path.insert(0, directory)
        suite.addTests(loader.discover(directory, pattern=pattern, top_level_dir=directory))

    print("run.py: suite %s against %s" % (
        opts.suite, "gearmand (reference)" if server_fixture.reference_mode() else binary),
        file=sys.stderr)
    runner = unittest.TextTestRunner(verbosity=2 if opts.verbose else 1,
                                     failfast=opts.failfast, buffer=False)
    result = runner.run(suite)
    if result.testsRun == 0:
        print("run.py: no tests ran", file=sys.stderr)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
