"""The official anthropic SDK continuing a conversation whose thinking block another provider
signed (issue 12 item 3). Run by tests/thinking_rectifier.rs with CCH_BASE_URL and CCH_KEY set;
the fake upstream refuses the signature once, cch strips the block and retries. The SDK must see
one ordinary answer. Exits non-zero on any mismatch."""
import os

import anthropic

client = anthropic.Anthropic(base_url=os.environ["CCH_BASE_URL"], api_key=os.environ["CCH_KEY"], max_retries=0)
history = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Simple arithmetic.", "signature": "EqQBCkgIARABGAIiQL-signed-by-provider-a"},
        {"type": "text", "text": "4"},
    ]},
    {"role": "user", "content": "And times 3?"},
]
msg = client.messages.create(
    model="claude-sonnet-4-5",
    max_tokens=2048,
    thinking={"type": "enabled", "budget_tokens": 1024},
    messages=history,
)
assert msg.type == "message", msg
assert msg.content[0].type == "text" and msg.content[0].text == "12", msg
with client.messages.stream(
    model="claude-sonnet-4-5",
    max_tokens=2048,
    thinking={"type": "enabled", "budget_tokens": 1024},
    messages=history,
) as stream:
    text = "".join(stream.text_stream)
assert text == "12", text
print("rectifier: ok")
