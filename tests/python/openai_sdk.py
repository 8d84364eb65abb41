"""End-to-end check with the official openai SDK against cch (which talks to a fake upstream).

Run by tests/python_sdk.rs with CCH_BASE_URL and CCH_KEY set; the Rust test queues the fake's
replies in this order: chat text, chat stream, chat tool call, responses text, responses stream.
Prints "SKIP ..." and exits 0 when the package is missing; exits non-zero on any mismatch."""
import json
import os
import sys

try:
    import openai
except ImportError:
    print("SKIP openai sdk: the openai package is not installed")
    sys.exit(0)

client = openai.OpenAI(base_url=os.environ["CCH_BASE_URL"] + "/v1", api_key=os.environ["CCH_KEY"], max_retries=0)
MODEL = os.environ.get("CCH_MODEL", "gpt-fake-1")
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

# 1. Chat, non-streaming.
c = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}])
assert c.object == "chat.completion", c
assert c.choices[0].message.content == "hello there", c
assert c.choices[0].finish_reason == "stop", c
assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0, c.usage
assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, c.usage

# 2. Chat, streaming with usage.
text, finish, usage = "", None, None
for chunk in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "stream please"}],
                                            stream=True, stream_options={"include_usage": True}):
    if chunk.usage is not None:
        usage = chunk.usage
    for ch in chunk.choices:
        text += ch.delta.content or ""
        finish = ch.finish_reason or finish
assert text == "streamed hello from the fake", text
assert finish == "stop", finish
assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage

# 3. Chat tool call (streamed, accumulated by the SDK helper).
with client.chat.completions.stream(model=MODEL, messages=[{"role": "user", "content": "weather in Paris?"}],
                                    tools=TOOLS) as stream:
    for _ in stream:
        pass
    final = stream.get_final_completion()
call = final.choices[0].message.tool_calls[0]
assert final.choices[0].finish_reason == "tool_calls", final
assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}, call
assert call.id, call

# 4. Responses, non-streaming.
r = client.responses.create(model=MODEL, input="hello")
assert r.status == "completed", r
assert r.output_text == "hello from responses", r.output_text
assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage

# 5. Responses, streaming with a function call.
with client.responses.stream(model=MODEL, input="weather in Paris?",
                             tools=[{"type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}]) as stream:
    kinds = [e.type for e in stream]
    final = stream.get_final_response()
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
fc = next(i for i in final.output if i.type == "function_call")
assert fc.name == "get_weather" and json.loads(fc.arguments) == {"city": "Paris"} and fc.call_id, fc
assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens, final.usage

# 6. Errors arrive as the SDK's typed exceptions.
bad = openai.OpenAI(base_url=os.environ["CCH_BASE_URL"] + "/v1", api_key="cch_wrong", max_retries=0)
try:
    bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    sys.exit("expected an authentication error")
except openai.AuthenticationError as e:
    assert e.status_code == 401

print("openai sdk: ok")
