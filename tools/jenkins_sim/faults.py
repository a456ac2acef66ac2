"""Fault injection (doc/jenkins.md §6): rules matched by method + path regex.

A rule fires `count` times (None = unlimited), each time with probability `probability` drawn
from its own Random(seed), so schedules are reproducible.
"""

import random
import re
import threading

KINDS = ("status", "spurious404", "delay", "hang", "reset", "refuse", "lost_response", "restart",
         "body")
# body:<shape>, a hostile 200 reply (issue 12): deep = 500 KB of '[', utf8 = JSON with invalid
# UTF-8, huge = a chunked body of 64 MiB, declared = a Content-Length of 1 GiB and a few bytes.
BODY_SHAPES = ("deep", "utf8", "huge", "declared")


class FaultRule:
    def __init__(self, fault, path=".*", method=".*", count=None, probability=1.0, seed=0,
                 refuse_ms=1000, unavailable_ms=0):
        kind, _, arg = fault.partition(":")
        if kind not in KINDS:
            raise ValueError("unknown fault %r" % fault)
        self.fault = fault
        self.kind = kind
        self.arg = arg
        if kind == "status":
            self.status = int(arg)
        elif kind == "spurious404":
            self.status = 404
            count = int(arg or 1)
        elif kind == "delay":
            self.delay_ms = int(arg)
        elif kind == "body" and arg not in BODY_SHAPES:
            raise ValueError("unknown body shape %r (one of %s)" % (arg, ", ".join(BODY_SHAPES)))
        self.method_re = re.compile(method)
        self.path_re = re.compile(path)
        self.remaining = None if count is None else int(count)
        self.probability = float(probability)
        self.rng = random.Random(seed)
        self.refuse_ms = int(refuse_ms)
        self.unavailable_ms = int(unavailable_ms)
        self.fired = 0

    def describe(self):
        return {"fault": self.fault, "method": self.method_re.pattern, "path": self.path_re.pattern,
                "remaining": self.remaining, "probability": self.probability, "fired": self.fired}


class FaultSet:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, **kw):
        rule = FaultRule(**kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            self.rules = []

    def match(self, method, path):
        """First rule matching (full match of both regexes) that fires; consumes one count."""
        with self.lock:
            for rule in self.rules:
                if rule.remaining == 0:
                    continue
                if not (rule.method_re.fullmatch(method) and rule.path_re.fullmatch(path)):
                    continue
                if rule.probability < 1.0 and rule.rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.fired += 1
                return rule
        return None

    def describe(self):
        with self.lock:
            return [r.describe() for r in self.rules]
