//! Plain HTTP calls to a registry's API beyond what oci-client covers
//! (`/v2/_catalog`, `/v2/<name>/tags/list`, `/v1/search`), with the
//! distribution auth dance: anonymous first; on `401`, basic auth with the
//! stored credentials, or a bearer token from the realm of the
//! `WWW-Authenticate: Bearer` challenge (with the challenge's `service`
//! and `scope`, the credentials as basic auth when there are some).

use std::time::Duration;

use serde::Deserialize;

use crate::auth::{self, Credentials};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build an HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error(
        "unauthorized: {url} refused the credentials for {registry} (use `rstack login {registry}`)"
    )]
    Unauthorized { url: String, registry: String },
    #[error("{url} did not answer JSON of the expected shape")]
    Parse {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Auth(#[from] auth::Error),
}

/// A registry's HTTP API at `scheme://host`.
pub(crate) struct RegistryClient {
    client: reqwest::Client,
    /// The registry as named (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    /// `http://127.0.0.1:5000`, `https://registry-1.docker.io`.
    base: String,
    creds: Option<Credentials>,
}

/// What a token endpoint answers (distribution's and Docker Hub's keys).
#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

impl RegistryClient {
    /// A client for `registry` (plain HTTP when `insecure`), with its
    /// stored credentials.
    pub(crate) fn new(registry: &str, insecure: bool) -> Result<RegistryClient, Error> {
        let scheme = if insecure { "http" } else { "https" };
        let base = format!("{scheme}://{}", auth::api_host(registry));
        RegistryClient::new_at(registry, &base)
    }

    /// A client for `registry`'s credentials at another `base` URL
    /// (Docker Hub's search API is on `index.docker.io`).
    pub(crate) fn new_at(registry: &str, base: &str) -> Result<RegistryClient, Error> {
        crate::tls::init();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(Error::Client)?;
        Ok(RegistryClient {
            client,
            registry: registry.to_owned(),
            base: base.to_owned(),
            creds: auth::lookup(registry)?,
        })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `GET base + path_and_query`, authenticated as the registry asks;
    /// any status is returned (the caller tells which it understands).
    pub(crate) async fn get(&self, path_and_query: &str) -> Result<reqwest::Response, Error> {
        let url = format!("{}{path_and_query}", self.base);
        let send = |req: reqwest::RequestBuilder| {
            let url = url.clone();
            async move {
                req.send()
                    .await
                    .map_err(|source| Error::Request { url, source })
            }
        };
        let res = send(self.client.get(&url)).await?;
        if res.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(res);
        }
        let challenge = res
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let res = if let Some(params) = auth::strip_scheme(&challenge, "bearer") {
            let token = self.token(&auth::parse_params(params)).await?;
            send(self.client.get(&url).bearer_auth(token)).await?
        } else if let Some(c) = &self.creds {
            send(
                self.client
                    .get(&url)
                    .basic_auth(&c.username, Some(&c.password)),
            )
            .await?
        } else {
            res
        };
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Error::Unauthorized {
                url,
                registry: self.registry.clone(),
            });
        }
        Ok(res)
    }

    /// A bearer token from the challenge's realm.
    async fn token(
        &self,
        params: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let realm = params.get("realm").cloned().unwrap_or_default();
        let mut query: Vec<(&str, &str)> = Vec::new();
        for key in ["service", "scope"] {
            if let Some(v) = params.get(key) {
                query.push((key, v.as_str()));
            }
        }
        let mut req = self.client.get(&realm).query(&query);
        if let Some(c) = &self.creds {
            req = req
                .query(&[("account", c.username.as_str())])
                .basic_auth(&c.username, Some(&c.password));
        }
        let res = req.send().await.map_err(|source| Error::Request {
            url: realm.clone(),
            source,
        })?;
        match res.status().as_u16() {
            200..=299 => {}
            401 | 403 => {
                return Err(Error::Unauthorized {
                    url: realm,
                    registry: self.registry.clone(),
                });
            }
            status => return Err(Error::Status { url: realm, status }),
        }
        let answer: TokenAnswer = json(realm.clone(), res).await?;
        answer
            .token
            .or(answer.access_token)
            .ok_or_else(|| Error::Parse {
                url: realm,
                source: serde::de::Error::custom("no `token` in the answer"),
            })
    }
}

/// The body of `res` as JSON of type `T`.
pub(crate) async fn json<T: serde::de::DeserializeOwned>(
    url: String,
    res: reqwest::Response,
) -> Result<T, Error> {
    let body = res.bytes().await.map_err(|source| Error::Request {
        url: url.clone(),
        source,
    })?;
    serde_json::from_slice(&body).map_err(|source| Error::Parse { url, source })
}
