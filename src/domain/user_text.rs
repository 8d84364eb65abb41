//! The text a user sends in a request body, in every client format, for the content filter:
//! Claude `system` and user turns (text blocks, tool results), OpenAI Chat system, developer,
//! user and tool messages, Responses `instructions` and `input` (messages and tool outputs),
//! Gemini `systemInstruction` and user `contents` (text parts and function responses). The
//! assistant's own earlier turns (role `assistant` or `model`, tool calls, reasoning) are not
//! the user's words and are skipped.
//!
//! The body is read once with borrowed strings: text without escapes is not copied, and every
//! field the filter does not need is skipped without being built. Gemini's proto3 JSON allows
//! both spellings of a field (`systemInstruction` and `system_instruction`); both are read.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Roles whose turns are the model's own words.
const MODEL_ROLES: [&str; 2] = ["assistant", "model"];
/// Item and block types that carry the model's output, not the user's input.
const MODEL_TYPES: [&str; 7] = [
    "function_call",
    "reasoning",
    "tool_use",
    "thinking",
    "redacted_thinking",
    "output_text",
    "server_tool_use",
];

/// The top-level fields holding user text, across the four formats.
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow, default)]
    system: Option<Nodes<'a>>,
    #[serde(borrow, default)]
    messages: Option<Nodes<'a>>,
    #[serde(borrow, default)]
    instructions: Option<Nodes<'a>>,
    #[serde(borrow, default)]
    input: Option<Nodes<'a>>,
    #[serde(
        borrow,
        default,
        rename = "systemInstruction",
        alias = "system_instruction"
    )]
    system_instruction: Option<Nodes<'a>>,
    #[serde(borrow, default)]
    contents: Option<Nodes<'a>>,
}

/// A message, item, block or part: the union of the fields the formats use for text.
#[derive(Deserialize, Default)]
struct Node<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Nodes<'a>>,
    #[serde(borrow, default)]
    output: Option<Nodes<'a>>,
    #[serde(borrow, default)]
    parts: Option<Nodes<'a>>,
    #[serde(
        borrow,
        default,
        rename = "functionResponse",
        alias = "function_response"
    )]
    function_response: Option<FunctionResponse<'a>>,
}

/// A Gemini function response: its free-form `response` is the tool's output.
#[derive(Deserialize, Default)]
struct FunctionResponse<'a> {
    #[serde(borrow, default)]
    response: Option<Strings<'a>>,
}

/// A value that is a string, one node, or a list of strings and nodes.
#[derive(Default)]
struct Nodes<'a>(Vec<Piece<'a>>);

enum Piece<'a> {
    Text(Cow<'a, str>),
    Node(Box<Node<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Nodes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Nodes<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text, an object or a list")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Nodes(vec![Piece::Text(Cow::Borrowed(v))]))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Nodes(vec![Piece::Text(Cow::Owned(v.to_string()))]))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Nodes(vec![Piece::Text(Cow::Owned(v))]))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let node = Node::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Nodes(vec![Piece::Node(Box::new(node))]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Nodes<'a>>()? {
                    out.extend(item.0);
                }
                Ok(Nodes(out))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Nodes::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Nodes::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Nodes::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Nodes::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Nodes::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Every string anywhere inside a JSON value (a Gemini function response is free-form JSON).
#[derive(Default)]
struct Strings<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Strings<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Strings<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Strings(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Strings(vec![Cow::Owned(v.to_string())]))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Strings(vec![Cow::Owned(v)]))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((_, v)) = map.next_entry::<IgnoredAny, Strings<'a>>()? {
                    out.extend(v.0);
                }
                Ok(Strings(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Strings<'a>>()? {
                    out.extend(v.0);
                }
                Ok(Strings(out))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Strings::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Strings::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Strings::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Strings::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Strings::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

fn collect_nodes<'a>(nodes: Nodes<'a>, out: &mut Vec<Cow<'a, str>>) {
    for piece in nodes.0 {
        match piece {
            Piece::Text(t) => out.push(t),
            Piece::Node(n) => collect_node(*n, out),
        }
    }
}

fn collect_node<'a>(n: Node<'a>, out: &mut Vec<Cow<'a, str>>) {
    if n.role.as_deref().is_some_and(|r| MODEL_ROLES.contains(&r))
        || n.kind.as_deref().is_some_and(|k| MODEL_TYPES.contains(&k))
    {
        return;
    }
    if let Some(t) = n.text {
        out.push(t);
    }
    for nodes in [n.content, n.output, n.parts].into_iter().flatten() {
        collect_nodes(nodes, out);
    }
    if let Some(s) = n.function_response.and_then(|f| f.response) {
        out.extend(s.0);
    }
}

/// The user's text parts of a JSON request body (any of the four formats), borrowed from the
/// body where no escape had to be decoded. Fails when the body is not a JSON object.
pub fn user_texts(body: &[u8]) -> Result<Vec<Cow<'_, str>>, serde_json::Error> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(serde::de::Error::custom("the body is not a JSON object"));
    }
    let top: Top<'_> = serde_json::from_slice(body)?;
    let mut out = Vec::new();
    for nodes in [
        top.system,
        top.system_instruction,
        top.instructions,
        top.messages,
        top.input,
        top.contents,
    ]
    .into_iter()
    .flatten()
    {
        collect_nodes(nodes, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "user_text_tests.rs"]
mod tests;
