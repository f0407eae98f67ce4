//! A test PKI made with the openssl command: a CA and certificates signed by it.

use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new P-256 key, without a passphrase.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A CA (`{name}-ca.pem`) and a server certificate for `dns` signed by it (`{name}.pem`,
/// `{name}-key.pem`).
pub fn make_pki(dir: &Path, name: &str, dns: &str) {
    let ca_key = format!("{name}-ca-key.pem");
    let ca = format!("{name}-ca.pem");
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(&EC_KEY);
    args.extend_from_slice(&[
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=test ca",
    ]);
    openssl(dir, &args);
    make_leaf(dir, name, name, &format!("/CN={dns}"), dns);
}

/// A certificate signed by the CA that [`make_pki`] made as `{ca}`: `{name}.pem` and
/// `{name}-key.pem`, with `subject` (`/CN=...`) and the DNS name `dns`, valid for two days.
pub fn make_leaf(dir: &Path, ca: &str, name: &str, subject: &str, dns: &str) {
    let key = format!("{name}-key.pem");
    let csr = format!("{name}.csr");
    let mut args = vec!["req"];
    args.extend_from_slice(&EC_KEY);
    args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &args);
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=DNS:{dns}\nbasicConstraints=CA:FALSE\n"),
    )
    .expect("write ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca-key.pem"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}
