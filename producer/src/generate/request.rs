//! The parts of a request the seed hard-coded, varied plausibly: which path (and so which kind
//! of resource, host and `Accept` header), its query string, the `User-Agent` and the HTTP
//! version, as weighted tables. They never depend on the mode, so an anomaly shows only in the
//! monitored field. Pure data and draws from the caller's RNG; [`super::Generator`] builds the
//! weighted indices over these tables once.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// What kind of resource a path is; decides the `Host` and `Accept` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resource {
    /// An HTML page of the site.
    Page,
    /// A JSON API endpoint.
    Api,
    /// A static asset.
    Asset,
}

/// The query string a path takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Query {
    /// Always empty.
    None,
    /// Empty, or `page=N`.
    Paged,
    /// `id=N`, or `page=N&limit=L`.
    IdOrPaged,
    /// `q=TERM&page=N`.
    Search,
    /// Empty, or `next=PATH` (a login redirect).
    Next,
    /// A cache-busting version.
    Version,
}

/// One request path and how often it is requested.
#[derive(Debug, Clone, Copy)]
pub(super) struct Path {
    /// The path, without query.
    pub(super) uri: &'static str,
    /// What it serves.
    pub(super) resource: Resource,
    /// The query strings it takes.
    pub(super) query: Query,
    /// Its relative popularity.
    pub(super) weight: f64,
}

pub(super) const PATHS: [Path; 15] = [
    path("/", Resource::Page, Query::None, 20.0),
    path("/login", Resource::Page, Query::Next, 6.0),
    path("/account", Resource::Page, Query::None, 4.0),
    path("/products", Resource::Page, Query::Paged, 10.0),
    path("/search", Resource::Page, Query::Search, 6.0),
    path("/cart", Resource::Page, Query::None, 4.0),
    path("/checkout", Resource::Page, Query::None, 2.0),
    path("/api/v1/orders", Resource::Api, Query::IdOrPaged, 10.0),
    path("/api/v1/products", Resource::Api, Query::Paged, 8.0),
    path("/api/v1/users/me", Resource::Api, Query::None, 5.0),
    path("/api/v1/cart", Resource::Api, Query::None, 4.0),
    path("/static/js/app.js", Resource::Asset, Query::Version, 8.0),
    path("/static/css/main.css", Resource::Asset, Query::Version, 6.0),
    path("/favicon.ico", Resource::Asset, Query::None, 3.0),
    path("/robots.txt", Resource::Asset, Query::None, 1.0),
];

const fn path(uri: &'static str, resource: Resource, query: Query, weight: f64) -> Path {
    Path {
        uri,
        resource,
        query,
        weight,
    }
}

const SEARCH_TERMS: [&str; 6] = [
    "shoes",
    "laptop",
    "coffee+mug",
    "headphones",
    "gift+card",
    "usb-c+cable",
];

const LOGIN_REDIRECTS: [&str; 3] = ["next=%2Faccount", "next=%2Fcheckout", "next=%2Fcart"];

const PAGE_LIMITS: [u32; 3] = [25, 50, 100];

/// `(User-Agent, weight)`: browsers on common platforms, a crawler and a few scripts.
pub(super) const USER_AGENTS: [(&str, f64); 8] = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/124.0.0.0 Safari/537.36",
        30.0,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/124.0.0.0 Safari/537.36",
        15.0,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
         (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        20.0,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/124.0.0.0 Mobile Safari/537.36",
        12.0,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        8.0,
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        4.0,
    ),
    ("curl/8.5.0", 3.0),
    ("python-requests/2.31.0", 3.0),
];

/// `(httpVersion, weight)`.
pub(super) const HTTP_VERSIONS: [(&str, f64); 2] = [("HTTP/2.0", 60.0), ("HTTP/1.1", 40.0)];

impl Resource {
    /// The `Host` header for this kind of resource.
    pub(super) fn host(self) -> &'static str {
        match self {
            Self::Page | Self::Asset => "www.example.com",
            Self::Api => "api.example.com",
        }
    }

    /// The `Accept` header for this kind of resource.
    pub(super) fn accept(self) -> &'static str {
        match self {
            Self::Page => "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            Self::Api => "application/json",
            Self::Asset => "*/*",
        }
    }
}

impl Query {
    /// A query string of this kind, drawn from `rng`.
    pub(super) fn draw(self, rng: &mut ChaCha8Rng) -> String {
        match self {
            Query::None => String::new(),
            Query::Paged => {
                if rng.random_bool(0.6) {
                    String::new()
                } else {
                    format!("page={}", rng.random_range(2..=20_u32))
                }
            }
            Query::IdOrPaged => {
                if rng.random_bool(0.5) {
                    format!("id={}", rng.random_range(1000..=99_999_u32))
                } else {
                    let page = rng.random_range(1..=20_u32);
                    let limit = PAGE_LIMITS[rng.random_range(0..PAGE_LIMITS.len())];
                    format!("page={page}&limit={limit}")
                }
            }
            Query::Search => {
                let term = SEARCH_TERMS[rng.random_range(0..SEARCH_TERMS.len())];
                format!("q={term}&page={}", rng.random_range(1..=5_u32))
            }
            Query::Next => {
                if rng.random_bool(0.7) {
                    String::new()
                } else {
                    LOGIN_REDIRECTS[rng.random_range(0..LOGIN_REDIRECTS.len())].to_owned()
                }
            }
            Query::Version => "v=3.14.2".to_owned(),
        }
    }
}
