#!/usr/bin/env python3
"""Cross-checks anvil's Hugging Face GPT-2 interchange from the Python side.

  hf_check.py check DIR   DIR holds model.safetensors + config.json (anvil's
                          export), layout.txt ("name offset d0 d1 ..." per
                          tensor), params.bin (the flat fp32 parameters), and
                          tokens.bin (int32, B*T) + logits.bin (fp32, B*T*V) with
                          B T V in shape.txt. Checks every tensor equals the
                          parameters (Conv1D weights transposed, lm_head tied);
                          with transformers, that GPT2LMHeadModel loads DIR and
                          its logits match anvil's.
  hf_check.py make DIR    Writes a randomly initialised GPT2LMHeadModel with
                          save_pretrained (HF's own names and layout) plus
                          tokens.bin and logits.bin, for anvil's import test.
Exit codes: 0 pass, 1 mismatch, 77 skip (safetensors/torch/transformers missing).
"""
import importlib
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

SKIP = 77


def need(module):
    try:
        return importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure means skip
        print(f"skip: cannot import {module}: {e}")
        sys.exit(SKIP)


def read_shape(d):
    with open(os.path.join(d, "shape.txt")) as f:
        return [int(x) for x in f.read().split()]


def check(d):
    torch = need("torch")
    st = need("safetensors.torch")
    tensors = st.load_file(os.path.join(d, "model.safetensors"))
    flat = torch.frombuffer(bytearray(open(os.path.join(d, "params.bin"), "rb").read()), dtype=torch.float32)
    conv1d = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
    seen = set()
    bad = 0
    for line in open(os.path.join(d, "layout.txt")):
        parts = line.split()
        name, offset, shape = parts[0], int(parts[1]), [int(x) for x in parts[2:]]
        n = 1
        for s in shape:
            n *= s
        want = flat[offset:offset + n].reshape(shape)
        if name.endswith(conv1d):
            want = want.t().contiguous()
        key = "transformer." + name
        seen.add(key)
        got = tensors.get(key)
        if got is None or got.dtype != torch.float32 or not torch.equal(got, want):
            print(f"mismatch: {key}")
            bad += 1
    if not torch.equal(tensors["lm_head.weight"], tensors["transformer.wte.weight"]):
        print("mismatch: lm_head.weight is not wte")
        bad += 1
    extra = set(tensors) - seen - {"lm_head.weight"}
    if extra:
        print(f"unexpected tensors: {sorted(extra)}")
        bad += 1
    print(f"safetensors: {len(seen) + 1} tensors compared, {bad} mismatches")
    if bad:
        return 1
    try:
        import transformers  # noqa: F401
    except Exception as e:  # noqa: BLE001
        print(f"transformers not importable ({e}); tensor check only")
        return 0
    from transformers import GPT2LMHeadModel
    model = GPT2LMHeadModel.from_pretrained(d).eval()
    B, T, V = read_shape(d)
    tokens = torch.frombuffer(bytearray(open(os.path.join(d, "tokens.bin"), "rb").read()),
                              dtype=torch.int32).reshape(B, T).long()
    ours = torch.frombuffer(bytearray(open(os.path.join(d, "logits.bin"), "rb").read()),
                            dtype=torch.float32).reshape(B, T, V)
    with torch.no_grad():
        logits = model(tokens).logits.float()
    diff = (logits - ours).abs().max().item()
    print(f"transformers GPT2LMHeadModel logits vs anvil: max abs diff {diff:.3e}")
    return 0 if diff < 1e-4 else 1


def make(d):
    torch = need("torch")
    need("safetensors")
    transformers = need("transformers")
    B, T, V = read_shape(d)
    L, H, C = [int(x) for x in open(os.path.join(d, "model.txt")).read().split()]
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=V, n_positions=T, n_embd=C, n_layer=L, n_head=H,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                  bos_token_id=V - 1, eos_token_id=V - 1)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # non-trivial biases and norms, so every mapping matters
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(os.path.join(d, "hf"), safe_serialization=True)
    tokens = torch.randint(0, V, (B, T), dtype=torch.int32)
    with torch.no_grad():
        logits = model(tokens.long()).logits.float()
    open(os.path.join(d, "tokens.bin"), "wb").write(tokens.numpy().tobytes())
    open(os.path.join(d, "logits.bin"), "wb").write(logits.numpy().tobytes())
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "make"):
        print(__doc__)
        sys.exit(2)
    sys.exit(check(sys.argv[2]) if sys.argv[1] == "check" else make(sys.argv[2]))
