#!/usr/bin/env python3
"""PyTorch eager baseline for the runtime's GPT-2 decode benchmark.

Loads a Hugging Face GPT-2 checkpoint directory (config.json + model.safetensors, f32)
into a plain PyTorch GPT-2 (Debian's python3-torch has no `transformers`, so the model
is written out here following modeling_gpt2.py: Conv1D [in, out] weights, fused c_attn,
tanh GELU, tied lm_head) and times greedy decoding with a preallocated KV cache, the
way `halctl run` decodes. Prints JSON:
  {"prefill_tokens_per_s", "decode_tokens_per_s", "generated_ids", "threads", "torch"}

  python3 torch_gpt2_baseline.py --model DIR --prompt-len 16 --new-tokens 64
"""
import argparse
import json
import math
import mmap
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F


def load_safetensors(path):
    """name -> tensor; the file's own format, read without the safetensors package."""
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + begin : base + end]), dtype=dtypes[e["dtype"]])
        out[name] = t.reshape(e["shape"]).float()
    return out


class Gpt2:
    def __init__(self, directory):
        with open(f"{directory}/config.json") as f:
            c = json.load(f)
        self.d = c["n_embd"]
        self.heads = c["n_head"]
        self.layers = c["n_layer"]
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        w = load_safetensors(f"{directory}/model.safetensors")
        w = {k[len("transformer.") :] if k.startswith("transformer.") else k: v for k, v in w.items()}
        self.w = w
        self.head = w["lm_head.weight"] if not c.get("tie_word_embeddings", True) else w["wte.weight"]

    def forward(self, ids, start, k_cache, v_cache):
        """ids [B, S] at positions start.. ; caches [L, B, H, T, Dh] updated in place."""
        w, d, h = self.w, self.d, self.heads
        b, s = ids.shape
        dh = d // h
        pos = torch.arange(start, start + s)
        x = w["wte.weight"][ids] + w["wpe.weight"][pos]
        for l in range(self.layers):
            p = f"h.{l}."
            a = F.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], self.eps)
            qkv = torch.addmm(w[p + "attn.c_attn.bias"], a.view(-1, d), w[p + "attn.c_attn.weight"])
            q, k, v = qkv.view(b, s, 3, h, dh).permute(2, 0, 3, 1, 4)
            k_cache[l, :, :, start : start + s] = k
            v_cache[l, :, :, start : start + s] = v
            kk = k_cache[l, :, :, : start + s]
            vv = v_cache[l, :, :, : start + s]
            # modeling_gpt2.py's eager attention (torch 1.13 has no fused SDPA).
            scores = torch.matmul(q, kk.transpose(-1, -2)) / math.sqrt(dh)
            if s > 1:
                t = start + s
                mask = torch.ones(s, t, dtype=torch.bool).tril(diagonal=start)
                scores = scores.masked_fill(~mask, float("-inf"))
            o = torch.matmul(torch.softmax(scores, dim=-1), vv)
            o = o.transpose(1, 2).reshape(b * s, d)
            x = x + torch.addmm(w[p + "attn.c_proj.bias"], o, w[p + "attn.c_proj.weight"]).view(b, s, d)
            m = F.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], self.eps)
            f = torch.addmm(w[p + "mlp.c_fc.bias"], m.view(-1, d), w[p + "mlp.c_fc.weight"])
            f = F.gelu(f, approximate="tanh")
            x = x + torch.addmm(w[p + "mlp.c_proj.bias"], f, w[p + "mlp.c_proj.weight"]).view(b, s, d)
        last = F.layer_norm(x[:, -1], (d,), w["ln_f.weight"], w["ln_f.bias"], self.eps)
        return last @ self.head.t()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-ids", default="", help="comma-separated ids (default 1..prompt-len)")
    ap.add_argument("--repeats", type=int, default=3, help="best of N timed runs")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="intra-op threads (default: every CPU, as the runtime uses)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    model = Gpt2(args.model)
    prompt = ([int(t) for t in args.prompt_ids.split(",")] if args.prompt_ids
              else [1 + i for i in range(args.prompt_len)])
    ids = torch.tensor([prompt])
    total = len(prompt) + args.new_tokens
    dh = model.d // model.heads
    best_prefill = best_decode = math.inf
    generated = []
    for _ in range(args.repeats + 1):  # the first run warms up
        k_cache = torch.zeros(model.layers, 1, model.heads, total, dh)
        v_cache = torch.zeros_like(k_cache)
        t0 = time.perf_counter()
        logits = model.forward(ids, 0, k_cache, v_cache)
        tok = int(torch.argmax(logits[0]))
        t1 = time.perf_counter()
        out = [tok]
        for i in range(1, args.new_tokens):
            logits = model.forward(torch.tensor([[tok]]), len(prompt) + i - 1, k_cache, v_cache)
            tok = int(torch.argmax(logits[0]))
            out.append(tok)
        t2 = time.perf_counter()
        if generated:
            best_prefill = min(best_prefill, t1 - t0)
            best_decode = min(best_decode, t2 - t1)
        generated = out
    json.dump({
        "prefill_tokens_per_s": len(prompt) / best_prefill,
        "decode_tokens_per_s": (args.new_tokens - 1) / best_decode,
        "generated_ids": generated,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
