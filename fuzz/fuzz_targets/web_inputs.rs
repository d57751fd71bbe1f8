//! What a visitor or a repository puts in front of the web view: request paths, cookies,
//! where sign-in returns to, and Markdown, file names and file contents rendered into pages.
//! Rendered HTML may hold only the elements and attributes the renderers write themselves,
//! and links only to safe places.
#![no_main]

use artifact_git::storage::valid_name;
use libfuzzer_sys::fuzz_target;

/// Elements the Markdown renderer writes.
const ELEMENTS: [&str; 36] = [
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "a", "img", "em", "strong", "del", "code", "pre",
    "ul", "ol", "li", "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
    "input", "sup", "div", "span", "section", "dl", "dt", "dd", "s", "label",
];

/// Every tag in `html` is one of `ELEMENTS` with no event-handler attribute, and every
/// `href`/`src` is `http(s)`, `mailto`, a fragment or a path of this site.
fn assert_inert(html: &str, source: &str) {
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        let tag = &rest[i + 1..];
        let end = tag.find('>').unwrap_or(tag.len());
        let inner = &tag[..end];
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(ELEMENTS.contains(&name.as_str()), "element {inner:?} from {source:?}");
        let lower = inner.to_ascii_lowercase();
        for attr in lower.split_ascii_whitespace().skip(1) {
            assert!(!attr.starts_with("on"), "handler {inner:?} from {source:?}");
            for key in ["href=\"", "src=\""] {
                if let Some(value) = attr.strip_prefix(key) {
                    let ok = ["http://", "https://", "mailto:", "#", "/"]
                        .iter()
                        .any(|p| value.starts_with(p));
                    assert!(ok && !value.starts_with("//"), "url {inner:?} from {source:?}");
                }
            }
        }
        rest = &tag[end..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(artifact_git::web::WebRoute::Repo(id, _)) = artifact_git::web::route(text) {
        assert!(valid_name(&id.workspace) && valid_name(&id.alias), "{text:?}");
    }
    let next = artifact_git::signin::safe_next(Some(text));
    assert!(next.starts_with('/') && !next.starts_with("//") && !next.contains('\\'), "{next:?}");
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(text) {
        headers.insert(http::header::COOKIE, v);
        let _ = artifact_git::web::session::cookie_token(&headers);
    }
    let base = webview::markdown::LinkBase {
        pages: "/w/git/r/-/blob/main".into(),
        raw: "/w/git/r/-/raw/main".into(),
        folder: "docs".into(),
    };
    assert_inert(&webview::markdown::render(text, &base), text);
    if text.len() < 4096 {
        let html = webview::highlight::highlight("a.rs", text);
        let stripped = html.replace("</span>", "");
        for piece in stripped.split('<').skip(1) {
            assert!(piece.starts_with("span class=\"") , "{html:?}");
        }
    }
});
