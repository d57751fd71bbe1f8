//! Ref advertisements: the v0/v1 list sent on discovery, the v2 capability list, and the
//! v2 `ls-refs` answer.

use crate::capabilities::{agent, RECEIVE_PACK, UPLOAD_PACK_V0};
use crate::pktline::{write_data, write_flush, write_line};
use crate::ObjectId;

/// One ref as the server advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedRef {
    /// The full ref name (`refs/heads/main`).
    pub name: String,
    /// The object the ref points at.
    pub target: ObjectId,
    /// For an annotated tag, the object it finally points to.
    pub peeled: Option<ObjectId>,
}

/// What a repository shows on discovery: its refs and where `HEAD` points.
#[derive(Debug, Clone, Default)]
pub struct RefsView {
    /// The ref `HEAD` names, even when that ref does not exist yet (an unborn branch).
    pub head_symref: Option<String>,
    /// The refs, sorted by name.
    pub refs: Vec<AdvertisedRef>,
    /// The hash that names the repository's objects (an empty repository advertises its null
    /// id).
    pub object_hash: gix_hash::Kind,
    /// The repository does not exist yet and a push will create it in the pushing client's
    /// object format: every format is offered (`object_hash`'s first, the one its null id
    /// is written in; git's `send-pack` accepts any offered format).
    pub to_be_created: bool,
}

impl RefsView {
    /// The object `HEAD` resolves to, if its branch exists.
    pub fn head(&self) -> Option<ObjectId> {
        let target = self.head_symref.as_deref()?;
        self.refs
            .iter()
            .find(|r| r.name == target)
            .map(|r| r.target)
    }
}

/// Which service a discovery or request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `git-upload-pack`: clone and fetch.
    UploadPack,
    /// `git-receive-pack`: push.
    ReceivePack,
}

impl Service {
    /// The service's name, as in `?service=` and the content types.
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }

    /// The service named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }
}

/// The `# service=...` preamble that Smart HTTP puts before a v0/v1 advertisement.
pub fn write_service_header(out: &mut Vec<u8>, service: Service) {
    write_line(out, &format!("# service={}", service.name()));
    write_flush(out);
}

/// A v0 (or, with `version1`, v1) ref advertisement, capabilities on the first line.
pub fn write_v0(out: &mut Vec<u8>, service: Service, view: &RefsView, version1: bool) {
    if version1 {
        write_line(out, "version 1");
    }
    let mut caps: Vec<String> = match service {
        Service::UploadPack => UPLOAD_PACK_V0.iter().map(|s| s.to_string()).collect(),
        Service::ReceivePack => RECEIVE_PACK.iter().map(|s| s.to_string()).collect(),
    };
    if service == Service::UploadPack {
        if let (Some(target), Some(_)) = (&view.head_symref, view.head()) {
            caps.push(format!("symref=HEAD:{target}"));
        }
    }
    caps.push(format!("object-format={}", view.object_hash));
    if view.to_be_created {
        for other in [gix_hash::Kind::Sha1, gix_hash::Kind::Sha256] {
            if other != view.object_hash {
                caps.push(format!("object-format={other}"));
            }
        }
    }
    caps.push(agent());
    let caps = caps.join(" ");

    let mut lines: Vec<(ObjectId, String)> = Vec::with_capacity(view.refs.len() * 2 + 1);
    if service == Service::UploadPack {
        if let Some(head) = view.head() {
            lines.push((head, "HEAD".into()));
        }
    }
    for r in &view.refs {
        lines.push((r.target, r.name.clone()));
        if service == Service::UploadPack {
            if let Some(peeled) = r.peeled {
                lines.push((peeled, format!("{}^{{}}", r.name)));
            }
        }
    }
    if lines.is_empty() {
        lines.push((ObjectId::null(view.object_hash), "capabilities^{}".into()));
    }
    for (i, (id, name)) in lines.iter().enumerate() {
        if i == 0 {
            write_data(out, format!("{id} {name}\0{caps}\n").as_bytes());
        } else {
            write_line(out, &format!("{id} {name}"));
        }
    }
    write_flush(out);
}

/// The protocol v2 capability advertisement of `git-upload-pack` for a repository whose
/// objects `object_hash` names.
pub fn write_v2_capabilities(out: &mut Vec<u8>, object_hash: gix_hash::Kind) {
    write_line(out, "version 2");
    write_line(out, &agent());
    write_line(out, "ls-refs=unborn");
    write_line(out, "fetch=shallow wait-for-done filter packfile-uris");
    write_line(out, "server-option");
    write_line(out, &format!("object-format={object_hash}"));
    write_line(out, "object-info");
    write_line(out, "bundle-uri");
    write_flush(out);
}

/// Arguments of a v2 `ls-refs` command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsRefsArgs {
    /// `symrefs`: show where symbolic refs (HEAD) point.
    pub symrefs: bool,
    /// `peel`: show what annotated tags point to.
    pub peel: bool,
    /// `unborn`: show HEAD even when its branch has no commit yet.
    pub unborn: bool,
    /// `ref-prefix` arguments: only refs starting with one of these (all when empty).
    pub prefixes: Vec<String>,
}

/// The answer to a v2 `ls-refs`.
pub fn write_ls_refs(out: &mut Vec<u8>, view: &RefsView, args: &LsRefsArgs) {
    let wanted = |name: &str| {
        args.prefixes.is_empty() || args.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    };
    if wanted("HEAD") {
        match (view.head(), &view.head_symref) {
            (Some(head), Some(target)) => {
                let mut line = format!("{head} HEAD");
                if args.symrefs {
                    line.push_str(&format!(" symref-target:{target}"));
                }
                write_line(out, &line);
            }
            (None, Some(target)) if args.unborn => {
                write_line(out, &format!("unborn HEAD symref-target:{target}"));
            }
            _ => {}
        }
    }
    for r in view.refs.iter().filter(|r| wanted(&r.name)) {
        let mut line = format!("{} {}", r.target, r.name);
        if args.peel {
            if let Some(peeled) = r.peeled {
                line.push_str(&format!(" peeled:{peeled}"));
            }
        }
        write_line(out, &line);
    }
    write_flush(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::PktReader;

    fn oid(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    #[test]
    fn empty_repository_advertises_capabilities_line() -> crate::Result<()> {
        let mut out = Vec::new();
        write_v0(&mut out, Service::UploadPack, &RefsView::default(), false);
        let mut r = PktReader::new(&out[..]);
        let first = r.read()?.and_then(|p| p.line()).map(|l| l.to_vec());
        let first = first.unwrap_or_default();
        assert!(first.starts_with(b"0000000000000000000000000000000000000000 capabilities^{}\0"));
        Ok(())
    }

    #[test]
    fn head_symref_and_peeled_tags() -> crate::Result<()> {
        let view = RefsView {
            object_hash: gix_hash::Kind::Sha1,
            to_be_created: false,
            head_symref: Some("refs/heads/main".into()),
            refs: vec![
                AdvertisedRef {
                    name: "refs/heads/main".into(),
                    target: oid(1),
                    peeled: None,
                },
                AdvertisedRef {
                    name: "refs/tags/v1".into(),
                    target: oid(2),
                    peeled: Some(oid(1)),
                },
            ],
        };
        let mut out = Vec::new();
        write_v0(&mut out, Service::UploadPack, &view, false);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(" HEAD\0"));
        assert!(text.contains("symref=HEAD:refs/heads/main"));
        assert!(text.contains("refs/tags/v1^{}"));
        assert!(text.contains(" object-format=sha1 ") && !text.contains("sha256"));

        let mut out = Vec::new();
        write_ls_refs(
            &mut out,
            &view,
            &LsRefsArgs {
                symrefs: true,
                peel: true,
                unborn: true,
                prefixes: vec!["refs/tags/".into()],
            },
        );
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("HEAD"));
        assert!(text.contains(&format!("refs/tags/v1 peeled:{}", oid(1))));
        Ok(())
    }

    #[test]
    fn sha256_and_to_be_created_repositories_say_their_formats() {
        let mut view = RefsView {
            object_hash: gix_hash::Kind::Sha256,
            to_be_created: false,
            head_symref: Some("refs/heads/main".into()),
            refs: Vec::new(),
        };
        let mut out = Vec::new();
        write_v0(&mut out, Service::ReceivePack, &view, false);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(&format!("{} capabilities^{{}}\0", "0".repeat(64))));
        assert!(text.contains(" object-format=sha256 ") && !text.contains("sha1 "));
        view.object_hash = gix_hash::Kind::Sha1;
        view.to_be_created = true;
        let mut out = Vec::new();
        write_v0(&mut out, Service::ReceivePack, &view, false);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(" object-format=sha1 object-format=sha256 "));
        let mut out = Vec::new();
        write_v2_capabilities(&mut out, gix_hash::Kind::Sha256);
        assert!(String::from_utf8_lossy(&out).contains("object-format=sha256\n"));
    }
}
