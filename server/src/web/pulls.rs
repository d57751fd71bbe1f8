//! Pull requests and settings pages: the API's own answers (`list_prs`, `get_pr`,
//! `merge_pr`, `list_webhooks`, …) rendered, so these pages can show nothing the API would not
//! tell the same visitor.

use http::{Response, StatusCode};
use serde_json::{json, Value};
use webview::view::{PullRow, Section, Tab};

use super::repo::{api, artifact, chrome, html, open, Opened};
use super::{respond, Visit};
use crate::admission::granted;
use crate::auth::Access;
use crate::body::ResponseBody;
use crate::response::HttpError;
use crate::storage::RepoId;

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The list of pull requests, newest first.
pub async fn list(visit: &Visit, o: &Opened) -> Result<Response<ResponseBody>, HttpError> {
    let mut params = artifact(&o.repo);
    params["status"] = json!("all");
    params["limit"] = json!(100);
    let answer = api(visit, "list_prs", params).await?;
    let pulls = answer
        .as_array()
        .map(|prs| {
            prs.iter()
                .map(|p| PullRow {
                    number: p["pr_number"].as_u64().unwrap_or(0),
                    title: text(p, "title"),
                    state: state(p),
                    href: format!("{}/-/pull/{}", o.base, p["pr_number"].as_u64().unwrap_or(0)),
                    head: text(p, "source_branch"),
                    base: text(p, "target_branch"),
                    author: text(p, "author"),
                })
                .collect()
        })
        .unwrap_or_default();
    let branch = text(&json!({"b": o.snapshot.head}), "b");
    let page = webview::pages::Pulls {
        chrome: chrome(
            visit,
            o,
            Tab::Pulls,
            branch.trim_start_matches("refs/heads/"),
            format!("Pull requests · {}", o.repo.id),
        ),
        pulls,
    };
    Ok(html(webview::pages::render(&page)))
}

fn state(p: &Value) -> String {
    match p["merged"].is_object() {
        true => "merged".to_owned(),
        false => text(p, "status"),
    }
}

/// One pull request with its diff (from the target branch to the source branch), and a
/// merge button for those who may merge it.
pub async fn show(
    visit: &Visit,
    o: &Opened,
    number: u64,
    message: Option<String>,
) -> Result<Response<ResponseBody>, HttpError> {
    let mut params = artifact(&o.repo);
    params["pr_number"] = json!(number);
    let pr = api(visit, "get_pr", params).await?;
    let (head, base) = (text(&pr, "head_sha"), text(&pr, "base_sha"));
    let merged_sha = pr["merged"]["sha"].as_str().map(str::to_owned);
    // Open: target to source; merged: the merge commit against its first parent.
    let (from, to) = match (&merged_sha, head.is_empty() || base.is_empty()) {
        (Some(sha), _) => (format!("{sha}~1"), sha.clone()),
        (None, false) => (base.clone(), head.clone()),
        (None, true) => (String::new(), String::new()),
    };
    let (files, truncated) = match to.is_empty() {
        true => (Vec::new(), false),
        false => super::repo::diff_between(visit, o, &from, &to).await?,
    };
    let open_state = state(&pr) == "open";
    let can_merge = open_state
        && visit.session.is_some()
        && granted(visit.identity.as_ref(), &o.repo, Access::Write);
    let title = text(&pr, "title");
    let page = webview::pages::Pull {
        chrome: chrome(
            visit,
            o,
            Tab::Pulls,
            &text(&pr, "target_branch"),
            format!("#{number} {title} · {}", o.repo.id),
        ),
        number,
        body: text(&pr, "description"),
        state: state(&pr),
        head: text(&pr, "source_branch"),
        base: text(&pr, "target_branch"),
        author: text(&pr, "author"),
        can_merge,
        merge_action: format!("{}/-/pull/{number}/merge", o.base),
        message,
        files,
        truncated,
        title,
    };
    Ok(html(webview::pages::render(&page)))
}

/// `POST -/pull/{n}/merge` (the form checked by the caller): merge as `merge_pr` does, then
/// show the pull request with what happened.
pub async fn merge(
    visit: &Visit,
    id: RepoId,
    number: u64,
) -> Result<Response<ResponseBody>, HttpError> {
    let o = open(visit, id).await?;
    let mut params = artifact(&o.repo);
    params["pr_number"] = json!(number);
    let message = match api(visit, "merge_pr", params).await {
        Ok(_) => None,
        Err(e) => Some(format!("Not merged: {e}")),
    };
    match message {
        // Merged: the page as it now is, by a fresh read (and a GET, so a reload does not
        // post again).
        None => Ok(respond::redirect(&format!("{}/-/pull/{number}", o.base))),
        Some(m) => {
            let mut resp = show(visit, &o, number, Some(m)).await?;
            *resp.status_mut() = StatusCode::CONFLICT;
            Ok(resp)
        }
    }
}

/// A repository's settings for its admins, read-only: visibility, webhooks, mirrors,
/// upstreams, the push policy and what the sync loops last did.
pub async fn settings(visit: &Visit, o: &Opened) -> Result<Response<ResponseBody>, HttpError> {
    if !granted(visit.identity.as_ref(), &o.repo, Access::Admin) {
        return Err(HttpError::Forbidden(
            "the settings are for the repository's admins".into(),
        ));
    }
    let params = artifact(&o.repo);
    let (hooks, mirrors, upstreams, policy, status) = tokio::join!(
        api(visit, "list_webhooks", params.clone()),
        api(visit, "list_mirrors", params.clone()),
        api(visit, "list_upstreams", params.clone()),
        api(visit, "get_push_policy", params.clone()),
        api(visit, "git_status", params.clone()),
    );
    let visibility = Section {
        title: "Visibility".into(),
        rows: vec![(
            "visibility".into(),
            match o.settings.public {
                true => "public: anyone may read".into(),
                false => "private: a token is needed to read".into(),
            },
        )],
        empty: String::new(),
    };
    let hooks = hooks?;
    let deliveries = webhook_deliveries(visit, o, &hooks).await?;
    let mut sections = vec![
        visibility,
        listed("Webhooks", hooks, "url", "No webhooks."),
        listed("Push mirrors", mirrors?, "url", "No push mirrors."),
        listed("Upstreams", upstreams?, "url", "No upstreams."),
        whole("Push policy", policy?, "No push policy."),
        whole("Sync status", status?, "Nothing to report."),
    ];
    sections.extend(deliveries);
    let branch = o
        .snapshot
        .head
        .as_deref()
        .unwrap_or("HEAD")
        .trim_start_matches("refs/heads/")
        .to_owned();
    let page = webview::pages::Settings {
        chrome: chrome(
            visit,
            o,
            Tab::Settings,
            &branch,
            format!("Settings · {}", o.repo.id),
        ),
        sections,
    };
    Ok(html(webview::pages::render(&page)))
}

/// The last deliveries of each webhook (at most ten webhooks, ten deliveries each).
async fn webhook_deliveries(
    visit: &Visit,
    o: &Opened,
    hooks: &Value,
) -> Result<Vec<Section>, HttpError> {
    let items = items_of(hooks);
    let mut sections = Vec::new();
    for hook in items.iter().take(10) {
        let Some(id) = hook["id"].as_str() else {
            continue;
        };
        let mut params = artifact(&o.repo);
        params["id"] = json!(id);
        params["limit"] = json!(10);
        let answer = api(visit, "list_deliveries", params).await?;
        let title = format!("Deliveries to {}", text(hook, "url"));
        sections.push(listed(&title, answer, "delivery_id", "No deliveries yet."));
    }
    Ok(sections)
}

/// The items of a list answer: the answer itself when it is an array, else the first array
/// among its fields (`{"webhooks": [...]}`).
fn items_of(answer: &Value) -> Vec<Value> {
    match answer {
        Value::Array(items) => items.clone(),
        Value::Object(map) => map
            .values()
            .find_map(|v| v.as_array().cloned())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A section with one row per item of the first array in `answer`, named by `key`.
fn listed(title: &str, answer: Value, key: &str, empty: &str) -> Section {
    let items = items_of(&answer);
    Section {
        title: title.into(),
        rows: items
            .iter()
            .map(|item| {
                let name = match item[key].as_str() {
                    Some(s) => s.to_owned(),
                    None => text(item, "id"),
                };
                (name, serde_json::to_string_pretty(item).unwrap_or_default())
            })
            .collect(),
        empty: empty.into(),
    }
}

/// A section showing a whole answer.
fn whole(title: &str, answer: Value, empty: &str) -> Section {
    let rows = match answer {
        Value::Null => Vec::new(),
        Value::Object(map) if map.is_empty() => Vec::new(),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| (k, serde_json::to_string_pretty(&v).unwrap_or_default()))
            .collect(),
        other => vec![(String::new(), other.to_string())],
    };
    Section {
        title: title.into(),
        rows,
        empty: empty.into(),
    }
}
