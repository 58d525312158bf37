"""The demo reader's forward pass in NumPy, the same maths as the ONNX graph reader-onnx.ts writes.

hidden(t) = concat(e_t, gain * c_t), where e_t is the token's vector and c_t the causal, SIF-weighted,
exponentially decayed average of the vectors up to and including t:
    c_t = sum_{s<=t} decay^(t-s) w_s e_s / (sum_{s<=t} decay^(t-s) w_s + EPS)
"""
import json
import struct

import numpy as np
from scipy.signal import lfilter

EPS = 1e-6


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        dt = {'F16': np.float16, 'F32': np.float32}[info['dtype']]
        a, b = info['data_offsets']
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(info['shape'])
    return out, header.get('__metadata__', {})


class Reader:
    def __init__(self, weights_path, decay, gain):
        t, self.meta = load_safetensors(weights_path)
        self.vectors = t['token_vectors'].astype(np.float32)
        self.weights = t['token_weights'].astype(np.float32)
        self.decay = float(decay)
        self.gain = float(gain)

    def context(self, ids):
        e = self.vectors[ids]
        w = self.weights[ids]
        num = lfilter([1.0], [1.0, -self.decay], w[:, None] * e, axis=0)
        den = lfilter([1.0], [1.0, -self.decay], w)
        return e, (num / (den[:, None] + EPS)).astype(np.float32)

    def hidden(self, ids):
        """[T, 2 * dim] hidden states of one document (ids include the leading BOS)."""
        e, c = self.context(ids)
        return np.concatenate([e, self.gain * c], axis=1)
