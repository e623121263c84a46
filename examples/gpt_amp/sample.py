"""Sample from a checkpoint written by train.py (nanoGPT's sample.py, our own code): loads the
model and its vocabulary, generates with temperature and top-k under the same autocast setting.
Plain PyTorch API; `--top-k 1` decodes greedily (the same text on any library).

    python examples/gpt_amp/sample.py --out-dir out-gpt-amp --start "ROMEO:" --num-samples 2
"""
import argparse
import json
import os
from contextlib import nullcontext

import torch
from model import GPT, GPTConfig


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default="out-gpt-amp")
    p.add_argument("--start", default="\n")
    p.add_argument("--num-samples", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    device_type = "cuda" if args.device.startswith("cuda") else "cpu"
    ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    ctx = nullcontext() if args.dtype == "float32" else torch.amp.autocast(device_type=device_type, dtype=ptdtype)
    checkpoint = torch.load(os.path.join(args.out_dir, "ckpt.pt"), map_location=args.device)
    model = GPT(GPTConfig(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["model"])
    model.eval().to(args.device)
    vocab = checkpoint["vocab"]
    stoi = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(args.start) - set(stoi))
    if unknown:
        raise SystemExit(f"sample.py: --start has characters the model never saw: {unknown}")
    x = torch.tensor([[stoi[c] for c in args.start]], dtype=torch.long, device=args.device)
    with torch.no_grad(), ctx:
        for _ in range(args.num_samples):
            y = model.generate(x, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k)
            print(json.dumps({"sample": "".join(vocab[i] for i in y[0].tolist())}), flush=True)


if __name__ == "__main__":
    main()
