#!/usr/bin/env bash
# Builds the Coq model and theorems (proofs/coq), checks that no proof is admitted and
# every theorem is closed under the global context (Print Assumptions), prints coqwc
# line counts, and runs the model mutants, each of which must make a named proof fail to
# compile (so the model is not true trivially). Then the Rust side: the spec's names
# match the model's, the differential tests pass, every kernel and spec mutant makes
# them fail, and the spec's recorded traces replay through the model extracted from Coq
# with no difference (every spec mutant makes one). `make proofs` runs it
# (proofs/README.md).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
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

# Mutants: the three holes the kernel's mutation gate reintroduces, and four of issue 9's
# confirmed holes, applied to the model's step functions.
# Each is a sed on one file (fields: name @ file @ sed @ proof it must break @ what it does).
mutants=(
  "skip-inval@Step.v@s/| Some d => inval_page s2 d i j/| Some d => s2/@T1_unmap_frame@FrameUnmapIo skips the IOTLB invalidation"
  "skip-empty@Step.v@s/let s3 := set_leaf s2 (upd (leafent s) T (fun _ => None))/let s3 := s2/@T1_unmap_table@IoPageTableUnmap leaves the table's entries"
  "skip-sid@Step.v@s/(<\[v := Some rid\]> (irte s))/(<[v := None]> (irte s))/@T1_get_msi@GetMsi writes an IRTE without source-id validation"
  "hole1@Step.v@s/let s2 := set_leaf s1 (upd2 (leafent s) T j None) in/let s2 := s1 in/@T1_unmap_frame@issue 9 hole 1: unmap drops the frame cap's record, leaves the leaf"
  "hole8@Step.v@s/inval_irte (set_irte s (delete v (irte s)) (irtec s)) v/inval_irte (set_irte s (irte s) (irtec s)) v/@release_ok@issue 9 hole 8: the IRTE outlives the vector's last MSI cap"
  "hole2@Cspace.v@s/  bool_decide (final_container s d)\./  false./;s/  bool_decide (cslots s1 !! src = c \/\\\\ /  bool_decide (/@cinv_replace@issue 9 hole 2: TcbConfigure deletes the last cap to the CNode holding its source, then copies from the emptied slot"
  "hole12-rax@Threads.v@s/Thread ThRestart (if fault then th_rax th else err_cancelled)/Thread ThRestart err_cancelled/@T11@issue 9 hole 12: a cancelled fault sender gets an error in rax"
  "hole12-rights@Threads.v@s/Definition may_cancel (r : trights) : bool := all_rights r\./Definition may_cancel (r : trights) : bool := t_write r./@T12@issue 9 hole 12: a send-only endpoint cap cancels other threads' sends"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_mutant() {
    local name=$1 file=$2 expr=$3 dir=$tmp/$1
    mkdir -p "$dir" && cp -r . "$dir/" && cd "$dir"
    sed -i "$expr" "$file"
    if cmp -s "$file" "$OLDPWD/$file"; then echo "NOTAPPLIED"; return; fi
    local started=0 f
    for f in "${files[@]}"; do
        [ "$f" = "$file" ] && started=1
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
    IFS='@' read -r name file expr expect what <<<"$m"
    ( run_mutant "$name" "$file" "$expr" > "$tmp/$name.out" ) &
done
wait
for m in "${mutants[@]}"; do
    IFS='@' read -r name file expr expect what <<<"$m"
    read -r status lemma where < "$tmp/$name.out" || true
    if [ "$status" = FAILED ] && [ "$lemma" = "$expect" ]; then
        echo "proofs: mutant $name ($what): killed, $lemma no longer compiles ($where)"
        killed=$((killed + 1))
    else
        echo "proofs: mutant $name ($what): NOT killed as expected ($status $lemma $where; want $expect)"
        fail=1
    fi
done
coq_end=$(date +%s)
echo "proofs: built in $((built - start)) s, total with assumptions and mutants $((coq_end - start)) s; mutants killed: $killed of ${#mutants[@]}"

# The Rust side (issue 16 item 3): the executable spec mirrors the model name for name,
# the kernel's IOSpace code agrees with it step by step on a VT-d simulator, and each
# kernel mutant (a test-only feature) and each model mutant applied to the spec makes
# that fail. Sequences: PROOFS_SEQUENCES (default 1000) of 200 steps.
cd "$REPO_ROOT"
rust_start=$(date +%s)
sequences=${PROOFS_SEQUENCES:-1000}
python3 proofs/spec/names.py || fail=1
if ! cargo test -q -p spec >"$tmp/spec.log" 2>&1; then cat "$tmp/spec.log"; echo "proofs: spec tests failed"; fail=1; fi
diff_line=""
if PROOFS_SEQUENCES=$sequences cargo test -q -p kernel --lib iommu::diff_tests -- --nocapture >"$tmp/diff.log" 2>&1; then
    # Not anchored: with -q, libtest's progress dot of the other test may precede it
    # on the same line (an anchored grep then found nothing and set -e ended the script silently).
    diff_line=$(grep -m1 -o 'proofs: differential:.*' "$tmp/diff.log" || true)
    if [ -n "$diff_line" ]; then
        echo "$diff_line"
    else
        cat "$tmp/diff.log"; echo "proofs: the differential tests printed no summary"; fail=1
    fi
else
    cat "$tmp/diff.log"; echo "proofs: the differential tests failed"; fail=1
fi
# Kernel mutants: each must make the differential suite report a divergence (a build
# error or any other failure does not count).
kernel_mutants=(
  "skip-inval@io_mapping::unmap skips a frame's IOTLB invalidation"
  "skip-empty@io_mapping::clear leaves an unmapped IO page table's entries"
  "skip-sid@intremap::msi_entry writes an MSI IRTE without source-id validation"
  "hole1@issue 9 hole 1: io_mapping::clear drops the frame's record, keeps the entry"
)
rust_killed=0
for m in "${kernel_mutants[@]}"; do
    IFS='@' read -r name what <<<"$m"
    PROOFS_SEQUENCES=$sequences PROOFS_SHRINK=0 cargo test -q -p kernel --lib --features "mutant-$name" \
        iommu::diff_tests::kernel >"$tmp/k-$name.log" 2>&1 || true
    if grep -q 'the kernel and the spec diverge' "$tmp/k-$name.log"; then
        where=$(grep -m1 -oE 'step [0-9]+ \(Some\([A-Za-z]+' "$tmp/k-$name.log" | sed 's/(Some(/(/' || true)
        differs=$(grep -m1 -oE '\]\): [^:]+ differ' "$tmp/k-$name.log" | sed 's/^]): //' || true)
        echo "proofs: kernel mutant $name ($what): killed, $differs at $where)"
        rust_killed=$((rust_killed + 1))
    else
        tail -20 "$tmp/k-$name.log"; echo "proofs: kernel mutant $name ($what): NOT killed"; fail=1
    fi
done
# Issue 9 holes 2 and 12 concern TCBs and IPC, which the VT-d model and its differential
# tests do not contain. The kernel's logic for each (TCB Configure's slot update in
# object::cnode, the cancel decision in object::tcb and object::endpoint) has host
# tests named hole2_* and hole12_*, and differential tests against the mirrors of the
# CSpace and thread layers (proofs/spec/src/kernel_holes_diff.rs, tests named
# hole2_kernel_* and hole12_kernel_*): all must pass, and each kernel mutant that
# reintroduces the hole must make both its host tests fail on an assertion and its
# differential tests report a divergence at a step.
hole_mutants=(
  "hole2@issue 9 hole 2: TCB Configure deletes its own sources, then copies from them"
  "hole12@issue 9 hole 12: a cancelled fault sender gets an error in rax; a send-only cap cancels sends"
)
if RUST_BACKTRACE=0 cargo test -q -p kernel --lib -- hole2_ hole12_ >"$tmp/holes.log" 2>&1 \
        && grep -qE 'test result: ok\. [1-9][0-9]* passed' "$tmp/holes.log"; then
    echo "proofs: issue 9 holes 2 and 12: $(grep -oE '[0-9]+ passed' "$tmp/holes.log" | head -1) host tests (hole2_*, hole12_*)"
else
    cat "$tmp/holes.log"; echo "proofs: the host tests of issue 9 holes 2 and 12 failed or did not run"; fail=1
fi
if RUST_BACKTRACE=0 cargo test -q -p spec kernel_holes_diff >"$tmp/holes-diff.log" 2>&1 \
        && grep -qE 'test result: ok\. [1-9][0-9]* passed' "$tmp/holes-diff.log"; then
    echo "proofs: issue 9 holes 2 and 12: $(grep -oE '[0-9]+ passed' "$tmp/holes-diff.log" | head -1) differential tests (kernel_holes_diff: the kernel's cnode, tcb and endpoint code against cspace.rs and threads.rs)"
else
    cat "$tmp/holes-diff.log"; echo "proofs: the differential tests of issue 9 holes 2 and 12 failed or did not run"; fail=1
fi
for m in "${hole_mutants[@]}"; do
    IFS='@' read -r name what <<<"$m"
    RUST_BACKTRACE=0 cargo test -q -p kernel --lib --features "mutant-$name" -- "${name}_" >"$tmp/k-$name.log" 2>&1 || true
    failed=$(grep -c -- '--- FAILED' "$tmp/k-$name.log" || true)
    PROPTEST_MAX_SHRINK_ITERS=0 RUST_BACKTRACE=0 cargo test -q -p spec --features "kernel/mutant-$name" \
        "kernel_holes_diff::${name}_" >"$tmp/kd-$name.log" 2>&1 || true
    diverged=$(grep -m1 -oE 'step [0-9]+ [A-Za-z]+\([0-9, ]*\)' "$tmp/kd-$name.log" || true)
    if [ "$failed" -gt 0 ] && grep -q 'panicked at kernel/src' "$tmp/k-$name.log" && [ -n "$diverged" ]; then
        msg=$(grep -m1 -A1 'panicked at kernel/src' "$tmp/k-$name.log" | tail -1)
        echo "proofs: kernel mutant $name ($what): killed, failing host tests: $failed (first: $msg); kernel and spec differ at $diverged"
        rust_killed=$((rust_killed + 1))
    else
        tail -20 "$tmp/k-$name.log" "$tmp/kd-$name.log"; echo "proofs: kernel mutant $name ($what): NOT killed (host tests failing: $failed; differential: ${diverged:-no divergence})"; fail=1
    fi
done
kernel_total=$(( ${#kernel_mutants[@]} + ${#hole_mutants[@]} ))
# The model mutants applied to the spec's step: the invariant check must fail.
spec_killed=0
for m in skip-inval skip-empty skip-sid hole1 hole8; do
    if PROPTEST_MAX_SHRINK_ITERS=0 cargo test -q -p spec --features "mutant-$m" random_traces >"$tmp/s-$m.log" 2>&1; then
        echo "proofs: spec mutant $m: NOT killed"; fail=1
    elif grep -qE 'i_[a-z0-9_]+:' "$tmp/s-$m.log"; then
        echo "proofs: spec mutant $m: killed, $(grep -m1 -oE 'i_[a-z0-9_]+: [a-zA-Z ]*[a-zA-Z]' "$tmp/s-$m.log" || true) (invariant check)"
        spec_killed=$((spec_killed + 1))
    else
        tail -20 "$tmp/s-$m.log"; echo "proofs: spec mutant $m: failed without an invariant violation"; fail=1
    fi
done
# The mutants of the CSpace and thread layers applied to their mirrors: the random
# traces must report the invariant (T10) or T11 / T12 broken (fields: name @ test @
# what the failure must say).
layer_mutants=(
  "hole2@cspace_random_traces@ci_[a-z]+: [a-zA-Z0-9 >-]*[a-z0-9]"
  "hole12-rax@threads_random_traces@T11: thread [0-9]+'s rax [0-9]+ -> [0-9]+"
  "hole12-rights@threads_random_traces@T12: thread [0-9]+ left the send queue of [0-9]+"
)
for m in "${layer_mutants[@]}"; do
    IFS='@' read -r name test pattern <<<"$m"
    if PROPTEST_MAX_SHRINK_ITERS=0 cargo test -q -p spec --features "mutant-$name" "$test" >"$tmp/s-$name.log" 2>&1; then
        echo "proofs: spec mutant $name: NOT killed"; fail=1
    elif grep -qE "$pattern" "$tmp/s-$name.log"; then
        echo "proofs: spec mutant $name: killed, $(grep -m1 -oE "$pattern" "$tmp/s-$name.log")"
        spec_killed=$((spec_killed + 1))
    else
        tail -20 "$tmp/s-$name.log"; echo "proofs: spec mutant $name: failed without the expected violation"; fail=1
    fi
done
spec_total=$((5 + ${#layer_mutants[@]}))
# Replay (issue 16 item 3): the spec records traces (proofs/spec/src/trace.rs), Coq
# extracts step, hw_next and the observations of Replay.v to OCaml, and the replay runs
# every trace through them, comparing observations after every event. Each spec mutant
# must make the replay report a difference. PROOFS_REPLAY_TRACES (default 200) random
# traces of 200 generated steps, plus Init.v's run; generated files go to build/replay.
replay_start=$(date +%s)
replay_line=""
replay_short=""
replay_killed=0
replay_dir="$REPO_ROOT/build/replay"
replay_mutants=(skip-inval skip-empty skip-sid hole1 hole8)
rm -rf "$replay_dir" && mkdir -p "$replay_dir"
cp proofs/replay/Extract.v proofs/replay/replay.ml "$replay_dir/"
# Extraction writes model.ml and model.mli; the .mli is dropped: it declares module
# members that ExtrOcamlNatInt inlines away (the implementation is what is compiled).
if ! (cd "$replay_dir" && coqc -Q "$REPO_ROOT/proofs/coq" Iso Extract.v >extract.log 2>&1 && rm -f model.mli \
        && ocamlfind ocamlopt -package str -linkpkg model.ml replay.ml -o replay >ocaml.log 2>&1); then
    cat "$replay_dir"/extract.log "$replay_dir"/ocaml.log 2>/dev/null; echo "proofs: replay: extraction or its build failed"; fail=1
elif ! cargo run -q -p spec --bin trace -- "$replay_dir/traces" "${PROOFS_REPLAY_TRACES:-200}" 200 1 >"$tmp/trace.log" 2>&1; then
    cat "$tmp/trace.log"; echo "proofs: replay: recording the spec's traces failed"; fail=1
elif ! "$replay_dir/replay" "$replay_dir"/traces/trace-*.txt >"$tmp/replay.log" 2>&1; then
    head -c 4000 "$tmp/replay.log"; echo; echo "proofs: replay: the spec and the extracted model differ"; fail=1
else
    replay_line=$(grep -m1 -o 'proofs: replay:.*' "$tmp/replay.log")
    echo "$replay_line"
    replay_short=$(grep -oE '[0-9]+ traces, [0-9]+ steps' <<<"$replay_line")
    for m in "${replay_mutants[@]}"; do
        mdir="$replay_dir/mutant-$m"
        if ! cargo run -q -p spec --features "mutant-$m" --bin trace -- "$mdir" 20 200 1 >"$tmp/trace-$m.log" 2>&1; then
            cat "$tmp/trace-$m.log"; echo "proofs: replay mutant $m: recording failed"; fail=1
        elif "$replay_dir/replay" "$mdir"/trace-*.txt >"$tmp/replay-$m.log" 2>&1; then
            echo "proofs: replay mutant $m: NOT killed (the extracted model agrees with the mutated spec)"; fail=1
        elif grep -q 'differ$' "$tmp/replay-$m.log"; then
            at=$(grep -m1 -oE 'step [0-9]+ \([^)]*\)' "$tmp/replay-$m.log")
            what=$(grep -m1 -oE '^  spec: +[a-z]+' "$tmp/replay-$m.log" | awk '{print $2}')
            echo "proofs: replay mutant $m: killed, $what differs at $at of $(grep -m1 -oE 'trace-[0-9]+' "$tmp/replay-$m.log")"
            replay_killed=$((replay_killed + 1))
        else
            head -20 "$tmp/replay-$m.log"; echo "proofs: replay mutant $m: failed without a difference"; fail=1
        fi
    done
fi
echo "proofs: replay in $(( $(date +%s) - replay_start )) s; replay mutants killed: $replay_killed of ${#replay_mutants[@]}"
end=$(date +%s)
echo "proofs: Rust side in $((end - rust_start)) s; kernel mutants killed: $rust_killed of $kernel_total, spec mutants killed: $spec_killed of $spec_total"
passed=${#thms[@]}
failed=0
[ $fail -eq 0 ] || failed=1
steps=$(grep -oE '[0-9]+ steps' <<<"$diff_line" | head -1 || true)
echo "proofs: $passed passed, $failed failed ($passed theorems; differential: $sequences sequences of 200 steps, ${steps:-no steps}; replay: ${replay_short:-nothing replayed}; mutants killed: $killed of ${#mutants[@]} Coq, $rust_killed of $kernel_total kernel, $spec_killed of $spec_total spec, $replay_killed of ${#replay_mutants[@]} replay; $((end - start)) s)"
[ $fail -eq 0 ]
