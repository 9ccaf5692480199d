#!/usr/bin/env bash
# check_format.sh — fail when clang-format (.clang-format at the top of the
# tree) would change our C sources; --fix changes them instead.
#
#   tests/check_format.sh [--fix] [FILE...]
#
# Without FILE: the .c and .h files under common storage service clients
# tests/unit tests/fuzz, and tests/integration/*.c and bench/*.c — our own
# code (generated code lives in the build directories; bench's .cc is C++
# and not ours to style). Lists each file that would change with the first
# lines of its diff, and exits 1; exits 0 when nothing would change.
# --fix (make format) rewrites those files in place and lists them.
#
# The formatter is Debian 12's clang-format 14 (package clang-format);
# another version formats some constructs differently. CLANG_FORMAT names
# another binary.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

fix=0
if [ "${1:-}" = --fix ]; then
	fix=1
	shift
fi
case "${1:-}" in
-*)
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
	for c in clang-format-14 clang-format; do
		if command -v "$c" >/dev/null; then
			cf=$c
			break
		fi
	done
fi
if [ -z "$cf" ]; then
	echo "check_format: clang-format missing (apt-get install clang-format)" >&2
	exit 2
fi
version=$("$cf" --version | grep -o 'version [0-9]*' | cut -d' ' -f2)
if [ "$version" != 14 ]; then
	echo "check_format: $cf is version $version, not 14: expect differences" \
		"that are the version's, not the code's" >&2
fi

if [ $# -gt 0 ]; then
	files=("$@")
else
	mapfile -t files < <(
		{
			find common storage service clients tests/unit tests/fuzz \
				-type f -name '*.[ch]'
			find tests/integration bench -maxdepth 1 -type f -name '*.c'
		} | LC_ALL=C sort
	)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

changed=()
lines=0
for f in "${files[@]}"; do
	"$cf" --style=file "$f" >"$tmp/out"
	if cmp -s "$f" "$tmp/out"; then
		continue
	fi
	changed+=("$f")
	diff -u "$f" "$tmp/out" --label "a/$f" --label "b/$f" >"$tmp/diff" || true
	lines=$((lines + $(grep -c '^[-+][^-+]' "$tmp/diff" || true)))
	if [ $fix = 1 ]; then
		cp "$tmp/out" "$f"
		echo "formatted $f"
	else
		head -n 12 "$tmp/diff"
		n=$(wc -l <"$tmp/diff")
		[ "$n" -le 12 ] || echo "... ($((n - 12)) more lines of diff)"
	fi
done

if [ ${#changed[@]} -eq 0 ]; then
	echo "check_format: ${#files[@]} files formatted as .clang-format says"
	exit 0
fi
if [ $fix = 1 ]; then
	echo "check_format: formatted ${#changed[@]} of ${#files[@]} files" \
		"($lines lines removed or added)"
	exit 0
fi
echo
echo "check_format: clang-format would change ${#changed[@]} of ${#files[@]}" \
	"files ($lines lines removed or added):"
printf '  %s\n' "${changed[@]}"
echo "check_format: run make format (tests/check_format.sh --fix)" >&2
exit 1
