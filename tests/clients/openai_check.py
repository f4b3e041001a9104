"""Drives a Tenfold chat endpoint with the real `openai` Python client:
the model listing, a completion, the same conversation streamed with its
usage, a multi-turn conversation, messages the model cannot read, and the
refusals, each as the client raises them. Prints one JSON object the Rust
test asserts on; sums the token usage of every answer it got."""

import json
import sys

import openai
from openai import OpenAI

base_url, key, model, message = sys.argv[1:5]
client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
report = {"usage": {"prompt_tokens": 0, "completion_tokens": 0}, "answers": 0, "errors": {}}


def count(usage):
    report["usage"]["prompt_tokens"] += usage.prompt_tokens
    report["usage"]["completion_tokens"] += usage.completion_tokens
    report["answers"] += 1


def extra(obj, name):
    # The client keeps fields the OpenAI shape lacks.
    return (obj.model_extra or {}).get(name)


def complete(messages):
    completion = client.chat.completions.create(model=model, messages=messages)
    count(completion.usage)
    choice = completion.choices[0]
    return {
        "object": completion.object,
        "model": completion.model,
        "content": choice.message.content,
        "role": choice.message.role,
        "finish_reason": choice.finish_reason,
        "usage": completion.usage.model_dump(),
        "tenfold": extra(completion, "tenfold"),
    }


report["models"] = [m.id for m in client.models.list().data]
report["model"] = client.models.retrieve(model).id

one = [{"role": "user", "content": message}]
report["completion"] = complete(one)

stream = client.chat.completions.create(model=model, messages=one, stream=True, stream_options={"include_usage": True})
pieces, finish, usage, routing, chunks = [], None, None, None, 0
for chunk in stream:
    chunks += 1
    assert chunk.object == "chat.completion.chunk", chunk.object
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
            routing = extra(chunk, "tenfold")
count(usage)
report["stream"] = {"content": "".join(pieces), "finish_reason": finish, "usage": usage.model_dump(), "tenfold": routing, "chunks": chunks}

report["multi_turn"] = complete([
    {"role": "system", "content": "You are the support bot."},
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": [{"type": "text", "text": message}]},
])
report["gibberish"] = complete([{"role": "user", "content": "qzxv brrkt zzyqx plmph wqrtz vvkx"}])
report["georgian"] = complete([{"role": "user", "content": "გამარჯობა, რა არის ხელოვნური ინტელექტი?"}])


def refused(name, call):
    try:
        call()
        report["errors"][name] = {"status": None}
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        report["errors"][name] = {"status": e.status_code, "class": type(e).__name__, "body": body}


refused("unknown_model", lambda: client.chat.completions.create(model="no-such-bot", messages=one))
refused("no_user_message", lambda: client.chat.completions.create(model=model, messages=[{"role": "system", "content": "hi"}]))
refused("two_choices", lambda: client.chat.completions.create(model=model, messages=one, n=2))
refused("image_part", lambda: client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]))
refused("bad_key", lambda: OpenAI(base_url=base_url, api_key="tfk_not_a_key", max_retries=0).chat.completions.create(model=model, messages=one))

print(json.dumps(report))
