//! HTTP to the lab app (reqwest, no TLS, no proxies: the app is always on loopback).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::header::HeaderMap;

/// A response as checks see it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A request, fully rendered.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> Result<Self> {
        crate::util::crypto::ensure_provider();
        let inner = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .context("Failed to set up the HTTP client")?;
        Ok(HttpClient { inner })
    }

    /// Sends `request` and reads the whole body, within `request.timeout`.
    pub async fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            HttpError::Invalid(format!("`{}` is not an HTTP method", request.method))
        })?;
        let mut builder = self
            .inner
            .request(method, &request.url)
            .timeout(request.timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let started = Instant::now();
        let response = builder.send().await.map_err(|e| describe(e, request))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| describe(e, request))?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// `GET url` with `headers`.
    pub async fn get(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        timeout: Duration,
    ) -> Result<Response> {
        Ok(self
            .send(&Request {
                method: "GET".into(),
                url: url.into(),
                headers,
                body: None,
                timeout,
            })
            .await?)
    }

    /// `GET url` → status only.
    pub async fn get_status(&self, url: &str, timeout: Duration) -> Result<u16> {
        Ok(self.get(url, vec![], timeout).await?.status)
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub enum HttpError {
    /// Nothing answered: the connection failed or was cut, or no complete answer came in time.
    /// Transient by nature: an app that is starting, restarting or jammed answers later.
    NoAnswer(String),
    /// The request could not be made at all (a method or URL that is not one).
    Invalid(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::NoAnswer(why) | HttpError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for HttpError {}

fn describe(e: reqwest::Error, request: &Request) -> HttpError {
    let what = format!("{} {}", request.method, request.url);
    if e.is_builder() {
        HttpError::Invalid(format!("{what}: {e}"))
    } else if e.is_timeout() {
        HttpError::NoAnswer(format!(
            "{what}: no complete answer within {:.1}s (timed out)",
            request.timeout.as_secs_f64()
        ))
    } else if e.is_connect() {
        HttpError::NoAnswer(format!(
            "{what}: connection failed (is the app running and listening?): {e}"
        ))
    } else {
        HttpError::NoAnswer(format!("{what}: {e}"))
    }
}
