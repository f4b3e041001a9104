"""Drives a Tenfold endpoint with the real tritonclient[http] (Open Inference
Protocol): health, metadata, inference with encoded images (binary tensor
extension) and pixel tensors (JSON), and four refusals. Prints one JSON
object the Rust test asserts on; counts its own answers."""

import io
import json
import sys
import zipfile

import numpy as np
import tritonclient.http as httpclient
from PIL import Image
from tritonclient.utils import InferenceServerException

url, slug, key, data_zip = sys.argv[1:5]
def auth_headers():
    # A fresh dict per call: tritonclient writes Inference-Header-Content-Length into the one it is given.
    return {"Authorization": f"Bearer {key}"}



client = httpclient.InferenceServerClient(url=url)
report = {"ok_requests": 0, "errors": {}}

report["live"] = client.is_server_live()
report["ready"] = client.is_server_ready()
report["model_ready"] = client.is_model_ready(slug, headers=auth_headers())
meta = client.get_model_metadata(slug, headers=auth_headers())
report["metadata"] = meta

archive = zipfile.ZipFile(data_zip)
names = sorted(n for n in archive.namelist() if n.lower().endswith(".png"))[::97][:50]
images = [archive.read(n) for n in names]
labels = [n.split("/")[-2] for n in names]

def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


predicted = []
for start in range(0, len(images), 10):
    batch = images[start : start + 10]
    tensor = httpclient.InferInput("image", [len(batch)], "BYTES")
    tensor.set_data_from_numpy(np.array(batch, dtype=np.object_))  # binary by default
    outputs = [
        httpclient.InferRequestedOutput("labels"),
        httpclient.InferRequestedOutput("probabilities", binary_data=False),
    ]
    result = client.infer(slug, [tensor], outputs=outputs, headers=auth_headers())
    report["ok_requests"] += 1
    top = result.as_numpy("labels")
    probs = result.as_numpy("probabilities")
    assert probs.shape == (len(batch), len(meta["parameters"]["classes"])), probs.shape
    predicted += [text(row[0]) for row in top]
report["images"] = len(images)
report["right"] = sum(p == l for p, l in zip(predicted, labels))

# The same digits as pixel tensors in [0, 1], sent as JSON.
shape = meta["inputs"][1]["shape"]
channels, height, width = shape[1], shape[2], shape[3]
pixels = []
for raw in images[:8]:
    img = Image.open(io.BytesIO(raw)).convert("L" if channels == 1 else "RGB").resize((width, height))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    pixels.append(arr.reshape(channels, height, width) if channels == 1 else arr.transpose(2, 0, 1))
tensor = httpclient.InferInput("pixels", [len(pixels), channels, height, width], "FP32")
tensor.set_data_from_numpy(np.stack(pixels).astype(np.float32), binary_data=False)
result = client.infer(slug, [tensor], outputs=[httpclient.InferRequestedOutput("labels", binary_data=False)], headers=auth_headers())
report["ok_requests"] += 1
report["pixel_right"] = sum(text(row[0]) == l for row, l in zip(result.as_numpy("labels"), labels[:8]))


def refusal(name, call):
    try:
        call()
        report["errors"][name] = {"status": None}
    except InferenceServerException as e:
        report["errors"][name] = {"status": e.status(), "message": e.message()}


def wrong_shape():
    t = httpclient.InferInput("pixels", [1, channels + 2, height, width], "FP32")
    t.set_data_from_numpy(np.zeros((1, channels + 2, height, width), dtype=np.float32))
    client.infer(slug, [t], headers=auth_headers())


def wrong_datatype():
    t = httpclient.InferInput("pixels", [1, channels, height, width], "INT32")
    t.set_data_from_numpy(np.zeros((1, channels, height, width), dtype=np.int32))
    client.infer(slug, [t], headers=auth_headers())


def image_input():
    t = httpclient.InferInput("image", [1], "BYTES")
    t.set_data_from_numpy(np.array([images[0]], dtype=np.object_))
    return t


refusal("bad_key", lambda: client.infer(slug, [image_input()], headers={"Authorization": "Bearer tfk_not-a-real-key"}))
refusal("wrong_shape", wrong_shape)
refusal("wrong_datatype", wrong_datatype)
refusal("unknown_model", lambda: client.infer("no-such-model", [image_input()], headers=auth_headers()))

print(json.dumps(report))
