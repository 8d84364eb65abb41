//! Stage 2 of the pipeline: the user's and key's limits (429 when one is reached) and the
//! routing state every selection of this request starts from (open breakers, providers over
//! their own limits, the session's bound provider). The reads are independent, so they go to
//! the shared store together: one round trip with Redis (a bounded number of commands: the
//! limit script, the provider-limit script when a provider has limits, one `MGET` of every
//! breaker, one `GET` of the session binding).

use std::collections::HashSet;

use crate::domain::client_error::GatewayErrorKind;
use crate::domain::provider::Provider;
use crate::domain::routing::{RouteRequest, RouteState, may_serve};

use super::inbound::Inbound;
use super::{ClientRequest, ProxyResponse, ProxyService};
use crate::app::policy::AdmitRequest;

/// What routing is asked for this request: the format, model and groups every selection of it
/// filters providers by (built the same way for admission and for failover).
pub(super) fn route_request<'a>(req: &ClientRequest, inb: &'a Inbound) -> RouteRequest<'a> {
    RouteRequest {
        format: req.format,
        model: &inb.model,
        user_groups: &inb.user.provider_group,
        native_only: req.is_compaction(),
    }
}

/// What routing starts from once the request is admitted.
pub(super) struct Admitted {
    /// Providers selection must skip from the start.
    pub state: RouteState,
    /// The provider the session is bound to, when the conversation has history.
    pub bound: Option<i64>,
    /// Breakers known CLOSED before routing (no admission to ask for them).
    pub closed_breakers: HashSet<i64>,
    /// Breakers known CLOSED with no failures (a success needs no recording).
    pub clean_breakers: HashSet<i64>,
}

impl ProxyService {
    /// Stage 2: admits the request against the user's and key's limits and reads the routing
    /// state; a limit refusal is logged and answered with 429 and the rate-limit headers.
    /// The state is read only for the providers that may serve the request (format, model,
    /// group): selection never looks at the others' breakers or limits, and with many
    /// providers in other groups their keys would otherwise be read on every request.
    pub(super) async fn admission(
        &self,
        req: &ClientRequest,
        inb: &Inbound,
    ) -> Result<Admitted, ProxyResponse> {
        let now = inb.facts.created_at;
        let route = route_request(req, inb);
        let eligible: Vec<&Provider> = inb
            .snap
            .providers
            .iter()
            .filter(|p| may_serve(p, &route))
            .collect();
        let admit = AdmitRequest {
            user: &inb.user,
            key: &inb.key,
            session_id: &inb.session_id,
            format: inb.facts.format,
            now,
        };
        // A first message has no provider to stick to: no lookup.
        let has_history = inb.body.message_count() > 1;
        let (admitted, provider_limits, breakers, bound) = tokio::join!(
            self.limiter.admit(&admit),
            self.limiter.provider_state(&eligible, &inb.session_id, now),
            self.breakers.readings(&eligible, now),
            async {
                if has_history {
                    self.bound_provider(&inb.session_id).await
                } else {
                    None
                }
            },
        );
        if let Err(rejection) = admitted {
            let mut resp = self.fail_logged(
                inb,
                GatewayErrorKind::RateLimit,
                &rejection.message,
                &rejection.log_message,
            );
            resp.headers.extend(rejection.headers);
            return Err(resp);
        }
        Ok(Admitted {
            state: RouteState {
                open_breakers: breakers.unavailable,
                over_limit: provider_limits.over_limit,
                concurrency_full: provider_limits.concurrency_full,
                ..RouteState::default()
            },
            bound,
            closed_breakers: breakers.closed,
            clean_breakers: breakers.clean,
        })
    }
}
