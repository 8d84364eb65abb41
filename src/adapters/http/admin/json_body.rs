//! A JSON request payload parsed with serde, so errors name the exact field at fault
//! (`weight: invalid type: string "x", expected i32`) and unknown fields are refused, while
//! the OpenAPI schema still comes from the type's `Object` derive.

use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest admin request body accepted by default.
pub const MAX_ADMIN_BODY: usize = 1 << 20;

/// A JSON body of type `T`, at most `LIMIT` bytes (default [`MAX_ADMIN_BODY`]).
pub struct JsonBody<T, const LIMIT: usize = MAX_ADMIN_BODY>(pub T);

impl<T: Type + Send, const LIMIT: usize> Payload for JsonBody<T, LIMIT> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(_content_type: &str) -> bool {
        // Lenient: curl users often forget the header; the body must still be JSON.
        true
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<'a, T: Type + DeserializeOwned + Send, const LIMIT: usize> ApiExtractor<'a>
    for JsonBody<T, LIMIT>
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // Lenient about the content type (curl users often omit it); the body must be JSON.
        <Self as ParsePayload>::from_request(request, body).await
    }
}

impl<T: Type + DeserializeOwned + Send, const LIMIT: usize> ParsePayload for JsonBody<T, LIMIT> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes =
            body.take()?.into_bytes_limit(LIMIT).await.map_err(|_| {
                ApiError::bad_request(None, "request body is too large or unreadable")
            })?;
        parse_json(&bytes).map(JsonBody).map_err(Into::into)
    }
}

/// Parses `bytes` as `T`, reporting the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            None,
            "request body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.to_string();
            // Unknown fields are reported by serde at the parent path; name the field itself.
            let field = unknown_field_name(&message)
                .map(str::to_string)
                .or_else(|| (path != "." && !path.is_empty()).then(|| path.clone()));
            let text = match &field {
                Some(f)
                    if !message.starts_with("unknown field")
                        && !message.starts_with("missing field") =>
                {
                    format!("{f}: {message}")
                }
                _ => message,
            };
            Err(ApiError::bad_request(field, text))
        }
    }
}

/// The field named by serde's "unknown field `x`" or "missing field `x`" messages.
fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next()
}
