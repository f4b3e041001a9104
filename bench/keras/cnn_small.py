"""Keras side of the small-CNN throughput benchmark.

Trains the same CNN as the Rust engine on an ImageFolder ZIP split by a
manifest the Rust side writes, then prints ONE JSON line of measurements to
stdout. Everything else (TF/Keras logs) goes to stderr.

    python cnn_small.py --data mnist.zip --manifest manifest.json \
        --epochs 10 --batch-size 64 --threads 2 [--seed 0]
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
import zipfile

# Must be set before TensorFlow is imported to silence its C++ INFO/WARNING logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="ImageFolder ZIP")
    p.add_argument("--manifest", required=True, help="split manifest JSON")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def load_split(zf, items, size_hw, channels, mean, std):
    """Decodes [[entry, class], ...] into normalised NHWC float32 + int32 labels."""
    h, w = size_hw
    mode = "L" if channels == 1 else "RGB"
    x = np.empty((len(items), h, w, channels), dtype=np.float32)
    y = np.empty(len(items), dtype=np.int32)
    for i, (name, label) in enumerate(items):
        with Image.open(io.BytesIO(zf.read(name))) as img:
            img = img.convert(mode)
            if img.size != (w, h):  # Pillow sizes are (width, height)
                img = img.resize((w, h), Image.BILINEAR)
            x[i] = np.asarray(img, dtype=np.float32).reshape(h, w, channels) / 255.0
        y[i] = label
    x -= np.asarray(mean, dtype=np.float32)  # broadcasts over the channel axis
    x /= np.asarray(std, dtype=np.float32)
    return x, y


def main():
    args = parse_args()
    # Keras progress output and stray prints would corrupt the one-line JSON
    # contract, so stdout is kept aside and everything else goes to stderr.
    out = sys.stdout
    sys.stdout = sys.stderr

    with open(args.manifest) as f:
        m = json.load(f)
    h, w = m["image_size"]  # [height, width]
    c = m["channels"]
    with zipfile.ZipFile(args.data) as zf:
        x_train, y_train = load_split(zf, m["train"], (h, w), c, m["mean"], m["std"])
        x_test, y_test = load_split(zf, m["test"], (h, w), c, m["mean"], m["std"])

    import tensorflow as tf

    # Thread pools are fixed at runtime initialisation, so this has to come
    # before any op runs (the Keras import and seeding below included).
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    import keras

    keras.utils.set_random_seed(args.seed)  # python, numpy and TF RNGs

    model = keras.Sequential(
        [
            keras.Input(shape=(h, w, c)),
            keras.layers.Conv2D(32, 3, padding="valid", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(len(m["classes"])),  # logits
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    # One fit() over all epochs, timed per epoch by a callback: the first
    # epoch carries graph tracing, later ones are the steady state.
    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t0)
            print(f"epoch {epoch + 1}: {self.seconds[-1]:.2f}s loss={logs['loss']:.4f}", file=sys.stderr)

    timer = EpochTimer()
    model.fit(
        x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
        shuffle=True, verbose=0, callbacks=[timer],
    )
    rates = [len(x_train) / s for s in timer.seconds]
    # With a single epoch there is no steady state; fall back to the first.
    steady = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]

    # A None batch dimension keeps batch 1, 64 and the ragged last batch on
    # one trace, so no retracing happens inside the timed loops.
    @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.float32)])
    def forward(x):
        return model(x, training=False)

    # Inputs are tensors before timing so only the forward pass is measured;
    # .numpy() fetches the logits, as a caller would.
    singles = [tf.constant(x_test[i % len(x_test)][None]) for i in range(max(200, len(x_test)))]
    batches = [tf.constant(x_test[i:i + 64]) for i in range(0, len(x_test), 64)]

    def images_per_s(inputs, passes):
        for x in inputs[:20]:  # warm-up: trace, allocate, fault in weights
            forward(x).numpy()
        n = sum(len(x) for x in inputs)
        per_pass = []
        for _ in range(passes):
            t0 = time.perf_counter()
            for x in inputs:
                forward(x).numpy()
            per_pass.append(n / (time.perf_counter() - t0))
        return statistics.median(per_pass)

    infer_b1 = images_per_s(singles, passes=3)
    infer_b64 = images_per_s(batches, passes=5)

    pred = np.concatenate([forward(x).numpy().argmax(axis=1) for x in batches])
    accuracy = float((pred == y_test).mean())

    result = {
        "engine": "keras",
        "tf_version": tf.__version__,
        "keras_version": keras.__version__,
        "threads": args.threads,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "train_samples_per_s": round(steady, 1),
        "train_samples_per_s_first_epoch": round(rates[0], 1),
        "infer_b1_images_per_s": round(infer_b1, 1),
        "infer_b64_images_per_s": round(infer_b64, 1),
        "test_accuracy": round(accuracy, 4),
        "train_images": len(x_train),
        "test_images": len(x_test),
    }
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
