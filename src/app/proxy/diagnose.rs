//! "Which provider would this user get for this model now, and why": the routing decision of
//! a request, computed from the same snapshot, breaker and limit state as the proxy, without
//! sending anything upstream.

use serde::Serialize;

use crate::domain::format::ClientFormat;
use crate::domain::provider::Provider;
use crate::domain::routing::{Exclusion, RouteRequest, RouteState, select_provider};

use super::ProxyService;

/// The answer of a routing diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct RouteDiagnosis {
    /// The provider that would be chosen now (one weighted draw), if any.
    pub chosen: Option<ChosenProvider>,
    /// The other candidates of the same tier (the draw could also pick them).
    pub candidates: Vec<i64>,
    /// Every provider that is not a candidate, with its reason.
    pub excluded: Vec<Exclusion>,
    /// When nothing is available, the message the client would get with the 503.
    pub message: Option<String>,
}

/// The provider a request would go to.
#[derive(Debug, Clone, Serialize)]
pub struct ChosenProvider {
    /// Its id.
    pub provider_id: i64,
    /// Its name.
    pub provider_name: String,
    /// The model name it would receive.
    pub forwarded_model: String,
    /// Whether the request would be converted to its format.
    pub needs_conversion: bool,
}

/// Why a diagnosis could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiagnoseError {
    /// No user with that id.
    #[error("user not found")]
    UnknownUser,
}

impl ProxyService {
    /// Routes a would-be request of `user_id` for `model` in `format` and explains the result.
    pub async fn diagnose_route(
        &self,
        user_id: i64,
        model: &str,
        format: ClientFormat,
    ) -> Result<RouteDiagnosis, DiagnoseError> {
        let snap = self.snapshot.get();
        let user = snap.users.get(&user_id).ok_or(DiagnoseError::UnknownUser)?;
        let now = self.clock.now();
        let all: Vec<&Provider> = snap.providers.iter().collect();
        let limits = self.limiter.provider_state(&all, "diagnostics", now).await;
        let state = RouteState {
            open_breakers: self.breakers.open_providers(&snap.providers, now).await,
            over_limit: limits.over_limit,
            concurrency_full: limits.concurrency_full,
            ..RouteState::default()
        };
        let route = RouteRequest {
            format,
            model,
            user_groups: &user.provider_group,
            native_only: false,
        };
        let mut rng = rand::rng();
        let mut rand01 = || rand::Rng::random::<f64>(&mut rng);
        Ok(
            match select_provider(&snap.providers, &route, &state, &mut rand01) {
                Ok(sel) => RouteDiagnosis {
                    chosen: snap.provider(sel.provider_id).map(|p| ChosenProvider {
                        provider_id: p.id,
                        provider_name: p.name.clone(),
                        forwarded_model: sel.forwarded_model.clone(),
                        needs_conversion: sel.needs_conversion,
                    }),
                    candidates: sel.candidates,
                    excluded: sel.excluded,
                    message: None,
                },
                Err(none) => RouteDiagnosis {
                    chosen: None,
                    candidates: Vec::new(),
                    excluded: none.excluded,
                    message: Some(format!("no provider available: {}", none.message)),
                },
            },
        )
    }
}
