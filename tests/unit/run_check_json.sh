#!/bin/sh
# Bazel's wrapper for check_json.py: python3 CHECKER SAMPLES_BINARY.
exec python3 "$2" "$1"
