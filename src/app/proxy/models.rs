//! `GET /v1/models`: the models a key may use, from the providers its groups can reach.

use crate::domain::format::{ClientFormat, provider_serves};
use crate::domain::routing::{RouteRequest, group_allows};

use super::{ProxyResponse, ProxyService};

impl ProxyService {
    /// The models a key may use (for `GET /v1/models`), or an auth error.
    pub fn models_for_key(
        &self,
        api_key: Option<&str>,
        format: ClientFormat,
    ) -> Result<Vec<String>, ProxyResponse> {
        let snap = self.snapshot.get();
        let (user, _key) = self.authenticate(&snap, api_key, format)?;
        let mut models: Vec<String> = Vec::new();
        let req = RouteRequest {
            format,
            model: "",
            user_groups: &user.provider_group,
            native_only: false,
        };
        let mut any_open = false;
        for p in snap.providers.iter().filter(|p| p.enabled) {
            if !provider_serves(p, format) || !group_allows(p, req.user_groups) {
                continue;
            }
            if p.allowed_models.is_empty() {
                any_open = true;
            }
            models.extend(p.allowed_models.iter().cloned());
            models.extend(p.model_redirects.keys().cloned());
        }
        if any_open {
            let family = |m: &str| match format {
                ClientFormat::Claude => m.starts_with("claude-"),
                ClientFormat::Gemini => m.starts_with("gemini-"),
                ClientFormat::OpenAi | ClientFormat::Response => {
                    !m.starts_with("claude-") && !m.starts_with("gemini-")
                }
            };
            models.extend(
                snap.prices
                    .iter()
                    .filter(|m| family(&m.model))
                    .map(|m| m.model.clone()),
            );
        }
        models.sort();
        models.dedup();
        Ok(models)
    }
}
