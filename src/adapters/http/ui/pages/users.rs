//! Users and keys: the user list, a user's page (edit form, usage of every window, keys), and
//! key creation that shows the plaintext once.

use std::sync::Arc;

use askama::Template;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use super::forms::{LimitsForm, UsageRow, usage_rows};
use crate::adapters::http::admin::usage::usage_view;
use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::layout::{Layout, html, page};
use crate::app::context::AppContext;
use crate::app::limits::Scope;
use crate::domain::api_key::ApiKey;
use crate::domain::user::User;

/// A user row with their key count.
pub struct Row {
    u: User,
    keys: usize,
}

#[derive(Template)]
#[template(path = "users.html")]
struct ListPage {
    l: Layout,
    rows: Vec<Row>,
    lim: LimitsForm,
}

/// `GET /users`.
#[handler]
pub async fn list(ctx: Data<&Arc<AppContext>>, ui: Data<&Arc<UiState>>, req: &Request) -> Response {
    let l = match page(&ctx, &ui, req, "/users", true) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let snap = ctx.snapshot.get();
    let mut keys_per_user = std::collections::HashMap::<i64, usize>::new();
    for k in snap.keys_by_id.values() {
        *keys_per_user.entry(k.user_id).or_default() += 1;
    }
    let mut rows: Vec<Row> = snap
        .users
        .values()
        .map(|u| Row {
            u: (**u).clone(),
            keys: keys_per_user.get(&u.id).copied().unwrap_or(0),
        })
        .collect();
    rows.sort_by_key(|r| r.u.id);
    html(&ListPage {
        l,
        rows,
        lim: LimitsForm::of(&Default::default(), true),
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
        if let Ok(v) = usage_view(&ctx, limits, Scope::User, id).await {
            usage = usage_rows(&l, &v);
        }
        for k in keys {
            let rows = match usage_view(&ctx, limits, Scope::Key, k.id).await {
                Ok(v) => usage_rows(&l, &v),
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
