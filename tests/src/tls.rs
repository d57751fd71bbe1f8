//! Certificates for the HTTPS tests, made with `openssl`: a CA and a server certificate it
//! signed, as a real deployment has (clients that verify with webpki, such as gix, refuse a
//! CA certificate used as the server's own).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A server certificate for 127.0.0.1 and localhost, and the CA that signed it.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The CA's certificate: what clients trust (`http.sslCAInfo`).
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new CA named `name` and a server certificate it signed, in `dir`.
pub fn certificate(dir: &Path, name: &str) -> Certificate {
    let file = |ext: &str| format!("{name}.{ext}");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    let (ca_key, ca_pem, subj) = (file("ca.key"), file("ca.pem"), format!("/CN={name} CA"));
    ca.extend([
        "-days", "2", "-subj", &subj, "-keyout", &ca_key, "-out", &ca_pem,
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    let (key, csr_file) = (file("key"), file("csr"));
    csr.extend(["-subj", "/CN=localhost", "-keyout", &key, "-out", &csr_file]);
    openssl(dir, &csr);
    let ext = file("ext");
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let cert = file("pem");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr_file,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
    Certificate {
        ca: dir.join(ca_pem),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}
