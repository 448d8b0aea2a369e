#!/usr/bin/env python3
"""Golden reference for the stories260K-hf model, computed by Hugging Face transformers.

Run on the GPU machine (it has torch + transformers): prints the prompt token ids, the greedy
continuation ids, and per-step (argmax id, max logit) for the tests in tests/model/.
Usage: python3 tools/hf_golden_stories.py MODEL_DIR [PROMPT] [N]
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir = sys.argv[1]
prompt = sys.argv[2] if len(sys.argv) > 2 else "Once upon a time"
n_new = int(sys.argv[3]) if len(sys.argv) > 3 else 60

tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
ids = tok(prompt, return_tensors="pt").input_ids
with torch.no_grad():
    out = model.generate(ids, max_new_tokens=n_new, do_sample=False, output_scores=True,
                         return_dict_in_generate=True, output_logits=True)
    full = model(out.sequences).logits[0]  # [seq, vocab] fp32: logits for every position
new_ids = out.sequences[0, ids.shape[1]:].tolist()
prefill_last = full[ids.shape[1] - 1]
report = {
    "prompt": prompt,
    "prompt_ids": ids[0].tolist(),
    "greedy_ids": new_ids,
    "text": tok.decode(new_ids, skip_special_tokens=True),
    "prefill_last_logits_first16": [round(float(x), 6) for x in prefill_last[:16]],
    "step_max_logit": [round(float(full[ids.shape[1] - 1 + i].max()), 6) for i in range(len(new_ids))],
}
print(json.dumps(report, indent=1))
