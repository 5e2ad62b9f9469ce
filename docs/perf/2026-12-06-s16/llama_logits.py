"""llama.cpp's (CPU, llama-cpp-python 0.3.16) logits for the reference's tokens, teacher-forced,
written as a reference.safetensors of the fixtures' format (tokens_bf16, logits_f32)."""
import json, struct, sys
import numpy as np
from llama_cpp import Llama
gguf, ref, out = sys.argv[1:4]
def read(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    t = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        dt = {'F32': np.float32, 'I64': np.int64, 'BF16': np.uint16}[v['dtype']]
        t[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v['shape'])
    return t
r = read(ref)
toks = [int(x) for x in r['tokens_bf16']]
m = Llama(model_path=gguf, n_ctx=128, logits_all=True, n_threads=2, verbose=False)
m.eval(toks)
logits = np.array(m.scores[:len(toks)], dtype=np.float32)
want = r['logits_f32']
err = np.linalg.norm(logits - want, axis=1) / np.linalg.norm(want, axis=1)
print('llama.cpp vs reference: per-position rel L2', ' '.join(f'{e:.3e}' for e in err))
print('max', err.max(), 'argmax agree', int((logits.argmax(1) == want.argmax(1)).sum()), 'of', len(toks))
def write(path, tensors):
    hdr, off, blobs = {}, 0, []
    for k, (dt, a) in tensors.items():
        bts = a.tobytes(); hdr[k] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [off, off + len(bts)]}
        off += len(bts); blobs.append(bts)
    hj = json.dumps(hdr).encode(); hj += b' ' * (-len(hj) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hj))); f.write(hj); [f.write(x) for x in blobs]
t = {k: ('I64', v) for k, v in r.items() if v.dtype == np.int64}
t['logits_f32'] = ('F32', logits)
write(out, t)
