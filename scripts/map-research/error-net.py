"""A learned term for the invented-detail map (issue 7 research; README.md in this folder).

The map's result G is wrong where it departs from the fidelity result F (E_d, seen) and where F
itself is wrong (F's error, unseen: detail the input cannot pin down). With F's true local error
energy added, the map's AUROC margin over the gradient baseline would be +0.094 with TTA 8: so
this trains a small CNN to predict F's local error energy from what is seen (the input and F) on
photos that are not Set5/Set14, and scores the map with that prediction P added:
    soft:  S^2 = E_d^2 + E_t^2 + E_l^2 + w * P * DT / (DT + 100),  DT = E_d^2 + E_t^2
           (P counts only where the result adds detail: a fidelity result keeps a dark map)
    plain: S^2 = E_d^2 + E_t^2 + E_l^2 + w * P
w is chosen on the training photos that have G (whole/), then Set5 + Set14 are scored once.

    /usr/bin/python3 scripts/map-research/error-net.py TEST_DUMP TRAIN_DUMP[,TRAIN_DUMP...] [--channels 24]
        [--dilations 1,2,4,8] [--steps 4000] [--save net.pt]

Needs numpy and torch (Debian: python3-numpy, python3-torch; CPU is enough: about 5 minutes for
4000 steps on 2 cores). The dumps are dump-cases.ts's; the first TRAIN_DUMP must have G (no
--fidelity-only), it is where w is chosen.
"""
import argparse, os, re, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

# ---- the arrays, and the project's filters (core/fidelity/filters.ts, evaluate.ts) in numpy ----

def load(dump, name, key):
    for f in os.listdir(dump):
        m = re.fullmatch(re.escape(name) + r'\.' + re.escape(key) + r'\.(u8|f32)_([\dx]+)', f)
        if m:
            shape = tuple(int(v) for v in m.group(2).split('x'))
            a = np.fromfile(os.path.join(dump, f), dtype=np.uint8 if m.group(1) == 'u8' else np.float32).reshape(shape)
            return a.astype(np.float64) / 255.0 if m.group(1) == 'u8' else a.astype(np.float64)
    raise FileNotFoundError(f'{dump}: {name}.{key}')

def names_in(dump):
    return sorted(set(f.split('.')[0] for f in os.listdir(dump)))

def box(p, r):
    """boxMean: (2r+1)^2 mean, edge pixels repeated."""
    q = np.pad(p, r, mode='edge')
    c = np.vstack([np.zeros((1, q.shape[1])), np.cumsum(q, axis=0)])
    q = (c[2 * r + 1:] - c[:-2 * r - 1]) / (2 * r + 1)
    c = np.hstack([np.zeros((q.shape[0], 1)), np.cumsum(q, axis=1)])
    return (c[:, 2 * r + 1:] - c[:, :-2 * r - 1]) / (2 * r + 1)

def tent(p, r):
    return box(box(p, r), r)

def luma(a):
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]

def sobel(l):
    q = np.pad(l, 1, mode='edge')
    gx = q[:-2, 2:] + 2 * q[1:-1, 2:] + q[2:, 2:] - q[:-2, :-2] - 2 * q[1:-1, :-2] - q[2:, :-2]
    gy = q[2:, :-2] + 2 * q[2:, 1:-1] + q[2:, 2:] - q[:-2, :-2] - 2 * q[:-2, 1:-1] - q[:-2, 2:]
    return np.hypot(gx, gy) / 8

def blocks(p, b=8):
    h, w = p.shape[0] // b, p.shape[1] // b
    return p[:h * b, :w * b].reshape(h, b, w, b, *p.shape[2:]).mean(axis=(1, 3))

def labels(result, truth, share=0.1):
    e = np.sqrt(blocks((255 * (result - truth)) ** 2).mean(axis=-1)).ravel()
    cut = np.sort(e)[::-1][max(0, int(np.ceil(share * len(e))) - 1)]
    return e >= cut

def auroc(s, l):
    s = np.asarray(s).ravel(); l = np.asarray(l).ravel()
    o = np.argsort(s, kind='mergesort'); r = np.empty(len(s)); ss = s[o]; i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        r[o[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    p = l.sum(); n = len(l) - p
    return (r[l].sum() - p * (p + 1) / 2) / (p * n)

# ---- the predictor: per input pixel, log(1 + F's local error energy in levels^2) ----

def space_to_depth(a, f=4):
    h, w = a.shape
    return a.reshape(h // f, f, w // f, f).transpose(1, 3, 0, 2).reshape(f * f, h // f, w // f)

def features(x, f):
    """Input RGB, F's luma high-pass (4x4 output pixels per input pixel) and its local log energy."""
    fl = luma(f)
    hp = fl - box(fl, 2)
    energy = np.log1p(blocks(tent((255 * hp) ** 2, 2), 4))[None] / 5
    return np.concatenate([(x.transpose(2, 0, 1) - 0.5) * 2, energy, space_to_depth(hp) * 8], 0).astype(np.float32)

def case(dump, name, key, with_g):
    t = load(dump, name, 'truth'); f = load(dump, name, 'F_' + key); x = load(dump, name, 'input')
    error = ((255 * (f - t)) ** 2).mean(-1)
    c = dict(name=name, inp=features(x, f), tgt=np.log1p(blocks(tent(error, 2), 4)).astype(np.float32))
    if with_g:
        g = load(dump, name, 'G_' + key)
        c.update(D=load(dump, name, 'D_' + key), T=load(dump, name, 'T_' + key), L=load(dump, name, 'L_' + key),
                 lab=labels(g, t), base=sobel(luma(g)))
    return c

class ErrorNet(nn.Module):
    def __init__(self, inputs, channels, dilations):
        super().__init__()
        self.first = nn.Conv2d(inputs, channels, 3, padding=1)
        self.hidden = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in dilations])
        self.last = nn.Conv2d(channels, 1, 1)

    def forward(self, x):
        x = Fn.relu(self.first(x))
        for h in self.hidden:
            x = Fn.relu(h(x)) + x
        return self.last(x)

def train(cases, channels, dilations, steps, patch=40, batch=16):
    rng = np.random.default_rng(0); torch.manual_seed(0)
    net = ErrorNet(cases[0]['inp'].shape[0], channels, dilations)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    usable = [c for c in cases if min(c['tgt'].shape) >= patch]
    for step in range(steps):
        xs, ys = [], []
        for _ in range(batch):
            c = usable[rng.integers(len(usable))]; h, w = c['tgt'].shape
            i = rng.integers(h - patch + 1); j = rng.integers(w - patch + 1)
            xs.append(c['inp'][:, i:i + patch, j:j + patch]); ys.append(c['tgt'][None, i:i + patch, j:j + patch])
        out = net(torch.tensor(np.stack(xs)))
        loss = ((out - torch.tensor(np.stack(ys)))[..., 3:-3, 3:-3] ** 2).mean()  # borders see padding
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    return net

WEIGHTS = [0.1, 0.3, 0.5, 1, 2, 3]

def margins(net, cases):
    """Mean AUROC margin over the gradient baseline: shipped map, and each form and weight of the learned term."""
    out = {}
    for c in cases:
        with torch.no_grad():
            p = np.expm1(net(torch.tensor(c['inp'])[None])[0, 0].numpy().astype(np.float64))
        h, w = c['D'].shape
        pm = tent(Fn.interpolate(torch.tensor(p)[None, None], size=(h, w), mode='bilinear', align_corners=False)[0, 0].numpy(), 2)
        pm = np.maximum(pm, 0)
        base = auroc(blocks(c['base']), c['lab'])
        s2 = c['D'] + c['T'] + c['L']; dt = c['D'] + c['T']
        out.setdefault(('shipped', 0), []).append(auroc(blocks(np.sqrt(s2)), c['lab']) - base)
        for wt in WEIGHTS:
            out.setdefault(('soft', wt), []).append(auroc(blocks(np.sqrt(s2 + wt * pm * dt / (dt + 100))), c['lab']) - base)
            out.setdefault(('plain', wt), []).append(auroc(blocks(np.sqrt(s2 + wt * pm)), c['lab']) - base)
    return {k: float(np.mean(v)) for k, v in out.items()}

def main():
    a = argparse.ArgumentParser()
    a.add_argument('test'); a.add_argument('train')
    a.add_argument('--channels', type=int, default=24); a.add_argument('--dilations', default='1,2,4,8')
    a.add_argument('--steps', type=int, default=4000); a.add_argument('--save')
    o = a.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    dumps = o.train.split(',')
    started = time.time()
    cases = [case(d, n, k, False) for d in dumps for n in names_in(d) for k in ('single', 'tta')]
    net = train(cases, o.channels, [int(v) for v in o.dilations.split(',')], o.steps)
    print(f'trained on {len(cases)} cases in {time.time() - started:.0f} s')
    if o.save:
        torch.save(net.state_dict(), o.save)
    for key in ('single', 'tta'):
        val = margins(net, [case(dumps[0], n, key, True) for n in names_in(dumps[0])])
        test = margins(net, [case(o.test, n, key, True) for n in names_in(o.test)])
        for form in ('soft', 'plain'):
            wt = max(WEIGHTS, key=lambda v: val[(form, v)])
            print(f'{key:6} {form:5} w={wt:<4} training photos {val[(form, wt)]:+.4f} (shipped {val[("shipped", 0)]:+.4f})'
                  f'   Set5+Set14 {test[(form, wt)]:+.4f} (shipped {test[("shipped", 0)]:+.4f})')

if __name__ == '__main__':
    main()
