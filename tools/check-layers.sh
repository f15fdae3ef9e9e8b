#!/usr/bin/env bash
# Layer rule for `make check`: kernel/src/arch/ is a leaf. It is hardware access only, so
# it may name crate::arch, crate::log (and the log macros info!/warn!/error!/debug!),
# crate::object (pure data types) and crate::boot::memory / crate::boot::params (pure
# boot data), and no other kernel module: policy calls into arch, never the other way.
# Prints every offending line with the rule and exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH_DIR=kernel/src/arch
# Paths checked by hand instead, one per line, each with its reason.
EXCLUDE=()
ALLOWED='^(arch|log|object|boot::memory|boot::params)(::|$)|^(info|warn|error|debug)!?$'

# Numbers the lines of a file and joins a `crate::{` group that rustfmt spread over
# several lines into its first line, so every item of the group is checked.
join_groups() {
    awk '{
        if (open) { buf = buf " " $0; if ($0 ~ /}/) { print start ":" buf; open = 0 } ; next }
        if ($0 ~ /crate::\{/ && $0 !~ /}/) { open = 1; start = NR; buf = $0; next }
        print NR ":" $0
    }' "$1"
}

status=0
while IFS= read -r file; do
    for skip in "${EXCLUDE[@]}"; do
        [[ "$file" == "$skip" ]] && continue 2
    done
    # Comment lines (docs naming other modules) create no dependency.
    while IFS=: read -r line text; do
        [[ "$text" =~ ^[[:space:]]*// ]] && continue
        bad=""
        # `crate::a::b`, `crate::a!`, and each item of `crate::{a, b::c}` on one line.
        for path in $(grep -oE 'crate::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)?!?)' <<<"$text" |
            sed -E 's/^crate:://; s/^\{//; s/\}$//; s/[[:space:]]//g' | tr ',' '\n'); do
            [[ "$path" =~ $ALLOWED ]] || bad="$bad crate::$path"
        done
        if [[ "$text" =~ super::super ]]; then
            bad="$bad super::super (use crate:: paths in arch/)"
        fi
        if [[ -n "$bad" ]]; then
            echo "$file:$line: ${text#"${text%%[![:space:]]*}"}"
            echo "    names$bad"
            status=1
        fi
    done < <(join_groups "$file" | grep -E '^[0-9]+:.*(crate::|super::super)' || true)
done < <(find "$ARCH_DIR" -name '*.rs' | sort)

if [[ $status -ne 0 ]]; then
    echo "check-layers: kernel/src/arch/ is hardware access only; it may use crate::arch, crate::log"
    echo "  and its macros, crate::object, crate::boot::memory and crate::boot::params. Move the"
    echo "  policy up (thread/, iommu/, boot/) and let it call arch, as thread/entry.rs and"
    echo "  thread/finalise.rs do."
fi
exit $status
