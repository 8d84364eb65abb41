//! Users and keys: the user list, a user's page (edit form, usage of every window, keys), and
//! key creation that shows the plaintext once.

use std::sync::Arc;

use askama::Template;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};

use super::forms::{LimitsForm, UsageRow, usage_rows};
use super::paging::{ListQuery, Pager, cut};
use crate::adapters::http::admin::usage::{usage_view, window_view};
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;
use crate::app::limits::Scope;
use crate::domain::api_key::ApiKey;
use crate::domain::user::User;

/// A user row with their key count and the usage of their limited windows.
pub struct Row {
    u: User,
    keys: usize,
    usage: Vec<UsageRow>,
}

/// Usage reads of a page of users in flight at once (each one counter read).
const USAGE_READS_IN_FLIGHT: usize = 16;

#[derive(Template)]
#[template(path = "users.html")]
struct ListPage {
    l: Layout,
    rows: Vec<Row>,
    lim: LimitsForm,
    q: String,
    pager: Pager,
    /// Where the pager's links go.
    list_path: &'static str,
}

/// Users shown per page: the list stays a few hundred KB of HTML with 10,000 users.
const USERS_PER_PAGE: usize = 100;

/// `GET /users?q&page`: users by id, 100 a page, filtered by a part of the name (any case)
/// or the exact id.
#[handler]
pub async fn list(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Query(f): Query<ListQuery>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/users", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let q = f.q.trim().to_string();
    let needle = q.to_lowercase();
    let id = q.parse::<i64>().ok();
    let mut matching: Vec<&Arc<User>> = snap
        .users
        .values()
        .filter(|u| {
            needle.is_empty() || id == Some(u.id) || u.name.to_lowercase().contains(&needle)
        })
        .collect();
    matching.sort_by_key(|u| u.id);
    let (shown, pager) = cut(&matching, f.page, USERS_PER_PAGE);
    let ids: std::collections::HashSet<i64> = shown.iter().map(|u| u.id).collect();
    let mut keys_per_user = std::collections::HashMap::<i64, usize>::new();
    for k in snap
        .keys_by_id
        .values()
        .filter(|k| ids.contains(&k.user_id))
    {
        *keys_per_user.entry(k.user_id).or_default() += 1;
    }
    // The limited windows' bars, from the live counters (no log query per user).
    let now = ctx.clock.now();
    let usage: Vec<Vec<UsageRow>> = match ctx.limits.as_ref() {
        Some(limits) => {
            use futures_util::StreamExt;
            let l = &l;
            let user_ids: Vec<i64> = shown.iter().map(|u| u.id).collect();
            futures_util::stream::iter(user_ids.into_iter().map(|id| async move {
                limits
                    .limited_usage(Scope::User, id, now)
                    .await
                    .map(|w| {
                        let views: Vec<_> = w.iter().map(window_view).collect();
                        usage_rows(l, &views)
                    })
                    .unwrap_or_default()
            }))
            .buffered(USAGE_READS_IN_FLIGHT)
            .collect()
            .await
        }
        None => Vec::new(),
    };
    let mut usage = usage.into_iter();
    let rows: Vec<Row> = shown
        .iter()
        .map(|u| Row {
            u: (***u).clone(),
            keys: keys_per_user.get(&u.id).copied().unwrap_or(0),
            usage: usage.next().unwrap_or_default(),
        })
        .collect();
    html(&ListPage {
        l,
        rows,
        lim: LimitsForm::of(&Default::default(), true),
        q,
        pager,
        list_path: "/users",
    })
}

/// A key with its usage rows.
pub struct KeyRow {
    k: ApiKey,
    usage: Vec<UsageRow>,
}

#[derive(Template)]
#[template(path = "user_detail.html")]
struct DetailPage {
    l: Layout,
    u: User,
    expires: String,
    lim: LimitsForm,
    usage: Vec<UsageRow>,
    keys: Vec<KeyRow>,
    rate_limiting: bool,
}

/// `GET /users/:id`.
#[handler]
pub async fn detail(
    ctx: Data<&Arc<AppContext>>,
    ui: Data<&Arc<UiState>>,
    req: &Request,
    Path(id): Path<i64>,
) -> Response {
    let l = match page(&ctx, &ui, req, "/users", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let Some(u) = snap.users.get(&id).map(|u| (**u).clone()) else {
        return super::not_found(l);
    };
    let mut keys: Vec<ApiKey> = snap
        .keys_by_id
        .values()
        .filter(|k| k.user_id == id)
        .map(|k| (**k).clone())
        .collect();
    keys.sort_by_key(|k| k.id);
    let mut usage = Vec::new();
    let mut key_rows = Vec::with_capacity(keys.len());
    if let Some(limits) = ctx.limits.as_ref() {
        // The user's and every key's windows are read together.
        let (user_view, key_views) = futures_util::join!(
            usage_view(&ctx, limits, Scope::User, id),
            futures_util::future::join_all(keys.iter().map(|k| usage_view(
                &ctx,
                limits,
                Scope::Key,
                k.id
            )))
        );
        if let Ok(v) = user_view {
            usage = usage_rows(&l, &v.windows);
        }
        for (k, view) in keys.into_iter().zip(key_views) {
            let rows = match view {
                Ok(v) => usage_rows(&l, &v.windows),
                Err(_) => Vec::new(),
            };
            key_rows.push(KeyRow { k, usage: rows });
        }
    } else {
        key_rows = keys
            .into_iter()
            .map(|k| KeyRow {
                k,
                usage: Vec::new(),
            })
            .collect();
    }
    html(&DetailPage {
        expires: u
            .expires_at
            .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default(),
        lim: LimitsForm::of(&u.limits, true),
        l,
        u,
        usage,
        keys: key_rows,
        rate_limiting: ctx.limits.is_some(),
    })
}
