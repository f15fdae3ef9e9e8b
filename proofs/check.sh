#!/usr/bin/env bash
# Builds the Coq model and theorems (proofs/coq), checks that no proof is admitted and
# every theorem is closed under the global context (Print Assumptions), prints coqwc
# line counts, and runs the three model mutants, each of which must make a named proof
# fail to compile (so the model is not true trivially). `make proofs` runs it.
set -euo pipefail
cd "$(dirname "$0")/coq"
command -v coqc >/dev/null || { echo "proofs: coqc not found (make proofs installs coq and libcoq-stdpp)"; exit 1; }

start=$(date +%s)
mapfile -t files < <(grep '\.v$' _CoqProject)
fail=0

# Every file opens with a one-line (** summary *) comment.
for f in "${files[@]}"; do
    head -1 "$f" | grep -q '^(\*\* .* \*)$' || { echo "proofs: $f does not open with a one-line (** summary *)"; fail=1; }
done
# Nothing admitted, no axioms or section hypotheses.
if grep -nwE 'Admitted|admit|Axiom|Axioms|Parameter|Parameters|Hypothesis|Hypotheses|Conjecture|Variable|Variables' "${files[@]}"; then
    echo "proofs: the lines above admit a proof or assume something"; fail=1
fi
[ $fail -eq 0 ] || exit 1

# Build (two jobs).
coq_makefile -f _CoqProject -o CoqMakefile >/dev/null 2>&1
if ! make -s -f CoqMakefile -j2 >build.log 2>&1; then cat build.log; echo "proofs: build failed"; exit 1; fi
built=$(date +%s)

# Print Assumptions on every Theorem and Lemma.
mapfile -t thms < <(grep -hoE '^(Theorem|Corollary|Example) [A-Za-z0-9_]+' "${files[@]}" | awk '{print $2}')
mapfile -t lems < <(grep -hoE '^Lemma [A-Za-z0-9_]+' "${files[@]}" | awk '{print $2}')
last=$(basename "${files[-1]}" .v)
{
    echo "From Iso Require Import $last."
    for t in "${thms[@]}" "${lems[@]}"; do echo "Print Assumptions $t."; done
} > Assumptions.v
coqc -Q . Iso Assumptions.v > assumptions.log 2>&1 || { cat assumptions.log; exit 1; }
rm -f Assumptions.v Assumptions.vo Assumptions.vok Assumptions.vos Assumptions.glob .Assumptions.aux
closed=$(grep -c 'Closed under the global context' assumptions.log || true)
total=$(( ${#thms[@]} + ${#lems[@]} ))
if [ "$closed" -ne "$total" ] || grep -q 'Axioms:' assumptions.log; then
    cat assumptions.log; echo "proofs: $closed of $total closed under the global context"; exit 1
fi
for t in "${thms[@]}"; do echo "proofs: $t: proved, closed under the global context"; done
echo "proofs: ${#lems[@]} lemmas, all closed under the global context"

# Line counts.
coqwc "${files[@]}" | tail -1 | awk '{printf "proofs: coqwc: %d lines of definitions and statements, %d of proof, %d of comments\n", $1, $2, $3}'

# Mutants: the three holes the kernel's mutation gate reintroduces, and two of issue 9's
# confirmed holes, applied to step.
# Each is a sed on Step.v (fields: name @ sed @ proof it must break @ what it does).
mutants=(
  "skip-inval@s/| Some d => inval_page s2 d i j/| Some d => s2/@T1_unmap_frame@FrameUnmapIo skips the IOTLB invalidation"
  "skip-empty@s/let s3 := set_leaf s2 (upd (leafent s) T (fun _ => None))/let s3 := s2/@T1_unmap_table@IoPageTableUnmap leaves the table's entries"
  "skip-sid@s/(<\[v := Some rid\]> (irte s))/(<[v := None]> (irte s))/@T1_get_msi@GetMsi writes an IRTE without source-id validation"
  "hole1@s/let s2 := set_leaf s1 (upd2 (leafent s) T j None) in/let s2 := s1 in/@T1_unmap_frame@issue 9 hole 1: unmap drops the frame cap's record, leaves the leaf"
  "hole8@s/inval_irte (set_irte s (delete v (irte s)) (irtec s)) v/inval_irte (set_irte s (irte s) (irtec s)) v/@release_ok@issue 9 hole 8: the IRTE outlives the vector's last MSI cap"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_mutant() {
    local name=$1 expr=$2 dir=$tmp/$1
    mkdir -p "$dir" && cp -r . "$dir/" && cd "$dir"
    sed -i "$expr" Step.v
    if cmp -s Step.v "$OLDPWD/Step.v"; then echo "NOTAPPLIED"; return; fi
    local started=0 f
    for f in "${files[@]}"; do
        [ "$f" = Step.v ] && started=1
        [ $started -eq 1 ] || continue
        if ! coqc -Q . Iso "$f" >"$dir/err.log" 2>&1; then
            local line; line=$(grep -oE 'line [0-9]+' "$dir/err.log" | head -1 | awk '{print $2}')
            local lemma; lemma=$(head -n "$line" "$f" | grep -oE '^(Lemma|Theorem) [A-Za-z0-9_]+' | tail -1 | awk '{print $2}')
            echo "FAILED $lemma $f:$line"; return
        fi
    done
    echo "SURVIVED"
}
killed=0
declare -A result
for m in "${mutants[@]}"; do
    IFS='@' read -r name expr expect what <<<"$m"
    ( run_mutant "$name" "$expr" > "$tmp/$name.out" ) &
done
wait
for m in "${mutants[@]}"; do
    IFS='@' read -r name expr expect what <<<"$m"
    read -r status lemma where < "$tmp/$name.out" || true
    if [ "$status" = FAILED ] && [ "$lemma" = "$expect" ]; then
        echo "proofs: mutant $name ($what): killed, $lemma no longer compiles ($where)"
        killed=$((killed + 1))
    else
        echo "proofs: mutant $name ($what): NOT killed as expected ($status $lemma $where; want $expect)"
        fail=1
    fi
done
end=$(date +%s)
passed=${#thms[@]}
failed=0
[ $fail -eq 0 ] || failed=1
echo "proofs: built in $((built - start)) s, total with assumptions and mutants $((end - start)) s; mutants killed: $killed of ${#mutants[@]}"
echo "proofs: $passed passed, $failed failed"
[ $fail -eq 0 ]
