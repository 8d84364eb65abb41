//! The admin web console: server-rendered pages (askama templates, checked at compile time),
//! embedded assets, login with a signed session cookie, languages.

pub mod assets;
pub mod auth;
pub mod csrf;
pub mod i18n;
pub mod layout;
pub mod pages;
pub mod session;
pub mod throttle;

use poem::{Route, get, post};

use crate::app::context::AppContext;

/// State the console keeps beside the app context.
pub struct UiState {
    /// Signs and checks session cookies.
    pub signer: session::SessionSigner,
    /// Failed-login bookkeeping.
    pub throttle: throttle::LoginThrottle,
}

impl UiState {
    /// Builds the console state for this app.
    pub fn new(ctx: &AppContext) -> Self {
        Self {
            signer: session::SessionSigner::from_admin_token(&ctx.admin_token),
            throttle: throttle::LoginThrottle::default(),
        }
    }
}

/// Adds the console's routes (pages, assets, login and logout) to `route`. Handlers read the
/// [`UiState`] the caller attaches as request data.
pub fn mount(route: Route) -> Route {
    let route = route
        .at("/assets/:name", get(assets::serve))
        .at("/api/v1/auth/login", post(auth::login))
        .at("/api/v1/auth/logout", post(auth::logout));
    pages::mount(route)
}
