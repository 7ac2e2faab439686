#!/usr/bin/env python3
"""Hugging Face `tokenizers` (Rust, from PyPI) on the same tokenizer.json and text as
text_benchmark.cc's encode benchmark: the peer a user would compare with. One thread
(TOKENIZERS_PARALLELISM=false), best of --repeats after a warm-up that fills the word
cache, as the C++ benchmark is. The text is encoded paragraph by paragraph (split at
every blank line, as the C++ side splits it), the way documents are fed to a tokenizer.
Prints JSON: {"encode_mb_per_s", "ids" (all paragraphs' ids, concatenated), "tokenizers"}.

    python3 hf_tokenizers_baseline.py --tokenizer tokenizer.json --text corpus.txt
"""
import argparse
import json
import os
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    tok = tokenizers.Tokenizer.from_file(args.tokenizer)
    with open(args.text, "rb") as f:
        data = f.read()
    paragraphs = data.decode("utf-8").split("\n\n")
    ids = []
    for p in paragraphs:  # warm-up
        ids += tok.encode(p, add_special_tokens=False).ids
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        for p in paragraphs:
            tok.encode(p, add_special_tokens=False)
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"encode_mb_per_s": len(data) / best / 1e6, "ids": ids,
                      "tokenizers": tokenizers.__version__}))


if __name__ == "__main__":
    main()
