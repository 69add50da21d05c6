//! The web UI of one node over real HTTP, used as a browser without
//! scripts would: pages, forms sent from the UI's own origin (or forged
//! from another), sign-in and sign-out.

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

pub type Http = Client<HttpConnector, Full<Bytes>>;

/// A page as the browser got it.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub cookie: Option<String>,
    pub html: String,
}

/// The web UI of one node, used like a browser would.
pub struct Browser {
    pub http: Http,
    pub base: String,
}

impl Browser {
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Page> {
        let response = self.http.request(request).await?;
        let status = response.status();
        let header_text = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header_text(header::LOCATION);
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("imi-session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Page {
            status,
            location,
            cookie,
            html: String::from_utf8(body.to_vec())?,
        })
    }

    pub async fn get(&self, path: &str, cookie: &str) -> Result<Page> {
        self.send(
            Request::get(format!("{}{}", self.base, path.trim_start_matches('/')))
                .header(header::COOKIE, cookie)
                .body(Full::new(Bytes::new()))?,
        )
        .await
    }

    /// Posts a form from this site's own page, as a browser does.
    pub async fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Result<Page> {
        self.post_from(
            path,
            cookie,
            form,
            self.base.trim_end_matches('/'),
            "same-origin",
        )
        .await
    }

    pub async fn post_from(
        &self,
        path: &str,
        cookie: &str,
        form: &[(&str, &str)],
        origin: &str,
        fetch_site: &str,
    ) -> Result<Page> {
        let body = form
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::post(format!("{}{}", self.base, path.trim_start_matches('/')))
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, origin)
                .header("sec-fetch-site", fetch_site)
                .body(Full::new(Bytes::from(body)))?,
        )
        .await
    }

    /// Signs in as `login` with `password`; the page answering.
    pub async fn try_sign_in(&self, login: &str, password: &str) -> Result<Page> {
        self.post(
            "/sign-in",
            "",
            &[("login", login), ("password", password), ("next", "/tasks")],
        )
        .await
    }

    /// Signs in as `login`; the session cookie.
    pub async fn sign_in(&self, login: &str, password: &str) -> Result<String> {
        let page = self.try_sign_in(login, password).await?;
        ensure!(
            page.status == StatusCode::SEE_OTHER,
            "signing in answered {}",
            page.status
        );
        page.cookie.context("no session cookie after signing in")
    }

    pub async fn sign_out(&self, cookie: &str) -> Result<()> {
        let page = self.post("/sign-out", cookie, &[]).await?;
        ensure!(
            page.location.as_deref() == Some("/sign-in?done=signed-out"),
            "signing out led to {:?}",
            page.location
        );
        Ok(())
    }
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The fields the error summary links to.
pub fn summary_links(html: &str) -> Vec<&str> {
    let Some(summary) = html.split("class=\"error-summary\"").nth(1) else {
        return vec![];
    };
    let summary = &summary[..summary.find("</div>").unwrap_or(summary.len())];
    summary
        .split("href=\"#")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}
