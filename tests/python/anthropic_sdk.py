"""End-to-end check with the official anthropic SDK against cch (which talks to a fake upstream).

Run by tests/python_sdk.rs with CCH_BASE_URL and CCH_KEY set. Exits non-zero on any mismatch."""
import os
import sys

import anthropic

client = anthropic.Anthropic(base_url=os.environ["CCH_BASE_URL"], api_key=os.environ["CCH_KEY"], max_retries=0)
MODEL = "claude-sonnet-4-5"

# 1. Non-streaming call.
msg = client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello"}])
assert msg.type == "message", msg
assert msg.content[0].type == "text" and msg.content[0].text, msg
assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, msg.usage

# 2. Streaming call.
with client.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "stream please"}]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text, "streamed text"
assert final.stop_reason == "end_turn", final.stop_reason
assert final.usage.output_tokens > 0 and final.usage.cache_read_input_tokens is not None, final.usage

# 3. Tool-use round trip.
tools = [{"name": "get_weather", "description": "Weather for a city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
first = client.messages.create(model=MODEL, max_tokens=64, tools=tools, messages=[{"role": "user", "content": "weather in Paris?"}])
assert first.stop_reason == "tool_use", first
call = next(b for b in first.content if b.type == "tool_use")
assert call.name == "get_weather" and call.input == {"city": "Paris"}, call
second = client.messages.create(
    model=MODEL,
    max_tokens=64,
    tools=tools,
    messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [c.model_dump() for c in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ],
)
assert second.content[0].type == "text", second

# 4. Errors arrive as the SDK's typed exceptions.
bad = anthropic.Anthropic(base_url=os.environ["CCH_BASE_URL"], api_key="cch_wrong", max_retries=0)
try:
    bad.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    sys.exit("expected an authentication error")
except anthropic.AuthenticationError as e:
    assert e.status_code == 401

print("anthropic sdk: ok")
