//! The web view of artifact-git: the pages a browser sees of workspaces and repositories,
//! rendered on the server.
//!
//! This crate only *renders*: it turns plain view models ([`view`]) into HTML with compiled
//! templates ([`pages`], askama, checked at build time and escaping every value by default),
//! renders README files from Markdown with nothing active left in them ([`markdown`]),
//! highlights source code into class names a stylesheet colours ([`highlight`]) and holds the
//! stylesheet and the one small script, embedded in the binary ([`assets`]). It reads no
//! repository and decides no permission: the server's page handlers read through the same
//! history answers and the same authorization as the API, fill the view models and call
//! [`pages`]. That keeps every page testable without a server and every attacker-controlled
//! string (file names, commit messages, branch names, Markdown) going through one escaping
//! path.
//!
//! Pages work without JavaScript: the script only adds a copy button. The server sends
//! [`CONTENT_SECURITY_POLICY`] with every page, so even markup that slipped through could run
//! no script and load nothing from another origin.

pub mod assets;
pub mod diff;
pub mod format;
pub mod highlight;
pub mod markdown;
pub mod pages;
pub mod view;

/// The policy every page is sent with: scripts and styles only from this origin's embedded
/// assets (no inline script or style at all), images from this origin, forms posting only
/// here, no framing by anyone.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

/// The policy of raw file bytes served from a repository: a document opened from there (an
/// HTML or SVG file someone pushed) runs in a sandbox with no script and an opaque origin.
pub const RAW_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src 'self' data:; \
style-src 'unsafe-inline'; sandbox";
