"""The official google-genai SDK (3.x) declaring a tool with `parameters_json_schema` and
thinking options, which it sends in snake_case (issue 12 item 1), once with generate_content
and once with generate_content_stream. Run by tests/gemini_spelling.rs with CCH_BASE_URL and
CCH_KEY set; the fake upstream answers each with a `get_weather` call. Exits non-zero on any
mismatch."""
import os

from google import genai
from google.genai import types

client = genai.Client(api_key=os.environ["CCH_KEY"], http_options={"base_url": os.environ["CCH_BASE_URL"]})
weather = types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters_json_schema={"type": "object", "properties": {"city_name": {"type": "string"}}, "required": ["city_name"]})
config = types.GenerateContentConfig(
    max_output_tokens=4096,
    thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048),
    tools=[types.Tool(function_declarations=[weather])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))

r = client.models.generate_content(model="gemini-fake-1", contents="weather in Paris?", config=config)
calls = r.function_calls
assert calls and calls[0].name == "get_weather" and calls[0].args == {"city_name": "Paris"}, r

calls = []
for chunk in client.models.generate_content_stream(model="gemini-fake-1", contents="weather in Paris?", config=config):
    calls.extend(chunk.function_calls or [])
assert calls and calls[0].name == "get_weather" and calls[0].args == {"city_name": "Paris"}, calls
print("gemini snake_case: ok")
