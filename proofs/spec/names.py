#!/usr/bin/env python3
"""Checks that proofs/spec mirrors the Coq model one to one: every Definition,
Fixpoint, Inductive, Record, constructor and record field of Model.v, Step.v, Hw.v,
Invariant.v, Cspace.v and Threads.v has an item of the same name (case and underscores
aside) in model.rs, step.rs, hw.rs, invariant.rs, cspace.rs and threads.rs, and the
Rust files define nothing else."""
import re
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
pairs = [("Model.v", "model.rs"), ("Step.v", "step.rs"), ("Hw.v", "hw.rs"), ("Invariant.v", "invariant.rs"),
         ("Cspace.v", "cspace.rs"), ("Threads.v", "threads.rs")]


def norm(name):
    return name.replace("_", "").lower()


def coq_names(text):
    text = re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)
    names = set()
    for m in re.finditer(r"^(Definition|Fixpoint|Inductive|Record)\s+(\w+)", text, re.M):
        names.add(m.group(2))
    # Constructors: the first after ":=", then each after "|", up to the block's end.
    for block in re.finditer(r"^Inductive\s.*?:=(.*?)\.\s*$", text, re.M | re.S):
        body = block.group(1)
        first = re.match(r"\s*([A-Za-z_]\w*)", body)
        if first:
            names.add(first.group(1))
        names |= set(re.findall(r"\|\s*([A-Za-z_]\w*)", body))
    # Records: the constructor (if named) and the fields.
    for rec in re.finditer(r"^Record\s+\w+[^=]*:=\s*(\w*)\s*\{(.*?)\}\.", text, re.M | re.S):
        if rec.group(1):
            names.add(rec.group(1))
        for f in re.finditer(r"(?:\{|;)\s*(\w+)\s*:", "{" + rec.group(2)):
            names.add(f.group(1))
    return names


def rust_names(text):
    text = re.sub(r"//.*", "", text)
    names = set(re.findall(r"\bfn\s+(\w+)", text)) | set(re.findall(r"\b(?:struct|enum)\s+(\w+)", text))
    for body in re.finditer(r"\benum\s+\w+\s*\{(.*?)\n\}", text, re.S):
        names |= set(re.findall(r"^\s{4}([A-Z]\w*)", body.group(1), re.M))
    for body in re.finditer(r"\bstruct\s+\w+\s*\{(.*?)\n\}", text, re.S):
        names |= set(re.findall(r"^\s{4}pub\s+(\w+)\s*:", body.group(1), re.M))
    return names


# Rust-only helpers allowed in the mirror files (not definitions of the model).
allowed = {"fail", "uts", "utpages", "verdict", "homeof"}
# The rules of the Props `desc` and `creach`: Rust's `desc` decides the relation they
# define, and Rust's `creach` computes the state a sequence of steps reaches.
coq_only = {"dbase", "dstep", "crrefl", "crstep"}
bad = 0
total = 0
for coq, rust in pairs:
    c = {norm(n) for n in coq_names((here.parent / "coq" / coq).read_text())} - coq_only
    r = {norm(n) for n in rust_names((here / "src" / rust).read_text())} - allowed
    total += len(c)
    for n in sorted(c - r):
        print(f"proofs: spec: {coq} defines {n}, {rust} does not")
        bad += 1
    for n in sorted(r - c):
        print(f"proofs: spec: {rust} defines {n}, {coq} does not")
        bad += 1
if bad:
    sys.exit(1)
print(f"proofs: spec mirrors the model: {total} Coq names matched one to one")
