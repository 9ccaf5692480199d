#!/usr/bin/env python3
"""Checks km_json's output with Python's json module.

Runs json_samples (the path is the only argument) and, for every block it
prints (see json_samples.c), checks that:
  - the whole output is valid UTF-8, and each document is strict JSON: no
    bare NaN/Infinity, no duplicate keys in an object;
  - the compact document is one line and is exactly what a compact
    re-rendering of the parsed value gives (no whitespace, Python's escaping);
  - the pretty document is exactly the 2-space indented re-rendering of the
    same value, so both layouts hold the same data;
  - a string field with its raw bytes in the header decodes as Python's
    bytes.decode("utf-8", "replace") does (maximal subparts -> U+FFFD);
  - a Timestamp in the header is the RFC 3339 string Python's date arithmetic
    gives, with 0, 3, 6 or 9 fractional digits.
Numbers are kept as their text, so a re-rendering is compared byte for byte.
"""
import datetime
import json
import subprocess
import sys


class Num:
    """A JSON number kept as its text."""

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Num) and other.text == self.text


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in %r" % keys)
    return dict(pairs)


def no_constants(name):
    raise ValueError("bare %s is not JSON" % name)


def parse(text):
    return json.loads(text, object_pairs_hook=no_duplicates,
                      parse_constant=no_constants, parse_float=Num,
                      parse_int=Num)


def render(v, pretty, depth=0):
    if isinstance(v, Num):
        return v.text
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        items = [render(k, pretty) + (": " if pretty else ":") +
                 render(x, pretty, depth + 1) for k, x in v.items()]
        return wrap("{", "}", items, pretty, depth)
    if isinstance(v, list):
        items = [render(x, pretty, depth + 1) for x in v]
        return wrap("[", "]", items, pretty, depth)
    raise TypeError(type(v))


def wrap(open_, close, items, pretty, depth):
    if not items:
        return open_ + close
    if not pretty:
        return open_ + ",".join(items) + close
    inner = "\n" + "  " * (depth + 1)
    return (open_ + inner + ("," + inner).join(items) + "\n" + "  " * depth +
            close)


def lookup(v, path):
    for part in path.split("."):
        v = v[part]
    return v


def rfc3339(secs, nanos):
    t = datetime.datetime(1, 1, 1) + datetime.timedelta(
        seconds=secs + 62135596800)
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % (t.year, t.month, t.day, t.hour,
                                          t.minute, t.second)
    if nanos == 0:
        return s + "Z"
    if nanos % 1000000 == 0:
        return s + ".%03d" % (nanos // 1000000) + "Z"
    if nanos % 1000 == 0:
        return s + ".%06d" % (nanos // 1000) + "Z"
    return s + ".%09d" % nanos + "Z"


def check_block(header, lines):
    name = header[0]
    if len(lines) < 1:
        raise ValueError("no output")
    compact, pretty = lines[0], "\n".join(lines[1:])
    value = parse(compact)
    if parse(pretty) != value:
        raise ValueError("compact and pretty documents differ")
    if render(value, False) != compact:
        raise ValueError("compact layout: got %r, want %r" %
                         (compact, render(value, False)))
    if render(value, True) != pretty:
        raise ValueError("pretty layout: got\n%s\nwant\n%s" %
                         (pretty, render(value, True)))
    for check in header[1:]:
        kind, _, arg = check.partition("=")
        if kind == "utf8":
            path, _, hexbytes = arg.partition(":")
            want = bytes.fromhex(hexbytes).decode("utf-8", "replace")
            got = lookup(value, path)
            if got != want:
                raise ValueError("%s: got %r, want %r" % (path, got, want))
        elif kind == "ts":
            path, secs, nanos = arg.split(":")
            want = rfc3339(int(secs), int(nanos))
            got = lookup(value, path)
            if got != want:
                raise ValueError("%s: got %r, want %r" % (path, got, want))
        else:
            raise ValueError("unknown check %r in %s" % (kind, name))


def main():
    out = subprocess.run([sys.argv[1]], stdout=subprocess.PIPE,
                         check=True).stdout
    text = out.decode("utf-8")  # strict: ill-formed UTF-8 fails here
    blocks, failures = [], 0
    for line in text.split("\n"):
        if line.startswith("=== "):
            blocks.append((line[4:].split(" "), []))
        elif blocks:
            blocks[-1][1].append(line)
        elif line:
            raise SystemExit("output before the first block: %r" % line)
    for header, lines in blocks:
        while lines and lines[-1] == "":
            lines.pop()  # the newline km_json_write ends a document with
        try:
            check_block(header, lines)
        except (ValueError, KeyError, TypeError) as e:
            failures += 1
            print("FAIL %s: %s" % (header[0], e))
    print("%d documents checked, %d failed" % (len(blocks), failures))
    if not blocks or failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
