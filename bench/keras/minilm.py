"""Reference side of the MiniLM speed benchmark: all-MiniLM-L6-v2 (BERT,
6 layers, 384 wide) written out in TensorFlow ops over the same
model.safetensors, run on the token ids `minilm_speed ids` wrote. Checks
first that it computes what Tenfold's serving model computes (mean-pooled
embeddings of 4 sequences), then measures the forward pass at batch 1 and
32 and a fine-tuning step at batch 16 (dropout 0.1, backward, AdamW 1e-4)
and prints ONE JSON line to stdout.

    python minilm.py --base MINILM_DIR --ids ids.json --threads 2 [--steps 20]
"""

import argparse
import json
import os
import statistics
import struct
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--steps", type=int, default=20)
    return p.parse_args()


def load_safetensors(path):
    """The safetensors format: an 8-byte header length, a JSON header, the data."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        # Buffers such as `embeddings.position_ids` (I64) are not weights.
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name.removeprefix("bert.")] = np.frombuffer(data[start:end], dtype=np.float32).reshape(info["shape"]).copy()
    return tensors


def main():
    args = parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    config = json.load(open(os.path.join(args.base, "config.json")))
    w = load_safetensors(os.path.join(args.base, "model.safetensors"))
    heads, hidden, eps = config["num_attention_heads"], config["hidden_size"], config.get("layer_norm_eps", 1e-12)
    width = hidden // heads
    var = {name: tf.Variable(value, name=name.replace(".", "/")) for name, value in w.items() if not name.startswith("pooler.")}

    def dense(x, name):
        return tf.matmul(x, var[name + ".weight"], transpose_b=True) + var[name + ".bias"]

    def norm(x, name):
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + eps) * var[name + ".weight"] + var[name + ".bias"]

    def encode(ids, mask, training):
        b, t = tf.shape(ids)[0], tf.shape(ids)[1]
        x = tf.gather(var["embeddings.word_embeddings.weight"], ids)
        x += var["embeddings.position_embeddings.weight"][:t] + var["embeddings.token_type_embeddings.weight"][0]
        x = norm(x, "embeddings.LayerNorm")
        if training:
            x = tf.nn.dropout(x, 0.1)
        bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -1e9
        split = lambda y: tf.transpose(tf.reshape(y, [b, t, heads, width]), [0, 2, 1, 3])
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}"
            q, k, v = (split(dense(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
            probs = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / float(np.sqrt(width)) + bias, axis=-1)
            if training:
                probs = tf.nn.dropout(probs, 0.1)
            context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [b, t, hidden])
            attended = dense(context, f"{p}.attention.output.dense")
            if training:
                attended = tf.nn.dropout(attended, 0.1)
            x = norm(x + attended, f"{p}.attention.output.LayerNorm")
            h = dense(tf.nn.gelu(dense(x, f"{p}.intermediate.dense"), approximate=False), f"{p}.output.dense")
            if training:
                h = tf.nn.dropout(h, 0.1)
            x = norm(x + h, f"{p}.output.LayerNorm")
        m = tf.cast(mask, tf.float32)[:, :, None]
        return tf.reduce_sum(x * m, axis=1) / tf.reduce_sum(m, axis=1)

    spec = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)]
    forward = tf.function(lambda ids, mask: encode(ids, mask, False), input_signature=spec)

    data = json.load(open(args.ids))
    ids = np.array(data["ids"], dtype=np.int32)
    labels = np.array(data["labels"], dtype=np.int32)
    mask = np.ones_like(ids)
    ours = forward(ids[:4], mask[:4]).numpy()
    parity = float(np.max(np.abs(ours - np.array(data["pooled"], dtype=np.float32))))
    if parity > 1e-3:
        print(f"the reference computes another model: pooled embeddings differ by {parity}", file=sys.stderr)
        sys.exit(1)

    for i in range(3):
        forward(ids[i : i + 1], mask[i : i + 1])
    times = []
    for i in range(50):
        j = i % len(ids)
        start = time.perf_counter()
        forward(ids[j : j + 1], mask[j : j + 1]).numpy()
        times.append((time.perf_counter() - start) * 1000.0)
    forward(ids[:32], mask[:32]).numpy()
    start = time.perf_counter()
    for i in range(10):
        k = (i % 2) * 32
        forward(ids[k : k + 32], mask[k : k + 32]).numpy()
    b32 = 320.0 / (time.perf_counter() - start)

    classes = data["classes"]
    head_w = tf.Variable(tf.random.normal([classes, hidden], stddev=0.02, seed=1))
    head_b = tf.Variable(tf.zeros([classes]))
    trainable = list(var.values()) + [head_w, head_b]
    optimizer = tf.keras.optimizers.AdamW(learning_rate=1e-4, weight_decay=0.01, clipnorm=None)

    @tf.function(input_signature=spec + [tf.TensorSpec([None], tf.int32)])
    def step(ids, mask, y):
        with tf.GradientTape() as tape:
            logits = tf.matmul(encode(ids, mask, True), head_w, transpose_b=True) + head_b
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
        return loss

    batches = [(ids[k : k + 16], mask[k : k + 16], labels[k : k + 16]) for k in range(0, len(ids), 16)]
    for k in range(2):
        step(*batches[k]).numpy()
    start = time.perf_counter()
    for k in range(args.steps):
        step(*batches[k % len(batches)]).numpy()
    finetune = 16 * args.steps / (time.perf_counter() - start)

    print(json.dumps({
        "engine": "tensorflow",
        "forward_b1_ms": statistics.median(times),
        "forward_b32_seq_per_s": b32,
        "finetune_seq_per_s": finetune,
        "parity_max_abs_diff": parity,
        "threads": args.threads,
        "tf_version": tf.__version__,
    }))


if __name__ == "__main__":
    main()
