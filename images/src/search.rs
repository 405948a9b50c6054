//! `search TERM`: repositories of a registry whose name matches.
//!
//! `TERM` may name its registry (`127.0.0.1:5000/busy`, `quay.io/`);
//! otherwise the registries searched are registries.conf's
//! `unqualified-search-registries`, or Docker Hub. Docker Hub is asked
//! through its search API (`index.docker.io/v1/search`: names,
//! descriptions, stars, official). Another registry is asked for its
//! catalog (`/v2/_catalog`, every page), filtered here by name; a registry
//! without a catalog is asked the Docker Hub search API on its own host
//! (some registries have one); one with neither is a clear error. Tags
//! (`/v2/<name>/tags/list`) are fetched only when asked.

use serde::{Deserialize, Serialize};

use crate::reference::{self, DOCKER_HUB};
use crate::regclient::{self, RegistryClient};
use crate::store::Store;

/// Docker's default number of results.
pub const DEFAULT_LIMIT: usize = 25;
/// Catalog pages followed at most (of 1000 names each).
const MAX_PAGES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registries(#[from] Box<crate::registries::Error>),
    #[error(transparent)]
    Http(#[from] regclient::Error),
    #[error(
        "registry {registry} has neither a catalog (/v2/_catalog answered {catalog}) nor a search API (/v1/search answered {search}): it cannot be searched"
    )]
    Unsupported {
        registry: String,
        catalog: u16,
        search: u16,
    },
    #[error("cannot search {registry}")]
    Registry {
        registry: String,
        #[source]
        source: Box<Error>,
    },
}

/// What to search.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Results per registry.
    pub limit: usize,
    /// Fetch each result's tags.
    pub tags: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: DEFAULT_LIMIT,
            tags: false,
        }
    }
}

/// One repository found (Docker Hub's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// `busybox`, `bitnami/redis` on Docker Hub; `host:port/repo` elsewhere.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
    /// Filled when asked ([`SearchOptions::tags`]).
    #[serde(default, skip_deserializing)]
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
struct HubAnswer {
    #[serde(default)]
    results: Vec<SearchResult>,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `TERM` split into the registry it names (if any) and the text to match.
pub fn split_term(term: &str) -> (Option<&str>, &str) {
    match term.split_once('/') {
        Some((first, rest)) if !reference::is_short_name(term) => (Some(first), rest),
        _ => (None, term),
    }
}

/// Repositories of a catalog whose name contains `term` (any case), at
/// most `limit`, in catalog order.
pub fn filter_catalog(repositories: &[String], term: &str, limit: usize) -> Vec<String> {
    let term = term.to_lowercase();
    repositories
        .iter()
        .filter(|r| r.to_lowercase().contains(&term))
        .take(limit)
        .cloned()
        .collect()
}

/// The `rel="next"` target of a `Link` header (`</v2/_catalog?last=x&n=2>; rel="next"`).
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

fn is_hub(registry: &str) -> bool {
    matches!(
        registry,
        DOCKER_HUB | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

impl Store {
    /// Searches for repositories matching `term` (see the module docs).
    /// With several registries, one that fails is reported and skipped
    /// unless all fail.
    pub async fn search(
        &self,
        term: &str,
        opts: &SearchOptions,
    ) -> Result<Vec<SearchResult>, Error> {
        let config = self.registry_config().map_err(Box::new)?;
        let (registry, text) = split_term(term);
        let registries: Vec<String> = match registry {
            Some(r) => vec![r.to_owned()],
            None if !config.conf.unqualified_search.is_empty() => {
                config.conf.unqualified_search.clone()
            }
            None => vec![DOCKER_HUB.to_owned()],
        };
        let mut out = Vec::new();
        let mut failures = Vec::new();
        for registry in &registries {
            let insecure = config.is_insecure(registry);
            match search_one(registry, insecure, text, opts).await {
                Ok(found) => out.extend(found),
                Err(e) => {
                    let e = Error::Registry {
                        registry: registry.clone(),
                        source: Box::new(e),
                    };
                    if registries.len() > 1 {
                        tracing::warn!("{}", rstack_sys::chain::chain(&e));
                    }
                    failures.push(e);
                }
            }
        }
        match failures.into_iter().next() {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }
}

async fn search_one(
    registry: &str,
    insecure: bool,
    text: &str,
    opts: &SearchOptions,
) -> Result<Vec<SearchResult>, Error> {
    let mut found = if is_hub(registry) {
        let index = RegistryClient::new_at(registry, "https://index.docker.io")?;
        v1_search(&index, text, opts.limit)
            .await?
            .map_err(|status| regclient::Error::Status {
                url: format!("{}/v1/search", index.base()),
                status,
            })?
    } else {
        let client = RegistryClient::new(registry, insecure)?;
        match catalog(&client, text, opts.limit).await? {
            Ok(names) => names
                .into_iter()
                .map(|n| SearchResult {
                    name: format!("{registry}/{n}"),
                    ..Default::default()
                })
                .collect(),
            Err(catalog_status) => match v1_search(&client, text, opts.limit).await? {
                Ok(results) => results,
                Err(search_status) => {
                    return Err(Error::Unsupported {
                        registry: registry.to_owned(),
                        catalog: catalog_status,
                        search: search_status,
                    });
                }
            },
        }
    };
    if opts.tags {
        let client = RegistryClient::new(registry, insecure)?;
        for result in &mut found {
            result.tags = tags(&client, registry, &result.name).await?;
        }
    }
    Ok(found)
}

/// The catalog's names matching `text`; `Err(status)` when the registry
/// has no catalog.
async fn catalog(
    client: &RegistryClient,
    text: &str,
    limit: usize,
) -> Result<Result<Vec<String>, u16>, Error> {
    let mut names = Vec::new();
    let mut next = Some("/v2/_catalog?n=1000".to_owned());
    for _ in 0..MAX_PAGES {
        let Some(path) = next.take() else { break };
        let res = client.get(&path).await?;
        let status = res.status().as_u16();
        if !res.status().is_success() {
            if names.is_empty() {
                return Ok(Err(status));
            }
            return Err(regclient::Error::Status {
                url: format!("{}{path}", client.base()),
                status,
            }
            .into());
        }
        next = res
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let page: Catalog = regclient::json(format!("{}{path}", client.base()), res).await?;
        names.extend(filter_catalog(
            &page.repositories,
            text,
            limit - names.len(),
        ));
        if names.len() >= limit {
            break;
        }
    }
    Ok(Ok(names))
}

/// Docker Hub's search API at the client's host; `Err(status)` when there
/// is none.
async fn v1_search(
    client: &RegistryClient,
    text: &str,
    limit: usize,
) -> Result<Result<Vec<SearchResult>, u16>, Error> {
    let path = format!("/v1/search?q={}&n={limit}", url_escape(text));
    let res = client.get(&path).await?;
    if !res.status().is_success() {
        return Ok(Err(res.status().as_u16()));
    }
    let answer: HubAnswer = regclient::json(format!("{}{path}", client.base()), res).await?;
    Ok(Ok(answer.results.into_iter().take(limit).collect()))
}

/// The tags of a result (`name` as shown: `host/repo`, or a Hub name).
async fn tags(client: &RegistryClient, registry: &str, name: &str) -> Result<Vec<String>, Error> {
    let repo = name.strip_prefix(&format!("{registry}/")).unwrap_or(name);
    let repo = if is_hub(registry) && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo.to_owned()
    };
    let path = format!("/v2/{repo}/tags/list");
    let res = client.get(&path).await?;
    if !res.status().is_success() {
        return Err(regclient::Error::Status {
            url: format!("{}{path}", client.base()),
            status: res.status().as_u16(),
        }
        .into());
    }
    let list: TagList = regclient::json(format!("{}{path}", client.base()), res).await?;
    let mut tags = list.tags.unwrap_or_default();
    tags.sort();
    Ok(tags)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_their_registry_or_not() {
        assert_eq!(split_term("busybox"), (None, "busybox"));
        assert_eq!(split_term("bitnami/redis"), (None, "bitnami/redis"));
        assert_eq!(
            split_term("127.0.0.1:5000/busy"),
            (Some("127.0.0.1:5000"), "busy")
        );
        assert_eq!(split_term("quay.io/"), (Some("quay.io"), ""));
    }

    #[test]
    fn catalog_filter_and_pages() {
        let repos: Vec<String> = ["e2e/busybox", "library/BusyBox", "other/app", "busy/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            filter_catalog(&repos, "busy", 2),
            ["e2e/busybox", "library/BusyBox"]
        );
        assert_eq!(filter_catalog(&repos, "", 10).len(), 4);
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn docker_hub_answer_shape() {
        let answer: HubAnswer = serde_json::from_str(
            r#"{"num_pages":1,"num_results":2,"page":1,"query":"busybox","results":[
            {"name":"busybox","description":"Busybox base image.","star_count":3300,"is_official":true,"is_automated":false},
            {"name":"radial/busyboxplus","description":"Full-chain, Internet enabled, busybox made from scratch.","star_count":54,"is_official":false,"is_automated":true}]}"#,
        )
        .unwrap();
        assert_eq!(answer.results.len(), 2);
        assert_eq!(answer.results[0].name, "busybox");
        assert!(answer.results[0].is_official);
        assert_eq!(answer.results[1].star_count, 54);
        assert!(answer.results[1].is_automated);
        assert_eq!(url_escape("a b/c"), "a%20b%2Fc");
    }
}
