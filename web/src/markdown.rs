//! README files rendered from Markdown with nothing active left in them.
//!
//! Markdown may carry raw HTML, and a README is written by whoever can push. Rather than
//! parse that HTML and filter it against an allow list (what a sanitizer crate does, with a
//! full HTML parser behind it), raw HTML is not rendered as markup at all: every HTML block
//! and inline tag becomes escaped text, so the only elements on the page are the ones the
//! Markdown renderer itself writes. What remains attacker-controlled is the URLs of links and
//! images: only `http:`, `https:`, `mailto:` and relative ones are kept (a `javascript:` or
//! `data:` link becomes `#`), and relative ones are made to point at the repository's file
//! pages at the same revision. The pages' Content-Security-Policy stands behind this: even
//! a mistake here could run no script.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

/// Where relative links and images of a document point.
#[derive(Debug, Clone)]
pub struct LinkBase {
    /// The prefix of file pages at the revision (`/ws/git/repo/-/blob/main`).
    pub pages: String,
    /// The prefix of raw file bytes at the revision (`/ws/git/repo/-/raw/main`).
    pub raw: String,
    /// The folder the document is in (`""` at the root, else `docs` or `docs/api`).
    pub folder: String,
}

/// The HTML of `markdown`, with raw HTML shown as text and links made safe.
pub fn render(markdown: &str, base: &LinkBase) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(&dest_url, &base.pages, &base.folder).into(),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(&dest_url, &base.raw, &base.folder).into(),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// `url` if it is safe to put in a page: an absolute `http(s)` or `mailto` URL, a fragment, or
/// a path inside the repository (made absolute under `prefix`); `#` otherwise.
fn safe_url(url: &CowStr<'_>, prefix: &str, folder: &str) -> String {
    let url = url.trim();
    if url.starts_with('#') {
        return url.to_owned();
    }
    if let Some(scheme) = scheme_of(url) {
        return match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" | "mailto" => url.to_owned(),
            _ => "#".to_owned(),
        };
    }
    if url.starts_with("//") || url.contains('\\') {
        // Another host without a scheme, or a path browsers read in odd ways.
        return "#".to_owned();
    }
    let (path, fragment) = match url.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (url, None),
    };
    let path = path.split('?').next().unwrap_or("");
    // Markdown URLs come percent-encoded or not; the segments are encoded once, below.
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let Some(joined) = join(folder, &path) else {
        return "#".to_owned();
    };
    let mut out = prefix.to_owned();
    for segment in joined.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(&crate::view::encode_segment(segment));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(&crate::view::encode_segment(fragment));
    }
    out
}

/// The scheme of `url` when it has one (letters, digits, `+-.` before a `:` that comes before
/// any `/`, `?` or `#`).
fn scheme_of(url: &str) -> Option<&str> {
    let end = url.find([':', '/', '?', '#'])?;
    if url.as_bytes()[end] != b':' {
        return None;
    }
    let scheme = &url[..end];
    // Browsers drop tabs and newlines inside a scheme ("java\tscript:"): any such character
    // makes it a scheme we refuse rather than a path.
    (!scheme.is_empty()).then_some(scheme)
}

/// `path` resolved against `folder` (`.` and `..` applied; `None` when it climbs above the
/// repository's root). An absolute path starts at the root.
fn join(folder: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = match path.starts_with('/') {
        true => Vec::new(),
        false => folder.split('/').filter(|s| !s.is_empty()).collect(),
    };
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> LinkBase {
        LinkBase {
            pages: "/w/git/r/-/blob/main".into(),
            raw: "/w/git/r/-/raw/main".into(),
            folder: "docs".into(),
        }
    }

    #[test]
    fn raw_html_is_text() {
        let html = render(
            "# Hi\n\n<script>window.pwned=1</script>\n\nx <img src=x onerror=alert(1)> y\n",
            &base(),
        );
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn links_are_made_safe() {
        let html = render(
            "[a](javascript:alert(1)) [b](JaVa\tScRiPt:x) [c](data:text/html,x) [d](https://e.org/x) \
             [e](../README.md#top) [f](./guide.md) [g](//evil.org/x) [h](../../up) ![i](<img/a b.png>) ![i2](img/c%20d.png) \
             [j](#anchor) [k](mailto:a@b.c)",
            &base(),
        );
        assert!(!html.to_lowercase().contains("javascript"), "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(html.contains("href=\"https://e.org/x\""), "{html}");
        assert!(
            html.contains("href=\"/w/git/r/-/blob/main/README.md#top\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/w/git/r/-/blob/main/docs/guide.md\""),
            "{html}"
        );
        assert!(!html.contains("evil.org"), "{html}");
        assert!(
            html.contains("src=\"/w/git/r/-/raw/main/docs/img/a%20b.png\""),
            "{html}"
        );
        assert!(
            html.contains("src=\"/w/git/r/-/raw/main/docs/img/c%20d.png\""),
            "{html}"
        );
        assert!(html.contains("href=\"#anchor\""), "{html}");
        assert!(html.contains("href=\"mailto:a@b.c\""), "{html}");
        assert_eq!(html.matches("href=\"#\"").count(), 4, "{html}");
    }

    #[test]
    fn tables_and_code() {
        let html = render(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n```rust\nfn x() {}\n```\n",
            &base(),
        );
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<code class=\"language-rust\">"), "{html}");
    }
}
