#!/usr/bin/python3
"""PyTorch reference of bench/train.ts's model, for `npm run bench:compare` (issue 7).

Exactly the benchmark model of bench/reference-model.ts: 20 categorical fields, vocabulary 10,000 each, embedding
dim 16 (concatenated: 320 inputs), ResFlow with 2 tasks, per task a tower 320 -> 256 -> 128 -> 1 with
ReLU; task 2's hidden outputs get task 1's added after activation (feature residual) and its logit
gets task 1's logit (logit residual); BCE-with-logits per task (mean over the batch), summed;
batch 1024; Adam lr 1e-3 (embeddings: SparseAdam on sparse gradients, or Adam on dense ones).

Data as bench/train.ts: 8 pre-generated in-memory batches, ids uniform in [0, 10000), click ~
Bernoulli(0.1), purchase = click & Bernoulli(0.2), cycled. The 20 tables are stored as one
200,000 x 16 table with per-field row offsets (one gather instead of 20; the same model).

Prints one JSON line: train and scoring samples/s (median of --repeats timed passes of --steps
batches each), the same per CPU-second of the whole process (time.process_time(), every thread of
it, so a one-thread run measures speed per core), scoring at several batch sizes (1024 is the
figure comparable with resflow), the BLAS library it loaded (threadpoolctl: file, version,
threading layer, the kernel set OpenBLAS chose), a 1024x320x256 matmul's GFLOP/s, the model's
dense FLOPs per sample (counted from its Linear layers) and peak RSS.

  /usr/bin/python3 bench/torch_ref.py [--emb sparse|dense|auto] [--threads 2] [--score-threads N]
      [--steps 40] [--repeats 3] [--score-batches 1024,4096,16384]

On a shared 2-core machine, 2 OpenMP threads can be much slower than 1 (a spinning barrier waits
for a core that another job holds): bench/compare.ts measures both and keeps the faster.
"""
import argparse
import json
import resource
import statistics
import sys
import time

try:  # Debian's python3-threadpoolctl; optional, the BLAS line just says "unknown" without it
    import threadpoolctl
except ImportError:
    threadpoolctl = None

import torch
import torch.nn as nn
import torch.nn.functional as F

FIELDS = 20
VOCAB = 10_000
DIM = 16
HIDDEN = (256, 128)
N_BATCHES = 8


class Tower(nn.Module):
    def __init__(self, d_in):
        super().__init__()
        self.l1 = nn.Linear(d_in, HIDDEN[0])
        self.l2 = nn.Linear(HIDDEN[0], HIDDEN[1])
        self.head = nn.Linear(HIDDEN[1], 1)


class ResFlow(nn.Module):
    def __init__(self, sparse: bool):
        super().__init__()
        self.emb = nn.Embedding(FIELDS * VOCAB, DIM, sparse=sparse)
        nn.init.uniform_(self.emb.weight, -0.05, 0.05)
        self.register_buffer("offsets", torch.arange(FIELDS, dtype=torch.long) * VOCAB, persistent=False)
        self.t1 = Tower(FIELDS * DIM)
        self.t2 = Tower(FIELDS * DIM)

    def forward(self, ids):  # ids: [B, FIELDS] int64
        x = self.emb(ids + self.offsets).view(ids.shape[0], FIELDS * DIM)
        a1 = F.relu(self.t1.l1(x))
        a2 = F.relu(self.t1.l2(a1))
        z1 = self.t1.head(a2).squeeze(1)
        b1 = F.relu(self.t2.l1(x)) + a1  # feature residual, after activation
        b2 = F.relu(self.t2.l2(b1)) + a2
        z2 = self.t2.head(b2).squeeze(1) + z1  # logit residual
        return z1, z2


def make_batches(gen, n_batches, batch):
    out = []
    for _ in range(n_batches):
        ids = torch.randint(0, VOCAB, (batch, FIELDS), generator=gen, dtype=torch.long)
        click = (torch.rand(batch, generator=gen) < 0.1).float()
        purchase = click * (torch.rand(batch, generator=gen) < 0.2).float()
        out.append((ids, click, purchase))
    return out


def make_optimizers(model, sparse, lr):
    dense_params = [p for n, p in model.named_parameters() if not n.startswith("emb.")]
    if sparse:
        return [torch.optim.SparseAdam([model.emb.weight], lr=lr), torch.optim.Adam(dense_params, lr=lr)]
    return [torch.optim.Adam(model.parameters(), lr=lr)]


def train_steps(model, opts, batches, steps):
    last = 0.0
    for i in range(steps):
        ids, click, purchase = batches[i % len(batches)]
        for o in opts:
            o.zero_grad(set_to_none=True)
        z1, z2 = model(ids)
        loss = F.binary_cross_entropy_with_logits(z1, click) + F.binary_cross_entropy_with_logits(z2, purchase)
        loss.backward()
        for o in opts:
            o.step()
        last = loss.item()  # resflow reads the loss back every step too
    return last


def score_rows(model, batches, rows):
    done = 0
    i = 0
    with torch.inference_mode():
        while done < rows:
            ids = batches[i % len(batches)][0]
            z1, z2 = model(ids)
            p1, p2 = torch.sigmoid(z1), torch.sigmoid(z2)
            p1.numpy(), p2.numpy()  # the probabilities as plain arrays, as resflow's predict returns
            done += ids.shape[0]
            i += 1
    return done


def blas_info():
    """The BLAS library this process loaded and the kernel set OpenBLAS picked (its `architecture`)."""
    if threadpoolctl is None:
        return None
    libs = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    keep = ("internal_api", "version", "threading_layer", "architecture", "num_threads", "filepath")
    return [{k: i.get(k) for k in keep} for i in libs]


def dense_flops(model):
    """Dense FLOPs per sample from the Linear layers: forward 2*in*out each; training adds the weight
    and input gradients (2*in*out each) and the bias gradient (2*out, a column sum)."""
    fwd = sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    bias = sum(2 * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    return {"score": fwd, "train": 3 * fwd + bias}


def matmul_gflops(m=1024, k=320, n=256, reps=30):
    """GFLOP/s of one [m,k]x[k,n] float32 matmul (median of reps), on the threads now set, per
    second of wall-clock and per CPU-second of the process."""
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(m, k, generator=gen)
    b = torch.rand(k, n, generator=gen)
    c = torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=c)
    ts, cs = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(10):
            torch.mm(a, b, out=c)
        ts.append((time.perf_counter() - t0) / 10)
        cs.append((time.process_time() - c0) / 10)
    f = 2 * m * k * n / 1e9
    return {"wall": f / statistics.median(ts), "cpu": f / statistics.median(cs)}


def timed_train(model, opts, batches, steps, repeats, batch):
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        train_steps(model, opts, batches, steps)
        rates.append(steps * batch / (time.perf_counter() - t0))
    return rates


def breakdown(model, opts, batches, steps):
    """ms per training step by part: embedding gather, dense forward + loss, backward, optimizers."""
    parts = {"embedding gather": 0.0, "forward + loss": 0.0, "backward": 0.0, "optimizer step(s)": 0.0}
    emb_params = model.emb
    for i in range(steps):
        ids, click, purchase = batches[i % len(batches)]
        for o in opts:
            o.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        x = emb_params(ids + model.offsets).view(ids.shape[0], FIELDS * DIM)
        t1 = time.perf_counter()
        a1 = F.relu(model.t1.l1(x))
        a2 = F.relu(model.t1.l2(a1))
        z1 = model.t1.head(a2).squeeze(1)
        b1 = F.relu(model.t2.l1(x)) + a1
        b2 = F.relu(model.t2.l2(b1)) + a2
        z2 = model.t2.head(b2).squeeze(1) + z1
        loss = F.binary_cross_entropy_with_logits(z1, click) + F.binary_cross_entropy_with_logits(z2, purchase)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        for o in opts:
            o.step()
        loss.item()
        t4 = time.perf_counter()
        for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[k] += v
    return {k: 1000 * v / steps for k, v in parts.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emb", choices=["sparse", "dense", "auto"], default="auto",
                    help="embedding gradients: sparse (SparseAdam) or dense (Adam); auto measures both and keeps the faster")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for training")
    ap.add_argument("--score-threads", type=int, default=None, help="threads while scoring (default: --threads)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--score-batches", default="1024,4096,16384")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--score-only", action="store_true", help="skip the timed training passes")
    ap.add_argument("--breakdown", action="store_true", help="also time the parts of a training step (ms/step)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    batches = make_batches(gen, N_BATCHES, args.batch)

    trial = None
    emb = args.emb
    if emb == "auto":
        # Short trial of both (fresh models), then the measured run on a fresh model of the faster.
        trial = {}
        for mode in ("sparse", "dense"):
            m = ResFlow(mode == "sparse")
            o = make_optimizers(m, mode == "sparse", 1e-3)
            train_steps(m, o, batches, 5)
            trial[mode] = statistics.median(timed_train(m, o, batches, max(10, args.steps // 2), 3, args.batch))
            del m, o
        emb = max(trial, key=trial.get)

    model = ResFlow(emb == "sparse")
    opts = make_optimizers(model, emb == "sparse", 1e-3)
    loss = train_steps(model, opts, batches, 5)  # warm-up, as bench/train.ts
    train_rates = []
    train_cpu_rates = []
    score_rates = {b: [] for b in (int(s) for s in args.score_batches.split(","))}
    score_cpu_rates = {b: [] for b in score_rates}
    score_sets = {b: (batches if b == args.batch else make_batches(gen, max(1, N_BATCHES * args.batch // b), b)) for b in score_rates}
    rows = args.steps * args.batch
    score_threads = args.score_threads or args.threads
    torch.set_num_threads(score_threads)
    for b, bs in score_sets.items():
        score_rows(model, bs, b)  # warm-up per shape
    torch.set_num_threads(args.threads)
    for _ in range(args.repeats):
        if not args.score_only:
            t0, c0 = time.perf_counter(), time.process_time()
            loss = train_steps(model, opts, batches, args.steps)
            train_rates.append(args.steps * args.batch / (time.perf_counter() - t0))
            train_cpu_rates.append(args.steps * args.batch / (time.process_time() - c0))
        torch.set_num_threads(score_threads)
        for b, bs in score_sets.items():
            t0, c0 = time.perf_counter(), time.process_time()
            n = score_rows(model, bs, max(rows, b))
            score_rates[b].append(n / (time.perf_counter() - t0))
            score_cpu_rates[b].append(n / (time.process_time() - c0))
        torch.set_num_threads(args.threads)

    parts = None
    if args.breakdown:
        runs = [breakdown(model, opts, batches, args.steps) for _ in range(args.repeats)]
        parts = {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    torch.set_num_threads(score_threads)
    gflops = matmul_gflops()
    torch.set_num_threads(args.threads)
    med = {b: statistics.median(r) for b, r in score_rates.items()}
    best_b = max(med, key=med.get)
    out = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "threads": args.threads,
        "score_threads": score_threads,
        "embedding_grad": emb,
        "emb_trial_train_samples_per_s": trial,
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "train_samples_per_s": statistics.median(train_rates) if train_rates else None,
        "train_runs": train_rates,
        "train_samples_per_cpu_s": statistics.median(train_cpu_rates) if train_cpu_rates else None,
        "score_samples_per_s": med.get(args.batch),
        "score_samples_per_cpu_s": statistics.median(score_cpu_rates[args.batch]) if args.batch in score_cpu_rates else None,
        "score_by_batch": {str(b): v for b, v in med.items()},
        "score_best": {"batch": best_b, "samples_per_s": med[best_b]},
        "last_loss": loss,
        "step_breakdown_ms": parts,
        "blas": blas_info(),
        "cpu_capability": next((l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability" in l), None),
        "matmul_1024x320x256_gflops": gflops,  # {"wall", "cpu"}
        "dense_flops_per_sample": dense_flops(model),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
