#!/usr/bin/env python3
"""A llama checkpoint of random bf16 weights for config.json in DIR, and a reference of n
zero logits (the GPU check is read against the simulator only). stdlib only."""
import json, random, struct, sys, os
d = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
c = json.load(open(os.path.join(d, 'config.json')))
h, i, V = c['hidden_size'], c['intermediate_size'], c['vocab_size']
hd = c.get('head_dim', h // c['num_attention_heads'])
q, kv = c['num_attention_heads'] * hd, c['num_key_value_heads'] * hd
rng = random.Random(7)
def bf16(vals):
    return b''.join(struct.pack('<I', struct.unpack('<I', struct.pack('<f', v))[0])[2:] for v in vals)
def rand(shape, std=0.05):
    m = 1
    for s in shape: m *= s
    # 4096 distinct rows' worth of values, tiled: fast and still random-looking per row.
    pool = bf16([rng.gauss(0, std) for _ in range(min(m, 1 << 16))])
    reps = (2 * m + len(pool) - 1) // len(pool)
    return (pool * reps)[:2 * m]
def ones(shape):
    return bf16([1.0 + rng.gauss(0, 0.1) for _ in range(shape[0])])
T = {'model.embed_tokens.weight': ([V, h], rand([V, h], 1.0)), 'model.norm.weight': ([h], ones([h]))}
if not c.get('tie_word_embeddings'):
    T['lm_head.weight'] = ([V, h], rand([V, h]))
for l in range(c['num_hidden_layers']):
    p = f'model.layers.{l}.'
    T[p + 'input_layernorm.weight'] = ([h], ones([h]))
    T[p + 'post_attention_layernorm.weight'] = ([h], ones([h]))
    for nm, sh in [('self_attn.q_proj', [q, h]), ('self_attn.k_proj', [kv, h]), ('self_attn.v_proj', [kv, h]),
                   ('self_attn.o_proj', [h, q]), ('mlp.gate_proj', [i, h]), ('mlp.up_proj', [i, h]), ('mlp.down_proj', [h, i])]:
        T[p + nm + '.weight'] = (sh, rand(sh))
def write(path, tensors):
    hdr, off, blobs = {}, 0, []
    for k, (dt, sh, b) in tensors.items():
        hdr[k] = {'dtype': dt, 'shape': sh, 'data_offsets': [off, off + len(b)]}; off += len(b); blobs.append(b)
    hj = json.dumps(hdr).encode(); hj += b' ' * (-len(hj) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hj))); f.write(hj)
        for b in blobs: f.write(b)
write(os.path.join(d, 'model.safetensors'), {k: ('BF16', s, b) for k, (s, b) in T.items()})
prompt = [rng.randrange(V) for _ in range(3)]
toks = prompt + [rng.randrange(V) for _ in range(n - 3)]
i64 = lambda v: b''.join(struct.pack('<q', x) for x in v)
z = b'\0' * (4 * n * V)
write(os.path.join(d, 'reference.safetensors'), {'prompt': ('I64', [3], i64(prompt)), 'tokens_bf16': ('I64', [n], i64(toks)),
      'tokens_f32': ('I64', [n], i64(toks)), 'logits_bf16': ('F32', [n, V], z), 'logits_f32': ('F32', [n, V], z)})
