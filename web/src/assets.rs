//! The stylesheet and the one script, embedded in the binary: pages load nothing from another
//! origin.

/// The stylesheet.
pub const STYLE: &str = include_str!("../assets/style.css");
/// The script: copy buttons. Pages work without it.
pub const SCRIPT: &str = include_str!("../assets/app.js");

/// The bytes and content type of the asset called `name`.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "style.css" => Some(("text/css; charset=utf-8", STYLE)),
        "app.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        _ => None,
    }
}
