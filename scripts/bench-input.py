#!/usr/bin/env python3
"""bench-input.py N FILE: a JSONL of N prompts of varied length (the benchmarks' input)."""
import json
import sys

n, path = int(sys.argv[1]), sys.argv[2]
words = "the quick brown fox jumps over the lazy dog while counting tokens and dollars".split()
with open(path, "w") as f:
    for i in range(n):
        text = " ".join(words[(i + k) % len(words)] for k in range(5 + i % 40))
        f.write(json.dumps({"id": i, "prompt": f"Row {i}: {text}"}) + "\n")
