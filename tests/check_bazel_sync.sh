#!/usr/bin/env bash
# check_bazel_sync.sh — fail when CMake and Bazel build different C sources.
#
#   tests/check_bazel_sync.sh [DIR...]
#
# Lists the .c files under DIR... (default: common storage service clients
# tests/unit tests/integration) that the CMakeLists.txt files name, and those the
# BUILD.bazel files name, and fails listing the difference. A plain text
# comparison, no build needed: run it from anywhere, in CI next to the builds.
#
# What it understands (keep the build files in this shape):
#   CMakeLists.txt  source paths relative to that file's directory, e.g.
#                   common/km_log.c; km_unit_test(NAME) means NAME.c.
#                   Anything with ${...} is generated and skipped.
#   BUILD.bazel     quoted file names relative to that package, e.g. "km_log.c";
#                   km_unit_test(name = "NAME") means NAME.c. Labels ("//x:y",
#                   ":y") are generated files and skipped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ $# -gt 0 ]; then
	dirs=("$@")
else
	dirs=(common storage service clients tests/unit tests/integration)
fi

# Text of a build file without comments, on one line.
flat() {
	sed 's/#.*//' "$1" | tr '\n\t' '  '
}

# Directory prefix of a build file ("" at the top).
prefix() {
	local d
	d=$(dirname "$1")
	if [ "$d" = . ]; then echo ""; else echo "$d/"; fi
}

# Build files named $1 in the tree, outside build outputs and caches.
build_files() {
	find . \( -path ./.git -o -path ./.cache -o -path './build*' -o -path './bazel-*' \) \
		-prune -o -name "$1" -print | sed 's|^\./||' | LC_ALL=C sort
}

cmake_sources() {
	local f p
	while IFS= read -r f; do
		p=$(prefix "$f")
		flat "$f" | grep -oE '[^[:space:]()"]+\.c\b' |
			grep -v '[$]' | sed "s|^|$p|" || true
		flat "$f" | grep -oE 'km_unit_test\([[:space:]]*[A-Za-z0-9_]+' |
			sed -E "s|km_unit_test\([[:space:]]*|$p|; s|$|.c|" || true
	done < <(build_files CMakeLists.txt)
}

bazel_sources() {
	local f p
	while IFS= read -r f; do
		p=$(prefix "$f")
		# protoc-c output (*.pb-c.c) is generated, not a source.
		flat "$f" | grep -oE '"[^"]+\.c"' | tr -d '"' |
			grep -v ':' | grep -v '\.pb-c\.c$' | sed "s|^|$p|" || true
		flat "$f" | grep -oE 'km_unit_test\([[:space:]]*name[[:space:]]*=[[:space:]]*"[^"]+"' |
			sed -E "s|.*\"([^\"]+)\"|$p\1.c|" || true
	done < <(build_files BUILD.bazel)
}

# Keep the paths under the checked directories, one of each, sorted.
only_dirs() {
	local d pattern=""
	for d in "${dirs[@]}"; do
		d=${d%/}
		pattern="$pattern${pattern:+|}^${d}/"
	done
	grep -E "$pattern" | LC_ALL=C sort -u || true
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake_sources | only_dirs >"$tmp/cmake"
bazel_sources | only_dirs >"$tmp/bazel"

status=0
if [ ! -s "$tmp/cmake" ]; then
	echo "check_bazel_sync: no C sources found in CMakeLists.txt under: ${dirs[*]}" >&2
	exit 2
fi
only_cmake=$(LC_ALL=C comm -23 "$tmp/cmake" "$tmp/bazel")
only_bazel=$(LC_ALL=C comm -13 "$tmp/cmake" "$tmp/bazel")
if [ -n "$only_cmake" ]; then
	echo "In CMakeLists.txt but in no BUILD.bazel:"
	echo "$only_cmake" | sed 's/^/  /'
	status=1
fi
if [ -n "$only_bazel" ]; then
	echo "In a BUILD.bazel but in no CMakeLists.txt:"
	echo "$only_bazel" | sed 's/^/  /'
	status=1
fi
missing=$(LC_ALL=C sort -u "$tmp/cmake" "$tmp/bazel" |
	while IFS= read -r f; do [ -e "$f" ] || echo "$f"; done)
if [ -n "$missing" ]; then
	echo "Named by the builds but not in the tree:"
	echo "$missing" | sed 's/^/  /'
	status=1
fi
if [ $status -eq 0 ]; then
	echo "check_bazel_sync: CMake and Bazel build the same $(wc -l <"$tmp/cmake") C sources" \
		"under ${dirs[*]}"
else
	echo "check_bazel_sync: keep CMakeLists.txt and the BUILD.bazel files in step (docs/bazel.md)" >&2
fi
exit $status
