#!/usr/bin/env bash
# Module-doc rule for `make check`: every tracked .rs file opens with a `//!` block whose
# first line is a one-line summary of at most 80 characters (after `//! `), followed by a
# bare `//!` line when more text follows, so the summary never runs on into a paragraph.
# Prints every offending file with the reason and exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX=80

# Prints "reason" for a file that breaks the rule, nothing for one that keeps it.
# Characters, not bytes: UTF-8 continuation bytes (0x80-0xbf) are not counted.
check_file() {
    LC_ALL=C awk -v max="$MAX" '
        NR == 1 {
            if ($0 !~ /^\/\/!/) { print "no leading //! module doc"; exit }
            text = $0; sub(/^\/\/! ?/, "", text)
            chars = text; gsub(/[\200-\277]/, "", chars)
            if (chars ~ /^[[:space:]]*$/) { print "first //! line is empty (want a one-line summary)"; exit }
            if (length(chars) > max) {
                print "first //! line is " length(chars) " characters (at most " max ")"
            }
            next
        }
        NR == 2 {
            if ($0 ~ /^\/\/!/ && $0 != "//!") {
                print "second //! line is not a bare //! (the summary runs on into a paragraph)"
            }
            exit
        }' "$1"
}

status=0
while IFS= read -r file; do
    [[ -f "$file" ]] || continue
    reasons=$(check_file "$file")
    if [[ -n "$reasons" ]]; then
        echo "$file: ${reasons//$'\n'/; }"
        status=1
    fi
done < <(git ls-files -- '*.rs')

if [[ $status -ne 0 ]]; then
    echo "check-docs: open each .rs file with '//! <one-line summary, at most $MAX characters>',"
    echo "  then a bare '//!' line before any further module text."
fi
exit $status
