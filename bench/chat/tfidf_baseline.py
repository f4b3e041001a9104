"""The chat family's classical baseline: TF-IDF (word 1–2-grams, sublinear)
+ multinomial logistic regression, trained and tested on the split the
engine made (`chat_split`). Prints one JSON object."""

import json
import sys

import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline


def load(path):
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    return [r["text"] for r in rows], [r["intent"] for r in rows]


train_x, train_y = load(sys.argv[1])
test_x, test_y = load(sys.argv[2])
model = make_pipeline(
    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
    LogisticRegression(max_iter=2000, C=10.0),
)
model.fit(train_x, train_y)
predicted = model.predict(test_x)
print(json.dumps({
    "model": "tfidf+logreg",
    "train": len(train_x),
    "test": len(test_x),
    "accuracy": accuracy_score(test_y, predicted),
    "macro_f1": f1_score(test_y, predicted, average="macro"),
    "sklearn": sklearn.__version__,
}))
