"""End-to-end check with the official google-genai SDK against cch (which talks to a fake upstream).

Run by tests/python_sdk.rs with CCH_BASE_URL and CCH_KEY set; the Rust test queues the fake's
replies in this order: text, stream, function call. Prints "SKIP ..." and exits 0 when the
package is missing; exits non-zero on any mismatch."""
import os
import sys

try:
    from google import genai
    from google.genai import errors, types
except ImportError:
    print("SKIP gemini sdk: the google-genai package is not installed")
    sys.exit(0)

client = genai.Client(api_key=os.environ["CCH_KEY"], http_options={"base_url": os.environ["CCH_BASE_URL"]})
MODEL = os.environ.get("CCH_MODEL", "gemini-fake-1")

# 1. generate_content.
r = client.models.generate_content(model=MODEL, contents="hello")
assert r.text == "hello there", r
assert r.candidates[0].finish_reason == types.FinishReason.STOP, r
assert r.usage_metadata.prompt_token_count > 0 and r.usage_metadata.candidates_token_count > 0, r.usage_metadata

# 2. generate_content_stream.
text, last = "", None
for chunk in client.models.generate_content_stream(model=MODEL, contents="stream please"):
    text += chunk.text or ""
    last = chunk
assert text == "streamed hello from the fake", text
assert last.candidates[0].finish_reason == types.FinishReason.STOP, last
assert last.usage_metadata.candidates_token_count > 0, last.usage_metadata

# 3. A function call.
weather = types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
r = client.models.generate_content(
    model=MODEL, contents="weather in Paris?",
    config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[weather])],
                                       automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)))
calls = r.function_calls
assert calls and calls[0].name == "get_weather" and calls[0].args == {"city": "Paris"}, r

# 4. Errors arrive as the SDK's typed exceptions.
bad = genai.Client(api_key="cch_wrong", http_options={"base_url": os.environ["CCH_BASE_URL"]})
try:
    bad.models.generate_content(model=MODEL, contents="x")
    sys.exit("expected an error")
except errors.ClientError as e:
    assert e.code in (400, 401), e.code

print("gemini sdk: ok")
