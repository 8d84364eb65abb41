//! OpenTelemetry traces over OTLP/HTTP (protobuf), on only when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The spans are the app's `tracing` spans
//! with target [`crate::app::tracing_spans::TARGET`]; with no endpoint that target is switched
//! off at its call sites, so tracing costs nothing.
//!
//! The exporter sends through the gateway's own `reqwest` (see [`ReqwestOnRuntime`]) so no
//! second HTTP or TLS stack is compiled in. Spans wait in the SDK's batch processor, whose queue
//! is bounded (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2,048 spans; beyond it spans are dropped, not
//! held), and are sent every `OTEL_BSP_SCHEDULE_DELAY` (default 5 s) from the processor's own
//! thread.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Whether the standard environment asks for trace export.
pub fn requested() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The running exporter: flushed and stopped by [`TraceExport::shutdown`] when cch exits.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Builds the exporter from the standard `OTEL_*` variables (endpoint, headers, timeout,
    /// batch settings) and the `tracing` layer that feeds it.
    pub fn start<S>(
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<(Self, impl tracing_subscriber::Layer<S>)>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(ReqwestOnRuntime { client, runtime })
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_id_generator(TimeFirstIds::default())
            .with_resource(
                Resource::builder()
                    .with_service_name("cch")
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.version",
                        env!("CARGO_PKG_VERSION"),
                    ))
                    .build(),
            )
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("cch"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false);
        Ok((Self { provider }, layer))
    }

    /// Sends the spans still queued and stops the exporter (bounded by its timeout).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("cch: trace export did not shut down cleanly: {e}");
        }
    }
}

/// The OTLP exporter's HTTP client: the batch processor calls it from its own thread, outside
/// the tokio runtime, so each send is spawned on the runtime and awaited through its handle.
#[derive(Debug, Clone)]
struct ReqwestOnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for ReqwestOnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut rb = client.request(parts.method, parts.uri.to_string());
            for (name, value) in &parts.headers {
                rb = rb.header(name, value);
            }
            let resp = rb.body(body).send().await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            // The collector's answer is a small protobuf; 64 KiB is far more than it needs.
            let body = read_capped(resp, 64 * 1024).await?;
            let mut out = Response::builder().status(status);
            if let Some(h) = out.headers_mut() {
                *h = headers;
            }
            Ok::<_, HttpError>(out.body(body)?)
        });
        sent.await?
    }
}

async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Bytes, HttpError> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > cap {
            return Err("collector answer too large".into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Trace ids shaped like request ids (time first, see `app::proxy::new_request_id`), since a
/// request's trace id becomes its log row's id; span ids stay random.
#[derive(Debug, Default)]
struct TimeFirstIds(opentelemetry_sdk::trace::RandomIdGenerator);

impl opentelemetry_sdk::trace::IdGenerator for TimeFirstIds {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        opentelemetry::trace::TraceId::from_hex(&crate::app::proxy::new_request_id())
            .unwrap_or_else(|_| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        self.0.new_span_id()
    }
}
